"""A journal file that can be repaired: checked before Optuna replays it.

Optuna's journal is one JSON record per line, appended under a file lock and fsynced. A write
cut short (full disk, power loss, a process killed inside `write`) leaves an incomplete LAST
line without its newline. Optuna's reader skips such a line, but the next append lands right
after it, gluing the fragment and a new record into one line that no reader can parse: from
then on every command on the study failed with `Expecting ':' delimiter` and no file named.

`check_journal` runs whenever a journal storage is opened (search/storage.py open_storage):

- a torn last line is set aside: the whole journal is first copied to
  `<journal>.torn-<UTC time>`, then the fragment is cut off and one line says what was dropped
  (file, line number, bytes). The study continues. This is done, not merely proposed, because
  the fragment is a record its writer never finished: Optuna's reader skips it, so no trial,
  value or attribute the study ever showed is lost (an edit such as `truncate -s -50` that
  cuts a finished record is the exception: the copy keeps it), and refusing would only make
  the user type the same cut by hand. Nothing is deleted (the copy holds every byte). The
  cut is made under Optuna's own journal lock, so a record another process is still writing
  is never taken for a torn one.
- a write that fails part-way in this process (ENOSPC, EFBIG) is cut back by the writer itself
  (`MendingFileBackend`), so the next append does not glue onto it, and the error names the
  journal.
- a malformed line elsewhere, or a record Optuna does not know (unknown op code, not an
  object), is never dropped: a ValueError names the file and the line (exit 2), because the
  records after it may depend on it and only the user can tell what it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.storages.journal._storage import JournalOperation

_KNOWN_OPS = frozenset(op.value for op in JournalOperation)
# Records that may wait for the next fsync: a trial's intermediate values. Every evaluation
# is reported (as Optuna's pruners expect), and an fsync per report cost 4 ms here, more than
# the evaluation itself. Skipping it is safe: fsync flushes the whole file, so the trial's
# terminal record (COMPLETE/PRUNED, always fsynced) makes every earlier report durable, and
# a crash before it loses at most reports of a trial that is then failed as stale (pruners
# read only COMPLETE trials and the trial's own reports). Other processes read the appended
# bytes from the page cache at once.
_UNSYNCED_OPS = frozenset({JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE.value})


def check_journal(path: str | Path, err=None) -> None:
    """Cut a torn last line (kept in a copy, one line on `err`, default stderr); raise
    ValueError naming the file and the line for any other line Optuna cannot replay."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):  # torn, or a record being appended right now: look again
        lock = JournalFileSymlinkLock(str(path))  # under the lock Optuna's appends hold
        lock.acquire()  # (only here: a read-only journal that is whole opens as before)
        try:
            data = path.read_bytes()
            if not data.endswith(b"\n"):
                data = _set_aside_torn_tail(path, data, err or sys.stderr)
        finally:
            lock.release()
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):  # as Optuna splits
        problem = _problem(line)
        if problem:
            raise ValueError(f"Optuna journal {path}: line {number} {problem}; it is not a "
                             "torn last line, so it is not dropped: restore the journal from "
                             "a copy, or remove or fix that line by hand if you know what it "
                             "held (nothing was run)")


def open_journal(path: str, err=None) -> JournalStorage:
    """`check_journal`, then Optuna's replay; a record Optuna fails on (a field missing or of
    the wrong type) becomes a ValueError naming the file and the line, not a traceback."""
    check_journal(path, err)
    backend = MendingFileBackend(path)
    try:
        return ReportBatchingJournal(backend)
    except (KeyError, TypeError, AttributeError, IndexError, AssertionError, ValueError) as exc:
        raise ValueError(f"Optuna journal {path}: line {backend.line_read} cannot be replayed "
                         f"({type(exc).__name__}: {exc}); it is not dropped: restore the "
                         "journal from a copy, or fix that line by hand (nothing was run)"
                         ) from None


class ReportBatchingJournal(JournalStorage):
    """Optuna's JournalStorage whose `trial.report`s are held in this process and appended
    together with the trial's next other write (a user attribute, a system attribute, its
    final state): ONE locked append instead of one per evaluation.

    Decisions are unchanged: `Trial.should_prune` hands the pruner the trial's own cached
    frozen trial (every value reported so far), and Optuna's pruners read other trials only
    when COMPLETE (median, percentile, Wilcoxon) or through their system attributes
    (successive halving, Hyperband), which are writes and so flush first. `get_trial` of a
    trial with held reports flushes them (Optuna's `tell` reads a PRUNED trial's last value
    so). What changes: another process sees a running trial's reports when it next writes,
    not at each evaluation; a process killed mid-trial loses them with the trial, which is
    then failed as stale either way.
    """

    def __init__(self, backend) -> None:
        self._held: list[dict] = []
        super().__init__(backend)

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        with self._thread_lock:  # the record Optuna writes (optuna 5.1), kept for later
            self._held.append({"op_code": JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                               "worker_id": self._replay_result.worker_id,
                               "trial_id": trial_id, "step": step,
                               "intermediate_value": intermediate_value})

    def _write_log(self, op_code: int, extra_fields: dict) -> None:
        held, self._held = self._held, []
        self._backend.append_logs(held + [{"op_code": op_code,
                                           "worker_id": self._replay_result.worker_id,
                                           **extra_fields}])

    def get_trial(self, trial_id: int):
        with self._thread_lock:
            if any(log["trial_id"] == trial_id for log in self._held):
                held, self._held = self._held, []
                self._backend.append_logs(held)
        return super().get_trial(trial_id)


class MendingFileBackend(JournalFileBackend):
    """Optuna's file backend whose append, when the write fails part-way, truncates the journal
    back to where the append began (under the same lock) and raises an OSError naming the file,
    instead of leaving a torn record for the next append to glue onto."""

    def __init__(self, file_path: str) -> None:
        self._mend_lock = JournalFileSymlinkLock(file_path)
        self.line_read = 0  # the line of the record last handed to Optuna (1-based)
        super().__init__(file_path, lock_obj=self._mend_lock)

    def read_logs(self, log_number_from: int):
        for number, log in enumerate(super().read_logs(log_number_from), start=log_number_from):
            self.line_read = number + 1
            yield log

    def append_logs(self, logs: list[dict]) -> None:
        # As JournalFileBackend.append_logs (optuna 5.0), plus the cut on failure.
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        path = self._file_path
        self._mend_lock.acquire()
        try:
            start = os.path.getsize(path)
            try:
                with open(path, "ab") as f:
                    f.write(text.encode("utf-8"))
                    f.flush()
                    if any(log.get("op_code") not in _UNSYNCED_OPS for log in logs):
                        os.fsync(f.fileno())
            except OSError as exc:
                cut = _cut_back(path, start)
                raise OSError(exc.errno, f"Optuna journal {path}: writing a record failed "
                                         f"({exc.strerror or exc}); {cut}") from None
        finally:
            self._mend_lock.release()


def _cut_back(path: str, size: int) -> str:
    try:
        os.truncate(path, size)
        return "the partial record was cut off, the journal is as before the write"
    except OSError:
        return "the partial record could not be cut off; the next command sets it aside"


def _set_aside_torn_tail(path: Path, data: bytes, err) -> bytes:
    keep = data.rfind(b"\n") + 1  # 0: the only line is torn
    line = data.count(b"\n", 0, keep) + 1
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    copy = path.with_name(f"{path.name}.torn-{stamp}")
    shutil.copy2(path, copy)
    with open(path, "r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    print(f"note: Optuna journal {path}: line {line} was torn (an incomplete record of "
          f"{len(data) - keep} bytes, which Optuna's reader skips) and is cut off; the journal "
          f"as it was is kept in {copy}; the study continues", file=err)
    return data[:keep]


def _problem(line: bytes) -> str | None:
    """Why Optuna could not replay this line, or None."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        glued = line.find(b'{"op_code"', 1)
        if glued > 0 and _problem(line[glued:]) is None:
            return (f"is a torn record ({glued} bytes) with a later record appended to it "
                    "(left by a version that did not repair torn lines); keep the part from "
                    f"byte {glued + 1} of the line")
        return f"is not a JSON record ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    if not isinstance(record, dict) or "op_code" not in record:
        return "is not a journal record (no op_code)"
    op = record["op_code"]
    if type(op) is not int or op not in _KNOWN_OPS:
        return (f"has op_code {op!r}, which Optuna does not know "
                f"(known: {min(_KNOWN_OPS)}-{max(_KNOWN_OPS)})")
    return None
