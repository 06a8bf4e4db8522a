"""`python -m pipeline evaluate study=<name>`: the one-time test evaluation of a study.

Retrains the best trial's configuration (train split by default, `evaluate.retrain_on`),
evaluates it on the test split once, records the evaluation and registers the model under its
task's registered model, where the champion/challenger rules (pipeline/promotion.py) decide
its aliases and the decision is printed. A second evaluation of the same study on the same
test data exits 2 with the date and run of the first; `--force` (or `evaluate.force=true`)
overrides and is recorded as forced.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import add_config_arguments, conf_dir, project_experiment, stop_of
from pipeline.commands.search import expand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="study=<name> (or search.study=<name>), evaluate.* settings")
    add_config_arguments(parser)
    parser.add_argument("--force", action="store_true",
                        help="evaluate again although this study was evaluated (recorded)")


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    overrides = expand(args.overrides, ("study", "storage"))
    overrides = expand(overrides, ("retrain_on", "force"), section="evaluate")
    if args.force:
        overrides.append("evaluate.force=true")
    cfg = load_config(overrides, conf_dir=conf_dir(args), preset=args.preset)
    from pipeline.commands import preflight, unsent

    preflight.check(cfg)  # the tracking store answers, before the study is opened
    unsent.replay_pending(preflight.tracking_uri(cfg))

    from pipeline.search import quiet_optuna
    from pipeline.search.evaluate import run_evaluate

    from pipeline.stop import Stopped

    quiet_optuna()
    try:
        done = run_evaluate(cfg, workdir=Path.cwd(), experiment_id=project_experiment(),
                            stop=stop_of(args))
    except Stopped as exc:  # cli.main prints it and exits 143/130
        exc.outcome = ("after the test look: the evaluation above was recorded and printed in "
                       "full" if exc.held else "before the test split was opened: nothing "
                       "recorded, the test look is not spent (run evaluate again)")
        raise
    from pipeline.commands import print_open_hint

    print_open_hint(cfg.tracking.ui_url, run_id=done.run_id)
    return 0
