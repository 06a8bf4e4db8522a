"""Has a network broken symmetry? Hidden units that are exact copies of one another (numpy only).

Two hidden units of one layer compute the same function, and receive the same gradient, when
their incoming weights, their bias and their outgoing weights are equal. Gradient descent keeps
such copies identical forever: with zero initialization every unit of a layer is a copy, and a
layer of n copies is worth one unit. This is what "zeros never breaks symmetry" means, measured.
"""

from __future__ import annotations

import numpy as np


def symmetric_units(params, *, tol: float = 1e-10) -> float:
    """Share of hidden units (over all hidden layers) identical to another unit of their layer.

    params: {"W1": (n0, n1), "b1": (n1,), ..., "WL": (n_{L-1}, n_L), "bL": (n_L,)}.
    Unit j of hidden layer l is described by W_l[:, j], b_l[j] and W_{l+1}[j, :]; two units
    are identical when these differ by at most `tol` (absolute). 1.0 for a zero-initialized
    network whatever it was trained for; ~0.0 for any random initialization.
    """
    n_layers = sum(1 for k in params if k.startswith("W"))
    copies = total = 0
    for l in range(1, n_layers):  # hidden layers only: the output units are not interchangeable
        unit = np.column_stack([params[f"W{l}"].T, params[f"b{l}"], params[f"W{l + 1}"]])  # (n_l, .)
        total += unit.shape[0]
        if unit.shape[0] < 2:
            continue
        diff = np.abs(unit[:, None, :] - unit[None, :, :]).max(axis=2)  # (n_l, n_l)
        np.fill_diagonal(diff, np.inf)
        copies += int(np.count_nonzero(diff.min(axis=1) <= tol))
    return copies / total if total else 0.0
