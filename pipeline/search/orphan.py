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

