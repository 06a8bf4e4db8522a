"""Shared fixtures. Helpers append below; keep each fixture small and explain why it exists."""

import os

import numpy as np
import pytest

# MLflow phones home unless told not to; tests must not depend on the network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator per test: tests never share random state."""
    return np.random.default_rng(0)


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """A real MLflow SQLite store in a temp dir (the file:// store is refused by MLflow 3.17)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
