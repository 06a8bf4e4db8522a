"""A spawned search worker stops when its parent is gone (kill -9 of the search command).

Without this, workers of a killed parent kept running unsupervised (~90 s, finishing the
study) while the parent's run stayed RUNNING, and a resume started meanwhile failed their
trials under them. A daemon thread compares `os.getppid()` with the parent seen at start every
`interval` seconds (a dead parent's children are re-parented, so the id changes). When it
changes, the worker sends itself SIGTERM, which the worker's `pipeline.stop.Stop` records and
its training acts on at the next epoch: the trial in progress ends FAIL and its child run
KILLED, and the worker exits 143. A worker stuck elsewhere (e.g. inside an MLflow call) is
ended with `os._exit` after `grace` seconds; its trial is then left RUNNING in the storage and
failed by the next search's stale-trial cleanup (journal) or Optuna's heartbeat (RDB).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time


def watch_parent(interval: float = 1.0, grace: float = 10.0) -> threading.Thread:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread, at a safe point
        time.sleep(grace)
        os._exit(143)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


# Who runs a trial or a parent run: "<host>:<pid>:<start>", stored in the storage so that any
# later process on the same host can tell a live owner from a dead one. The start time (clock
# ticks since boot, /proc/<pid>/stat field 22) tells a reused pid from the original.

def owner(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(text: str | None) -> bool | None:
    """True/False for an owner on this host; None when unknown (no owner, another host): a
    process on another machine cannot be checked from here."""
    try:
        host, pid, start = (text or "").rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    now = _start_time(pid)
    if now is not None:
        return start == str(now)
    try:  # no /proc: the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start == "None"


def _start_time(pid: int) -> int | None:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # a zombie has exited: its trial will never end
        return -1
    return int(fields[19])
