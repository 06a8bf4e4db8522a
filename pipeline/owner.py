"""Who owns a run or a trial: `owner()` -> "<host>:<pid>:<start>", `owner_alive(text)`.

Stored with every MLflow run (tag `pipeline.owner`, pipeline/tracking/recovery.py) and every
Optuna trial (user attribute `owner`, pipeline/search/recovery.py) from its creation, so that
any later process on the same host can tell a live owner from a dead one. The start time
(clock ticks since boot, /proc/<pid>/stat field 22) tells a reused pid from the original.
Stdlib only: the core and both edges use it.
"""

from __future__ import annotations

import os
import socket


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
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # a zombie has exited: what it owned will never end
        return -1
    return int(fields[19])
