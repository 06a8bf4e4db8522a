"""Hostile input through the real commands (issue 17, item 12, the rest): a lesson with a
million seeds, a network too large for memory, NaN or tampered weights in a logged model, and
edited code logged with a model. Each case runs the real command (a subprocess where a signal,
a fresh import or a memory limit matters) against a real SQLite store under tmp_path."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

pytestmark = pytest.mark.xdist_group("test_faults_hostile")


def command(*args, cwd):
    """`python -m pipeline <args>` as a user types it (this checkout first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ a lesson with 1M seeds
def test_a_million_seeds_are_refused_before_planning(tmp_path):
    """Before: 4 minutes of planning, deaf to SIGINT/SIGTERM. Now one line naming the key, the
    bound and the value, before a config is built or a store is opened."""
    from pipeline.lessons.plan import MAX_SEEDS

    store = tmp_path / "mlflow.db"
    started = time.perf_counter()
    proc = command("experiment", "--conf-dir", str(CONF), "initialization", "seeds=1000000",
                   f"tracking.uri=sqlite:///{store}", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert lines(err) == [f"error: seeds must be an integer in [1, {MAX_SEEDS}], got 1000000"]
    assert time.perf_counter() - started < 30  # the interpreter and imports, not a plan
    assert not store.exists()                  # no store, no run


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_planning_many_seeds_stops_on_a_signal(tmp_path, signum, code):
    """The bound's worth of seeds (5 arms x 1,000 = 5,000 configs) takes 30 s to plan on a
    loaded machine; a signal during it ends the command within a second or two, with the
    shell's exit code and one line, before any run or store exists."""
    from pipeline.lessons.plan import MAX_SEEDS

    store = tmp_path / "mlflow.db"
    proc = command("experiment", "--conf-dir", str(CONF), "regularization",
                   f"seeds={MAX_SEEDS}", f"tracking.uri=sqlite:///{store}", cwd=tmp_path)
    time.sleep(6)                              # imports done, planning under way
    assert proc.poll() is None, proc.communicate()
    sent = time.perf_counter()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    waited = time.perf_counter() - sent
    assert proc.returncode == code, err
    assert lines(err)[-1].endswith("stopped while planning the lesson; no run was created")
    assert waited < 3.0, f"{waited:.1f} s from the signal to the exit"
    assert not store.exists()
