"""Create or resume a study and run its trials in one or several worker processes.

Workers run until the study holds `Job.target` finished trials (COMPLETE + PRUNED), a total:
`run.py` turns `search.n_trials` (N more) or `search.target_trials` (a total) into it. FAIL
trials (a crash, a stale trial, a bug) do not count, so they are redone.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from pipeline.config.search import ParamSpec
from pipeline.search.recovery import StudyRecovery
from pipeline.search.storage import StorageSpec, open_storage

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_RESERVED = FINISHED + (TrialState.RUNNING,)


def study_name(cfg) -> str:
    return cfg.search.study or f"{cfg.tracking.experiment}-{cfg.data.name}"


def make_sampler(cfg, worker: int = 0) -> optuna.samplers.BaseSampler:
    """Seeded from `search.sampler.seed` (default: the config's seed); worker k adds k, so
    parallel workers do not propose the same startup points. One worker is reproducible."""
    s = cfg.search.sampler
    seed = (cfg.seed if s.seed is None else s.seed) + worker
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg) -> optuna.pruners.BasePruner:
    p = cfg.search.pruner
    if p.name == "none":
        return optuna.pruners.NopPruner()
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=p.min_resource,
                                              max_resource=cfg.training.epochs,
                                              reduction_factor=p.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials,
                                       n_warmup_steps=p.n_warmup_steps,
                                       interval_steps=p.interval_steps)


class ReportSchedule:
    """The epochs at which a trial reports to Optuna: only where the pruner decides.

    Every `trial.report` is a storage write (a journal append with an fsync: 0.32 s of a
    1.06 s trial when every evaluation was reported). The median pruner decides at the first
    report of each `interval_steps` window from `n_warmup_steps` on, Hyperband at the first
    report at or after each rung (min_resource * reduction_factor**k), and no pruner never
    decides; reports anywhere else are never read. Every trial of a study has the same
    evaluation epochs, so the pruner compares the same steps across trials as before.
    """

    def __init__(self, cfg):
        p = cfg.search.pruner
        self.name = p.name
        self.warmup, self.interval = p.n_warmup_steps, p.interval_steps
        self.rungs: list[int] = []
        if p.name == "hyperband":
            step = p.min_resource
            while step <= cfg.training.epochs:
                self.rungs.append(step)
                step *= p.reduction_factor
        self._window = -1

    def due(self, epoch: int) -> bool:
        """True at the first evaluation of each decision window (call once per evaluation)."""
        if self.name == "none":
            return False
        if self.name == "hyperband":
            window = sum(1 for r in self.rungs if r <= epoch) - 1
        else:
            window = -1 if epoch < self.warmup else (epoch - self.warmup) // self.interval
        if window > self._window:
            self._window = window
            return True
        return False


def open_study(cfg, spec: StorageSpec, *, create: bool, worker: int = 0) -> optuna.Study:
    name, storage = study_name(cfg), open_storage(spec)
    kw = dict(study_name=name, storage=storage, sampler=make_sampler(cfg, worker),
              pruner=make_pruner(cfg))
    if create:
        return optuna.create_study(direction="minimize", load_if_exists=True, **kw)
    try:
        return optuna.load_study(**kw)
    except KeyError:
        raise ValueError(f"search.study {name!r} does not exist in {spec.label}") from None


def count(study: optuna.Study, states=FINISHED) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def count_in(trials: list[optuna.trial.FrozenTrial], states=FINISHED) -> int:
    """`count` of a snapshot already read (`study.get_trials(deepcopy=False)`): each read of a
    journal study is a file read, so one decision step reads once and counts many times."""
    return sum(t.state in states for t in trials)


@dataclass(frozen=True)
class Job:
    """Everything a worker process needs, picklable (the spawn context re-imports the package)."""

    cfg_yaml: str
    space: dict[str, ParamSpec]
    storage: StorageSpec
    target: int
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None


class _Overshoot(Exception):
    """Another worker already reserved the last slot: this trial is not run."""


POLL_SECONDS = 1.0  # how often a worker with nothing to run looks at the others' trials


def run_worker(job: Job, worker: int = 0, progress=None, prepared=None, stop=None) -> int:
    """Prepare the data once (or take the caller's `prepared`), then run trials until the
    study holds `target` finished ones. When the remaining slots are taken by other workers'
    RUNNING trials, wait for them: a trial whose worker died is failed (journal: its owner
    process is gone; RDB: no heartbeat for `grace_period` s), its child run ended, and this
    worker runs its replacement, so the target is met exactly. Returns how many finished
    trials this process ran. `stop` (a `pipeline.stop.Stop`) is checked by every trial's
    training, between trials and while waiting."""
    from pipeline import stages
    from pipeline.config import config_from_yaml
    from pipeline.search.objective import make_objective
    from pipeline.stop import Stop

    stop = stop if stop is not None else Stop()  # never requested: the checks below stay plain
    cfg = config_from_yaml(job.cfg_yaml)
    from pipeline.search import quiet_optuna

    quiet_optuna()  # also in spawned workers: one line per failed trial, no traceback
    study = open_study(cfg, job.storage, create=False, worker=worker)
    if count(study) >= job.target:
        return 0
    logger = None
    if job.parent_run_id:
        from pipeline.tracking.search_runs import StudyLogger, use_tracking_uri
        use_tracking_uri(job.tracking_uri)
        logger = StudyLogger(job.experiment_id, job.parent_run_id, study.study_name)
    objective = make_objective(cfg, job.space, prepared or stages.prepare(cfg), logger,
                               figures=cfg.search.trial_figures, stop=stop)
    from pipeline.owner import owner

    sweep, me = _Sweep(study, job), owner()

    def guarded(trial: optuna.Trial) -> float:
        trial.set_user_attr("owner", me)  # first: a live trial is never taken for stale
        ahead = [t for t in study.get_trials(deepcopy=False, states=_RESERVED)
                 if t.number < trial.number]
        if len(ahead) >= job.target:  # lost a race for the last slot with another worker
            trial.set_user_attr("fail_reason", "not run: the target was reached by other workers")
            study.stop()
            raise _Overshoot()
        trial.set_user_attr("worker", worker)
        return objective(trial)

    def stop_when_reserved(study: optuna.Study, _trial) -> None:
        trials = study.get_trials(deepcopy=False)  # one read for the bar and the check
        if progress is not None:
            progress.poll(trials)
        if count_in(trials, _RESERVED) >= job.target or stop.requested:
            study.stop()  # a stop between trials: no new trial is started

    from pipeline.search import quiet_when_stopped

    while True:
        trials = sweep()  # this pass decides on one snapshot, taken after the sweep
        if count_in(trials) >= job.target:
            break
        if count_in(trials, _RESERVED) < job.target:
            with quiet_when_stopped(stop):
                study.optimize(guarded, callbacks=[stop_when_reserved], catch=(_Overshoot,),
                               gc_after_trial=False)
            trials = study.get_trials(deepcopy=False)  # the trials changed during optimize
        stop.check()
        if count_in(trials, _RESERVED) < job.target:
            continue
        # the others' trials are running: wait for them
        if progress is not None:
            progress.poll(trials)
        time.sleep(POLL_SECONDS)
    objective.finish()
    return sum(t.user_attrs.get("owner") == me for t in study.get_trials(deepcopy=False,
                                                                        states=FINISHED))


class _Sweep:
    """The worker's recovery pass, polled while it waits (pipeline/search/recovery.py): fails
    the stale trials of dead workers, ends the runs they left RUNNING; returns the trials."""

    def __init__(self, study: optuna.Study, job: Job):
        self.recover = StudyRecovery(study, job.storage,  # says what it ended, on stderr
                                     [job.experiment_id] if job.parent_run_id else [],
                                     out=sys.stderr)

    def __call__(self) -> list[optuna.trial.FrozenTrial]:
        return self.recover().trials


def _worker_entry(job: Job, worker: int) -> None:
    from pipeline.search.orphan import watch_parent
    from pipeline.stop import Stop, Stopped

    # The parent stops workers with SIGTERM (and Ctrl-C reaches the whole process group): this
    # worker's own Stop records it and the trial's training stops at its next epoch, so the
    # trial ends FAIL and its child run KILLED instead of both staying RUNNING.
    stop = Stop()
    with stop.on_signals():
        watch_parent()  # the parent killed (-9) -> this worker stops within seconds
        try:
            run_worker(job, worker, stop=stop)
        except Stopped as exc:
            sys.exit(exc.exit_code)
        except Exception as exc:  # a store gone (tracking server, database): one line, not a
            from pipeline.cli import foreseeable, one_line  # traceback per worker

            if not foreseeable(exc):
                raise
            print(f"search-worker-{worker}: error: {one_line(exc)}", file=sys.stderr)
            sys.exit(2)


def run_workers(job: Job, workers: int, progress, prepared=None, stop=None) -> list[str]:
    with _one_blas_thread():  # every worker, this process's included, at the chosen count
        return _run_workers(job, workers, progress, prepared, stop)


def _run_workers(job: Job, workers: int, progress, prepared, stop) -> list[str]:
    """Worker 0 runs in this process (seeded runs with one worker reproduce; it reuses
    `prepared` and this process's imports); workers 1..N-1 are spawned processes sharing the
    storage. A spawned worker spends seconds importing mlflow and preparing its data before
    its first trial: worker 0 runs trials meanwhile, so that start-up is off the critical
    path. Worker 0 runs until the study holds the target (replacing the trials of workers
    that died); then this process waits for the others, checking `stop` (on a stop it sends
    them SIGTERM and waits for them). Returns one line per spawned worker that ended badly (exit code or
    signal), for the summary: a dead worker is counted, not raised, as its trials are redone."""
    from pipeline.stop import Stop, children_ignore_sigint

    stop = stop if stop is not None else Stop()
    if workers == 1:
        run_worker(job, 0, progress, prepared, stop)
        return []
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_entry, args=(job, k), name=f"search-worker-{k}")
             for k in range(1, workers)]
    with children_ignore_sigint():  # until a worker installs its Stop
        for p in procs:
            p.start()
    try:
        run_worker(job, 0, progress, prepared, stop)
        while any(p.is_alive() for p in procs):
            stop.check()
            progress.poll()
            time.sleep(0.5)
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    return [f"{p.name} " + (f"killed by signal {-p.exitcode}" if p.exitcode < 0 else
                            f"exit code {p.exitcode}") for p in procs if p.exitcode]


@contextmanager
def _one_blas_thread():
    """The BLAS thread count of pipeline/threads.py (one unless the user chose) for the spawned
    workers, which read it at numpy import, and for worker 0 in this process, where numpy may
    already be loaded (a notebook). N workers x a multi-threaded BLAS oversubscribe the cores."""
    from pipeline import threads

    with threads.for_spawned() as count, threads.limit(count):
        yield


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no COMPLETE trial yet
        return None


def best_in(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """`best_trial` of a snapshot already read: the first COMPLETE trial of least value, as
    Optuna picks it for a minimized study without constraints (every study of open_study)."""
    return min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value,
               default=None)
