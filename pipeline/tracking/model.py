"""Log the trained `Model` as an MLflow pyfunc: weights.npz + network.json + served.py, with
the code it runs (`pipeline/__init__.py` and `pipeline/nn/`) logged through `code_paths`.

The model is logged "from code" (`served.py` is copied next to the artifacts), so loading it
unpickles nothing; it needs only numpy, pandas and mlflow at the pinned versions, and the
logged `pipeline.nn`. network.json records the digest of that code (checked by served.py before
it imports any of it) and of weights.npz (checked by `Model.load`, with finiteness).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd

from pipeline.nn.model import PACKAGE, SOURCES, source_digest, source_files

SERVED = Path(__file__).with_name("served.py")


def input_example(prepared, n: int = 5) -> pd.DataFrame:
    """The first raw dev rows: what a caller sends (unstandardized feature columns)."""
    return pd.DataFrame(prepared.raw_dev.X[:n], columns=list(prepared.feature_names))


def _stage_code(root: Path) -> Path:
    """A `pipeline` package holding only what the served model imports; returns its dir."""
    dest = root / "pipeline"
    for f in source_files():
        target = dest / f.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
    return dest


def log_model(run_id: str, prepared, trained, *, name: str = "model"):
    """Log the pyfunc under `runs:/<run_id>/<name>`; returns MLflow's ModelInfo."""
    from mlflow.models import infer_signature

    example = input_example(prepared)
    labels = pd.Series(trained.model.labels, name="label")  # the output's type: long or string
    with warnings.catch_warnings():  # "integer columns cannot represent missing values":
        # true, and beside the point for labels the model itself returns (never missing)
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        signature = infer_signature(example, labels, params={"proba": False})
    with tempfile.TemporaryDirectory() as tmp:
        weights, network = Path(tmp) / "weights.npz", Path(tmp) / "network.json"
        code = _stage_code(Path(tmp) / "code")
        # the patterns travel with the digest: served.py checks the logged code before it
        # imports any of it, so it cannot ask pipeline.nn which files count
        trained.model.save(weights, network, code_digest=source_digest(code),
                           code_files=list(SOURCES))
        with _active(run_id):
            return mlflow.pyfunc.log_model(
                name=name, python_model=str(SERVED), code_paths=[str(code)],
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
