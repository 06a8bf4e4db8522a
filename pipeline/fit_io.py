"""What `fit` takes and returns: TrainSettings (validated on construction), FitResult, and
the input checks (numpy only). Kept apart from the loop so `train.py` reads as the loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.nn.dropout import normalize_keep_prob
from pipeline.nn.model import Architecture, Params
from pipeline.nn.optim import OPTIMIZERS

MONITORS = ("dev_loss", "dev_error")
DTYPES = {"float64": np.float64, "float32": np.float32}


def require(ok: bool, key: str, bound: str, value) -> None:
    if not ok:
        raise ValueError(f"{key} must be {bound}, got {value!r}")


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

    def __post_init__(self):
        f = lambda v: isinstance(v, (int, float)) and math.isfinite(v)  # noqa: E731
        require(f(self.learning_rate) and self.learning_rate > 0, "learning_rate", "> 0",
                 self.learning_rate)
        require(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", ">= 1", self.epochs)
        require(self.batch_size is None or (isinstance(self.batch_size, int)
                                             and self.batch_size >= 1),
                 "batch_size", "None or >= 1", self.batch_size)
        require(self.optimizer in OPTIMIZERS, "optimizer", f"one of {list(OPTIMIZERS)}",
                 self.optimizer)
        for key in ("beta1", "beta2"):
            v = getattr(self, key)
            require(f(v) and 0 <= v < 1, key, "in [0, 1)", v)
        require(f(self.epsilon) and self.epsilon > 0, "epsilon", "> 0", self.epsilon)
        for key in ("l2", "l1", "min_delta"):
            v = getattr(self, key)
            require(f(v) and v >= 0, key, ">= 0", v)
        if not isinstance(self.keep_prob, (int, float)):
            object.__setattr__(self, "keep_prob", tuple(self.keep_prob))
        normalize_keep_prob(self.keep_prob, len(self.keep_prob)
                            if isinstance(self.keep_prob, tuple) else 1)
        require(isinstance(self.eval_every, int) and self.eval_every >= 1, "eval_every", ">= 1",
                 self.eval_every)
        require(self.patience is None or (isinstance(self.patience, int) and self.patience >= 1),
                 "patience", "None or >= 1", self.patience)
        require(self.monitor in MONITORS, "monitor", f"one of {list(MONITORS)}", self.monitor)
        require(self.dtype in DTYPES, "dtype", f"one of {list(DTYPES)}", self.dtype)


@dataclass(frozen=True)
class FitResult:
    params: Params                  # best-dev params when early stopping is on, else the last
    history: dict[str, list[float]] # "epoch" plus every metric the callbacks saw
    best_epoch: int                 # the epoch whose params are returned: best dev evaluation with
                                    # early stopping (restored), else the last epoch trained
    stop_reason: str                # "completed" | "early_stopping" | "non_finite"
    stop_message: str
    epochs_run: int


def check_labels(y, arch: Architecture, m: int, name: str) -> np.ndarray:
    """y as int64 (m,), with codes in {0, 1} (sigmoid) or 0..n_out-1 (softmax)."""
    y = np.asarray(y)
    require(y.shape == (m,), f"{name} shape", f"({m},) to match X", y.shape)
    require(y.dtype == bool or np.issubdtype(y.dtype, np.integer), f"{name} dtype",
             "integer class codes", str(y.dtype))
    k = max(2, arch.layer_sizes[-1])
    if m:
        require(0 <= y.min() and y.max() < k, f"{name} values", f"in 0..{k - 1}",
                 (int(y.min()), int(y.max())))
    return y.astype(np.int64)


def check_features(X, arch: Architecture, dtype, name: str) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=dtype)
    n0 = arch.layer_sizes[0]
    require(X.ndim == 2 and X.shape[1] == n0, f"{name} shape", f"(m, {n0})", X.shape)
    require(X.shape[0] >= 1, f"{name} rows", ">= 1", X.shape[0])
    require(bool(np.isfinite(X).all()), name, "finite (no nan/inf)", "non-finite values")
    return X
