"""Log the trained network as an MLflow pyfunc model: weights .npz + network.json + served.py.

The model is logged "from code" (`served.py` is copied next to the artifacts), so loading it
unpickles nothing; it needs only numpy, pandas and mlflow at the pinned versions.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

SERVED = Path(__file__).with_name("served.py")


def network_description(prepared, trained) -> dict:
    """Everything but the weights: architecture, standardizer, label mapping, feature names."""
    return {"layer_sizes": list(trained.arch.layer_sizes),
            "hidden_activation": trained.arch.hidden_activation,
            "output": trained.arch.output,
            "feature_names": list(prepared.feature_names),
            "classes": [str(c) for c in prepared.classes],
            "mean": prepared.standardizer.mean.tolist(),
            "std": prepared.standardizer.std.tolist()}


def input_example(prepared, n: int = 5) -> pd.DataFrame:
    """The first raw dev rows: what a caller sends (unstandardized feature columns)."""
    return pd.DataFrame(prepared.raw_dev.X[:n], columns=list(prepared.feature_names))


def log_model(run_id: str, prepared, trained, *, name: str = "model"):
    """Log the pyfunc under `runs:/<run_id>/<name>`; returns MLflow's ModelInfo."""
    from mlflow.models import infer_signature

    example = input_example(prepared)
    labels = pd.Series(np.asarray(prepared.classes, dtype=object)[:len(example)], name="label")
    signature = infer_signature(example, labels, params={"proba": False})
    with tempfile.TemporaryDirectory() as tmp:
        weights, network = Path(tmp) / "weights.npz", Path(tmp) / "network.json"
        np.savez(weights, **{k: np.asarray(v, dtype=np.float64) for k, v in trained.params.items()})
        network.write_text(json.dumps(network_description(prepared, trained), indent=1))
        with _active(run_id):
            return mlflow.pyfunc.log_model(
                name=name, python_model=str(SERVED),
                artifacts={"weights": str(weights), "network": str(network)},
                signature=signature, input_example=example,
                pip_requirements=[f"{p}=={metadata.version(p)}" for p in ("mlflow", "numpy", "pandas")])


@contextmanager
def _active(run_id: str):
    """Fluent logging needs `run_id` to be the active run; resume it when it is not."""
    current = mlflow.active_run()
    if current is not None and current.info.run_id == run_id:
        yield
        return
    status = mlflow.get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id, nested=current is not None):
        yield
    mlflow.MlflowClient().set_terminated(run_id, status)  # resuming must not change its status
