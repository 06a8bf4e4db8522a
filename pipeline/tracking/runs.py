"""Where runs go (tracking URI, experiment) and a run context whose final status is honest.

MLflow's own `with start_run()` ends FAILED on Ctrl-C and leaves the run RUNNING forever on
SIGTERM (see docs/tracking.md). `run` installs a SIGTERM handler for the run's lifetime and
maps: normal exit -> FINISHED, exception -> FAILED, KeyboardInterrupt or SIGTERM -> KILLED.

The SIGTERM handler does not raise where the signal lands: raised inside an MLflow write it can
cut a SQLite transaction halfway and leave the database locked for the very writes that end
the run (seen in CI: a search hung 60 s on "database is locked" after SIGTERM). It records the
signal; `check_terminated()` raises it at safe points (every training evaluation, through
MetricBuffer, and the end of the run). A second SIGTERM raises at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.tracking import notes, ui


class Terminated(BaseException):
    """Raised inside the run by the SIGTERM handler (a BaseException, like KeyboardInterrupt,
    so `except Exception` in user code does not swallow it)."""


_pending: list[int] = []  # SIGTERMs received and not yet raised at a safe point
# While `hold_signals` is active: on=True, "sigint" = SIGINTs recorded, "restore" = handlers to
# put back at its end (a run ending inside the hold leaves its recording SIGTERM handler).
_hold: dict = {"on": False, "sigint": [], "restore": {}}


def check_terminated() -> None:
    """A safe point: raise `Terminated` if a SIGTERM arrived since the run started (not while
    signals are held: the held work finishes first)."""
    if _pending and not _hold["on"]:
        signum = _pending[0]
        _pending.clear()
        raise Terminated(f"received signal {signum} (SIGTERM)")


def configure(tracking_cfg, *, experiment_id: str | None = None) -> str:
    """Point MLflow at the store and create (or open) the experiment; returns its id.

    `tracking_cfg.uri` wins; None leaves MLflow's own resolution: $MLFLOW_TRACKING_URI, else
    `sqlite:///mlflow.db` in the working directory. `experiment_id` (e.g. the one `mlflow run`
    already chose) overrides `tracking_cfg.experiment`. Call this in the parent process before
    any worker starts: several processes creating a fresh SQLite DB at once race on its schema.
    """
    if tracking_cfg.uri:
        mlflow.set_tracking_uri(tracking_cfg.uri)
    from pipeline.tracking.store import seed_store

    seed_store(mlflow.get_tracking_uri())  # a new SQLite store: a copy, not 60 migrations
    if experiment_id is not None:
        experiment = mlflow.set_experiment(experiment_id=experiment_id)
    else:
        experiment = mlflow.set_experiment(tracking_cfg.experiment)
    # also the experiment `mlflow run` created (Default, or --experiment-name) before us
    ui.set_experiment_ui(experiment.experiment_id, notes.train_experiment_note(experiment.name))
    return experiment.experiment_id


def tracking_uri() -> str:
    return mlflow.get_tracking_uri()


ui_links = ui.ui_links


@contextmanager
def without_ipython_probe() -> Iterator[None]:
    """Creating a run, MLflow imports IPython (when installed) only to ask `get_ipython()`
    whether it runs in a notebook or on Databricks: 0.3-2.4 s of a command here (-X importtime,
    loaded machine). A process that has not imported IPython is not inside it, so while
    MLflow asks, `import IPython` fails fast and MLflow takes the answer it gets for "not
    installed". Inside IPython or Jupyter nothing changes."""
    if "IPython" in sys.modules:
        yield
        return
    sys.modules["IPython"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        if "IPython" in sys.modules and sys.modules["IPython"] is None:
            del sys.modules["IPython"]


@contextmanager
def run(run_name: str | None = None, *, parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None, experiment_id: str | None = None,
        ) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run (the fluent active run of this thread) and end it honestly.

    Yields the `mlflow.ActiveRun` (`.info.run_id`). SIGTERM is turned into `Terminated` while
    the run is active (main thread only) and the previous handler is restored afterwards; the
    exception is re-raised after the run is ended KILLED, so the caller still exits non-zero.
    """
    with without_ipython_probe():
        active = mlflow.start_run(run_name=run_name, parent_run_id=parent_run_id,
                                  tags=dict(tags or {}), experiment_id=experiment_id,
                                  nested=parent_run_id is not None)
    installed, previous = _install_sigterm()
    try:
        yield active
        check_terminated()  # a SIGTERM during the run's last writes still ends it KILLED
    except (KeyboardInterrupt, Terminated):
        _end(active, "KILLED")
        raise
    except BaseException:
        _end(active, "FAILED")
        raise
    else:
        _end(active, "FINISHED")
    finally:
        if installed:
            previous = signal.SIG_DFL if previous is None else previous
            if _hold["on"]:  # keep recording until the hold ends; it restores this one
                _hold["restore"].setdefault(signal.SIGTERM, previous)
            else:
                signal.signal(signal.SIGTERM, previous)


@contextmanager
def hold_signals() -> Iterator[None]:
    """Work that must not be cut in half (evaluate after the test split is unsealed: the look
    is spent, so its numbers must be recorded and printed). A SIGTERM or SIGINT already pending
    is raised on entry, before the work starts; inside the block both are recorded only; at its
    end the first recorded one is raised (KeyboardInterrupt or `Terminated`), so the caller
    still exits 130/143. Main thread only; elsewhere the block runs unprotected."""
    check_terminated()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        _hold["sigint"].append(signum)

    def on_sigterm(signum, frame):
        _pending.append(signum)

    _hold.update(on=True, sigint=[], restore={})
    _hold["restore"][signal.SIGINT] = signal.signal(signal.SIGINT, on_sigint)
    term = signal.getsignal(signal.SIGTERM)
    if term in (signal.SIG_DFL, signal.SIG_IGN, None):  # no run's handler: record ourselves
        _hold["restore"][signal.SIGTERM] = signal.signal(signal.SIGTERM, on_sigterm)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        restore, got_int = _hold["restore"], bool(_hold["sigint"])
        _hold.update(on=False, sigint=[], restore={})
        for signum, handler in restore.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if not failed and (got_int or _pending):
            # `held` tells the caller the work was finished before this was raised
            exc = (KeyboardInterrupt("SIGINT held until the work was finished") if got_int else
                   Terminated(f"received signal {_pending[0]} (SIGTERM), held until the work "
                              "was finished"))
            _pending.clear()
            exc.held = True
            raise exc


def _end(active: mlflow.ActiveRun, status: str) -> None:
    current = mlflow.active_run()
    if current is not None and current.info.run_id == active.info.run_id:
        mlflow.end_run(status)
    else:  # someone ended or replaced the fluent run; set the status directly
        MlflowClient().set_terminated(active.info.run_id, status)


def defer_sigterm() -> None:
    """In a worker process with no run of its own: record SIGTERM for the next safe point
    (the next training evaluation) instead of dying with the trial's run left RUNNING."""
    _install_sigterm()


def _install_sigterm():
    """(installed, previous handler); signals can only be handled in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False, None

    def on_sigterm(signum, frame):
        if _pending and not _hold["on"]:  # asked twice: do not wait for a safe point
            raise Terminated(f"received signal {signum} (SIGTERM) twice")
        _pending.append(signum)

    _pending.clear()
    return True, signal.signal(signal.SIGTERM, on_sigterm)
