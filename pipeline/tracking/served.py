"""The served model, logged as code (MLflow "models from code"): nothing here is pickled.

This file is copied into the model directory and run by `mlflow.pyfunc.load_model`; it needs
only numpy, pandas and mlflow (not this package). It reads the weights from `weights.npz`
(loaded with allow_pickle=False) and the architecture, standardization statistics and label
mapping from `network.json`, then predicts on RAW feature columns:

    predict(df)                          -> the class labels (original names), one per row
    predict(df, params={"proba": True})  -> a frame: label + one probability column per class
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd

_HIDDEN = {
    "relu": lambda Z: np.maximum(Z, 0.0),
    "leaky_relu": lambda Z: np.where(Z > 0, Z, 0.01 * Z),
    "tanh": np.tanh,
    "sigmoid": lambda Z: 0.5 * (1.0 + np.tanh(0.5 * Z)),
}


class NumpyNetwork(mlflow.pyfunc.PythonModel):
    """Standardize with the training statistics, forward pass, map codes to label names."""

    # the logged signature enforces the input columns; no type-hint validation on top (MLflow
    # would otherwise warn on every load that predict has no type hints)
    _skip_type_hint_validation = True

    def load_context(self, context):
        with open(context.artifacts["network"], encoding="utf-8") as f:
            self.meta = json.load(f)
        with np.load(context.artifacts["weights"], allow_pickle=False) as npz:
            n_layers = len(self.meta["layer_sizes"]) - 1
            self.W = [npz[f"W{l}"] for l in range(1, n_layers + 1)]   # (n_{l-1}, n_l)
            self.b = [npz[f"b{l}"] for l in range(1, n_layers + 1)]   # (n_l,)
        self.mean = np.asarray(self.meta["mean"], dtype=np.float64)   # (n_features,)
        self.std = np.asarray(self.meta["std"], dtype=np.float64)

    def probabilities(self, X_raw: np.ndarray) -> np.ndarray:
        """(m, k) class probabilities for raw features (m, n_features); k = number of classes."""
        A = (X_raw - self.mean) / self.std
        act = _HIDDEN[self.meta["hidden_activation"]]
        for W, b in zip(self.W[:-1], self.b[:-1]):
            A = act(A @ W + b)
        Z = A @ self.W[-1] + self.b[-1]                               # (m, n_out)
        if Z.shape[1] == 1:  # sigmoid output: P(class 1); stable for any z
            p1 = np.where(Z[:, 0] >= 0, 1.0 / (1.0 + np.exp(-np.abs(Z[:, 0]))),
                          1.0 - 1.0 / (1.0 + np.exp(-np.abs(Z[:, 0]))))
            return np.column_stack([1.0 - p1, p1])
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        missing = [c for c in self.meta["feature_names"] if c not in frame.columns]
        if missing:
            raise ValueError(f"input is missing feature columns {missing}; expected "
                             f"{self.meta['feature_names']}")
        X = frame[self.meta["feature_names"]].to_numpy(dtype=np.float64)  # (m, n_features)
        P = self.probabilities(X)
        classes = np.asarray(self.meta["classes"], dtype=object)
        if self.W[-1].shape[1] == 1:
            codes = (P[:, 1] >= 0.5).astype(np.int64)  # the pipeline's threshold rule
        else:
            codes = P.argmax(axis=1)
        labels = classes[codes]
        if params and params.get("proba"):
            out = pd.DataFrame({"label": labels})
            for j, name in enumerate(self.meta["classes"]):
                out[f"proba_{name}"] = P[:, j]
            return out
        return pd.Series(labels, name="label")


mlflow.models.set_model(NumpyNetwork())
