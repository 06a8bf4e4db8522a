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


@pytest.fixture
def search_cfg(tmp_path):
    """A factory of tiny search configs (200 points, 60 epochs: a trial takes ~0.1 s) whose
    studies live in tmp_path; `space` writes a search-space YAML there and returns its path."""
    from pathlib import Path

    from pipeline.config import load_config

    conf = Path(__file__).resolve().parents[1] / "conf"

    def make(*overrides: str, space: str | None = None):
        base = ["data.params={n_samples: 200}", "training.epochs=60", "training.eval_every=5",
                "training.patience=4", f"search.storage={tmp_path / 'study.journal'}",
                "search.study=tiny", "tracking.uri=sqlite:///" + str(tmp_path / "mlflow.db")]
        if space is not None:
            path = tmp_path / f"space{abs(hash(space))}.yaml"
            path.write_text(space)
            base.append(f"search.space={path}")
        return load_config([*base, *overrides], conf_dir=conf)

    return make
