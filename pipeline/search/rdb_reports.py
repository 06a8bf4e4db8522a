"""An Optuna RDB storage (SQLite, PostgreSQL, MySQL) whose `trial.report`s are written in batches.

Optuna's RDBStorage writes each `trial.report` as its own transaction: two SELECTs, an INSERT
and a COMMIT, on SQLite a file sync. Every evaluation is reported (as Optuna's pruners expect,
tests/test_pruning_parity.py), so that was one transaction per evaluation. Here a report is held
in this process and the trial's held reports are written in ONE transaction:

- before any other write of that trial (a parameter, a user or system attribute, its state):
  so a trial's reports are committed before it is COMPLETE, PRUNED or FAIL, in that order;
- when the oldest held report is FLUSH_AFTER_SECONDS old or FLUSH_AFTER_REPORTS are held
  (checked at each report and at each heartbeat): a worker killed mid-trial loses at most the
  last few seconds of reports, of a trial that is then failed as stale (no pruner reads them);
- at a fault: a trial that raises ends FAIL through Optuna's own state write, which flushes.

Why the pruner's decisions are unchanged (Optuna 5.1):

- In this process: `Trial.should_prune` hands the pruner the trial's own cached frozen trial,
  to which `Trial.report` has already added the value; and every read of a trial through this
  storage (`get_trial`, `get_all_trials`, Optuna's cache `_get_trials`) returns its held
  values merged in (tests/test_report_batching_rdb.py checks both).
- In other processes: the median and percentile pruners compare with other trials only
  through `study.get_trials(states=(COMPLETE,))` (optuna/pruners/_percentile.py `prune`);
  Wilcoxon reads the best COMPLETE trial; successive halving and Hyperband read other trials'
  system attributes, which are writes and so flush first. A RUNNING trial of another worker is
  never read, so its held reports cannot change a decision. A trial becomes COMPLETE only
  after its reports are committed (the flush commits before the state's transaction begins),
  so any transaction that sees it COMPLETE sees all of its values; Optuna's cache, which never
  re-reads a finished trial, caches it whole. TPE reads PRUNED trials' last values: also
  flushed before the state. This is the same order plain Optuna has (each report committed
  before the state), only with fewer commits.

What changes: another process (optuna-dashboard, a second worker listing trials) sees a
running trial's reports up to FLUSH_AFTER_SECONDS later (a trial that stops reporting: at its
next heartbeat or write); and a report to a trial another worker
has already failed as stale raises `UpdateFinishedTrialError` at the flush, not at the report.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session

FLUSH_AFTER_SECONDS = 5.0  # a default trial (200 evaluations, ~1-2 s) writes once, at its end
FLUSH_AFTER_REPORTS = 1000  # bounds one transaction and the memory of a long, fast trial

_Value = models.TrialIntermediateValueModel


class ReportBatchingRDBStorage(RDBStorage):
    """Optuna's RDBStorage with `set_trial_intermediate_value` held and written in batches (see
    the module docstring). Still an RDBStorage: Optuna wraps it in its cache and runs its
    heartbeat as before."""

    def __init__(self, *args, **kwargs) -> None:
        self._init_held()
        super().__init__(*args, **kwargs)

    def _init_held(self) -> None:
        self._held: dict[int, dict[int, float]] = {}  # trial_id -> {step: value}
        self._held_count = 0
        self._held_since: float | None = None  # monotonic time of the oldest held report
        self._held_lock = threading.RLock()  # the heartbeat thread flushes too

    def __getstate__(self) -> dict:
        self.flush()  # a copy (a worker process) must not write them a second time
        state = super().__getstate__()
        for key in ("_held", "_held_count", "_held_since", "_held_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self._init_held()
        super().__setstate__(state)

    # -- the held reports -------------------------------------------------------------------

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        with self._held_lock:
            self._held.setdefault(trial_id, {})[step] = intermediate_value  # a repeat replaces,
            self._held_count += 1                                           # as Optuna's write
            if self._held_since is None:
                self._held_since = time.monotonic()
            if self._flush_due():
                self.flush()

    def _flush_due(self) -> bool:
        return self._held_since is not None and (
            self._held_count >= FLUSH_AFTER_REPORTS
            or time.monotonic() - self._held_since >= FLUSH_AFTER_SECONDS)

    def flush(self, trial_id: int | None = None) -> None:
        """Write the held reports of `trial_id` (None: of every trial) in one transaction.
        A trial already finished (failed as stale by another worker) cannot take them: they are
        dropped and `UpdateFinishedTrialError` raised, as Optuna's own write would. Any other
        failure (the server gone) keeps them held for the next flush and raises."""
        with self._held_lock:
            ids = list(self._held) if trial_id is None else [trial_id] * (trial_id in self._held)
            if not ids:
                return
            taken = {i: self._held.pop(i) for i in ids}
            self._recount()
            try:
                finished = self._write(taken)
            except BaseException:
                for i, values in taken.items():  # newer reports of the same step win
                    self._held[i] = {**values, **self._held.get(i, {})}
                self._recount(keep_since=True)
                raise
        if finished:
            raise UpdateFinishedTrialError(f"Trial#{finished} has already finished and can not "
                                           "be updated: its held reports were dropped.")

    def _recount(self, keep_since: bool = False) -> None:
        self._held_count = sum(map(len, self._held.values()))
        if not self._held:
            self._held_since = None
        elif not keep_since:
            self._held_since = time.monotonic()

    def _write(self, taken: dict[int, dict[int, float]]) -> list[int]:
        """One transaction: insert (or, for a step written before, update) every value, as
        RDBStorage._set_trial_intermediate_value_without_commit does one by one. Returns the
        trials that were already finished (nothing written for them)."""
        finished = []
        with _create_scoped_session(self.scoped_session) as session:
            for trial_id, values in taken.items():
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
                if trial.state.is_finished():
                    finished.append(trial_id)
                    continue
                stored = {step: _Value.intermediate_value_to_stored_repr(v)
                          for step, v in values.items()}
                for row in session.query(_Value).filter(_Value.trial_id == trial_id,
                                                        _Value.step.in_(list(stored))):
                    row.intermediate_value, row.intermediate_value_type = stored.pop(row.step)
                if stored:  # one executemany INSERT, not one ORM INSERT per row
                    session.execute(sqlalchemy.insert(_Value), [
                        dict(trial_id=trial_id, step=step, intermediate_value=value,
                             intermediate_value_type=kind) for step, (value, kind) in stored.items()])
        return finished

    def _with_held(self, trial):
        """`trial` (a FrozenTrial read from the database) with this process's held reports."""
        held = self._held.get(trial._trial_id)
        if held and not trial.state.is_finished():
            trial.intermediate_values = {**trial.intermediate_values, **held}
        return trial

    # -- reads show the held reports; every other write of a trial flushes it first ---------

    def get_trial(self, trial_id: int):
        trial = super().get_trial(trial_id)
        with self._held_lock:
            return self._with_held(trial)

    def _get_trials(self, study_id, states, included_trial_ids, trial_id_greater_than):
        trials = super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        with self._held_lock:
            return [self._with_held(t) for t in trials]

    def set_trial_state_values(self, trial_id, state, values=None) -> bool:
        self.flush(trial_id)
        return super().set_trial_state_values(trial_id, state, values)

    def set_trial_param(self, trial_id, param_name, param_value_internal, distribution) -> None:
        self.flush(trial_id)
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def _set_trial_param(self, trial_id, param_name, param_value_internal, distribution,
                         previous_distribution) -> None:  # what Optuna's cache calls
        self.flush(trial_id)
        super()._set_trial_param(trial_id, param_name, param_value_internal, distribution,
                                 previous_distribution)

    def set_trial_user_attr(self, trial_id, key, value) -> None:
        self.flush(trial_id)
        super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id, key, value) -> None:
        self.flush(trial_id)
        super().set_trial_system_attr(trial_id, key, value)

    def record_heartbeat(self, trial_id: int) -> None:
        """Optuna's heartbeat thread (every `heartbeat_interval` s) also flushes a trial whose
        reports are due, so a trial that stopped reporting does not hold them to its end. A
        failed flush here is left to the trial's own next write, which meets the same fault."""
        with self._held_lock:
            if self._flush_due():
                try:
                    self.flush(trial_id)
                except Exception:
                    pass
        super().record_heartbeat(trial_id)
