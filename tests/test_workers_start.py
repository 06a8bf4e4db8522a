"""Workers started early and chosen from the free cores (issue 20): the lesson's worker count
when `workers=` is not given, a search whose spawned workers were started before a refusal,
and a two-worker search through the pipes (real processes, real stores)."""

from __future__ import annotations

import re

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from pipeline.commands.free_cores import choose_workers
from servers import ROOT, TINY, cli

CONF = str(ROOT / "conf")


@pytest.mark.parametrize("cores, load, jobs, expected", [
    (2, 0.0, 20, 2),    # idle: one per core
    (2, 0.9, 20, 2),    # a core busy less than all the time counts as free
    (2, 1.0, 20, 1),    # one core's worth of load: one worker
    (2, 12.0, 20, 1),   # saturated: never fewer than one
    (8, 2.5, 20, 6),    # two whole cores busy
    (8, 0.0, 3, 3),     # never more workers than jobs
    (1, 0.0, 5, 1),     # never more than the cores
])
def test_the_worker_count_is_the_free_cores_within_one_and_the_jobs(cores, load, jobs,
                                                                     expected):
    count, why = choose_workers(jobs, cores=cores, load=load)
    assert count == expected
    assert why == f"chosen from {cores} core(s) at load {load:.2f}; workers=N sets it"


@pytest.mark.slow
def test_a_lesson_without_workers_says_the_count_it_chose_and_records_it(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = cli(tmp_path, uri, "experiment", "gradient_checking", "seeds=2",
               "training.epochs=6", "training.eval_every=1", "--quiet", "--conf-dir", CONF)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    said = re.fullmatch(r"lesson gradient_checking: \d+ arms x 2 seeds = (\d+) runs, (\d) "
                        r"worker\(s\) \(chosen from (\d+) core\(s\) at load [0-9.]+; "
                        r"workers=N sets it\)", first)
    assert said, first
    runs, workers, cores = map(int, said.groups())
    assert 1 <= workers <= min(cores, runs)
    client = MlflowClient(uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()],
                               "tags.stage = 'experiment'")
    assert [r.data.params["lesson.workers"] for r in found] == [str(workers)]
    assert f"{runs} runs in " in done.stdout and f"with {workers} worker(s)" in done.stdout


@pytest.mark.slow
def test_a_refused_search_ends_its_early_workers_silently_and_creates_nothing(tmp_path):
    """The spawned workers start before the checks of the stores: a refusal there ends them
    (still importing) with no line of theirs, no study and no store."""
    storage = tmp_path / "s.journal"
    done = cli(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", "search", "workers=3",
               f"storage={storage}", "tracking.uri=ftp://nowhere/x", *TINY, "--quiet",
               "--conf-dir", CONF, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: tracking.uri 'ftp://nowhere/x' has an unknown scheme 'ftp': use "
        "http(s)://host:port (an mlflow server), sqlite:///path.db or "
        "postgresql+psycopg2://user@host/db"], done.stderr
    assert not storage.exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_two_workers_meet_the_target_exactly_and_both_run_trials(tmp_path):
    """Worker 0 (this process) and the early-started worker 1 share 8 trials; each waits for
    the other's last trial through their pipe, none is reported lost."""
    storage, uri = tmp_path / "s.journal", f"sqlite:///{tmp_path / 'mlflow.db'}"
    # trials of ~1 s idle (3000 epochs, no early stop): worker 1, ready after its imports,
    # finds trials left to run
    done = cli(tmp_path, uri, "search", "study=two", "workers=2", "n_trials=8",
               f"storage={storage}", *TINY, "training.epochs=3000", "training.patience=null",
               "search.pruner.name=none", "--quiet", "--conf-dir", CONF)
    assert done.returncode == 0, done.stderr
    assert "ended early" not in done.stdout, done.stdout
    study = optuna.load_study(study_name="two",
                              storage=JournalStorage(JournalFileBackend(str(storage))))
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                       optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 8 and len(study.trials) == 8
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}, [
        (t.number, t.user_attrs["worker"], t.datetime_start) for t in finished]
    client = MlflowClient(uri)
    trials = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                "tags.stage = 'search_trial'")
    assert len(trials) == 8 and {r.info.status for r in trials} == {"FINISHED"}
