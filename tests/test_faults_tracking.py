"""A real `mlflow server` that is down at start or dies mid-run, and foreseeable failures.

Down at start: one line, exit 2, within seconds, nothing created. Dies mid-run: the command
ends within a bounded time with one line naming the local copy of what was not sent; after the
server is back, the next command sends that copy and ends the old run FAILED (not RUNNING).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers import NO_JOBS

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.eval_every=5"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true",
               MPLBACKEND="Agg", **extra)
    for key in ("MLFLOW_RUN_ID", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        env.pop(key, None)  # the command's own bounds are under test
    return env


def _cli(cwd, command, *args, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", command, *args, "--conf-dir",
                             str(CONF)], cwd=cwd, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _start_server(tmp_path, port: int) -> subprocess.Popen:
    """`mlflow server` on loopback, SQLite backend, artifacts served from tmp_path; its own
    process group so that killing it kills its web workers too. A new backend store starts as
    a copy of the migrated template, as the pipeline's own new stores do
    (pipeline/tracking/store.py): the server then skips MLflow's ~60 migrations (on a loaded
    2-core machine it answered after 39 s over a new store, 23 s over an existing one)."""
    from pipeline.tracking.store import seed_store

    seed_store(f"sqlite:///{tmp_path}/s.db")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/s.db",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        cwd=tmp_path, env=_env(**NO_JOBS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    import requests

    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                return server
        except requests.RequestException:
            time.sleep(0.3)
    _kill(server)
    raise AssertionError("mlflow server did not start within 120 s")


def _kill(server: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(server.pid, sig)
    except ProcessLookupError:
        pass
    server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("command, extra", [("train", []), ("search", ["n_trials=1"]),
                                            ("evaluate", ["study=x"])])
def test_an_unreachable_server_is_one_line_and_exit_2_before_anything_exists(tmp_path, command,
                                                                             extra):
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    started = time.monotonic()
    p = _cli(tmp_path, command, *TINY, *extra, f"tracking.uri={uri}", "--quiet"
             if command != "evaluate" else "--force")
    out, err = p.communicate(timeout=120)
    seconds = time.monotonic() - started
    assert p.returncode == 2, err
    assert err.strip().count("\n") == 0 and f"tracking server {uri} is unreachable" in err
    assert seconds < 30
    assert sorted(os.listdir(tmp_path)) == []  # no journal, no mlflow.db, no mlruns


@pytest.mark.slow
def test_the_server_dies_mid_run_bounded_then_replayed_and_not_running(tmp_path):
    from mlflow.tracking import MlflowClient

    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(tmp_path, port)
    work = tmp_path / "work"
    work.mkdir()
    try:
        p = _cli(work, "train", *TINY, "training.epochs=40000", "training.patience=null",
                 f"tracking.uri={uri}", "--quiet")
        client = MlflowClient(uri)
        end = time.monotonic() + 120
        runs = []
        while not runs and time.monotonic() < end and p.poll() is None:
            time.sleep(0.3)
            runs = client.search_runs(["0", *[e.experiment_id for e in
                                              client.search_experiments()]])
        assert runs, "the train run never appeared on the server"
        run_id = runs[0].info.run_id
        time.sleep(1.0)
        _kill(server)  # kill -9 of the server's process group
        killed = time.monotonic()
        out, err = p.communicate(timeout=120)
        seconds = time.monotonic() - killed
        print(f"train ended {seconds:.1f} s after the server was killed")
        assert p.returncode == 2, err
        # MLflow's own INFO line ("Experiment ... Creating a new experiment") is not ours
        lines = [line for line in err.splitlines() if line.strip() and " INFO mlflow" not in line]
        assert len(lines) == 1 and f"went away during run {run_id}" in lines[0], err
        assert seconds < 30
        kept = work / "mlflow-unsent" / f"{run_id}.json"
        rows = json.loads(kept.read_text())["metric_rows"]
        assert str(kept.relative_to(work)) in lines[0] and len(rows) > 0

        server = _start_server(tmp_path, port)
        assert client.get_run(run_id).info.status == "RUNNING"  # what the fault left
        again = _cli(work, "train", *TINY, "training.epochs=10", f"tracking.uri={uri}",
                     "--quiet")
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        assert f"run {run_id} (left behind" in err and "run FAILED" in err
        run = client.get_run(run_id)
        assert run.info.status == "FAILED" and "replayed from" in run.data.tags["fault"]
        steps = {m.step for m in client.get_metric_history(run_id, "curves/dev_loss")}
        assert max(steps) >= max(r[3] for r in rows)  # the kept points reached the server
        assert (work / "mlflow-unsent" / f"{run_id}.replayed.json").is_file()
        statuses = sorted(r.info.status for r in client.search_runs(
            [e.experiment_id for e in client.search_experiments()]))
        assert "RUNNING" not in statuses
    finally:
        _kill(server)


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (["tracking.uri=bogus://x"], "unknown scheme 'bogus'"),
    (["tracking.uri=postgresql+psycopg2://nobody@127.0.0.1:1/x"], "database unreachable"),
    (["search.storage={tmp}/afile/s.journal"], "is not writable"),
    (["search.storage=sqlite:///{tmp}/afile/s.db"], "is not writable"),
])
def test_foreseeable_failures_are_one_line_exit_2_and_create_nothing(tmp_path, args, expected):
    (tmp_path / "afile").write_text("a file, not a directory")
    args = [a.format(tmp=tmp_path) for a in args]
    started = time.monotonic()
    p = _cli(tmp_path, "search", *TINY, "n_trials=1", *args, "--quiet")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2 and err.strip().count("\n") == 0 and expected in err, err
    assert time.monotonic() - started < 30
    assert sorted(os.listdir(tmp_path)) == ["afile"]
