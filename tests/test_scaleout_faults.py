"""Faults of a multi-worker search, with real subprocesses and real stores: a worker killed -9
mid-trial (journal + SQLite MLflow; PostgreSQL + mlflow server), two searches of one study at
once, and a tracking server that dies mid-search (its trials' child runs ended on the next
command)."""

import os
import signal
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from servers import (ON_SHARED_SERVER, ROOT, TINY, cli, free_port, mlflow_server,
                     postgres_database)

CONF = str(ROOT / "conf")
pytestmark = pytest.mark.slow
TARGET = 5
# journal: the embedded stores; postgres: the shared server and database (tests/servers.py)
KINDS = ["journal", pytest.param("postgres", marks=[pytest.mark.postgres, ON_SHARED_SERVER])]


def _stores(kind: str, tmp_path: Path, request) -> tuple[str, str]:
    """(tracking URI, Optuna storage): the embedded default or the servers."""
    if kind == "journal":
        return f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "study.journal")
    return request.getfixturevalue("tracking_server"), request.getfixturevalue("pg_database")


_STORAGES: dict[str, optuna.storages.BaseStorage] = {}


def _study(storage: str, name: str):
    """The study, read through one storage object per URL or journal: the kill test polls
    it every 0.3 s, and a storage built from a PostgreSQL URL each time (a new engine and its
    schema check) cost ~65 ms of CPU per poll against ~7 ms reused. Neither caches trials:
    an RDBStorage queries the database at each read, a JournalStorage reads the journal's
    new records."""
    if storage not in _STORAGES:
        if storage.endswith(".journal"):
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            _STORAGES[storage] = JournalStorage(JournalFileBackend(storage))
        else:
            _STORAGES[storage] = optuna.storages.RDBStorage(storage)
    return optuna.load_study(study_name=name, storage=_STORAGES[storage])


def _search_args(name: str, storage: str, *extra: str) -> list[str]:
    # long trials without pruning or early stopping: a kill lands mid-trial
    return ["search", "--quiet", f"study={name}", f"storage={storage}",
            f"target_trials={TARGET}", *TINY, "training.epochs=3000", "training.patience=null",
            "search.pruner.name=none", "search.heartbeat_interval=1", "search.grace_period=4",
            f"tracking.experiment={name}", *extra, "--conf-dir", CONF]


def _spawned(pid: int) -> list[int]:
    """The search's spawned worker processes (not multiprocessing's resource tracker)."""
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_text(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "spawn_main" in cmd:
            out.append(int(entry))
    return out


def _check_end_state(client, storage, name, extra_fail=()):
    """Exactly TARGET finished trials, no RUNNING trial or run, no duplicated trial numbers
    among the finished child runs. Returns (trials by number, child runs by trial number)."""
    study = _study(storage, name)
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] + states["PRUNED"] == TARGET and states["RUNNING"] == 0, states
    experiment = client.get_experiment_by_name(f"{name}-search")
    runs = client.search_runs([experiment.experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    children = [r for r in runs if r.data.tags.get("stage") == "search_trial"]
    done = [r.data.tags["optuna.trial_number"] for r in children
            if r.info.status in ("FINISHED", "KILLED")]
    assert len(done) == len(set(done)) == TARGET
    return ({t.number: t for t in study.trials},
            {int(r.data.tags["optuna.trial_number"]): r for r in children})


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_of_one_worker_mid_trial_is_replaced_and_the_target_met_exactly(
        kind, tmp_path, request):
    uri, storage = _stores(kind, tmp_path, request)
    name = f"kill9-{kind}"
    # trials of ~10 s: the kill lands well inside the trial the victim has just started. An
    # evaluation every 50 epochs (twice the epochs, as long a trial): each evaluation is a
    # round trip to the storage, 4,000 a trial at every 5 (114 s of CPU on PostgreSQL)
    search = cli(tmp_path, uri, *_search_args(name, storage, "workers=3", "training.epochs=40000",
                                              "training.eval_every=50"), wait=False)
    victim, trial, end = None, None, time.monotonic() + 400
    while victim is None and time.monotonic() < end and search.poll() is None:
        time.sleep(0.3)
        workers = _spawned(search.pid)
        try:
            running = _study(storage, name).get_trials(states=(optuna.trial.TrialState.RUNNING,))
        except (KeyError, FileNotFoundError, ValueError):
            continue
        for t in running:  # a spawned worker inside a trial that has its child run already
            pid = int(t.user_attrs.get("owner", "h:0:0").split(":")[1])
            if pid in workers and "mlflow_run_id" in t.user_attrs:
                victim, trial = pid, t.number
    assert victim is not None, search.communicate()
    os.kill(victim, signal.SIGKILL)
    out, err = search.communicate(timeout=900)
    assert search.returncode == 0, err
    assert "1 worker ended early" in out and "killed by signal 9" in out, out + err

    trials, runs = _check_end_state(MlflowClient(uri), storage, name)
    assert trials[trial].state.name == "FAIL"  # the killed trial, replaced by another
    assert runs[trial].info.status == "FAILED"
    assert "owner" in trials[trial].user_attrs or kind == "postgres"


@pytest.mark.parametrize("kind", KINDS)
def test_two_searches_of_one_study_at_once_share_the_target(kind, tmp_path, request):
    uri, storage = _stores(kind, tmp_path, request)
    name = f"twice-{kind}"
    # journal: both also create the fresh SQLite MLflow store at once (seeded from a template)
    fast = ["training.epochs=600", "workers=2"]
    both = [cli(tmp_path, uri, *_search_args(name, storage, *fast), wait=False)
            for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in both]
    assert [p.returncode for p in both] == [0, 0], [e[-600:] for _, e in outs]
    _check_end_state(MlflowClient(uri), storage, name)
    for out, _ in outs:  # both summaries count the study as it ended, neither raised
        assert f"{TARGET} in total (target {TARGET})" in out
    parents = [r for r in MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name(f"{name}-search").experiment_id])
        if r.data.tags.get("stage") == "search"]
    assert sorted(r.info.status for r in parents) == ["FINISHED", "FINISHED"]


# Trials of ~2.5 s alone (3000 epochs: under a second): on a quiet machine the in-process
# worker finished all 5 before the spawned one started, so two child runs were never RUNNING
# at once; and the shorter a trial, the likelier one ends between the check and the kill.
LONGER = ["training.epochs=10000"]


def test_child_runs_of_a_search_whose_server_died_are_ended_by_the_next_search(tmp_path):
    """The server is killed mid-search: the search ends with one line (exit 2) and its child
    runs stay RUNNING in the store. Back on the same port, the next search ends them."""
    storage, name, port = str(tmp_path / "study.journal"), "died", free_port()
    with postgres_database() as backend:
        # killed -9 as soon as both trials' child runs are RUNNING: a SIGTERM'd server still
        # answered a trial's end_run in flight (its run FINISHED, 2 left RUNNING, not 3)
        with mlflow_server(backend, tmp_path / "server", port=port, kill=True) as uri:
            search = cli(tmp_path, uri, *_search_args(name, storage, "workers=2", *LONGER),
                         wait=False)
            client, end, running = MlflowClient(uri), time.monotonic() + 400, []
            while len(running) < 2 and time.monotonic() < end and search.poll() is None:
                time.sleep(0.5)
                experiment = client.get_experiment_by_name(f"{name}-search")
                running = [] if experiment is None else client.search_runs(
                    [experiment.experiment_id],
                    filter_string="attributes.status = 'RUNNING' and tags.stage = 'search_trial'")
            assert len(running) == 2, search.communicate()
        _, err = search.communicate(timeout=300)  # the server is gone
        assert search.returncode == 2 and "Traceback" not in err, err
        with mlflow_server(backend, tmp_path / "server", port=port) as uri:
            left = [r.info.run_id for r in client.search_runs(
                [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'")]
            assert len(left) >= 3  # the parent and both trials' child runs
            again = cli(tmp_path, uri, *_search_args(name, storage, *LONGER))
            assert again.returncode == 0, again.stderr
            trials, runs = _check_end_state(client, storage, name)
            assert {client.get_run(r).info.status for r in left} == {"FAILED"}
