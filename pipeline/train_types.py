"""What `fit` takes and returns: TrainSettings, FitResult, and its input checks (shapes, dtypes,
finiteness only; hyperparameter bounds are validated once, at the config edge). Kept apart
from the loop so `train.py` reads as the loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.nn.network import Architecture, Network


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float = 0.01
    epochs: int = 10_000            # passes over the training split; full batch -> one step each
    batch_size: int | None = None   # None (or >= m) = full batch
    optimizer: str = "gd"           # gd | momentum (beta = beta1) | adam
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    l2: float = 0.0
    l1: float = 0.0                 # with optimizer "gd": proximal step, exact zeros
    keep_prob: float | tuple[float, ...] = 1.0
    eval_every: int = 100           # evaluate + callbacks every k epochs and at the last epoch
    patience: int | None = None     # early stopping on dev, counted in evaluations; None = off
    min_delta: float = 0.0
    monitor: str = "dev_loss"       # dev_loss | dev_error
    dtype: str = "float64"          # float64 | float32

    def optimizer_options(self) -> dict:
        return {"gd": {}, "momentum": {"beta": self.beta1},
                "adam": {"beta1": self.beta1, "beta2": self.beta2,
                         "epsilon": self.epsilon}}[self.optimizer]


@dataclass(frozen=True)
class FitResult:
    network: Network                # best-dev network when early stopping is on, else the last
    history: dict[str, list[float]] # "epoch" plus every metric the callbacks saw
    best_epoch: int                 # the epoch whose network is returned: best dev evaluation
                                    # with early stopping (restored), else the last epoch trained
    stop_reason: str                # "completed" | "early_stopping" | "non_finite"
    stop_message: str
    epochs_run: int

    @property
    def params(self):
        return self.network.params


def _require(ok: bool, key: str, bound: str, value) -> None:
    if not ok:
        raise ValueError(f"{key} must be {bound}, got {value!r}")


def check_labels(y, arch: Architecture, m: int, name: str) -> np.ndarray:
    """y as int64 (m,), with codes in {0, 1} (sigmoid) or 0..n_out-1 (softmax)."""
    y = np.asarray(y)
    _require(y.shape == (m,), f"{name} shape", f"({m},) to match X", y.shape)
    _require(y.dtype == bool or np.issubdtype(y.dtype, np.integer), f"{name} dtype",
             "integer class codes", str(y.dtype))
    k = max(2, arch.layer_sizes[-1])
    if m:
        _require(0 <= y.min() and y.max() < k, f"{name} values", f"in 0..{k - 1}",
                 (int(y.min()), int(y.max())))
    return y.astype(np.int64)


def check_features(X, arch: Architecture, dtype, name: str) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=dtype)
    n0 = arch.layer_sizes[0]
    _require(X.ndim == 2 and X.shape[1] == n0, f"{name} shape", f"(m, {n0})", X.shape)
    _require(X.shape[0] >= 1, f"{name} rows", ">= 1", X.shape[0])
    _require(bool(np.isfinite(X).all()), name, "finite (no nan/inf)", "non-finite values")
    return X
