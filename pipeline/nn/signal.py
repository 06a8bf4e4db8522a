"""How much of the input reaches each hidden layer: the forward half of vanishing/exploding.

The gradient of W_l is A_{l-1}.T @ dZ_l: the layer's input (forward) times the error arriving
from above (backward). When every layer's input varies less with the data than the layer
before it, the forward signal is dying, and the same per-layer factors (the weights' scale and
the activation's slope) shrink the backward error on its way down.
"""

from __future__ import annotations

import numpy as np


def hidden_signal(net, X: np.ndarray) -> np.ndarray:
    """(n_hidden,): per hidden layer, the RMS over its units of each unit's standard deviation
    across the rows of X (m, n_0), in evaluation mode (no dropout).

    The spread across examples, not the raw RMS: a sigmoid layer's outputs sit near 0.5 whatever
    the input, so their RMS stays ~0.5 while the part that depends on the input (the only part
    that tells examples apart, and what the slope of the next sigmoid passes on) shrinks about
    4x per layer."""
    _, buf = net.forward(X)
    # buf.H[l] is features-first (n_l, m): the variance of each unit over the m examples
    return np.array([float(np.sqrt(np.mean(H.var(axis=1)))) for H in buf.H])
