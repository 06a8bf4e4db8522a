"""Two facts about store URLs that several commands need (stdlib only, below every package):
which MLflow tracking URI applies, and which PostgreSQL driver SQLAlchemy must be told to use.
"""

from __future__ import annotations

import importlib.util
import os

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
