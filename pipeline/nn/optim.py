"""Optimizers: plain gradient descent, momentum, Adam. `.step(theta, grad)` updates the flat
parameter vector in place, one array operation per term. Hyperparameter bounds are checked at
the config edge, not here."""

from __future__ import annotations

import numpy as np


class GradientDescent:
    """theta <- theta - lr * g."""

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)
        self._tmp = None

    def _buffers(self, like: np.ndarray, n: int) -> list[np.ndarray]:
        """n zeroed buffers shaped like theta, made at the first step (state: velocity, ...)."""
        if self._tmp is None or self._tmp[0].shape != like.shape:
            self._tmp = [np.zeros_like(like) for _ in range(n)]
        return self._tmp

    def step(self, theta: np.ndarray, g: np.ndarray) -> None:
        (tmp,) = self._buffers(theta, 1)
        np.multiply(g, self.learning_rate, out=tmp)
        theta -= tmp


class Momentum(GradientDescent):
    """v <- beta v + (1 - beta) g; theta <- theta - lr v (exponentially weighted average form)."""

    def __init__(self, learning_rate: float, beta: float = 0.9):
        super().__init__(learning_rate)
        self.beta = float(beta)

    def step(self, theta: np.ndarray, g: np.ndarray) -> None:
        v, tmp = self._buffers(theta, 2)
        v *= self.beta
        np.multiply(g, 1.0 - self.beta, out=tmp)
        v += tmp
        np.multiply(v, self.learning_rate, out=tmp)
        theta -= tmp


class Adam(GradientDescent):
    """Adam with bias correction."""

    def __init__(self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.t = 0

    def step(self, theta: np.ndarray, g: np.ndarray) -> None:
        m, s, tmp = self._buffers(theta, 3)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp                                          # first moment
        s *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        s += tmp                                          # second moment
        lr_t = self.learning_rate * np.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        np.sqrt(s, out=tmp)
        tmp += self.epsilon * np.sqrt(1.0 - b2 ** self.t)  # eps on the bias-corrected scale
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        theta -= tmp


OPTIMIZERS = {"gd": GradientDescent, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, learning_rate: float, **kw):
    """`gd(learning_rate)`, `momentum(learning_rate, beta=0.9)`,
    `adam(learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8)`."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}") from None
    return cls(learning_rate, **kw)
