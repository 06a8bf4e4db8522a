"""`python -m pipeline worker study=<name> storage=<url>`: join a study another process created.

Start one per machine (or several per machine) next to a `search` that created the study in a
shared storage (PostgreSQL): each runs trials until the study holds its target of finished
trials, logging a child run per trial under the study's one parent run on the tracking server
($MLFLOW_TRACKING_URI or `tracking.uri=`). A worker that dies is replaced: its trial is failed
(heartbeat, `search.grace_period` seconds) and another worker runs a new one. See the README's
multi-machine recipe.
"""

from __future__ import annotations

import argparse
from pathlib import Path

KEYS = ("study", "storage", "tracking.uri")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("settings", nargs="+", metavar="key=value",
                        help="study=NAME storage=URL (required), tracking.uri=URL (default: "
                             "$MLFLOW_TRACKING_URI, else the search's when it holds no password)")


def parse(settings: list[str]) -> dict[str, str]:
    """`study=`, `storage=` (also as search.study=, search.storage=) and `tracking.uri=`."""
    out = {}
    for item in settings:
        key, sep, value = item.partition("=")
        key = key.removeprefix("search.")
        if not sep or key not in KEYS:
            raise ValueError(f"worker takes {', '.join(k + '=' for k in KEYS)}, got {item!r}")
        if not value:
            raise ValueError(f"worker {key}= must not be empty")
        out[key] = value
    for key in ("study", "storage"):
        if key not in out:
            raise ValueError(f"worker needs {key}=, e.g. study=moons-tpe "
                             "storage=postgresql://user@db-host/optuna")
    return out


def run(args: argparse.Namespace) -> int:
    given = parse(args.settings)
    from pipeline.commands import preflight

    if given.get("tracking.uri"):
        preflight.check_tracking(given["tracking.uri"])  # one line, before the study is touched
    from pipeline.commands import stop_of
    from pipeline.search import quiet_optuna
    from pipeline.search.join import join
    from pipeline.stop import Stopped

    from pipeline.store_fault import one_line_faults

    quiet_optuna()
    try:  # SIGTERM / Ctrl-C: the trial in progress stops at its next epoch (cli.main's Stop)
        with one_line_faults(lambda: _stores(given), "in this worker"):
            done = join(given["study"], given["storage"], given.get("tracking.uri"),
                        workdir=Path.cwd(), stop=stop_of(args))
    except Stopped as exc:  # cli.main prints one line and exits 143 / 130
        exc.outcome = ("the trial in progress ended FAIL (its child run KILLED); the other "
                       "workers, or the next one, replace it")
        raise
    print(f"worker: {done.ran} trial{'' if done.ran == 1 else 's'} finished here; study "
          f"{done.study} ({done.storage}) has {done.finished} finished trials "
          f"(target {done.target}), parent run {done.parent_run_id}")
    if done.ran and done.parent_run_id:  # trial runs were recorded under that parent
        from pipeline.commands import print_open_hint

        print_open_hint(None, run_id=done.parent_run_id)
    return 0


def _stores(given: dict[str, str]) -> dict[str, str]:
    """The stores a worker writes, as its one line on a store fault names them (masked)."""
    from pipeline.tracking import tracking_uri

    return {"tracking": tracking_uri(), "storage": given["storage"]}
