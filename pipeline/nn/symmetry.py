"""Has the network broken symmetry? Hidden units with identical incoming weights and bias
compute the same function, receive the same gradient and stay identical forever: a layer
of k such units is worth one. Zero (or any constant) initialization starts there."""

from __future__ import annotations

import numpy as np


def distinct_units(params, n_hidden: int) -> tuple[int, ...]:
    """Distinct hidden units per hidden layer: columns of [W_l; b_l] (n_{l-1} + 1, n_l) that
    differ. Exact comparison: symmetry is broken by any difference, not by a large one."""
    counts = []
    for l in range(1, n_hidden + 1):
        Wb = np.vstack([params[f"W{l}"], np.reshape(params[f"b{l}"], (1, -1))])  # (n_{l-1}+1, n_l)
        counts.append(int(np.unique(Wb.T, axis=0).shape[0]))
    return tuple(counts)


def never_broke_symmetry(params, n_hidden: int) -> bool:
    """True when every hidden layer still has all its units identical (one distinct unit)."""
    return n_hidden > 0 and all(c == 1 for c in distinct_units(params, n_hidden))


def symmetric_units(params, n_hidden: int | None = None) -> float:
    """Share of hidden units (over all hidden layers) that have an identical twin in their
    layer, by the same exact comparison as `distinct_units`: 1.0 when no layer ever broke
    symmetry (zero init, whatever the training did), 0.0 for any random initialization.
    The lessons report it as a number where `never_broke_symmetry` is a yes/no."""
    if n_hidden is None:
        n_hidden = sum(1 for k in params if k.startswith("W")) - 1
    twins = total = 0
    for l in range(1, n_hidden + 1):
        Wb = np.vstack([params[f"W{l}"], np.reshape(params[f"b{l}"], (1, -1))])  # (n_{l-1}+1, n_l)
        _, counts = np.unique(Wb.T, axis=0, return_counts=True)
        twins += int(counts[counts > 1].sum())
        total += Wb.shape[1]
    return twins / total if total else 0.0
