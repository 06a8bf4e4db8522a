"""Standardization with statistics fitted on the training split only.

The fitted `Standardizer` is applied to train (augmented), dev, test and to anything the
served model predicts on. The model carries its mean and std itself (`nn.Model`, saved in
its description JSON), so nothing serializes a Standardizer.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


@dataclass(frozen=True, eq=False)
class Standardizer:
    """x -> (x - mean) / std per feature. mean, std: (n_features,) float64, read-only.

    A feature that is constant on the training split gets std 1, so it maps to 0 there and
    to its plain offset elsewhere, instead of dividing by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float64)
        std = np.array(self.std, dtype=np.float64)
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ValueError(f"standardizer mean and std must be (n_features,) of equal length, "
                             f"got {mean.shape} and {std.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError("standardizer mean must be finite and std finite and > 0")
        mean.flags.writeable = False
        std.flags.writeable = False
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def identity(cls, n_features: int) -> "Standardizer":
        """x -> x: what `data.standardize: false` travels with, so serving stays one path."""
        return cls(np.zeros(n_features), np.ones(n_features))

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(m, n_features) -> new (m, n_features) float64 array; X is not modified."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"standardizer was fitted on {self.n_features} features, got X of shape {X.shape}")
        return (X - self.mean) / self.std  # (m, n)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Back to raw units: a user's way to plot standardized points (augmented copies, a
        boundary) in the data's own coordinates, as notebooks/08-augmentation.ipynb does."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.n_features:
            raise ValueError(f"standardizer was fitted on {self.n_features} features, got shape {Z.shape}")
        return Z * self.std + self.mean  # (m, n)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Standardizer) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.std, other.std))

    __hash__ = None  # equal by value, mutable-looking contents: not a dict key


def fit_standardizer(X_train: np.ndarray) -> Standardizer:
    """Per-feature mean and population std of the training features X_train (m, n)."""
    X = np.asarray(X_train, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"fit_standardizer needs X_train of shape (m >= 1, n_features), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("fit_standardizer: X_train has NaN or infinite values")
    mean = X.mean(axis=0)  # (n,)
    std = X.std(axis=0)  # (n,)
    # Exact constancy (max == min), not std < eps: a rounding residue like 1e-17 must not
    # become a divisor, while a genuinely tiny but varying feature keeps its own scale.
    constant = np.ptp(X, axis=0) == 0
    std = np.where(constant, 1.0, std)
    return Standardizer(mean, std)
