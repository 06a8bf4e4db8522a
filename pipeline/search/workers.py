"""Worker processes running a study's trials until it holds `WorkerJob.target` finished ones.

The target is a total (COMPLETE + PRUNED): sweep.py turns `search.n_trials` (N more) or
`search.target_trials` (a total) into it. FAIL trials (a crash, a stale trial, a bug) do not
count, so they are redone. Worker 0 runs in the search's own process, workers 1..N-1 are
spawned processes (spawned.py), and `python -m pipeline worker` (join.py) runs one on any
machine; all of them are `run_worker` on the shared storage. A worker's `peers` is how it
waits for the others' trials: `Alone` polls the storage, the parent and its spawned workers
also wake each other through their pipes (spawned.py).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from pipeline import stages, threads
from pipeline.config import config_from_yaml
from pipeline.config.search import ParamSpec
from pipeline.errors import foreseeable, one_line
from pipeline.search import quiet_optuna, quiet_when_stopped
from pipeline.search.objective import make_objective
from pipeline.search.orphan import watch_parent
from pipeline.search.recovery import StudyRecovery
from pipeline.owner import owner
from pipeline.process_exit import skip_final_gc
from pipeline.search.storage import StorageSpec
from pipeline.search.study import FINISHED, count, count_in, open_study
from pipeline.stop import Stop, Stopped
from pipeline.store_fault import WORKER_EXIT, fault_of, quiet_threads

# Trials that hold a slot of the target: finished, or running (a worker will finish them).
RESERVED = FINISHED + (TrialState.RUNNING,)

POLL_SECONDS = 1.0  # how often a worker with nothing to run looks at the others' trials


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs, picklable (the spawn context re-imports the package)."""

    cfg_yaml: str
    space: dict[str, ParamSpec]
    storage: StorageSpec
    target: int
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None


class Alone:
    """The `peers` of a worker with no pipe to the others: it polls the storage."""

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def trial_ended(self) -> None:
        pass


def run_worker(job: WorkerJob, worker: int = 0, progress=None, prepared=None, stop=None,
               peers=None) -> int:
    """Prepare the data once (or take the caller's `prepared`), then run trials until the
    study holds `target` finished ones. When the remaining slots are taken by other workers'
    RUNNING trials, wait for them: a trial whose worker died is failed (journal: its owner
    process is gone; RDB: no heartbeat for `grace_period` s), its child run ended, and this
    worker runs its replacement, so the target is met exactly. Returns how many finished
    trials this process ran. `stop` (a `pipeline.stop.Stop`) is checked by every trial's
    training, between trials and while waiting; `peers` (default `Alone`): how it waits."""
    stop = stop if stop is not None else Stop()  # never requested: the checks below stay plain
    peers = peers if peers is not None else Alone()
    cfg = config_from_yaml(job.cfg_yaml)
    quiet_optuna()  # also in spawned workers: one line per failed trial, no traceback
    study = open_study(cfg, job.storage, create=False, worker=worker)
    if count(study) >= job.target:
        return 0
    objective = make_objective(cfg, job.space, prepared or stages.prepare(cfg),
                               _trial_logger(job, study), figures=cfg.search.trial_figures,
                               stop=stop)
    trial = _OwnedTrial(study, job, objective, worker)
    _until_target(study, job, trial, progress, stop, peers)
    objective.finish()
    return sum(t.user_attrs.get("owner") == trial.owner
               for t in study.get_trials(deepcopy=False, states=FINISHED))


def _trial_logger(job: WorkerJob, study: optuna.Study):
    """The MLflow side: one child run per trial under the job's parent (None: no tracking)."""
    if not job.parent_run_id:
        return None
    from pipeline.tracking.search_runs import StudyLogger, use_tracking_uri

    use_tracking_uri(job.tracking_uri)
    return StudyLogger(job.experiment_id, job.parent_run_id, study.study_name)


class _Overshoot(Exception):
    """Another worker already reserved the last slot: this trial is not run."""


class _OwnedTrial:
    """The trial as this worker runs it: its owner recorded first (a live trial is never
    taken for stale), and not run at all when other workers reserved the last slot first."""

    def __init__(self, study: optuna.Study, job: WorkerJob, objective, worker: int):
        self.study, self.job, self.objective, self.worker = study, job, objective, worker
        self.owner = owner()

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("owner", self.owner)
        ahead = [t for t in self.study.get_trials(deepcopy=False, states=RESERVED)
                 if t.number < trial.number]
        if len(ahead) >= self.job.target:  # lost a race for the last slot with another worker
            trial.set_user_attr("fail_reason", "not run: the target was reached by other workers")
            self.study.stop()
            raise _Overshoot()
        trial.set_user_attr("worker", self.worker)
        return self.objective(trial)


def _until_target(study: optuna.Study, job: WorkerJob, trial: _OwnedTrial, progress,
                  stop, peers) -> None:
    """Recover what dead workers left (their stale trials FAIL, their runs FAILED: recovery.py,
    saying on stderr what it ended), run trials while slots are free, wait while others hold
    them."""
    recover = StudyRecovery(study, job.storage, [job.experiment_id] if job.parent_run_id else [],
                            out=sys.stderr)
    # Optuna stops `optimize` once the free slots are reserved (finished + RUNNING); between
    # trials the progress bar is updated and a stop starts no new trial.
    callbacks = [MaxTrialsCallback(job.target, states=RESERVED),
                 _BetweenTrials(progress, stop, peers)]
    while True:
        trials = recover().trials  # this pass decides on one snapshot, taken after it
        if count_in(trials) >= job.target:
            return
        if count_in(trials, RESERVED) < job.target:
            with quiet_when_stopped(stop):
                study.optimize(trial, callbacks=callbacks, catch=(_Overshoot,),
                               gc_after_trial=False)
            trials = study.get_trials(deepcopy=False)  # the trials changed during optimize
        stop.check()
        if count_in(trials) >= job.target:  # done: no last poll (it cost every search 1 s)
            # but one last pass: Optuna's heartbeat check inside `optimize` may have failed a
            # dead worker's trial since the pass above, and its child run would stay RUNNING
            # (one storage read; MLflow is asked only when the FAIL count changed).
            recover()
            return
        if count_in(trials, RESERVED) >= job.target:  # the others' trials are running
            if progress is not None:
                progress.poll(trials)
            peers.wait(POLL_SECONDS)  # woken early when a peer's trial ends


class _BetweenTrials:
    """An `optimize` callback: the peers told, the progress bar polled, a requested stop
    starts no new trial."""

    def __init__(self, progress, stop, peers):
        self.progress, self.stop, self.peers = progress, stop, peers

    def __call__(self, study: optuna.Study, _trial) -> None:
        self.peers.trial_ended()
        if self.progress is not None:
            self.progress.poll()
        if self.stop.requested:
            study.stop()


def worker_main(job: WorkerJob, worker: int, peers) -> None:
    """A spawned worker's life once it has its job (spawned.py started it): trials until the
    target, then "done" to the parent; faults become exit codes, not tracebacks."""
    # The parent stops workers with SIGTERM (and Ctrl-C reaches the whole process group): this
    # worker's own Stop records it and the trial's training stops at its next epoch, so the
    # trial ends FAIL and its child run KILLED instead of both staying RUNNING.
    stop = Stop()
    quiet_threads()  # Optuna's heartbeat thread on a broken store: no traceback per worker
    with stop.on_signals():
        watch_parent()  # the parent killed (-9) -> this worker stops within seconds
        try:
            if _tracking_store_gone(job):  # the search process names it, in its one line
                sys.exit(WORKER_EXIT)
            run_worker(job, worker, stop=stop, peers=peers)
            peers.say("done")
        except Stopped as exc:  # its trial is FAIL and its run KILLED: nothing left to do
            skip_final_gc()  # it exits sooner (process_exit.py)
            sys.exit(exc.exit_code)
        except Exception as exc:  # a store gone (tracking server, database): one line, not a
            # traceback per worker
            if fault_of(exc) is not None:  # the search process says it, naming the store
                sys.exit(WORKER_EXIT)
            if not foreseeable(exc):
                raise
            print(f"search-worker-{worker}: error: {one_line(exc)}", file=sys.stderr)
            sys.exit(2)


def _tracking_store_gone(job: WorkerJob) -> bool:
    """The SQLite file the search created is gone (deleted mid-search): MLflow would make an
    empty store there and the worker fail on its missing experiment, in a line of its own."""
    from pipeline.tracking.store import sqlite_path

    path = sqlite_path(job.tracking_uri)
    return path is not None and not path.exists()


def run_workers(job: WorkerJob, workers: int, progress, prepared=None, stop=None,
                spawned=None) -> list[str]:
    with _one_blas_thread():  # every worker, this process's included, at the chosen count
        return _run_workers(job, workers, progress, prepared, stop, spawned)


def _run_workers(job: WorkerJob, workers: int, progress, prepared, stop, spawned) -> list[str]:
    """Worker 0 runs in this process (seeded runs with one worker reproduce; it reuses
    `prepared` and this process's imports); workers 1..N-1 are the spawned processes of
    `spawned` (started by the command before its own start-up, spawned.py), else spawned now.
    Worker 0 runs until the study holds the target (replacing the trials of workers that
    died); then this process waits until each spawned worker said "done" or died, checking
    `stop` (on a stop it sends them SIGTERM and waits for them: their trials end FAIL, their
    runs KILLED). Their exit is waited for by `spawned.close()`, after the summary. Returns one
    line per spawned worker that ended badly (exit code or signal), for the summary: a dead
    worker is counted, not raised, as its trials are redone."""
    from pipeline.search.spawned import SpawnedWorkers

    stop = stop if stop is not None else Stop()
    if workers == 1:
        run_worker(job, 0, progress, prepared, stop)
        return []
    own = spawned is None
    if own:
        spawned = SpawnedWorkers(workers - 1)
    try:
        spawned.start(job)
        run_worker(job, 0, progress, prepared, stop, peers=spawned)
        spawned.finish(stop, progress)
    except BaseException:
        spawned.terminate()
        spawned.join()
        raise
    finally:
        if own:
            spawned.close()
    return spawned.lost()


@contextmanager
def _one_blas_thread():
    """The BLAS thread count of pipeline/threads.py (one unless the user chose) for the spawned
    workers, which read it at numpy import, and for worker 0 in this process, where numpy may
    already be loaded (a notebook). N workers x a multi-threaded BLAS oversubscribe the cores."""
    with threads.for_spawned() as count, threads.limit(count):
        yield
