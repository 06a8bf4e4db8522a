"""SIGTERM and Ctrl-C (SIGINT) against real `python -m pipeline` processes: exit 143/130, one
line on stderr, every MLflow run ended (KILLED, none RUNNING), Optuna trials FAIL (none
RUNNING), and no worker process left behind. Evaluate: tests/test_faults_evaluate.py.

"Ctrl-C" is SIGINT sent to the whole process group, as a terminal does (the workers get it
too); SIGTERM is sent to the command's process only, as `kill` or `timeout` do.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from servers import group_gone

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
WHAT = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGINT: "interrupted (Ctrl-C)"}
MLFLOW_LOG = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO mlflow")  # MLflow's own logging

pytestmark = pytest.mark.slow


def _start(tmp_path, *args) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/m.db", PYTHONPATH=str(ROOT),
               MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args, "--conf-dir", str(CONF)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _runs(tmp_path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _running(tmp_path) -> bool:
    """A RUNNING run in the store, read with sqlite3: an MLflow client would create the
    schema itself and race the command doing the same."""
    import sqlite3

    db = tmp_path / "m.db"
    if not db.exists():
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
        return bool(conn.execute("SELECT 1 FROM runs WHERE status = 'RUNNING'").fetchall())


def _wait_for(proc, predicate, what: str, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            if predicate():
                return
        except Exception:  # the store is still being created
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{what} did not happen: {proc.communicate()}")


def _signal(proc, signum) -> tuple[str, str]:
    """SIGINT to the process group (a terminal's Ctrl-C), SIGTERM to the process."""
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=180)
    return out, err


def _own_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not MLFLOW_LOG.match(line)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_train_ends_its_run_killed_with_one_line(tmp_path, signum):
    # evaluations every 2000 epochs: the stop must not wait for one (fit checks every epoch)
    proc = _start(tmp_path, "train", "--quiet", "training.epochs=2000000",
                  "training.eval_every=2000", "training.patience=null")
    _wait_for(proc, lambda: _running(tmp_path),
              "a RUNNING run")
    time.sleep(0.5)
    out, err = _signal(proc, signum)
    [run] = _runs(tmp_path)
    assert proc.returncode == 128 + signum, err
    assert _own_lines(err) == [f"{WHAT[signum]}: run {run.info.run_id} ended KILLED"]
    assert run.info.status == "KILLED" and out == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_search_with_two_workers_leaves_no_trial_or_run_running(tmp_path, signum):
    journal = tmp_path / "study.journal"
    proc = _start(tmp_path, "search", "--quiet", "search.n_trials=500", "search.workers=2",
                  f"search.storage={journal}", "search.study=s", "search.pruner.name=none",
                  "search.trial_figures=none", "training.epochs=600", "training.patience=null")
    # two finished trials: both workers are past their start-up and mid-trial
    _wait_for(proc, lambda: journal.read_text().count('"state":1') >= 2, "two finished trials")
    out, err = _signal(proc, signum)
    assert proc.returncode == 128 + signum, err
    assert _own_lines(err) == [
        f"{WHAT[signum]}: the parent run ended KILLED and the trials in progress FAIL; to "
        "finish this call's trials: search study=s target_trials=500"]
    assert group_gone(proc)
    runs = _runs(tmp_path)
    statuses = Counter((r.data.tags.get("stage"), r.info.status) for r in runs)
    assert statuses[("search", "KILLED")] == 1 and "RUNNING" not in {s for _, s in statuses}

    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(study_name="s",
                              storage=JournalStorage(JournalFileBackend(str(journal))))
    states = Counter(t.state.name for t in study.trials)
    assert set(states) <= {"COMPLETE", "FAIL"} and states["COMPLETE"] >= 2, states
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    # each stopped trial: FAIL in Optuna, its child run KILLED (no pruner: KILLED = stopped)
    assert 1 <= len(failed) <= 2
    assert all(t.user_attrs["fail_reason"].startswith("Stopped: received SIG") for t in failed)
    assert statuses[("search_trial", "KILLED")] == len(failed)
    assert statuses[("search_trial", "FINISHED")] == states["COMPLETE"]


@pytest.mark.parametrize("signum, workers", [(signal.SIGTERM, 1), (signal.SIGINT, 2)])
def test_experiment_ends_its_parent_killed_and_its_workers(tmp_path, signum, workers):
    proc = _start(tmp_path, "experiment", "initialization", "seeds=2", f"workers={workers}",
                  "training.epochs=100000", "--quiet")
    _wait_for(proc, lambda: _running(tmp_path),
              "the lesson's parent run")
    time.sleep(1.0)  # the jobs are training (each one takes far longer than this)
    out, err = _signal(proc, signum)
    assert proc.returncode == 128 + signum, err
    [parent] = _runs(tmp_path)  # no (arm, seed) job had finished: no child run
    assert _own_lines(err) == [
        f"{WHAT[signum]}: the lesson's parent run {parent.info.run_id} ended KILLED (the "
        "(arm, seed) runs already logged stay FINISHED)"]
    assert parent.info.status == "KILLED" and parent.data.tags["stage"] == "experiment"
    assert group_gone(proc)
