"""Which of some runs a tracking store holds, asked without creating anything in it.

A journal study remembers the MLflow runs of its searches by id; resumed against a store that
lacks them (another `tracking.uri`, or the database deleted and made anew) it trained every
trial and only then failed with "Run with id=... not found" (issue 17, item 9). The search
asks this first (pipeline/search/home_store.py).
"""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.store_urls import tracking_uri
from pipeline.tracking.store import sqlite_path


def resolved_uri(uri: str | None) -> str:
    """The store a command will write to: the one `store_urls.tracking_uri` says applies
    (`uri`, i.e. tracking.uri, else $MLFLOW_TRACKING_URI), else MLflow's own default as
    MLflow spells it (sqlite:///<working directory>/mlflow.db, or ./mlruns if it holds runs)."""
    return tracking_uri(uri) or mlflow.get_tracking_uri()


def first_present(uri: str, run_ids: list[str]) -> str | None:
    """The first of `run_ids` that `uri` holds (a deleted run counts: its data is there), or
    None. A local SQLite file that does not exist holds none and is not created."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        return None
    client = MlflowClient(uri)
    for run_id in run_ids:
        try:
            client.get_run(run_id)
            return run_id
        except Exception as exc:  # RESOURCE_DOES_NOT_EXIST; a store that fails is raised
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
    return None
