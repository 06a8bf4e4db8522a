"""Spawned workers for a lesson's (arm, seed) jobs that survive a dead worker.

Why not `multiprocessing.Pool`: when one of its workers dies (kill -9, SIGTERM, the kernel's
OOM killer) it quietly starts another, and the dead worker's job result never arrives, so
the lesson waited forever. `concurrent.futures.ProcessPoolExecutor` notices, but breaks the
whole pool: every job in flight fails, and it cannot say which worker ran which job.

Here each worker has its own pipe and runs one job at a time, so the parent always knows
which (arm, seed) a worker holds. A worker that dies is reported on stderr with its pid and
exit signal, and its job is retried ONCE in a fresh worker: a job is deterministic given its
seed, so the retry gives the result the dead worker would have given (no seed is biased out),
and the usual causes (a stray kill, memory taken by another process) are transient. A job
whose second worker dies too is marked failed (a job that kills its worker each time, e.g.
by its own memory, is not run a third time); the other jobs go on, and `failed` lists it.

Standard library only: the numeric core imports no MLflow.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable, Iterator, Sequence

RETRIES = 1     # fresh workers a job gets after its worker died (see the module doc)
POLL = 0.5      # seconds between stop checks while waiting for a worker


@dataclass(frozen=True)
class FailedJob:
    arm: str
    seed: int
    reason: str     # "lesson worker 123 died (SIGKILL) running arm none seed 3 ..."


class JobsFailed(RuntimeError):
    """Some jobs' workers died (twice): `failed` (FailedJob), `runs` (the ArmRuns that did
    finish; `on_result` saw each of them)."""

    def __init__(self, failed: Sequence[FailedJob], runs: Sequence, total: int):
        self.failed, self.runs, self.total = tuple(failed), tuple(runs), total
        names = ", ".join(f"{f.arm} seed {f.seed}" for f in self.failed)
        super().__init__(f"{len(self.failed)} of {total} (arm, seed) jobs failed, their "
                         f"worker died twice: {names}")


def exit_name(code: int | None) -> str:
    """"SIGKILL", "SIGTERM", "exit code 1" for a process' `exitcode`."""
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _worker(conn) -> None:
    """A spawned worker: jobs from `conn` until None, each answered with ("ok", ArmRun) or
    ("error", exception); the parent raises the latter, as the Pool did. If the parent dies
    (kill -9), the job in progress stops at its next epoch and the worker exits: nobody is
    left to want its result."""
    from multiprocessing.pool import ExceptionWithTraceback

    from pipeline.lessons.execute import execute
    from pipeline.stop import Stop, Stopped

    stop = Stop()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_watch, args=(parent.sentinel, stop), daemon=True).start()
    try:
        while (job := conn.recv()) is not None:
            try:
                conn.send(("ok", execute(job, stop)))
            except Exception as exc:  # the job's own error: the parent re-raises it
                try:
                    conn.send(("error", ExceptionWithTraceback(exc, exc.__traceback__)))
                except Exception:  # not picklable (a broken pipe fails again below)
                    conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    except (EOFError, OSError, Stopped):  # the parent is gone
        return
    from pipeline.process_exit import skip_final_gc

    skip_final_gc()  # the parent joins this worker: its exit costs ~1 s less (process_exit.py)


def _watch(sentinel, stop) -> None:
    wait([sentinel])
    stop.request("the lesson's process died")


@dataclass
class _Slot:
    proc: multiprocessing.process.BaseProcess
    conn: object
    job: object = None      # the Job it runs, or None when idle
    tries: int = 0          # earlier workers that died running that job


class LessonPool:
    """`size` spawned workers; `results(jobs)` yields each job's ArmRun as it finishes,
    checking `stop` every POLL seconds; `failed` lists jobs given up; `close()` always."""

    def __init__(self, size: int, stop, warn: Callable[[str], None] | None = None):
        self.size, self.stop = size, stop
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.ctx = multiprocessing.get_context("spawn")
        self.slots: list[_Slot] = []
        self.failed: list[FailedJob] = []

    def _start(self) -> _Slot:
        from pipeline import threads
        from pipeline.stop import children_ignore_sigint

        mine, theirs = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(theirs,), name="lesson-worker",
                                daemon=True)
        # Ctrl-C: the parent stops them, no traceback each. The thread count goes through
        # the environment: a spawned worker imports numpy afresh (pipeline/threads.py).
        with children_ignore_sigint(), threads.for_spawned():
            proc.start()
        theirs.close()  # only the worker holds its end: its death is an EOF here
        slot = _Slot(proc, mine)
        self.slots.append(slot)
        return slot

    def prestart(self) -> "LessonPool":
        """Start the `size` workers now, before their jobs are known: a worker's start (a
        process, numpy, the pipeline: ~1 s idle, several loaded) then overlaps the command's
        own (importing MLflow, opening the store), instead of following it."""
        while len(self.slots) < self.size:
            self._start()
        return self

    def results(self, jobs: Sequence) -> Iterator:
        queue = deque((job, 0) for job in jobs)
        for _ in range(min(self.size, len(queue)) - len(self.slots)):
            self._start()
        while queue or any(s.job is not None for s in self.slots):
            self.stop.check()
            self._dispatch(queue)
            busy = [s for s in self.slots if s.job is not None]
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy],
                         timeout=POLL)
            finished = []
            for slot in [s for s in busy if s.conn in ready or s.proc.sentinel in ready]:
                run = self._receive(slot, queue)
                if run is not None:
                    finished.append(run)
            self._dispatch(queue)  # the freed workers start their next job before we yield
            yield from finished

    def _dispatch(self, queue: deque) -> None:
        for slot in [s for s in self.slots if s.job is None]:
            if not queue:
                return
            if not slot.proc.is_alive():  # died between jobs: nothing lost, replace it
                self._bury(slot)
                slot = self._start()
            slot.job, slot.tries = queue.popleft()
            try:
                slot.conn.send(slot.job)
            except OSError:  # died just now: handled as a death while running the job
                pass

    def _receive(self, slot: _Slot, queue: deque):
        try:
            kind, value = slot.conn.recv()
        except (EOFError, OSError):  # the worker is gone (mid-job, or mid-answer)
            self._died(slot, queue)
            return None
        slot.job = None
        if kind == "error":
            raise value
        return value

    def _died(self, slot: _Slot, queue: deque) -> None:
        job, tries = slot.job, slot.tries
        self._bury(slot)
        what = (f"lesson worker {slot.proc.pid} died ({exit_name(slot.proc.exitcode)}) running "
                f"arm {job.arm} seed {job.seed}")
        if tries < RETRIES:
            queue.appendleft((job, tries + 1))
            self.warn(f"{what}: retried once")
        else:
            self.failed.append(FailedJob(job.arm, job.seed, what))
            self.warn(f"{what} (its retry): the (arm, seed) is marked failed")
        if queue and len(self.slots) < self.size:
            self._start()

    def _bury(self, slot: _Slot) -> None:
        slot.proc.join(timeout=5)
        slot.conn.close()
        self.slots.remove(slot)

    def terminate(self) -> None:
        """On a stop or an error: SIGTERM every worker (they write nothing)."""
        for slot in self.slots:
            slot.proc.terminate()

    def close(self) -> None:
        """Let idle workers exit, then wait for every worker (terminated ones included)."""
        for slot in self.slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass
        for slot in self.slots:
            slot.proc.join(timeout=10)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
            slot.conn.close()
        self.slots.clear()
