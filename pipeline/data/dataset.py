"""The `Dataset` value and the small validators every data stage shares.

Validators raise `ValueError` with one line that names the key, the bound and the value
(`rings.n_samples must be an integer >= 4, got 2`), so the command line can print it as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features, integer label codes and the names that give them meaning.

    X: (m, n_features) float64; y: (m,) int64 codes 0..k-1; classes[k] names code k.
    image_shape is (height, width) when each row is a flattened image (digits: (8, 8)).
    bayes_error: the Bayes error of the distribution the labels were drawn from, when the
    generator knows it exactly (it flipped labels on purpose: noisy_diagonal); None when it
    does not (overlapping Gaussian noise: spirals, moons, ...; a user's table). The
    bias/variance diagnosis uses it as the floor of the training error (`diagnosis.bayes_error:
    auto`).
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    name: str
    image_shape: tuple[int, int] | None = None
    bayes_error: float | None = None

    def __post_init__(self) -> None:
        # Own copies: making them read-only below must not freeze the caller's arrays.
        X = np.array(self.X, dtype=np.float64, order="C", copy=True)
        y = np.array(self.y, dtype=np.int64, copy=True)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(f"data set '{self.name}': X must be (m, n) and y (m,), got {X.shape} and {y.shape}")
        if len(self.feature_names) != X.shape[1]:
            raise ValueError(
                f"data set '{self.name}': {len(self.feature_names)} feature names for {X.shape[1]} features"
            )
        if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
            raise ValueError(f"data set '{self.name}': label codes must be in [0, {len(self.classes)}), "
                             f"got {y.min()}..{y.max()}")
        # Read-only arrays: a stage that wants different data must make new arrays, so a
        # digest taken once stays true for the object it was taken from.
        X.flags.writeable = False
        y.flags.writeable = False
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "feature_names", tuple(str(f) for f in self.feature_names))

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n_samples={self.n_samples}, n_features={self.n_features}, "
                f"classes={self.classes!r})")


def check_int(key: str, value, lo: int, hi: int | None = None) -> int:
    """`value` as an int in [lo, hi]; bools and floats are refused (2.5 samples is a typo)."""
    bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{key} must be an integer {bound}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{key} must be an integer {bound}, got {value}")
    return int(value)


def check_float(key: str, value, lo: float, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """`value` as a finite float within the bounds; open ends are written `(` and `)`."""
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    bound = f"in {left}{lo}, {hi}{right}" if hi is not None else f"{'>' if lo_open else '>='} {lo}"
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{key} must be a number {bound}, got {value!r}")
    v = float(value)
    too_low = v <= lo if lo_open else v < lo
    too_high = hi is not None and (v >= hi if hi_open else v > hi)
    if too_low or too_high:
        raise ValueError(f"{key} must be {bound}, got {value}")
    return v


def check_choice(key: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{key} must be one of {list(choices)}, got {value!r}")
    return value


def check_rng(rng) -> np.random.Generator:
    # A RandomState or an int seed would silently open a second source of randomness.
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng
