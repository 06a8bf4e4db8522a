"""Checks before a command creates anything: where the runs and the study go must be usable.

A foreseeable failure (an unknown tracking URI scheme, a tracking server or database that does
not answer, a storage path that cannot be written) is one line and exit 2 here, before a study,
a journal, an experiment or a run exists. Without this, MLflow's HTTP client retried each call
for ~4 minutes (7 retries, backoff factor 2, 120 s timeout) and then printed a traceback, after
the search had already created its study.

`mlflow_defaults()` sets MLflow's knobs for the whole command (only those the user did not
set): bounded HTTP retries, so a server that dies mid-run costs seconds per call, not minutes,
and no artifact progress bars on stderr around the one line a command prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from pipeline import store_urls
from pipeline.redact import redact
from pipeline.store_urls import postgres_driver

# MLflow's knobs; the user's own values win. 2 retries with factor 1 (~1 s + 2 s) and a 10 s
# timeout per request: a dead server fails a call in ~3 s, a hung one in ~30 s.
# The model's input-example check and the study's plot copies download artifacts, each with a
# progress bar: noise on stderr.
MLFLOW_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
PROBE_SECONDS = 5.0
_TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file",
                     "databricks")


def mlflow_defaults() -> None:
    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)


def tracking_uri(cfg) -> str:
    """The URI MLflow will use: tracking.uri, else $MLFLOW_TRACKING_URI, else MLflow's default."""
    return store_urls.tracking_uri(cfg.tracking.uri, store_urls.DEFAULT_TRACKING_URI)


def check(cfg, *, storage: bool = False) -> None:
    """Raise ValueError (one line) when the tracking store, or with `storage` the Optuna
    storage path, cannot be used. Network probes are bounded by PROBE_SECONDS."""
    check_tracking(tracking_uri(cfg))
    if storage and cfg.search.storage:
        check_storage_path(cfg.search.storage)


def check_tracking(uri: str) -> None:
    shown = redact(uri)
    scheme = urlparse(uri).scheme.split("+")[0].lower()
    if "://" in uri and scheme not in _TRACKING_SCHEMES:
        raise ValueError(f"tracking.uri {shown!r} has an unknown scheme {scheme!r}: use "
                         "http(s)://host:port (an mlflow server), sqlite:///path.db or "
                         "postgresql+psycopg2://user@host/db")
    if scheme in ("http", "https"):
        _probe_server(uri, shown)
    elif scheme == "sqlite" and store_urls.sqlite_file(uri) is not None:
        _writable_dir(store_urls.sqlite_file(uri).parent, f"tracking.uri {shown!r}")
    elif scheme in ("postgresql", "mysql", "mssql"):
        _probe_database(uri, shown, "tracking.uri")


def check_storage_path(storage: str) -> None:
    """A journal or SQLite storage must have a writable directory (Optuna would fail later with
    a traceback); an RDB server is probed by open_storage itself (one line already). A value in
    none of the accepted forms is refused here (`store_urls.study_storage`), before anything."""
    parsed = store_urls.study_storage(storage)
    path = (Path(parsed.journal) if parsed.journal is not None
            else store_urls.sqlite_file(parsed.url))
    if path is not None:
        _writable_dir(path.resolve().parent, f"search.storage {redact(storage)!r}")


def _writable_dir(directory: Path, what: str) -> None:
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the directory is created later: its first existing parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: directory {directory} is not writable (nothing was created)")


def _probe_server(uri: str, shown: str) -> None:
    import requests

    try:
        reply = requests.get(uri.rstrip("/") + "/health", timeout=PROBE_SECONDS)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise ValueError(f"tracking server {shown} is unreachable ({reason} within "
                         f"{PROBE_SECONDS:.0f} s); start it (mlflow server --host 127.0.0.1 "
                         "--port PORT) or set tracking.uri; nothing was created") from None
    if reply.status_code >= 400:
        raise ValueError(f"tracking server {shown} answered HTTP {reply.status_code} on /health; "
                         "nothing was created")


def _probe_database(uri: str, shown: str, what: str) -> None:
    import sqlalchemy as sa

    url = postgres_driver(uri)  # SQLAlchemy 2.1 would pick psycopg 3, not installed
    if url != uri and what == "tracking.uri":  # MLflow would import psycopg 3 and fail later
        raise ValueError(f"tracking.uri {shown!r}: write postgresql+psycopg2://... "
                         "(psycopg2 is installed, psycopg 3 is not); nothing was created")
    args = {"connect_timeout": int(PROBE_SECONDS)} if url.startswith("postgresql") else {}
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # driver missing, server down, auth: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{what} {shown}: database unreachable ({redact(first)}); nothing "
                         "was created") from None
