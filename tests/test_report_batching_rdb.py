"""Issue 20 on the RDB storages: reports written in batches, the pruner's decisions unchanged.

`search.storage=sqlite:///...` or `postgresql://...` opens a ReportBatchingRDBStorage
(pipeline/search/rdb_reports.py): a trial's reports are held in the process and written in one
transaction before the trial's next other write. Checked here against plain Optuna on Optuna's
own RDBStorage (each report its own transaction), as tests/test_pruning_parity.py does for the
journal: the same seeded study prunes the same trials with the same values; the pruner sees
every held value at each `should_prune`; another connection sees a finished trial whole; the
writes really are batched (counted commits); a trial failed by another worker, or a store that
fails mid-flush, loses nothing it should keep.
"""

import sqlite3

import optuna
import pytest
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from pipeline import stages
from pipeline.config import load_config
from pipeline.config.search import parse_space
from pipeline.search import rdb_reports
from pipeline.search.objective import make_objective
from pipeline.search.rdb_reports import ReportBatchingRDBStorage
from pipeline.search.storage import open_storage, resolve
from pipeline.search.study import make_pruner, make_sampler
from tests.servers import postgres_database
from tests.test_overhead import CONF
from tests.test_pruning_parity import N_TRIALS, OVERRIDES, SPACE, _outcomes, plain_study_on

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'optuna.db'}"
    else:
        with postgres_database() as pg:
            yield pg


def plain_rdb_study(cfg, prepared, url) -> optuna.Study:
    """tests/test_pruning_parity.py's plain Optuna loop on Optuna's own RDBStorage: every
    report its own transaction."""
    return plain_study_on(RDBStorage(url), cfg, prepared, study_name="plain")


# slow (8-12 s a storage: every should_prune is a database round trip, in plain Optuna too);
# the fast tests below pin the mechanism it rests on: should_prune sees every held value, one
# INSERT per trial, another worker's decision independent of a running trial's held reports
@pytest.mark.slow
def test_the_same_trials_are_pruned_as_plain_optuna_on_the_same_database(url, tmp_path):
    cfg = load_config(OVERRIDES, conf_dir=CONF)
    prepared = stages.prepare(cfg)
    storage = open_storage(resolve(url, "ours", tmp_path))  # what `search` opens for this URL
    assert isinstance(storage, ReportBatchingRDBStorage)
    ours = optuna.create_study(storage=storage, study_name="ours", direction="minimize",
                               sampler=make_sampler(cfg), pruner=make_pruner(cfg))
    ours.optimize(make_objective(cfg, parse_space(SPACE), prepared), n_trials=N_TRIALS)
    plain = plain_rdb_study(cfg, prepared, url)

    # Read back through a fresh plain storage: what another process finds in the database.
    ours_read = optuna.load_study(study_name="ours", storage=RDBStorage(url))
    pruned = [[t.number for t in s.get_trials() if t.state == TrialState.PRUNED]
              for s in (ours_read, plain)]
    assert pruned[0] == pruned[1]
    assert 0 < len(pruned[0]) < N_TRIALS  # the comparison means something
    for a, b in zip(_outcomes(ours_read), _outcomes(plain), strict=True):
        assert a[:4] == b[:4]                       # number, state, params, last epoch
        assert a[4] == b[4]                         # value (a PRUNED trial's: its last report)
        assert a[5] == b[5]                         # every evaluation, in the database
    assert sorted(ours_read.trials[0].intermediate_values) == list(range(10, 301, 10))


class RecordingPruner(optuna.pruners.MedianPruner):
    """The median pruner, recording at each decision what the trial and the storage show."""

    def __init__(self, url):
        super().__init__(n_startup_trials=1, n_warmup_steps=0)
        self.other = RDBStorage(url)  # another connection: what other workers see
        self.seen = []

    def prune(self, study, trial):
        via_storage = study._storage.get_trial(trial._trial_id).intermediate_values
        via_listing = [t for t in study.get_trials(deepcopy=False)
                       if t.number == trial.number][0].intermediate_values
        in_database = self.other.get_trial(trial._trial_id).intermediate_values
        self.seen.append((dict(trial.intermediate_values), dict(via_storage),
                          dict(via_listing), dict(in_database)))
        return super().prune(study, trial)


def test_should_prune_sees_every_held_value_while_the_database_waits(url, monkeypatch):
    monkeypatch.setattr(rdb_reports, "FLUSH_AFTER_SECONDS", 3600.0)  # no timer on a busy host
    pruner = RecordingPruner(url)
    storage = ReportBatchingRDBStorage(url)
    inserts = []  # statements that write reports (plain Optuna: one per report)

    def count(conn, cursor, statement, *args):
        inserts.extend(["x"] * statement.startswith("INSERT INTO trial_intermediate_values"))

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", count)
    study = optuna.create_study(storage=storage, pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(0))

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        before = len(inserts)
        for step in range(1, 51):
            trial.report(x + 1.0 / step, step)
            trial.should_prune()
        trial.set_user_attr("inserts_while_reporting", len(inserts) - before)
        return x

    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        reported = {s: trial.params["x"] + 1.0 / s for s in range(1, 51)}
        seen = pruner.seen[50 * trial.number:50 * (trial.number + 1)]
        for step, (own, via_storage, via_listing, in_database) in enumerate(seen, start=1):
            expected = {s: v for s, v in reported.items() if s <= step}
            assert own == via_storage == via_listing == expected
            assert in_database == {}  # held: nothing written before the trial's end
        assert pruner.other.get_trial(trial._trial_id).intermediate_values == reported
        # 50 reports and decisions, no write; then one INSERT of 50 rows (plain Optuna: 50)
        assert trial.user_attrs["inserts_while_reporting"] == 0
    assert len(inserts) == 2


def test_a_timer_or_a_count_flushes_so_a_killed_worker_loses_little(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    storage, other = ReportBatchingRDBStorage(url), RDBStorage(url)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    monkeypatch.setattr(rdb_reports, "FLUSH_AFTER_REPORTS", 3)
    for step in range(1, 8):
        trial.report(float(step), step)
    assert sorted(other.get_trial(trial._trial_id).intermediate_values) == [1, 2, 3, 4, 5, 6]
    monkeypatch.setattr(rdb_reports, "FLUSH_AFTER_SECONDS", 0.0)
    trial.report(8.0, 8)  # the oldest held report (7) is "old": both written now
    assert sorted(other.get_trial(trial._trial_id).intermediate_values) == list(range(1, 9))


def test_a_trial_failed_by_another_worker_drops_its_held_reports_and_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    storage, other = ReportBatchingRDBStorage(url), RDBStorage(url)
    study = optuna.create_study(storage=storage)
    stale = study.ask()
    stale.report(1.0, 1)
    other.set_trial_state_values(stale._trial_id, TrialState.FAIL)  # as fail_stale_trials does
    # Plain Optuna raises at the report; here the trial's next write raises the same error.
    with pytest.raises(UpdateFinishedTrialError):
        stale.set_user_attr("k", 1)
    assert other.get_trial(stale._trial_id).intermediate_values == {}
    nxt = study.ask()  # the dropped reports do not haunt the next trial
    nxt.report(2.0, 1)
    study.tell(nxt, 2.0)
    assert other.get_trial(nxt._trial_id).intermediate_values == {1: 2.0}


def test_a_store_that_fails_mid_flush_keeps_the_reports_for_the_next_flush(tmp_path):
    path = tmp_path / "o.db"
    url = f"sqlite:///{path}"
    storage = ReportBatchingRDBStorage(url, engine_kwargs={"connect_args": {"timeout": 0.1}})
    other = RDBStorage(url)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.report(1.0, 1)
    trial.report(2.0, 2)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: the flush fails
    with pytest.raises(optuna.exceptions.StorageInternalError):
        storage.flush()
    locker.execute("ROLLBACK")
    locker.close()
    assert storage.get_trial(trial._trial_id).intermediate_values == {1: 1.0, 2: 2.0}  # held
    assert other.get_trial(trial._trial_id).intermediate_values == {}
    study.tell(trial, 2.0)  # the end of the trial writes them, then its state
    assert other.get_trial(trial._trial_id).intermediate_values == {1: 1.0, 2: 2.0}
    assert other.get_trial(trial._trial_id).state == TrialState.COMPLETE


@pytest.mark.parametrize("flushed", [False, True])
def test_another_workers_decision_does_not_depend_on_a_running_trials_held_reports(url,
                                                                                  flushed):
    """Worker A's trial is RUNNING with held reports; worker B (its own storage, as another
    process) decides at the same step. The median pruner reads only COMPLETE trials, so B's
    decision is the same whether A's reports are held or written."""
    a_storage, b_storage = ReportBatchingRDBStorage(url), ReportBatchingRDBStorage(url)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    a = optuna.create_study(storage=a_storage, study_name="s", pruner=pruner)
    for value in (1.0, 2.0):  # two COMPLETE trials: the median at each step is 1.5
        t = a.ask()
        for step in range(1, 4):
            t.report(value, step)
        a.tell(t, value)
    running = a.ask()
    for step in range(1, 4):
        running.report(0.0, step)  # far better than the median: would pull it down if read
    if flushed:
        a_storage.flush()
    b = optuna.load_study(study_name="s", storage=b_storage, pruner=pruner)
    mine = b.ask()
    decisions = []
    for step in range(1, 4):
        mine.report(1.6, step)
        decisions.append(mine.should_prune())
    assert decisions == [True, True, True]  # 1.6 worse than the COMPLETE trials' median 1.5
    written = RDBStorage(url).get_trial(running._trial_id).intermediate_values
    assert written == ({1: 0.0, 2: 0.0, 3: 0.0} if flushed else {})
