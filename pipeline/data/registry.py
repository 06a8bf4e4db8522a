"""The data set registry: a name in config -> a generator `fn(rng, **params) -> Dataset`."""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from pipeline.data import generators
from pipeline.data.dataset import Dataset, check_int, check_rng


def digits(rng, *, n_samples: int | None = None) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits: X (m, 64) pixel values 0..16, 10 classes.

    n_samples=None keeps all 1797 rows in the file's order (rng is not used); a number draws
    that many rows without replacement with rng, kept in file order.
    """
    from sklearn.datasets import load_digits  # reads a small file shipped inside sklearn

    check_rng(rng)
    bunch = load_digits()
    X, y = bunch.data, bunch.target  # (1797, 64), (1797,)
    if n_samples is not None:
        n = check_int("digits.n_samples", n_samples, 30, X.shape[0])
        rows = np.sort(rng.choice(X.shape[0], size=n, replace=False))
        X, y = X[rows], y[rows]
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return Dataset(X, y, tuple(str(d) for d in range(10)), names, "digits", image_shape=(8, 8))


DATASETS: dict[str, Callable[..., Dataset]] = {
    "rings": generators.rings,
    "noisy_diagonal": generators.noisy_diagonal,
    "circles": generators.circles,
    "moons": generators.moons,
    "flower": generators.flower,
    "spirals": generators.spirals,
    "blobs": generators.blobs,
    "digits": digits,
}


def dataset_params(name: str) -> dict[str, object]:
    """The keyword parameters of data set `name` with their defaults (for docs and config checks)."""
    fn = _lookup(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def make_dataset(name: str, rng: np.random.Generator, **params) -> Dataset:
    """Generate the built-in data set `name` from `rng`; unknown names or parameters raise ValueError."""
    fn = _lookup(name)
    valid = dataset_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"data set '{name}' has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(valid)}"
        )
    return fn(rng, **params)


def _lookup(name: str) -> Callable[..., Dataset]:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
