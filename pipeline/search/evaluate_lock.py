"""One `evaluate` of a study at a time: an exclusive claim held for the whole evaluation.

The once-only rule reads "was this study evaluated?" and later writes "it was". Two processes
that both read before either writes would both unseal the test split (seen: two final-test
runs, two registered versions). Optuna's `set_user_attr` is a plain write, not a
compare-and-set, so the claim is taken outside Optuna, and the "already evaluated?" check is
made only while holding it:

- journal (the default) and SQLite: `fcntl.flock(LOCK_EX | LOCK_NB)` on a lock file next to
  the journal / database (`<file>.<study>.evaluate.lock`, one per study). One machine, as the files are.
- PostgreSQL: `pg_try_advisory_lock(key)` on a dedicated connection, key = 63 bits of
  sha256("nnp-evaluate:<study>"). Works across machines sharing the database.
- any other RDB URL: a lock file under `<workdir>/optuna/` (one machine only; said in the
  refusal text and in docs/search.md).

Both kinds are released by the operating system / the server when the holder dies (kill -9
included), so a crashed evaluate never leaves the study claimed. A busy claim is refused at
once (no waiting): the other evaluate either records the look or leaves no record, and
running evaluate again afterwards gives the right answer either way.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipeline.search.storage import StorageSpec
from pipeline.store_urls import postgres_driver, sqlite_file


class ClaimBusy(ValueError):
    """Another process is evaluating this study right now (a ValueError: one line, exit 2)."""


def lock_key(study: str) -> int:
    """A signed 64-bit advisory-lock key (PostgreSQL's bigint) from the study name."""
    digest = hashlib.sha256(f"nnp-evaluate:{study}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(spec: StorageSpec, study: str, workdir: Path) -> Path | None:
    """The lock file for file-based storages (journal, SQLite, other RDBs); None = PostgreSQL."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    if spec.is_journal:  # one journal file may hold several studies: one lock each
        return Path(f"{spec.path}.{safe}.evaluate.lock")
    if spec.url.startswith("postgresql"):
        return None
    db = sqlite_file(spec.url)
    if db is not None:
        return db.parent / f"{db.name}.{safe}.evaluate.lock"
    return workdir / "optuna" / f"{safe}.evaluate.lock"


@contextmanager
def evaluation_claim(spec: StorageSpec, study: str, workdir: Path = Path(".")) -> Iterator[str]:
    """Hold the study's evaluation claim for the block; yields a label of what is held.
    Raises `ClaimBusy` at once when another process holds it."""
    path = lock_file(spec, study, workdir)
    if path is None:
        with _advisory_lock(spec, study) as label:
            yield label
        return
    with _file_lock(path, study) as label:
        yield label


@contextmanager
def _file_lock(path: Path, study: str) -> Iterator[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClaimBusy(f"study {study!r} is being evaluated by another process right now "
                            f"(lock file {path} is held); wait for it and run evaluate again "
                            "(it then refuses or evaluates, as recorded)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious reader
        yield f"lock file {path}"
    finally:
        os.close(fd)  # closing the descriptor releases the flock (the OS does it on kill -9)


@contextmanager
def _advisory_lock(spec: StorageSpec, study: str) -> Iterator[str]:
    import sqlalchemy as sa  # lazy: only a PostgreSQL study takes this lock

    key = lock_key(study)
    engine = sa.create_engine(postgres_driver(spec.url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got:
                raise ClaimBusy(f"study {study!r} is being evaluated by another process right "
                                f"now (PostgreSQL advisory lock {key} is held); wait for it "
                                "and run evaluate again (it then refuses or evaluates, as "
                                "recorded)")
            try:
                yield f"PostgreSQL advisory lock {key}"
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()  # the session ends: the server drops the lock even if unlock failed
