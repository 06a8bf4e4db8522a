"""The served model, logged as code (MLflow "models from code"): nothing here is pickled and
nothing here computes. The network is `pipeline.nn.Model`, logged with the model through
`code_paths` and imported from there; this file only checks that the code it imported is the
code that was logged (`source_digest`), loads the weights (`np.load(allow_pickle=False)`) and
maps the inputs and outputs:

    predict(df)                          -> the class labels, one per row, with their own type
                                            (ints for integer classes: `Model.labels`)
    predict(df, params={"proba": True})  -> a frame: label + one probability column per class
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd

from pipeline.nn.losses import class_columns, labels_from_probs
from pipeline.nn.model import Model, source_digest


class NumpyNetwork(mlflow.pyfunc.PythonModel):
    """Raw feature columns in, label names (and probabilities) out, through `Model`."""

    # the logged signature enforces the input columns; no type-hint validation on top (MLflow
    # would otherwise warn on every load that predict has no type hints)
    _skip_type_hint_validation = True

    def load_context(self, context):
        with open(context.artifacts["network"], encoding="utf-8") as f:
            meta = json.load(f)
        found, logged = source_digest(), meta.get("code_digest")
        if found != logged:
            raise RuntimeError(
                f"the model's code does not match the code logged with it: pipeline.nn "
                f"digest {found[:16]} != logged {str(logged)[:16]}; load it where its logged "
                f"code_paths come first on sys.path (a fresh process)")
        self.model = Model.load(context.artifacts["weights"], meta)

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
