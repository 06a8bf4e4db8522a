"""A store that fails under a running command (a full disk, a file made immutable or deleted, a
database server gone) ends the command in ONE line naming the store.

Without this, one such fault printed 1,100-1,900 lines and ~40 tracebacks for a search: MLflow
logs every failed SQL statement with its traceback, Optuna logs every failed trial with its
traceback, Optuna's heartbeat thread and every worker process print their own, and the line
the command ended with said "(raised as a result of Query-invoked autoflush ...)" or
"AssertionError: Should not reach." (Optuna's tell failing inside its own `finally`).

One rule, used by the logging filters, the thread hook, the worker processes and the command:
an exception is a store fault when its chain (`__cause__`/`__context__`) holds a database
error (sqlite3's or a driver's `OperationalError`/`DatabaseError`) or an `OSError` of the
disk (full, read-only, I/O error, not permitted). Which store failed is read from the frames
it passed through (MLflow's code: the tracking store; Optuna's or the journal's: the study's
storage). Stdlib only: the command line imports it before mlflow or optuna.
"""

from __future__ import annotations

import errno
import logging
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.redact import redact

# errors a disk gives, not a path the user mistyped (ENOENT is not here: a missing file is
# reported by the checks before a command starts)
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EPERM, errno.EACCES}
_DATABASE_ERRORS = ("OperationalError", "DatabaseError", "DiskFull", "ReadOnlySqlTransaction",
                    "AdminShutdown", "InterfaceError")
# code paths that tell which store an error came from (first match, innermost frame first)
_TRACKING_CODE = ("/mlflow/", "/pipeline/tracking/")
_STORAGE_CODE = ("/optuna/", "/pipeline/search/journal.py", "/pipeline/search/storage.py")
# the exit code of a search worker process that stopped on a store fault: it prints nothing
# (the search process meets the same store and says it once); sysexits' EX_IOERR
WORKER_EXIT = 74


@dataclass(frozen=True)
class Fault:
    store: str    # "tracking" (MLflow) or "storage" (Optuna), "" when the frames do not say
    reason: str   # the database's or the disk's own words, e.g. "disk I/O error"


class StoreFault(ValueError):
    """The one line (cli.main prints a ValueError as `error: <line>`, exit 2)."""


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during, outermost first, as Python
    shows them (`raise ... from None` ends the chain: the new error replaced the old)."""
    seen: list[BaseException] = []
    while exc is not None and not any(exc is s for s in seen) and len(seen) < 50:
        seen.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None or exc.__suppress_context__ \
            else exc.__context__
    return seen


def _is_disk_or_database(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _DISK_ERRNOS
    kind = type(exc)
    return kind.__name__ in _DATABASE_ERRORS and not kind.__module__.startswith("builtins")


def fault_of(exc: BaseException | None) -> Fault | None:
    """The store fault `exc` comes from, or None (a bug, bad input, a stop)."""
    if exc is None or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return None
    chain = _chain(exc)
    root = next((e for e in reversed(chain) if _is_disk_or_database(e)), None)
    if root is None:
        return None
    return Fault(_store_of(chain[:chain.index(root) + 1]), _reason(root))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in text else ""
        return f"{text}{where}"
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{text} ({type(exc).__module__}.{type(exc).__name__})"


def _store_of(chain: list[BaseException]) -> str:
    for exc in reversed(chain):  # the root first: where the fault happened
        for name in reversed(_frames(exc)):
            if any(code in name for code in _TRACKING_CODE):
                return "tracking"
            if any(code in name for code in _STORAGE_CODE):
                return "storage"
    return ""


def _frames(exc: BaseException) -> list[str]:
    names, tb = [], exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_filename.replace("\\", "/"))
        tb = tb.tb_next
    return names


def one_line(fault: Fault, stores: dict[str, str], doing: str) -> str:
    """`stores`: "tracking"/"storage" -> the store's URI or label (masked here)."""
    named = stores.get(fault.store)
    if named is not None:
        where = f"{_KIND[fault.store]} {redact(named)}"
    elif fault.store:  # a store the caller did not name
        where = _KIND[fault.store]
    else:  # the frames did not tell: every store the command used
        where = " or ".join(f"{_KIND[k]} {redact(v)}" for k, v in stores.items() if v)
        where = where or "a store"
    hint = "; free space on its disk" if _full(fault.reason) else ""
    return f"{where} failed {doing}: {redact(fault.reason)}{hint}"


_KIND = {"tracking": "MLflow tracking store", "storage": "Optuna storage"}


def _full(reason: str) -> bool:
    return any(w in reason.lower() for w in ("disk is full", "no space left", "quota"))


@contextmanager
def one_line_faults(stores, doing: str):
    """A store fault raised inside becomes a `StoreFault`: one line naming the store (`stores()`
    -> "tracking"/"storage" -> URI or label, called only then), what it was doing, the
    database's or the disk's words, and the notes the code on its way added (`later`)."""
    try:
        yield
    except StoreFault:
        raise
    except BaseException as exc:
        fault = fault_of(exc)
        if fault is None:
            raise
        # a failing clean-up (ending the run) may have raised anew: notes anywhere in the chain
        notes = dict.fromkeys(n for e in _chain(exc) for n in getattr(e, "__notes__", ()))
        notes = "".join(f"; {n}" for n in notes)
        raise StoreFault(one_line(fault, stores(), doing) + notes) from None


def later(exc: BaseException, text: str) -> bool:
    """Put `text` (how to go on later) into the one line of a store fault; False when `exc`
    is not one (the caller prints `text` itself)."""
    if fault_of(exc) is None:
        return False
    exc.add_note(text)
    return True


class DropStoreFaults(logging.Filter):
    """A logger filter: records of a store fault are dropped (the command says it once).
    MLflow logs "SQLAlchemy database error" with a traceback at every failed statement; Optuna
    logs "Trial N failed ... because of ..." and then "Trial N failed with value None." for the
    trial a store fault ended (the second record carries no exception: it is known by the
    trial number of the first)."""

    def __init__(self) -> None:
        super().__init__()
        self._trials: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.exc_info and fault_of(record.exc_info[1]) is not None:
            if message.startswith("Trial "):
                self._trials.add(message.split()[1])
            return False
        words = message.split()
        return not (len(words) > 2 and words[0] == "Trial" and words[1] in self._trials
                    and words[2] == "failed")


def drop_store_faults(*loggers: str) -> None:
    """A `DropStoreFaults` on each named logger (once each)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropStoreFaults) for f in logger.filters):
            logger.addFilter(DropStoreFaults())


def quiet_threads() -> None:
    """A thread that dies of a store fault (Optuna's heartbeat thread, a logging thread) prints
    nothing: the command's own thread meets the same store and says it in its one line. Any
    other error in a thread keeps Python's report."""
    import threading

    if getattr(threading.excepthook, "_store_faults", False):
        return
    default = threading.excepthook

    def hook(args) -> None:
        if fault_of(args.exc_value) is None:
            default(args)

    hook._store_faults = True  # type: ignore[attr-defined]
    threading.excepthook = hook
