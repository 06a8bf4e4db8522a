"""Weight initializers by name. Biases always start at zero; weights are drawn from `rng`."""

from __future__ import annotations

from typing import Callable

import numpy as np

# Each returns the standard deviation for a weight matrix of shape (n_in, n_out); None = zeros.
_STD: dict[str, Callable[[int, int, float], float | None]] = {
    "zeros": lambda n_in, n_out, scale: None,
    "random": lambda n_in, n_out, scale: scale,  # N(0, 1) * scale; large by default on purpose
    "he": lambda n_in, n_out, scale: np.sqrt(2.0 / n_in),
    "xavier": lambda n_in, n_out, scale: np.sqrt(1.0 / n_in),
    "glorot": lambda n_in, n_out, scale: np.sqrt(2.0 / (n_in + n_out)),
}
INITIALIZERS = tuple(_STD)


def init_params(arch, scheme: str, rng: np.random.Generator, *, scale: float = 10.0,
                dtype=np.float64) -> dict[str, np.ndarray]:
    """Parameters {"W1": (n0, n1), "b1": (n1,), ...} for `arch` (an `Architecture`).

    `scale` is used only by `random` (default 10: the classic too-large initialization).
    """
    if scheme not in _STD:
        raise ValueError(f"init scheme must be one of {list(INITIALIZERS)}, got {scheme!r}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"init scale must be > 0, got {scale}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    params: dict[str, np.ndarray] = {}
    sizes = arch.layer_sizes
    for l in range(1, len(sizes)):
        n_in, n_out = sizes[l - 1], sizes[l]
        std = _STD[scheme](n_in, n_out, scale)
        if std is None:
            W = np.zeros((n_in, n_out), dtype=dtype)
        else:
            W = (rng.standard_normal((n_in, n_out)) * std).astype(dtype, copy=False)
        params[f"W{l}"] = W                                   # (n_{l-1}, n_l)
        params[f"b{l}"] = np.zeros(n_out, dtype=dtype)        # (n_l,)
    return params
