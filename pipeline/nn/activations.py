"""Hidden-layer activations: a registry of (forward, backward) pairs that write into buffers.

Every backward is expressed through the activation's OUTPUT `H` (not the pre-activation `Z`),
so the training loop can compute activations in place over `Z` and keep one buffer per layer:
relu and leaky_relu use sign(H) == sign(Z); tanh uses 1 - H**2; sigmoid uses H * (1 - H).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    forward: Callable[[np.ndarray, np.ndarray], None]  # (Z, out=H); out may be Z itself
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], None]  # (D, H, tmp): D <- D * g'(Z)


def _relu_fwd(Z: np.ndarray, H: np.ndarray) -> None:
    np.maximum(Z, 0.0, out=H)


def _relu_bwd(D: np.ndarray, H: np.ndarray, tmp: np.ndarray) -> None:
    np.sign(H, out=tmp)  # 1 where Z > 0, else 0
    np.multiply(D, tmp, out=D)


def _leaky_fwd(Z: np.ndarray, H: np.ndarray) -> None:
    np.maximum(Z, np.multiply(Z, LEAKY_SLOPE), out=H)  # valid because the slope is < 1


def _leaky_bwd(D: np.ndarray, H: np.ndarray, tmp: np.ndarray) -> None:
    # g' = 1 for Z > 0 and LEAKY_SLOPE otherwise: (1 + a)/2 + (1 - a)/2 * sign(H)
    np.sign(H, out=tmp)
    tmp *= 0.5 * (1.0 - LEAKY_SLOPE)
    tmp += 0.5 * (1.0 + LEAKY_SLOPE)
    np.multiply(D, tmp, out=D)


def _tanh_fwd(Z: np.ndarray, H: np.ndarray) -> None:
    np.tanh(Z, out=H)


def _tanh_bwd(D: np.ndarray, H: np.ndarray, tmp: np.ndarray) -> None:
    np.multiply(H, H, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    np.multiply(D, tmp, out=D)


def sigmoid(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function without overflow: 1/(1+exp(-z)) == (1 + tanh(z/2)) / 2 for every z."""
    out = np.multiply(Z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _sigmoid_fwd(Z: np.ndarray, H: np.ndarray) -> None:
    sigmoid(Z, out=H)


def _sigmoid_bwd(D: np.ndarray, H: np.ndarray, tmp: np.ndarray) -> None:
    np.subtract(1.0, H, out=tmp)
    tmp *= H
    np.multiply(D, tmp, out=D)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(_relu_fwd, _relu_bwd),
    "leaky_relu": Activation(_leaky_fwd, _leaky_bwd),
    "tanh": Activation(_tanh_fwd, _tanh_bwd),
    "sigmoid": Activation(_sigmoid_fwd, _sigmoid_bwd),
}


def get_activation(name: str) -> Activation:
    """The (forward, backward) pair for `name`; unknown names list the valid ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"hidden_activation must be one of {sorted(ACTIVATIONS)}, got {name!r}"
        ) from None
