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
    study lives in a journal file in tmp_path. `space=` writes a search-space YAML there;
    `search_cfg.args(...)` gives the same settings as key=value strings for the CLI. MLflow
    goes wherever $MLFLOW_TRACKING_URI points (use the tracking_uri fixture)."""
    from pathlib import Path

    from pipeline.config import load_config

    conf = Path(__file__).resolve().parents[1] / "conf"

    def args(*overrides: str, space: str | None = None) -> list[str]:
        base = ["data.params={n_samples: 200}", "training.epochs=60", "training.eval_every=5",
                "training.patience=4", f"search.storage={tmp_path / 'study.journal'}",
                "search.study=tiny"]
        if space is not None:
            path = tmp_path / f"space{abs(hash(space))}.yaml"
            path.write_text(space)
            base.append(f"search.space={path}")
        return [*base, *overrides]

    def make(*overrides: str, space: str | None = None):
        return load_config(args(*overrides, space=space), conf_dir=conf)

    make.args = args
    return make
