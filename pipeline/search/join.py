"""A worker that joins a study another process created (`python -m pipeline worker`).

Everything it needs comes from the study's record (record.py), so a worker on another machine
is started with the study name and the storage URL alone: the training config, the search
space, the total to reach and the ONE parent run its trials are logged under (the latest of
the record's parent runs, in its search experiment), all written by the `search` that created
or resumed the study. The worker runs trials until the study holds the
target, replacing trials of dead workers like the search's own workers do (workers.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import optuna

from pipeline import store_urls
from pipeline.redact import MASK, redact
from pipeline.search import storage as S
from pipeline.search.record import StudyRecord
from pipeline.search.study import FINISHED, count, open_study
from pipeline.search.workers import WorkerJob, run_worker

_NEEDED = ("base_config", "space", "target_trials", "parent_runs", "search_experiment_id")


@dataclass(frozen=True)
class Joined:
    study: str
    storage: str          # redacted label
    parent_run_id: str
    target: int
    ran: int              # trials this worker finished
    finished: int         # finished trials of the study afterwards


def join(study: str, storage: str, tracking_uri: str | None, *, workdir: Path = Path("."),
         stop=None) -> Joined:
    """Run trials of `study` in `storage` until its target; `tracking_uri` None = the creator's
    (when it holds no password) else MLflow's own resolution ($MLFLOW_TRACKING_URI).
    `stop` (a `pipeline.stop.Stop`): the trial in progress ends FAIL, `Stopped` is raised."""
    probe = S.resolve(storage, study, workdir)
    if probe.is_journal and not Path(probe.path).is_file():  # opening would create it
        raise ValueError(f"storage {redact(storage)!r}: no journal file {probe.path}")
    try:
        record = StudyRecord.load(optuna.load_study(study_name=study,
                                                    storage=S.open_storage(probe)))
    except KeyError:
        raise ValueError(f"study {study!r} does not exist in {probe.label}") from None
    missing = record.missing(*_NEEDED)
    if missing:
        raise ValueError(f"study {study!r} in {probe.label} has no {', '.join(missing)}: start "
                         "it with `python -m pipeline search` first (workers join a search)")
    cfg = record.config(study).with_overrides({"search.study": study, "search.storage": storage})
    sc = cfg.search
    spec = S.resolve(storage, study, workdir, heartbeat_interval=sc.heartbeat_interval,
                     grace_period=sc.grace_period)
    uri = store_urls.tracking_uri(tracking_uri, _plain(cfg.tracking.uri))
    parent, target = record.parent_run_id, record.target_trials
    _check_parent(uri, parent)
    job = WorkerJob(cfg.to_yaml(), record.search_space(study), spec, target, uri,
              record.search_experiment_id, parent)
    # a seed of its own: independent workers must not propose the same startup points
    ran = run_worker(job, worker=1000 + os.getpid() % 100_000, stop=stop)
    final = open_study(cfg, spec, create=False)
    return Joined(study, spec.label, parent, target, ran, count(final, FINISHED))


def _plain(uri: str | None) -> str | None:
    return None if uri is None or MASK in uri else uri


def _check_parent(uri: str | None, parent: str) -> None:
    """The parent run must be in the store this worker logs to, else its trials would land in
    another store, under a parent that does not exist there."""
    from pipeline.tracking.store import run_status
    from pipeline.tracking.search_runs import use_tracking_uri

    use_tracking_uri(uri)
    if run_status(parent) is None:
        raise ValueError(f"tracking.uri {redact(uri or 'MLflow default')!r} does not hold the "
                         f"study's parent run {parent}: point tracking.uri= or "
                         "MLFLOW_TRACKING_URI at the tracking server the search used")
