"""kill -9 of the parent of a two-worker search (journal + SQLite MLflow, real processes).

Its spawned worker stops within seconds; the same command run again leaves nothing RUNNING (parent,
children, trials) and the study reaches its target.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TARGET = 4


def _command(tmp_path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "search", "data.params={n_samples: 200}",
            "model.hidden=[20,3]", "training.eval_every=5", "training.epochs=20000",
            "training.patience=null", "search.pruner.name=none", "search.trial_figures=none",
            f"search.storage={tmp_path / 'study.journal'}", "search.study=orphans",
            "workers=2", f"target_trials={TARGET}", "--quiet", "--conf-dir", str(CONF)]


def _env(tmp_path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/m.db",
               MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    env.pop("MLFLOW_RUN_ID", None)
    return env


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.slow
def test_kill_9_of_the_parent_stops_its_workers_and_a_rerun_leaves_nothing_running(tmp_path):
    from pipeline.config import load_config
    from pipeline.search import storage as S
    from pipeline.search.study import open_study

    p = subprocess.Popen(_command(tmp_path), cwd=tmp_path, env=_env(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # workers=2: worker 0 runs in the search process itself, worker 1 is a spawned child
    end, workers = time.monotonic() + 180, []
    while time.monotonic() < end and p.poll() is None:  # both workers inside a trial
        time.sleep(0.3)
        workers = [c for c in _children(p.pid) if "spawn" in
                   Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
        trials = [r for r in _runs(tmp_path) if r.data.tags.get("stage") == "search_trial"] \
            if (tmp_path / "m.db").exists() else []
        if len(workers) == 1 and sum(r.info.status == "RUNNING" for r in trials) == 2:
            break
    assert len(workers) == 1, p.communicate()
    os.kill(p.pid, signal.SIGKILL)
    killed = time.monotonic()
    p.communicate()
    while any(_alive(w) for w in workers) and time.monotonic() - killed < 60:
        time.sleep(0.1)
    seconds = time.monotonic() - killed
    print(f"workers gone {seconds:.1f} s after kill -9 of the parent")
    assert not any(_alive(w) for w in workers)
    assert seconds < 15
    before = Counter(r.info.status for r in _runs(tmp_path))
    print(f"runs after the kill: {dict(before)}")

    again = subprocess.run(_command(tmp_path), cwd=tmp_path, env=_env(tmp_path),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    runs = _runs(tmp_path)
    statuses = Counter(r.info.status for r in runs)
    print(f"runs after the rerun: {dict(statuses)}")
    assert statuses["RUNNING"] == 0
    parents = [r for r in runs if r.data.tags.get("stage") == "search"]
    assert sorted(r.info.status for r in parents) == ["FAILED", "FINISHED"]

    cfg = load_config(["search.study=orphans",
                       f"search.storage={tmp_path / 'study.journal'}"], conf_dir=CONF)
    study = open_study(cfg, S.resolve(cfg.search.storage, "orphans", tmp_path), create=False)
    states = Counter(t.state.name for t in study.trials)
    print(f"trials by state: {dict(states)}")
    assert states["RUNNING"] == 0 and states["COMPLETE"] + states["PRUNED"] == TARGET
    finished = [r.data.tags.get("optuna.trial_number") for r in runs
                if r.data.tags.get("stage") == "search_trial" and r.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)) == TARGET  # no duplicated trial numbers
