"""The served model, logged as code (MLflow "models from code"): nothing here is pickled and
nothing here computes. The network is `pipeline.nn.Model`, logged with the model through
`code_paths` and imported from there; this file checks that code, loads the weights
(`np.load(allow_pickle=False)`) and maps the inputs and outputs:

    predict(df)                          -> the class labels, one per row, with their own type
                                            (ints for integer classes: `Model.labels`)
    predict(df, params={"proba": True})  -> a frame: label + one probability column per class

Integrity, in the order a load meets it (MLflow runs this file first: its loader only puts the
model's `code/` directory at the front of sys.path, it imports nothing from it):
1. before any `pipeline` module is imported, `code/` may hold only the logged files (a file
   added there would shadow a module imported later), and the sha256 of the code that `import
   pipeline` would run (`__init__.py` and `nn/*.py`, found without importing them) is compared
   with `code_digest` in network.json: an edited file is refused before it runs;
2. `Model.load` compares the sha256 of weights.npz with `weights_digest` and refuses
   non-finite weights.
What this does not cover: the digests live beside the files they check (they catch an edit or
a corruption, not someone who rewrites network.json too), and Python may run a cached
`__pycache__/*.pyc` of a checked source (it is rebuilt when the source changes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import mlflow


def _logged_code_check(here: Path) -> None:
    """Step 1 above. `here` is the directory this file was loaded from: a logged model holds
    MLmodel there; at logging time (this file in the source tree) there is none to check."""
    if not (here / "MLmodel").is_file():
        return
    flavor = mlflow.models.Model.load(str(here)).flavors["python_function"]
    network, code = here / flavor["artifacts"]["network"]["path"], here / flavor["code"]
    meta = json.loads(network.read_text(encoding="utf-8"))
    # MLflow puts code/ first on sys.path: a file added there (code/json.py) would shadow a
    # module imported later, so code/ may hold only the logged files (and Python's caches)
    logged_files = {f for pattern in meta["code_files"] for f in (code / "pipeline").glob(pattern)}
    added = sorted(str(f.relative_to(code)) for f in code.rglob("*") if f.is_file()
                   and f not in logged_files and "__pycache__" not in f.parts)
    if added:
        raise RuntimeError(f"the model's code directory {code} holds files that were not "
                           f"logged with it: {', '.join(added)}; nothing of it was imported")
    root = Path(importlib.util.find_spec("pipeline").origin).parent  # found, not executed
    # the same (relative path, bytes) digest as pipeline.nn.model.source_digest, written out
    # here because that module is the code being checked
    h = hashlib.sha256()
    for f in sorted({f for pattern in meta["code_files"] for f in root.glob(pattern)}):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    found, logged = h.hexdigest(), meta.get("code_digest")
    if found != logged:
        why = ("its files were changed after logging; nothing of them was imported"
               if root == (code / "pipeline").resolve() else
               "this process imports pipeline from there, not from the model: load it in a "
               "fresh process, where the model's code comes first on sys.path")
        raise RuntimeError(f"the model's code does not match the code logged with it: {root} "
                           f"digest {found[:16]} != logged {str(logged)[:16]} in {network}; "
                           f"{why}")


_logged_code_check(Path(__file__).resolve().parent)

import numpy as np  # noqa: E402 - after the check: nothing below runs before it
import pandas as pd  # noqa: E402

from pipeline.nn.losses import class_columns, labels_from_probs  # noqa: E402
from pipeline.nn.model import Model  # noqa: E402


class NumpyNetwork(mlflow.pyfunc.PythonModel):
    """Raw feature columns in, label names (and probabilities) out, through `Model`."""

    # the logged signature enforces the input columns; no type-hint validation on top (MLflow
    # would otherwise warn on every load that predict has no type hints)
    _skip_type_hint_validation = True

    def load_context(self, context):
        with open(context.artifacts["network"], encoding="utf-8") as f:
            meta = json.load(f)
        self.model = Model.load(Path(context.artifacts["weights"]), meta)

    def predict(self, context, model_input, params=None):
        model = self.model
        frame = pd.DataFrame(model_input)
        missing = [c for c in model.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(f"input is missing feature columns {missing}; expected "
                             f"{list(model.feature_names)}")
        X = frame[list(model.feature_names)].to_numpy(dtype=np.float64)  # (m, n_features)
        P = model.predict_proba(X)                                        # (m, n_out)
        labels = model.labels[labels_from_probs(P)]                      # ints stay ints
        if params and params.get("proba"):
            out = pd.DataFrame({"label": labels})
            columns = class_columns(P)                                    # (m, len(classes))
            for j, name in enumerate(model.classes):
                out[f"proba_{name}"] = columns[:, j]
            return out
        return pd.Series(labels, name="label")


mlflow.models.set_model(NumpyNetwork())
