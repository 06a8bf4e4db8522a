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
