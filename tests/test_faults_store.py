"""Stores that fail under a running search, and a study resumed against the wrong store, with
real `python -m pipeline search` processes on real stores (issue 17, items 9 and 10).

A store fault mid-search (the MLflow SQLite file made immutable or deleted, the Optuna storage
made immutable, a full disk under the tracking store or under the journal) ends the search in
one line naming the store: no traceback, exit 2, and afterwards nothing RUNNING and the study
resumable. Before: 1,100-1,900 lines and ~40 tracebacks (tracking store), 50-150 lines with
2-4 tracebacks ending in "AssertionError: Should not reach." (study storage).
"""

import errno
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

CONF = Path(__file__).resolve().parents[1] / "conf"
# tiny trials, many of them: the fault comes after the first one, long before the last
TINY = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=60",
        "training.eval_every=5", "training.patience=4", "search.trial_figures=none",
        "search.study=tiny"]


def _env() -> dict:
    path = os.pathsep.join(filter(None, [str(CONF.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
                "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    return env


def _search_args(db: Path, storage: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "search", *TINY, f"search.storage={storage}",
            f"tracking.uri=sqlite:///{db}", *extra, "--quiet", "--conf-dir", str(CONF)]


def _search(cwd: Path, db: Path, storage: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_search_args(db, storage, *extra), cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


def _finished_trials(db: Path) -> int:
    """Child runs FINISHED so far, read without writing (the search holds the store)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute(
                "SELECT count(*) FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid WHERE "
                "tags.key = 'stage' AND tags.value = 'search_trial' AND "
                "runs.status = 'FINISHED'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0


def _faulted_search(cwd: Path, db: Path, storage: str, fault, *extra: str
                    ) -> subprocess.CompletedProcess:
    """A search of 50 trials; `fault()` once its first trial is FINISHED; its outcome."""
    proc = subprocess.Popen(_search_args(db, storage, "search.n_trials=50", *extra), cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    while _finished_trials(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert proc.poll() is None, f"the search ended before the fault: {proc.stderr.read()}"
    fault()
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _assert_one_line(done: subprocess.CompletedProcess, expected_start: str) -> None:
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(expected_start), lines
    assert "to finish this call's trials later: search study=tiny target_trials=" in lines[0]


def _running(db: Path) -> list[str]:
    client = MlflowClient(f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return [r.data.tags.get("stage", "?") for r in client.search_runs(ids, max_results=1000)
            if r.info.status == "RUNNING"]


def _chattr(flag: str, *paths: Path) -> None:
    done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr {flag} is not permitted here ({done.stderr.strip()}): the test "
                    "makes a store immutable, which needs root on a filesystem with attributes")


@pytest.fixture
def disk_path(tmp_path):
    """A temporary directory on a disk filesystem: tests/conftest.py puts tmp_path in /dev/shm,
    where `chattr +i` succeeds and SQLite still writes (no fault, exit 0). Removed after."""
    import shutil
    import tempfile

    base = "/var/tmp" if os.path.isdir("/var/tmp") and os.access("/var/tmp", os.W_OK) else None
    where = Path(tempfile.mkdtemp(prefix="nn-pipeline-immutable-", dir=base)) if base else tmp_path
    yield where
    if where != tmp_path:
        subprocess.run(["chattr", "-R", "-i", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.slow
def test_an_immutable_tracking_store_mid_search_is_one_line_naming_it(disk_path):
    tmp_path = disk_path
    """Two workers: the spawned one and Optuna's trial lines stay silent too."""
    db = tmp_path / "mlflow.db"
    try:
        done = _faulted_search(tmp_path, db, str(tmp_path / "study.journal"),
                               lambda: _chattr("+i", db), "search.workers=2")
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True)
    _assert_one_line(done, f"error: MLflow tracking store sqlite:///{db} failed during the "
                           "search: disk I/O error (sqlite3.OperationalError)")


@pytest.mark.slow
def test_a_tracking_store_deleted_mid_search_is_one_line_naming_it(tmp_path):
    db = tmp_path / "mlflow.db"
    done = _faulted_search(tmp_path, db, str(tmp_path / "study.journal"), db.unlink)
    _assert_one_line(done, f"error: MLflow tracking store sqlite:///{db} failed during the "
                           "search: attempt to write a readonly database")


@pytest.mark.slow
def test_an_immutable_study_storage_is_one_line_and_no_run_is_left_running(disk_path):
    tmp_path = disk_path
    """The tracking store still works: every run the search opened is ended there."""
    db, study_db = tmp_path / "mlflow.db", tmp_path / "optuna.db"
    try:
        done = _faulted_search(tmp_path, db, f"sqlite:///{study_db}",
                               lambda: _chattr("+i", study_db))
    finally:
        subprocess.run(["chattr", "-i", str(study_db)], capture_output=True)
    _assert_one_line(done, f"error: Optuna storage sqlite:///{study_db} failed during the "
                           "search: ")
    assert _running(db) == []


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """A 2 MB tmpfs (we are root in CI): a disk a search fills for real."""
    where = tmp_path_factory.mktemp("small-disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()}): the "
                    "full-disk tests need root")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path):
    """`fill()` writes a file until the disk is full; the file is `fill.path`."""
    path = disk / "filler"

    def fill() -> None:
        # unbuffered: a buffered file's close() flushes its leftover bytes again and raises
        # ENOSPC a second time, outside the except (CI failed that way at stop 23)
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    fill.path = path
    return fill


@pytest.mark.slow
def test_a_full_disk_under_the_tracking_store_is_one_line_then_resumable(small_disk, tmp_path):
    disk = small_disk / "tracking"
    disk.mkdir()
    db, fill = disk / "mlflow.db", _fill(small_disk)
    try:
        done = _faulted_search(tmp_path, db, str(tmp_path / "study.journal"), fill)
    finally:
        fill.path.unlink(missing_ok=True)  # space freed: the store can be written again
    _assert_one_line(done, f"error: MLflow tracking store sqlite:///{db} failed during the "
                           "search: database or disk is full (sqlite3.OperationalError); "
                           "free space on its disk")
    resumed = _search(tmp_path, db, str(tmp_path / "study.journal"), "search.n_trials=1")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 trial finished in this run" in resumed.stdout
    assert _running(db) == []


@pytest.mark.slow
def test_a_full_disk_under_the_journal_is_one_line_and_no_run_is_left_running(small_disk,
                                                                             tmp_path):
    disk = small_disk / "journal"
    disk.mkdir()
    db, journal, fill = tmp_path / "mlflow.db", disk / "study.journal", _fill(small_disk)
    try:
        done = _faulted_search(tmp_path, db, str(journal), fill)
        _assert_one_line(done, f"error: Optuna storage journal:{journal} failed during the "
                               f"search: Optuna journal {journal}: writing a record failed "
                               "(No space left on device)")
        assert _running(db) == []  # the tracking store still works: the trial's run ended
    finally:
        fill.path.unlink(missing_ok=True)
    resumed = _search(tmp_path, db, str(journal), "search.n_trials=1")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 trial finished in this run" in resumed.stdout
    assert _running(db) == []


# --- item 9: a journal study resumed against a store that lacks its runs ---------------------

@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> Path:
    """A 1-trial journal study whose runs are in `a.db`."""
    work = tmp_path_factory.mktemp("tracked")
    done = _search(work, work / "a.db", str(work / "study.journal"), "search.n_trials=1")
    assert done.returncode == 0, done.stderr
    return work


def _refusal(db: Path, journal: Path) -> str:
    return (f"error: search.study 'tiny' (journal:{journal}) was tracked in another MLflow "
            f"store: sqlite:///{db} holds none of its 1 parent run(s) (last ")


@pytest.mark.slow
def test_a_study_resumed_against_another_store_is_refused_before_anything(tracked):
    journal, other = tracked / "study.journal", tracked / "b.db"
    before = journal.read_bytes()
    done = _search(tracked, other, str(journal), "search.n_trials=1")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(_refusal(other, journal)), line
    assert "set tracking.uri (or MLFLOW_TRACKING_URI) to the store the study used" in line
    assert not other.exists()            # nothing created in the other store
    assert journal.read_bytes() == before  # the study unchanged: no trial ran


@pytest.mark.slow
def test_a_study_whose_tracking_database_was_deleted_is_refused(tracked, tmp_path):
    journal, db = tracked / "study.journal", tmp_path / "a.db"
    before = journal.read_bytes()
    done = _search(tracked, db, str(journal), "search.n_trials=1")  # a.db "deleted": not here
    assert done.returncode == 2
    assert done.stderr.startswith(_refusal(db, journal)), done.stderr
    assert not db.exists() and journal.read_bytes() == before


# --- the rule itself, on real errors (fast) ------------------------------------------------

def _readonly_write_error(tmp_path) -> sqlite3.OperationalError:
    """What SQLite really raises writing a database opened read-only."""
    sqlite3.connect(tmp_path / "s.db").close()
    con = sqlite3.connect(f"file:{tmp_path / 's.db'}?mode=ro", uri=True)
    try:
        con.execute("CREATE TABLE t (x)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        con.close()
    raise AssertionError("a read-only database took a write")


def test_a_database_error_anywhere_in_the_chain_is_a_fault_with_its_own_words(tmp_path):
    from pipeline.store_fault import fault_of

    root = _readonly_write_error(tmp_path)
    try:
        try:
            raise RuntimeError("(raised as a result of Query-invoked autoflush ...)") from root
        except RuntimeError:
            raise AssertionError("Should not reach.")  # as Optuna's tell, during the handling
    except AssertionError as exc:
        fault = fault_of(exc)
    assert fault.reason == "attempt to write a readonly database (sqlite3.OperationalError)"
    assert fault.store == ""  # raised by no store's code: the line names every store


def test_a_full_disk_is_a_fault_a_missing_file_or_a_bug_is_not():
    from pipeline.store_fault import fault_of

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert fault_of(full).reason == os.strerror(errno.ENOSPC)
    assert fault_of(FileNotFoundError(errno.ENOENT, "No such file", "x.csv")) is None
    assert fault_of(ValueError("training.epochs must be >= 1, got 0")) is None
    assert fault_of(KeyboardInterrupt()) is None


def test_the_line_names_the_failing_store_masked_with_a_hint_for_a_full_disk():
    from pipeline.store_fault import Fault, one_line

    stores = {"tracking": "postgresql://u:S3cret@h/db", "storage": "journal:/x/s.journal"}
    line = one_line(Fault("tracking", "could not extend file: No space left on device"),
                    stores, "during the search")
    assert line == ("MLflow tracking store postgresql://u:***@h/db failed during the search: "
                    "could not extend file: No space left on device; free space on its disk")
    unknown = one_line(Fault("", "disk I/O error"), stores, "during the search")
    assert unknown.startswith("MLflow tracking store postgresql://u:***@h/db or Optuna "
                              "storage journal:/x/s.journal failed")


def test_trial_lines_of_a_store_fault_are_dropped_other_lines_kept(tmp_path):
    import logging

    from pipeline.store_fault import drop_store_faults

    logger = logging.getLogger("test_faults_store.optimize")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    logger.propagate = False
    drop_store_faults(logger.name)
    fault = _readonly_write_error(tmp_path)
    logger.warning("Trial 3 failed with parameters: {} because of ...", exc_info=(
        type(fault), fault, fault.__traceback__))
    logger.warning("Trial 3 failed with value None.")
    bug = ZeroDivisionError("division by zero")
    logger.warning("Trial 4 failed with parameters: {} because of ...", exc_info=(
        type(bug), bug, None))
    logger.warning("Trial 4 failed with value None.")
    assert seen == ["Trial 4 failed with parameters: {} because of ...",
                    "Trial 4 failed with value None."]


_THREADS = """
import errno, threading
from pipeline.store_fault import quiet_threads
quiet_threads()
def die(exc):
    def run():
        raise exc
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
die(OSError(errno.ENOSPC, "No space left on device"))
print("after the fault")
die(ZeroDivisionError("a bug"))
"""


def test_a_thread_dying_of_a_store_fault_is_silent_other_errors_are_reported():
    """In a process of its own: pytest replaces threading.excepthook during a test."""
    done = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert done.stdout == "after the fault\n"
    assert "OSError" not in done.stderr and "No space" not in done.stderr
    assert done.stderr.count("Traceback") == 1
    assert done.stderr.rstrip().endswith("ZeroDivisionError: a bug")
