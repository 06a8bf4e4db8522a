"""Facts about store URLs that several commands need (stdlib only, below every package):
which MLflow tracking URI applies, which PostgreSQL driver SQLAlchemy must be told to use, the
accepted `search.storage` forms, and the file of a SQLite URL.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.redact import redact

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default (since 3.7), in the cwd


def tracking_uri(chosen: str | None = None, fallback: str | None = None) -> str | None:
    """The tracking URI that applies: the one `chosen` (tracking.uri, a command's argument),
    else $MLFLOW_TRACKING_URI, else `fallback` (None: MLflow's own default then applies)."""
    return chosen or os.environ.get("MLFLOW_TRACKING_URI") or fallback


def postgres_driver(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare `postgresql://` to the psycopg 3 driver, while our `postgres`
    extra installs psycopg2-binary: name the driver that is actually installed."""
    if not url.startswith("postgresql://"):
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


# The schemes Optuna's RDBStorage (SQLAlchemy) is given; anything else is refused up front.
RDB_SCHEMES = ("sqlite:", "postgresql", "mysql", "oracle", "mssql")


@dataclass(frozen=True)
class StudyStorage:
    """A `search.storage` value in one of its accepted forms: a journal file (`journal` the path
    as written, relative to the working directory) or an Optuna RDB URL (`url`)."""

    journal: str | None
    url: str | None


def study_storage(storage: str) -> StudyStorage:
    """Parse a set `search.storage` (null is the default journal, the caller's to place): a path
    ending in .journal or .log, optionally prefixed `journal:` or `journal://`, is a journal
    file; an RDB URL (RDB_SCHEMES) is itself. Anything else is a one-line ValueError naming the
    accepted forms."""
    path = storage
    if path.startswith("journal:"):
        path = path.removeprefix("journal:").removeprefix("//")
    if path.endswith((".journal", ".log")) and "://" not in path:
        return StudyStorage(journal=path, url=None)
    if storage.startswith(RDB_SCHEMES):
        return StudyStorage(journal=None, url=storage)
    raise ValueError("search.storage must be null (journal file optuna/<study>.journal), a path "
                     "ending in .journal, or an Optuna storage URL (sqlite:///x.db, "
                     f"postgresql://user@host/db), got {redact(storage)!r}")


def sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///<path>[?options]` URL; None for an in-memory database
    or any other URL."""
    if not url.startswith("sqlite:///") or url.split("?")[0] == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///").split("?")[0])
