"""A stop request passed as an argument: `Stop` (the flag) and `Stopped` (what `check` raises).

The command line (`cli.main`) makes one `Stop` per command and turns SIGTERM and SIGINT
(Ctrl-C) into `stop.request(...)`; the stages pass it down as an argument (`train.fit(...,
stop=stop)`, the search's workers, evaluate, the lessons) and call `stop.check()` at safe
points: every epoch of `fit`, between trials and jobs, at the start and end of a tracked run.
`cli.main` maps the `Stopped` that comes back to exit 143 (SIGTERM) or 130 (Ctrl-C) with one
line on stderr: the only place exit codes of signals are decided.

Why a flag and not an exception raised by the signal handler: raised inside an MLflow write,
an exception can cut a SQLite transaction halfway and leave the store locked for the writes
that end the run (seen in CI: a search hung 60 s on "database is locked"). The handler only
records; the code raises where nothing is half-written. The same signal a second time raises
at once (the user insists: e.g. a call that retries for minutes), except inside `hold()`.

Standard library only (signal, threading): the numeric core may take a `Stop`.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

WHAT = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGINT: "interrupted (Ctrl-C)"}


class Stopped(KeyboardInterrupt):
    """A requested stop, raised at a safe point. A KeyboardInterrupt (so a BaseException, not
    swallowed by `except Exception`), which Optuna records as a FAIL trial and MLflow code in
    `tracking.run` ends KILLED, as they treat Ctrl-C.

    `outcome`: what the command did about it (one clause, e.g. "run X ended KILLED"), set on
    the way out and printed by `cli.main`; `held`: raised at the end of `Stop.hold()`, after
    the held work was finished."""

    def __init__(self, reason: str, signum: int = signal.SIGTERM, held: bool = False):
        super().__init__(reason)
        self.reason, self.signum, self.held = reason, signum, held
        self.outcome = ""

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)  # the shell's convention: 143 SIGTERM, 130 SIGINT

    def line(self) -> str:
        """The one line `cli.main` prints on stderr."""
        what = WHAT.get(self.signum, self.reason)
        return f"{what}: {self.outcome or self.reason}"


class Stop:
    """A stop request: `requested`, `reason`, `signum`; `check()` raises `Stopped` once one
    is requested (not inside `hold()`). Cheap to poll: `fit` reads `requested` every epoch."""

    def __init__(self):
        self.requested = False
        self.reason: str | None = None
        self.signum: int | None = None
        self._held = 0

    def request(self, reason: str = "stop requested", signum: int = signal.SIGTERM) -> None:
        """Ask for a stop (the first request wins: its signal decides the exit code)."""
        if not self.requested:
            self.reason, self.signum, self.requested = reason, signum, True

    def stopped(self, held: bool = False) -> "Stopped":
        """The `Stopped` of the request made (`request` always sets reason and signal)."""
        return Stopped(self.reason, self.signum, held=held)

    def check(self) -> None:
        """A safe point: raise `Stopped` if a stop was requested (not while held)."""
        if self.requested and not self._held:
            raise self.stopped()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Work that must not be cut in half (evaluate after the test split is unsealed: the
        look is spent, so its numbers must be recorded and printed). A stop already requested
        is raised on entry, before the work starts; inside, requests are recorded only (a
        repeated signal too); at the end a recorded one is raised with `held=True`."""
        self.check()
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if self.requested and not self._held:
            raise self.stopped(held=True)

    @contextmanager
    def on_signals(self, signums=(signal.SIGTERM, signal.SIGINT)) -> Iterator["Stop"]:
        """SIGTERM/SIGINT request this stop for the block; the previous handlers come back at
        its end. Main thread only (Python's rule); elsewhere the block runs unchanged."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._on_signal) for s in signums}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested and signum == self.signum and not self._held:
            raise Stopped(f"received {name} twice", signum)  # asked twice: do not wait
        self.request(f"received {name}", signum)


@contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Start child processes inside this block: they inherit SIGINT ignored, so a Ctrl-C
    that reaches the whole process group while a child is still importing does not print a
    KeyboardInterrupt traceback from it. A child that installs its own handlers (a search
    worker's `Stop.on_signals`) acts on later signals; the parent stops the others."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
