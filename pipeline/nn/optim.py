"""Optimizers: plain gradient descent, momentum, Adam. `.step(params, grads)` updates in place.

State (velocity, moments) is kept per key, so the same optimizer can drive a params dict or,
as `fit` does, a single flat vector {"theta": theta} updated with one array operation per step.
"""

from __future__ import annotations

import numpy as np


def _check(name: str, value: float, low: float, high: float, *, closed_high=False) -> float:
    ok = low <= value <= high if closed_high else low <= value < high
    if not (np.isfinite(value) and ok):
        bound = f"[{low}, {high}]" if closed_high else f"[{low}, {high})"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return float(value)


class GradientDescent:
    """theta <- theta - lr * g."""

    def __init__(self, learning_rate: float):
        if not (np.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.learning_rate = float(learning_rate)
        self._tmp: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        for key, p in params.items():
            self._update(key, p, grads[key])

    def step_array(self, p: np.ndarray, g: np.ndarray) -> None:
        """One step on a single array (fit's flat parameter vector): no dict round trip."""
        self._update("theta", p, g)

    def _buf(self, store: dict, key: str, like: np.ndarray) -> np.ndarray:
        buf = store.get(key)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = store[key] = np.zeros_like(like)
        return buf

    def _update(self, key, p, g):
        tmp = self._buf(self._tmp, key, p)
        np.multiply(g, self.learning_rate, out=tmp)
        p -= tmp


class Momentum(GradientDescent):
    """v <- beta v + (1 - beta) g; theta <- theta - lr v (exponentially weighted average form)."""

    def __init__(self, learning_rate: float, beta: float = 0.9):
        super().__init__(learning_rate)
        self.beta = _check("beta", beta, 0.0, 1.0)
        self._v: dict[str, np.ndarray] = {}

    def _update(self, key, p, g):
        v, tmp = self._buf(self._v, key, p), self._buf(self._tmp, key, p)
        v *= self.beta
        np.multiply(g, 1.0 - self.beta, out=tmp)
        v += tmp
        np.multiply(v, self.learning_rate, out=tmp)
        p -= tmp


class Adam(GradientDescent):
    """Adam with bias correction; the step counter t is shared by all keys of one step."""

    def __init__(self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        super().__init__(learning_rate)
        self.beta1 = _check("beta1", beta1, 0.0, 1.0)
        self.beta2 = _check("beta2", beta2, 0.0, 1.0)
        if not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.epsilon = float(epsilon)
        self.t = 0
        self._m: dict[str, np.ndarray] = {}
        self._s: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        super().step(params, grads)

    def step_array(self, p: np.ndarray, g: np.ndarray) -> None:
        self.t += 1
        self._update("theta", p, g)

    def _update(self, key, p, g):
        m, s, tmp = (self._buf(d, key, p) for d in (self._m, self._s, self._tmp))
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
        p -= tmp


OPTIMIZERS = {"gd": GradientDescent, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, learning_rate: float, **kw):
    """`gd(learning_rate)`, `momentum(learning_rate, beta=0.9)`,
    `adam(learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8)`."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}") from None
    return cls(learning_rate, **kw)
