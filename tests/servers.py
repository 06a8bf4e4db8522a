"""Real servers for the scale-out tests: a fresh PostgreSQL database and an `mlflow server`.

Both are real (no mocks): the database is created on the local PostgreSQL (127.0.0.1:5432, trust
auth, as .ci/run starts it) and dropped afterwards; the tracking server is a subprocess with that
database as backend store, artifacts served from a temporary directory, bound to loopback on a
free port. Where PostgreSQL is unreachable the tests are skipped with the reason, except in CI
(`CI` set), where a missing database is a failure: CI must run them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

PG = dict(host="127.0.0.1", port=5432, user="postgres")


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI: the scale-out tests must not silently vanish there."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


def _admin():
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    return conn


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database `nnp_<random>`; yields its psycopg2 URL; dropped (with its
    connections) at the end."""
    try:
        conn = _admin()
    except Exception as exc:  # psycopg2 missing or the server down
        _unavailable(f"PostgreSQL at {PG['host']}:{PG['port']} is unreachable: "
                     f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    name = f"nnp_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        conn = _admin()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


# MLflow 3's server also starts a job runner with ~7 huey consumer processes (GenAI jobs:
# scorers, periodic tasks), each importing mlflow: ~20 s of CPU per server start, and a start
# twice as long on 2 busy cores. The pipeline runs no server jobs; the tracking API and the
# served artifacts, which the tests use, are the same without them.
NO_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(backend: str, root: Path, timeout: float = 180.0,
                  port: int | None = None, kill: bool = False) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1:<free port> with `backend` as backend store and artifacts
    served from `root/artifacts`; yields `http://127.0.0.1:<port>`. One uvicorn worker: the
    tests share two cores. Its output goes to `root/server.log` (shown if it fails to start).
    `kill=True` ends it with kill -9 at the end of the block, a server that dies; SIGTERM's
    graceful shutdown still answers the requests in flight."""
    port, log = port or free_port(), root / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
           "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **NO_JOBS)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        env.pop(key, None)
    root.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # own session: stopping it also stops the uvicorn worker it forks
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log, timeout)
        yield url
    finally:
        stop(proc, sig=signal.SIGKILL if kill else signal.SIGTERM)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server not healthy after {timeout:.0f} s: "
                       f"{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen, grace: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """`sig` (SIGTERM) to the server's process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


ROOT = Path(__file__).resolve().parents[1]
# A tiny problem (a trial takes well under a second) for the end-to-end commands below.
TINY = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=60",
        "training.eval_every=5", "training.patience=4", "search.trial_figures=none"]


def cli(cwd: Path, tracking_uri: str, *args: str, timeout: float = 900,
        wait: bool = True):
    """`python -m pipeline <args>` in `cwd` against `tracking_uri`, as a user runs it: a real
    subprocess (its own MLflow and Optuna state). `wait=False` returns the Popen."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=tracking_uri,
               MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "pipeline", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# Session fixtures (imported by conftest.py): one database and one server per test session
# (per xdist worker), shared by the tests that ask for them; each test uses its own study and
# experiment names, so they do not see each other's records. The tests that use them carry
# ON_SHARED_SERVER, so that one xdist worker runs them all (--dist loadgroup) and the suite
# starts one server, not one per worker (a server's start with its migrations is ~15-25 s here).
ON_SHARED_SERVER = pytest.mark.xdist_group("tracking_server")

@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def tracking_server(pg_database, tmp_path_factory) -> Iterator[str]:
    """`http://127.0.0.1:<port>`: an `mlflow server` backed by its own PostgreSQL database."""
    with postgres_database() as backend:
        with mlflow_server(backend, tmp_path_factory.mktemp("mlflow-server")) as url:
            yield url


def group_gone(proc) -> bool:
    """No process of the command's group is left (spawned workers included), within 5 s."""
    import os
    import time

    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
