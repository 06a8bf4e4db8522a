"""What `mlflow run` hands a command, explained in one line.

MLflow's runner checks an entry point's declared parameters itself: one without a default
that is not given (`-e reproduce` without `-P run_id=...`) is refused before any run exists.
Everything else reaches us after the runner has created its run (MLflow 3.17,
mlflow/projects/backend/local.py): a `-P name=value` that the entry point does not declare
is passed on as `--name value` (argparse would say "unrecognized arguments"), and a bad value
of a declared one is the config's to refuse. So here: an undeclared `-P` is named with the
entry point's parameters and a "did you mean", and the runner's run (which then ends FAILED,
as every non-zero exit does) gets that line as its description, so the UI says why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# our command -> the MLproject entry point that runs it
ENTRY_POINTS = {"train": "main", "search": "search", "evaluate": "evaluate",
                "experiment": "experiment", "reproduce": "reproduce"}


def under_project_run() -> bool:
    return bool(os.environ.get("MLFLOW_RUN_ID"))


def declared(entry_point: str, project_dir: Path = Path(".")) -> list[str]:
    """The parameter names of `entry_point` in the MLproject file of `project_dir` (the
    runner starts the command there); [] when there is none."""
    import yaml

    path = project_dir / "MLproject"
    if not path.is_file():
        return []
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return sorted((spec.get("entry_points", {}).get(entry_point) or {}).get("parameters") or {})


def undeclared_line(command: str | None, extra: list[str], argv: list[str]) -> str | None:
    """One line for the `--name value` arguments MLflow made of undeclared `-P name=value`s
    (`extra`: what argparse did not know, of the command line `argv`); None when `extra` is
    not that (then argparse's own message stands)."""
    names = [a[2:].partition("=")[0] for a in extra if a.startswith("--") and len(a) > 2]
    if not names or command not in ENTRY_POINTS:
        return None
    from pipeline.config.suggest import closest_name

    entry = ENTRY_POINTS[command]
    params = declared(entry)
    name = names[0]
    at = argv.index(extra[0]) if extra[0] in argv else -1   # its value: the next argument
    value = argv[at + 1] if 0 <= at < len(argv) - 1 else "..."
    meant = closest_name(name, params)
    hint = f"; did you mean -P {meant}=...?" if meant else ""
    listed = f"; its parameters: {', '.join(params)}" if params else ""
    return (f"-P {name}={value} is not a parameter of the MLproject entry point {entry} "
            f"(MLflow passes an undeclared -P on as --{name}){listed}{hint}")


def describe_refusal(line: str) -> None:
    """Under `mlflow run`: the runner's run (ended FAILED by the runner after our exit) says
    why in its description. Never raises: the refusal itself is what the user must see."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id or not os.environ.get("MLFLOW_TRACKING_URI"):  # the runner sets both
        return
    try:
        from pipeline.tracking.project_run import describe_project_run

        describe_project_run(run_id, name=None, note=f"Refused before anything ran: {line}",
                             tags={"refused": line[:5000]})
    except Exception as exc:  # a store that cannot be written: the refusal still stands
        print(f"(could not describe mlflow run's run {run_id}: {type(exc).__name__})",
              file=sys.stderr)


_NOTED: list[bool] = []


def note_default_experiment(experiment_id: str | None) -> None:
    """`mlflow run` without --experiment-name puts its run in Default (id 0): say once how to
    keep it with the project's runs (MLflow reads the name from the command line or
    $MLFLOW_EXPERIMENT_NAME; an MLproject file cannot name one)."""
    if experiment_id != "0" or _NOTED:
        return
    _NOTED.append(True)
    print("note: mlflow run put its run in experiment Default; add --experiment-name "
          "nn-pipeline to `mlflow run` (or export MLFLOW_EXPERIMENT_NAME=nn-pipeline) to keep "
          "it with the project's runs", file=sys.stderr, flush=True)
