"""One module per sub-command (`add_arguments`, `run`); shared environment reading lives here."""

import os
from pathlib import Path

# The default config shipped inside the package: `pipeline/conf` is a symlink to the top-level
# `conf/` (the one source of truth) and is copied into the wheel as package data.
PACKAGED_CONF = Path(__file__).resolve().parents[1] / "conf"


def project_experiment() -> str | None:
    """Under `mlflow run` the project runner has already created the run (MLFLOW_RUN_ID) in the
    experiment it chose (--experiment-name, else Default): the command logs into that run and
    experiment instead of opening new ones. None outside `mlflow run`."""
    if not os.environ.get("MLFLOW_RUN_ID"):
        return None
    from pipeline.commands.project_params import note_default_experiment

    note_default_experiment(os.environ.get("MLFLOW_EXPERIMENT_ID"))
    return os.environ.get("MLFLOW_EXPERIMENT_ID")


def add_config_arguments(parser) -> None:
    """`--preset NAME` and `--conf-dir DIR`, the same for every command that reads the config."""
    parser.add_argument("--preset", metavar="NAME", default=None,
                        help="layer <conf-dir>/presets/NAME.yaml over base.yaml (a named config "
                             "file; runs still go to the MLflow experiment tracking.experiment)")
    parser.add_argument("--conf-dir", type=Path, default=None, metavar="DIR",
                        help="config directory (default: ./conf if it holds base.yaml, else "
                             "the config shipped with the package)")


def add_cache_argument(parser) -> None:
    """`--no-cache`: train even when the tracking store holds an identical finished run."""
    parser.add_argument("--no-cache", action="store_true",
                        help="train afresh even when the store holds a finished run with the "
                             "same config, data, code, numpy/BLAS and threads (the run cache, "
                             "also off with tracking.cache=false); the new result is still "
                             "stored for later runs")


def conf_dir(args) -> Path:
    """Where the config is read from, for every command: `--conf-dir` if given, else `./conf`
    when it holds a base.yaml (a checkout, or a project the user laid out), else the packaged
    default, so the console script works from any directory."""
    given = getattr(args, "conf_dir", None)
    if given is not None:
        return Path(given)
    local = Path("conf")
    if (local / "base.yaml").is_file():
        return local
    return PACKAGED_CONF


def take_project_run() -> str | None:
    """Under `mlflow run`: the runner's run id, removed from the environment so that MLflow's
    `start_run` does not resume it. The search logs its parent and trials into the study's own
    experiment and leaves the runner's run as a pointer to them. None outside `mlflow run`."""
    return os.environ.pop("MLFLOW_RUN_ID", None)


def stop_of(args):
    """The command's `pipeline.stop.Stop` (cli.main sets `args.stop` and turns SIGTERM/Ctrl-C
    into its requests); a fresh, never-requested one when `run(args)` is called directly."""
    from pipeline.stop import Stop

    stop = getattr(args, "stop", None)
    return stop if stop is not None else Stop()


def print_open_hint(ui_url: str | None, *, experiment_id: str | None = None,
                    run_id: str | None = None, show_run: bool = False) -> None:
    """After a command that recorded runs: the store, the `mlflow ui` command that serves it
    where the links point, and the runs table (of `experiment_id`, else of `run_id`'s
    experiment); the run's own link too when `show_run`."""
    from pipeline.tracking.ui import experiment_of, open_hint

    if experiment_id is None:
        experiment_id = experiment_of(run_id)
    print("\n".join(open_hint(ui_url, experiment_id, run_id if show_run else None)), flush=True)
