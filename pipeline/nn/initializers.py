"""Weight initializers by name. Biases always start at zero; weights are drawn from `rng`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from pipeline.nn.network import Architecture, Layout, Network

# Each returns the standard deviation for a weight matrix of shape (n_in, n_out); None = zeros.
_STD: dict[str, Callable[[int, int, float], float | None]] = {
    "zeros": lambda n_in, n_out, scale: None,
    "random": lambda n_in, n_out, scale: scale,  # N(0, 1) * scale; large by default on purpose
    "he": lambda n_in, n_out, scale: np.sqrt(2.0 / n_in),
    "xavier": lambda n_in, n_out, scale: np.sqrt(1.0 / n_in),
    "glorot": lambda n_in, n_out, scale: np.sqrt(2.0 / (n_in + n_out)),
}
INITIALIZERS = tuple(_STD)


def init_network(arch: Architecture, scheme: str, rng: np.random.Generator, *,
                 scale: float = 10.0, dtype=np.float64) -> Network:
    """A fresh `Network`: W_l (n_{l-1}, n_l) drawn per `scheme`, b_l = 0.

    `scale` is used only by `random` (default 10: the classic too-large initialization).
    """
    if scheme not in _STD:
        raise ValueError(f"init scheme must be one of {list(INITIALIZERS)}, got {scheme!r}")
    net = Network(arch, np.zeros(Layout(arch).size, dtype=dtype))
    sizes = arch.layer_sizes
    for l in range(1, len(sizes)):
        n_in, n_out = sizes[l - 1], sizes[l]
        std = _STD[scheme](n_in, n_out, scale)
        if std is not None:                           # the same draws as a dict-based init
            net.params[f"W{l}"][...] = rng.standard_normal((n_in, n_out)) * std
    return net
