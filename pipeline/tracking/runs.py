"""Where runs go (tracking URI, experiment) and a run context whose final status is honest.

MLflow's own `with start_run()` ends FAILED on Ctrl-C and leaves the run RUNNING forever on
SIGTERM (see docs/tracking.md). `run` maps: normal exit -> FINISHED, `KeyboardInterrupt`
(Ctrl-C, or the `pipeline.stop.Stopped` a SIGTERM or SIGINT becomes at a safe point) ->
KILLED, any other exception -> FAILED. No signal handling here: the command line owns the
`Stop` and passes it down; `run(stop=...)` only checks it when the run opens and closes.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Mapping

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.tracking import notes, ui
from pipeline.tracking.recovery import owned


def configure(tracking_cfg, *, experiment_id: str | None = None) -> str:
    """Point MLflow at the store and create (or open) the experiment; returns its id.

    `tracking_cfg.uri` wins; None leaves MLflow's own resolution: $MLFLOW_TRACKING_URI, else
    `sqlite:///mlflow.db` in the working directory. `experiment_id` (e.g. the one `mlflow run`
    already chose) overrides `tracking_cfg.experiment`. Call this in the parent process before
    any worker starts: several processes creating a fresh SQLite DB at once race on its schema.

    The experiment is got or created by id, not with `mlflow.set_experiment(name)`: when two
    processes create a new experiment at once, MLflow's loser returns the winner's experiment
    WITHOUT making it active, and its next run went to Default while the command printed the
    other id (15 of 42 runs in 7 attempts of 6 trains at once). `run` starts every run in the
    id returned here (or one given explicitly), never in MLflow's "active" experiment.
    """
    if tracking_cfg.uri:
        mlflow.set_tracking_uri(tracking_cfg.uri)
    from pipeline.tracking.store import experiment_id_of, retry_lost_create, seed_store

    seed_store(mlflow.get_tracking_uri())  # a new SQLite store: a copy, not 60 migrations
    if experiment_id is None:
        experiment_id = experiment_id_of(MlflowClient(), tracking_cfg.experiment)
    experiment = mlflow.set_experiment(experiment_id=experiment_id)  # checks it is active
    _CONFIGURED.update(uri=mlflow.get_tracking_uri(), experiment_id=experiment.experiment_id)
    # also the experiment `mlflow run` created (Default, or --experiment-name) before us;
    # processes starting at once write the same tags: the loser finds them written
    retry_lost_create(lambda: ui.set_experiment_ui(
        experiment.experiment_id, notes.train_experiment_note(experiment.name)))
    return experiment.experiment_id


# The store and experiment `configure` chose last in this process: where `run` starts a run
# given no experiment, while the store is still that one.
_CONFIGURED: dict[str, str] = {}


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
        stop=None) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run (the fluent active run of this thread) and end it honestly.

    Yields the `mlflow.ActiveRun` (`.info.run_id`). The run records this process as its
    owner (tag `pipeline.owner`): killed with -9, the next command ends it (recovery.py).
    The run is started in `experiment_id`,
    else in the one `configure` chose, always named explicitly (see `configure`). `stop` (a
    `pipeline.stop.Stop`) is checked before the run is created (a stop already requested
    creates no run) and after the block (a stop requested during the run's last writes still
    ends it KILLED). The exception is
    re-raised after the run is ended, so the caller still exits non-zero.
    """
    if stop is not None:
        stop.check()
    experiment_id = experiment_id or configured_experiment() or _active_experiment()
    with without_ipython_probe():
        active = mlflow.start_run(run_name=run_name, parent_run_id=parent_run_id,
                                  tags=owned(tags), experiment_id=experiment_id,
                                  nested=parent_run_id is not None)
    try:
        yield active
        if stop is not None:
            stop.check()
    except KeyboardInterrupt:  # Ctrl-C, or pipeline.stop.Stopped (a subclass)
        _end(active, "KILLED")
        raise
    except BaseException:
        _end(active, "FAILED")
        raise
    else:
        _end(active, "FINISHED")


def configured_experiment() -> str | None:
    if _CONFIGURED.get("uri") == mlflow.get_tracking_uri():
        return _CONFIGURED["experiment_id"]
    return None


def _active_experiment() -> str:
    """Outside `configure` (a library caller who set the experiment itself): the experiment
    MLflow would pick, resolved now so the run is still started with an explicit id."""
    from mlflow.tracking.fluent import _get_experiment_id

    return _get_experiment_id()


def _end(active: mlflow.ActiveRun, status: str) -> None:
    current = mlflow.active_run()
    if current is not None and current.info.run_id == active.info.run_id:
        mlflow.end_run(status)
    else:  # someone ended or replaced the fluent run; set the status directly
        MlflowClient().set_terminated(active.info.run_id, status)
