"""The command line (the edge that reads files and the environment).

Each sub-command lives in `pipeline/commands/<name>.py` and exposes
`add_arguments(parser)` and `run(args) -> int`. Command modules are imported only when their
command is chosen, so `--help` and validation errors stay fast (mlflow alone costs ~1 s).
A `ValueError` anywhere below, or an exception of the environment (MLflow, HTTP, SQLAlchemy,
Optuna storage, OSError), becomes one line on stderr and exit code 2.

Signals: `main` makes the command's `Stop` (`args.stop`, see pipeline/stop.py) and turns
SIGTERM and Ctrl-C into a stop request for the command's whole life; the command passes it to
its stages, which stop at a safe point. This is the one place a stop becomes an exit code:
143 for SIGTERM, 130 for Ctrl-C, with one line on stderr (what was stopped and what became of
its runs, as the command said in `Stopped.outcome`), no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.errors import foreseeable, one_line

COMMANDS = {
    "train": "one tracked training run (data -> split -> standardize -> augment -> train -> MLflow)",
    "search": "Optuna search on the dev set, one nested MLflow run per trial",
    "worker": "join a study another process created (any machine); run trials to its target",
    "evaluate": "the one-time test-set evaluation of a study's best configuration",
    "reproduce": "rerun a logged MLflow run and report whether its numbers match",
    "gradcheck": "numerical gradient check of the network, per parameter block",
    "experiment": "a lesson (conf/lessons/<name>.yaml) over seeds: parent run, child per arm and seed",
}


# what `--help` says the program is (the module docstring speaks to maintainers)
DESCRIPTION = ("nn-pipeline: a NumPy neural network with train/dev/test discipline, tracked "
               "with MLflow and tuned with Optuna. Every command takes dotted key=value "
               "config overrides (conf/base.yaml lists the keys).")


def version() -> str:
    """The installed distribution's version (package metadata), else the source's own."""
    from importlib import metadata

    try:
        return metadata.version("nn-pipeline")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        from pipeline import __version__

        return __version__


def build_parser(prog: str = "nn-pipeline") -> argparse.ArgumentParser:
    """`prog` is how the user started us, so usage lines and errors can be pasted back:
    `nn-pipeline` (the console script) or `python -m pipeline` (`__main__.py` passes it)."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"nn-pipeline {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        _command_module(name).add_arguments(cmd)
    return parser


def _command_module(name: str):
    return importlib.import_module(f"pipeline.commands.{name}")


def main(argv: list[str] | None = None, prog: str = "nn-pipeline") -> int:
    # the BLAS thread count (one unless the user chose: pipeline/threads.py), exported before
    # the parser imports the command modules, which import numpy (the BLAS reads it once):
    # here, not in __main__.py, so that the console script gets the same default
    from pipeline import threads

    threads.export()
    sys.excepthook = _masked_traceback  # an unforeseen error's traceback quotes URIs too
    from pipeline.store_fault import quiet_threads

    quiet_threads()  # a thread dying of a store fault: the command's own line says it
    try:
        args = parse(build_parser(prog), argv)
        from pipeline.commands.preflight import mlflow_defaults

        mlflow_defaults()  # bounded HTTP retries, no progress bars, every command (user values win)
        return _run_stoppable(args)
    except KeyboardInterrupt:  # Ctrl-C before the command's handlers were installed
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except Exception as exc:
        fault = _store_fault(exc)  # a command that did not name its stores itself (search does)
        if fault is not None:
            print(f"error: {fault}", file=sys.stderr)
            return 2
        if not foreseeable(exc):
            raise
        line = one_line(exc)
        print(f"error: {line}", file=sys.stderr)
        from pipeline.commands.project_params import describe_refusal

        describe_refusal(line)  # under `mlflow run`: its run (ended FAILED) says why
        return 2


def _store_fault(exc: BaseException) -> str | None:
    """A store that failed under the command, as one line naming it: the tracking store MLflow
    was pointed at, when the tracking edge was loaded (pipeline/store_fault.py)."""
    from pipeline import store_fault

    fault = store_fault.fault_of(exc)
    if fault is None:
        return None
    tracking = sys.modules.get("pipeline.tracking")
    stores = {"tracking": tracking.tracking_uri()} if tracking is not None else {}
    return store_fault.one_line(fault, stores, "during the command")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """argparse, except that the `--name value` arguments `mlflow run` makes of an undeclared
    `-P name=value` are explained in one line (ValueError) instead of "unrecognized arguments"."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        from pipeline.commands.project_params import under_project_run, undeclared_line

        given = list(sys.argv[1:] if argv is None else argv)
        line = undeclared_line(args.command, extra, given) if under_project_run() else None
        if line is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        raise ValueError(line)
    return args


def _masked_traceback(kind, exc, tb) -> None:
    """The traceback Python prints for an exception nobody caught, passwords masked."""
    import traceback

    from pipeline.redact import redact

    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))


def _run_stoppable(args) -> int:
    """Run the command with its `Stop` (args.stop) fed by SIGTERM/SIGINT; a `Stopped` becomes
    its exit code (143/130) and one line on stderr."""
    from pipeline.stop import Stop, Stopped

    stop = args.stop = Stop()
    try:
        with stop.on_signals():
            code = int(_command_module(args.command).run(args) or 0)
    except Stopped as exc:
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    if stop.requested:  # the command finished without a safe point after it: not a success
        late = stop.stopped()
        late.outcome = "received after the command's work was done (its output is complete)"
        print(late.line(), file=sys.stderr)
        return late.exit_code
    return code
