"""Command line: the imperative shell.

Each sub-command lives in `pipeline/commands/<name>.py` and exposes
`add_arguments(parser)` and `run(args) -> int`. Command modules are imported only when their
command is chosen, so `--help` and validation errors stay fast (mlflow alone costs ~1 s).
A `ValueError` anywhere below becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "train": "one tracked training run (data -> split -> standardize -> augment -> train -> MLflow)",
    "search": "Optuna search on the dev set, one nested MLflow run per trial",
    "evaluate": "the one-time test-set evaluation of a study's best configuration",
    "reproduce": "rerun a logged MLflow run and report whether its numbers match",
    "gradcheck": "numerical gradient check of the network, per parameter block",
    "experiment": "a lesson (conf/lessons/<name>.yaml) over seeds: parent run, child per arm and seed",
}


def build_parser(prog: str = "nn-pipeline") -> argparse.ArgumentParser:
    """`prog` is how the user started us, so usage lines and errors can be pasted back:
    `nn-pipeline` (the console script) or `python -m pipeline` (`__main__.py` passes it)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        _command_module(name).add_arguments(cmd)
    return parser


def _command_module(name: str):
    return importlib.import_module(f"pipeline.commands.{name}")


def main(argv: list[str] | None = None, prog: str = "nn-pipeline") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return int(_command_module(args.command).run(args) or 0)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
