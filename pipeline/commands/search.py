"""`python -m pipeline search [key=value ...]`: Optuna search on the dev set.

Bare `study=`, `n_trials=`, `workers=`, `storage=`, `space=`, `objective=` are shorthands for
`search.<key>=` (the MLproject entry point passes them that way). Rerunning the same command
resumes the study up to `n_trials` finished trials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands import project_experiment, take_project_run

SHORTHANDS = ("study", "n_trials", "workers", "storage", "space", "objective")


def expand(overrides: list[str], shorthands=SHORTHANDS, section: str = "search") -> list[str]:
    """`n_trials=50` -> `search.n_trials=50`; everything else passes through."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        out.append(f"{section}.{key}={value}" if sep and key in shorthands else item)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. n_trials=50 workers=2 regularization.l1=0")
    parser.add_argument("--experiment", default=None, help="conf/experiment/<name>.yaml layer")
    parser.add_argument("--conf-dir", default="conf", help="config directory (default: conf)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.search.space import check_space, load_space

    conf_dir = Path(args.conf_dir)
    cfg = load_config(expand(args.overrides), conf_dir=conf_dir, experiment=args.experiment)
    space, text = load_space(cfg.search.space, conf_dir)
    check_space(cfg, space)  # a bad space fails here, before any study or run exists

    from pipeline.search import quiet_optuna
    from pipeline.search.run import run_search

    from pipeline.tracking import Terminated

    quiet_optuna()
    try:
        experiment = project_experiment()            # before take_project_run clears it
        run_search(cfg, space, text, workdir=Path.cwd(), progress=not args.quiet,
                   experiment_id=experiment, pointer_run_id=take_project_run())
    except (KeyboardInterrupt, Terminated) as exc:
        sigterm = isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated)
        print(f"{'terminated (SIGTERM)' if sigterm else 'interrupted'}: the parent run ended "
              "KILLED and the trial in progress FAIL; rerun the same command to resume",
              file=sys.stderr)
        return 143 if sigterm else 130
    return 0
