"""The spawned processes of a multi-worker search (workers 1..N-1), each on its own pipe.

Why they are started before the search's own start-up: a spawned worker spends seconds
importing mlflow, optuna, sqlalchemy and matplotlib; started after the parent's own imports,
store creation and parent run (as they were), it ran its first trial ~5 s (idle machine) after
worker 0, which on 16 default trials cost most of the second core's gain. `SpawnedWorkers` is
created as soon as the command knows the worker count: each process imports what its trials
need while the parent does its own start on the other core, then waits on its pipe for the
`WorkerJob` (the parent run exists only then; nothing but the parent ever creates a store,
study or run, sweep.py). No job (a refusal or a stop before the trials): it is terminated
while still waiting, having written nothing.

Why a pipe rather than the storage alone: a worker waiting for the others' last trials used
to poll the storage every second and the parent waited for each process to exit (interpreter
teardown, ~1 s) before its summary. Now each worker says "trial" after each trial and "done"
when the target is met, the parent says "check" after each of its own trials, so the waiting
side wakes at once, and the processes' teardown overlaps the parent's summary. The storage
stays the truth: the messages only wake a waiter early, which then reads the study as before.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from pipeline import threads
from pipeline.stop import children_ignore_sigint
from pipeline.store_fault import WORKER_EXIT
from pipeline.store_urls import RDB_SCHEMES

JOIN_SECONDS = 30  # a worker that said "done" and has not exited by then is killed


def preload_for(cfg, tracking_uri: str | None) -> tuple[str, ...]:
    """What a worker of this config imports while waiting for its job (what its first trial
    would otherwise import): the trial code, the tracking edge, the SQL store MLflow opens for
    a database URI, and matplotlib when trials draw figures."""
    names = ["pipeline.search.workers", "pipeline.tracking.search_runs"]
    if tracking_uri and tracking_uri.startswith(RDB_SCHEMES):  # a database URI
        names.append("mlflow.store.tracking.sqlalchemy_store")
    if cfg.search.trial_figures in ("improving", "all"):
        names.append("pipeline.plots.training")
    return tuple(names)


@dataclass
class _Slot:
    proc: multiprocessing.process.BaseProcess
    conn: object
    done: bool = False      # said "done": its trials are all recorded
    closed: bool = False    # its pipe ended (it exited, or died)


class SpawnedWorkers:
    """`count` spawned workers (numbered 1..count), started now; `start(job)` gives them the
    job. Used as worker 0's `peers` (workers.py): `wait` wakes on a worker's message,
    `trial_ended` wakes the workers. `close()` always (a `with` block)."""

    def __init__(self, count: int, preload: tuple[str, ...] = ()):
        self.slots: list[_Slot] = []
        self.started = False
        ctx = multiprocessing.get_context("spawn")
        # Ctrl-C reaches the process group: a worker still importing ignores it (the parent
        # stops it). The BLAS thread count goes through the environment (pipeline/threads.py).
        with children_ignore_sigint(), threads.for_spawned():
            for k in range(1, count + 1):
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(target=_entry, args=(theirs, k, preload),
                                   name=f"search-worker-{k}")
                proc.start()
                theirs.close()  # only the worker holds its end: its death is an EOF here
                self.slots.append(_Slot(proc, mine))

    def __enter__(self) -> "SpawnedWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, job) -> None:
        self.started = True
        for slot in self.slots:
            self._send(slot, job)  # a worker dead already: counted by `lost`

    def trial_ended(self) -> None:
        """Worker 0 ended a trial: a worker waiting for it looks at the study now. (Each side
        reads what it was sent before sending: no pipe fills up over a long search.)"""
        for slot in self.slots:
            self._read(slot)
            self._send(slot, "check")

    def wait(self, seconds: float) -> None:
        """Until a worker says something (a trial ended, done, or its pipe closed: it died),
        at most `seconds`."""
        live = [s.conn for s in self.slots if not s.closed]
        ready = wait(live, timeout=seconds) if live else time.sleep(seconds) or []
        for slot in [s for s in self.slots if s.conn in ready]:
            self._read(slot)

    @staticmethod
    def _read(slot: _Slot) -> None:
        try:
            while not slot.closed and slot.conn.poll():
                if slot.conn.recv() == "done":
                    slot.done = True
        except (EOFError, OSError):
            slot.closed = True

    @staticmethod
    def _send(slot: _Slot, message) -> None:
        if slot.closed:
            return
        try:
            slot.conn.send(message)
        except OSError:  # it died: its pipe's EOF says so at the next read
            pass

    def finish(self, stop, progress) -> None:
        """Worker 0 is done (the target is met): until every worker has said "done" (its last
        writes are in) or died, checking `stop`. Their exit is waited for in `close`, after
        the parent's summary."""
        self.trial_ended()
        while any(not (s.done or s.closed) for s in self.slots):
            stop.check()
            if progress is not None:
                progress.poll()
            self.wait(0.5)

    def lost(self) -> list[str]:
        """One line per worker that ended badly (exit code or signal) without saying "done"."""
        out = []
        for slot in self.slots:
            if slot.done:
                continue
            slot.proc.join(timeout=5)
            code = slot.proc.exitcode
            if code:
                out.append(f"{slot.proc.name} " + (
                    f"killed by signal {-code}" if code < 0 else
                    f"exit code {code}" + _STORE_FAULT.get(code, "")))
        return out

    def terminate(self) -> None:
        """SIGTERM: a worker in a trial ends it FAIL and its run KILLED (its own Stop); one
        still importing or waiting for its job dies having written nothing."""
        for slot in self.slots:
            if slot.proc.is_alive():
                slot.proc.terminate()

    def join(self) -> None:
        for slot in self.slots:
            slot.proc.join()

    def close(self) -> None:
        """Without a job (the search was refused or stopped first): terminated. Otherwise
        their exit is waited for (they are past their last write)."""
        if not self.started:
            self.terminate()
        for slot in self.slots:
            slot.proc.join(timeout=JOIN_SECONDS)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
            slot.conn.close()


_STORE_FAULT = {WORKER_EXIT: " (a store fault; it printed nothing)"}


class ParentLink:
    """A spawned worker's `peers`: the parent's pipe (see the module doc)."""

    def __init__(self, conn):
        self.conn, self.gone = conn, False

    def wait(self, seconds: float) -> None:
        if self.gone:  # the parent died: watch_parent stops this worker
            time.sleep(seconds)
            return
        try:
            if self.conn.poll(seconds):
                self._read()
        except (EOFError, OSError):
            self.gone = True

    def trial_ended(self) -> None:
        self._read()
        self.say("trial")

    def _read(self) -> None:
        """What the parent sent ("check"): it only woke us; the study is read anyway."""
        try:
            while not self.gone and self.conn.poll():
                self.conn.recv()
        except (EOFError, OSError):
            self.gone = True

    def say(self, what: str) -> None:
        try:
            self.conn.send(what)
        except OSError:
            self.gone = True


def _entry(conn, worker: int, preload: tuple[str, ...]) -> None:
    """A spawned worker: its imports first, then its job, then trials until the target."""
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # a missing driver, say: the trial that needs it says so
            pass
    try:
        job = conn.recv()
    except (EOFError, OSError):  # the parent ended before its trials (refused, stopped, killed)
        return
    from pipeline.process_exit import skip_final_gc
    from pipeline.search.workers import worker_main

    worker_main(job, worker, ParentLink(conn))
    skip_final_gc()  # its exit overlaps the parent's summary: the less it costs the better
