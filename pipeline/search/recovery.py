"""What dead search processes left RUNNING in a study and in MLflow, found and ended.

`StudyRecovery(study, spec, experiment_ids)()` is the search side's one entry point, called by
a search before it opens its parent run (sweep.py) and polled by every worker (workers.py)
while it waits for other workers' trials. It fails the stale trials, then ends the runs
abandoned in `experiment_ids` through the tracking side's one entry point
(pipeline/tracking/recovery.py `end_abandoned_runs`): runs of dead owners (a killed search's
parent, a killed worker's trial runs) and trial runs whose trial is over in Optuna.

Stale trials. A journal study (search/storage.py) has no heartbeat, so a trial whose worker was
killed stays RUNNING. Every trial records its owner (`host:pid:start`, pipeline/owner.py) when
it starts; a RUNNING trial is stale when its owner is a dead process on this host (or it has
had no owner for `UNOWNED_GRACE`: a worker that died before writing it, or an older version).
Trials of live processes, e.g. a second `search` of the same study running at once, are left
alone; so are trials owned on another host, which cannot be checked from here (a journal on a
shared disk is not a multi-machine setup: use PostgreSQL). RDB storages get Optuna's
heartbeat instead: a trial whose worker stopped beating for `grace_period` seconds is failed,
wherever that worker ran.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.owner import owner_alive
from pipeline.search.record import StudyRecord

# How long a trial may stay unowned before a sweep or a resume counts it stale: far beyond the
# gap between Optuna creating a trial and its worker writing the owner, which was seconds on a
# loaded machine. A worker killed inside that gap leaves a trial that is failed a minute later.
UNOWNED_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Recovered:
    failed: tuple[int, ...]    # trials failed now (stale)
    ended: tuple[str, ...]     # MLflow runs ended now
    trials: list[FrozenTrial]  # the study's trials after the recovery: one snapshot


class StudyRecovery:
    """The study's recovery pass (module doc). MLflow is asked at the first call and whenever
    the number of FAIL trials changes (Optuna's own heartbeat check inside `optimize` fails
    trials too): a waiting worker calls this every second, and one query a second per worker
    would load a tracking server for nothing. `experiment_ids` empty: trials only (a worker
    without MLflow runs)."""

    def __init__(self, study: optuna.Study, spec, experiment_ids, out=None,
                 recorded_parents: bool = False):
        self.study, self.spec, self.out = study, spec, out
        self.experiment_ids = [e for e in experiment_ids if e is not None]
        self.fails: int | None = None
        self.recorded_parents = recorded_parents  # a search's first call: see _untagged_dead

    def __call__(self) -> Recovered:
        trials = self.study.get_trials(deepcopy=False)  # one storage read; a second only
        failed = fail_stale_trials(self.study, self.spec, trials=trials)  # when it failed some
        if failed:
            trials = self.study.get_trials(deepcopy=False)
        fails, ended = sum(t.state == TrialState.FAIL for t in trials), []
        if self.experiment_ids and fails != self.fails:
            from pipeline.tracking.recovery import end_abandoned_runs  # mlflow: only when asked

            untagged = _untagged_dead(self.study, self.spec) if self.recorded_parents else ()
            ended = end_abandoned_runs(self.experiment_ids, study=self.study.study_name,
                                       trial_states={t.number: t.state.name for t in trials},
                                       out=self.out, untagged_dead=untagged)
        self.fails, self.recorded_parents = fails, False
        return Recovered(tuple(failed), tuple(ended), trials)


def _untagged_dead(study: optuna.Study, spec) -> set[str]:
    """Parent runs an older version opened without the `pipeline.owner` tag, whose owner it
    recorded in the study (search/record.py): those of a dead process, and on a journal those
    without an owner (from before owners: one search per journal study at a time). A run that
    has the tag is judged by it alone (tracking/recovery.py)."""
    return {p.run_id for p in StudyRecord.load(study).parent_runs
            if owner_alive(p.owner) is False or (spec.is_journal and p.owner is None)}


def fail_stale_trials(study: optuna.Study, spec, *, unowned_before: datetime | None = None,
                      trials: list[FrozenTrial] | None = None) -> list[int]:
    """Mark trials left RUNNING by a killed worker as FAIL; returns their numbers.

    Journal: RUNNING trials whose owner is a dead process on this host, or unknown (module doc).
    `unowned_before` (naive local time, as Optuna's `datetime_start`; default: now minus
    `UNOWNED_GRACE`): only unowned trials created before it count. A worker writes its owner
    first thing in its trial, but after Optuna's `ask` has created it RUNNING and sampled
    (under load, up to seconds); neither a worker's sweep nor another search's resume may fail
    a live worker's new trial in that gap (its owner then hit UpdateFinishedTrialError).
    RDB: Optuna's heartbeat check (`grace_period` seconds without a beat).
    `trials`: the caller's `study.get_trials(deepcopy=False)` just read, instead of a read here
    (the caller reads again when trials were failed: its snapshot then predates them)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not spec.is_journal:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if not running:  # Optuna fails only trials that were RUNNING: none was
            return []
        now = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        return [t.number for t in running if now[t.number] == TrialState.FAIL]
    unowned_before = unowned_before or datetime.now() - UNOWNED_GRACE

    def unowned(t) -> bool:
        return "owner" not in t.user_attrs and (
            t.datetime_start is None or t.datetime_start < unowned_before)

    stale = [t for t in running if unowned(t)
             or ("owner" in t.user_attrs and owner_alive(t.user_attrs["owner"]) is False)]
    failed = []
    for trial in stale:
        try:
            study._storage.set_trial_user_attr(  # no public API sets another trial's attrs
                trial._trial_id, "fail_reason",
                "left RUNNING by a worker that is gone (stale on resume)")
            study.tell(trial.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # another process failed it first: already FAIL
            continue
        failed.append(trial.number)
    return failed
