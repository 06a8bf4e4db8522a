"""Where a study lives: a crash-safe journal file by default, any Optuna storage URL otherwise.

Journal storage (`optuna/<study>.journal` in the working directory) is Optuna's documented
choice for several local processes on one study: appends under a file lock, nothing lost when a
worker dies. It has no heartbeat, so a trial whose worker was killed stays RUNNING until the
next search or worker fails it by its owner (pipeline/search/recovery.py). RDB URLs
(sqlite://, postgresql://, mysql://) get a heartbeat instead, and Optuna fails a trial whose
worker stopped beating for `grace_period` seconds, wherever that worker ran. Both hold a
trial's reports and write them together (journal.py, rdb_reports.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from pipeline.redact import redact
from pipeline.search.journal import open_journal
from pipeline.races import retry_lost_race  # noqa: F401 (also S.retry_lost_race)
from pipeline.store_urls import postgres_driver, study_storage


@dataclass(frozen=True)
class StorageSpec:
    """A picklable description of the storage (workers rebuild the storage from it)."""

    url: str | None  # None = journal file at `path`
    path: str | None
    heartbeat_interval: int = 60
    grace_period: int = 120

    @property
    def label(self) -> str:
        """What the console, tags and params show: the URL with its password masked."""
        return redact(self.url) if self.url else f"journal:{self.path}"

    @property
    def is_journal(self) -> bool:
        return self.url is None


def resolve(storage: str | None, study: str, workdir: Path, *, heartbeat_interval: int = 60,
            grace_period: int = 120) -> StorageSpec:
    """`None` -> `<workdir>/optuna/<study>.journal`; a `.journal`/`.log` path -> that journal file;
    an RDB URL -> itself. Anything else is refused with the accepted forms (`study_storage`)."""
    kw = dict(heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    if storage is None:
        return StorageSpec(None, str((workdir / "optuna" / f"{study}.journal").resolve()), **kw)
    parsed = study_storage(storage)
    if parsed.journal is not None:
        return StorageSpec(None, str(Path(parsed.journal).resolve()), **kw)
    return StorageSpec(parsed.url, None, **kw)


_SCHEMA_RACE = ("IntegrityError", "ProgrammingError")  # SQLAlchemy's, by name: no import


def open_storage(spec: StorageSpec) -> optuna.storages.BaseStorage:
    if spec.is_journal:
        Path(spec.path).parent.mkdir(parents=True, exist_ok=True)
        return open_journal(spec.path)  # a torn last line cut (copy kept); other damage: 1 line
    kwargs = {}
    if spec.url.startswith("sqlite:"):
        # Several workers on one SQLite file wait for the lock instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}

    def make() -> optuna.storages.RDBStorage:
        # Reports written in batches; imported here: it loads SQLAlchemy, which a journal
        # search never needs (Optuna's own RDB module imports it lazily).
        from pipeline.search.rdb_reports import ReportBatchingRDBStorage

        with warnings.catch_warnings():  # heartbeat is "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return ReportBatchingRDBStorage(postgres_driver(spec.url),
                                            heartbeat_interval=spec.heartbeat_interval,
                                            grace_period=spec.grace_period, **kwargs)

    try:
        # Processes creating the schema of a fresh database at once: the loser of the CREATE
        # TABLE race finds the tables made by the winner when it tries again.
        return retry_lost_race(make, lambda exc: type(exc).__name__ in _SCHEMA_RACE, pause=1.0)
    except Exception as exc:  # driver missing, server down, bad URL: one line, exit 2
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"search.storage {redact(spec.url)!r} cannot be opened: "
                         f"{first}") from None


