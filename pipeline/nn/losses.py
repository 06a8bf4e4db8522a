"""Output layers and their losses: sigmoid + binary cross-entropy, softmax + cross-entropy.

Both pairs have the same gradient with respect to the logits, dJ/dZ = (P - T) / m, where T is
the target as a float array: y itself as a column for sigmoid, one-hot rows for softmax.
Losses are computed from the logits (logaddexp / log-sum-exp), which is exact and never takes
log(0) or overflows; the from-probabilities variant clips at the smallest positive float, which
only touches values that would otherwise be log(0).
"""

from __future__ import annotations

import numpy as np

from pipeline.nn.activations import sigmoid

OUTPUTS = ("sigmoid", "softmax")


def output_for(n_out: int) -> str:
    """One output unit -> sigmoid + binary cross-entropy; more -> softmax + cross-entropy."""
    return "sigmoid" if n_out == 1 else "softmax"


def output_probs(ZT: np.ndarray, output: str, out: np.ndarray | None = None) -> np.ndarray:
    """Probabilities from FEATURES-FIRST logits ZT (n_out, m), same layout; softmax subtracts
    each sample's max first so exp never overflows."""
    if output == "sigmoid":
        return sigmoid(ZT, out=out)
    out = np.subtract(ZT, ZT.max(axis=0, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=0, keepdims=True)
    return out


def labels_from_probs(P: np.ndarray) -> np.ndarray:
    """THE decision rule, samples-first P (m, n_out) -> codes (m,): one sigmoid column ->
    p >= 0.5 is class 1; softmax -> argmax. Metrics, fit, the model and serving all call this."""
    if P.shape[1] == 1:
        return (P[:, 0] >= 0.5).astype(np.int64)
    return P.argmax(axis=1).astype(np.int64)


def class_columns(P: np.ndarray) -> np.ndarray:
    """One probability column per class (m, k): the sigmoid's P(1) becomes [1 - p, p]."""
    return np.column_stack([1.0 - P[:, 0], P[:, 0]]) if P.shape[1] == 1 else P


def targets(y: np.ndarray, output: str, n_out: int, dtype=np.float64) -> np.ndarray:
    """Float targets T: (m, 1) column of 0/1 for sigmoid, (m, n_out) one-hot for softmax."""
    y = np.asarray(y)
    if output == "sigmoid":
        return y.astype(dtype).reshape(-1, 1)
    T = np.zeros((y.shape[0], n_out), dtype=dtype)
    T[np.arange(y.shape[0]), y] = 1.0
    return T


def cross_entropy_from_logits(Z: np.ndarray, y: np.ndarray, output: str) -> float:
    """Mean cross-entropy over the m rows of Z (m, n_out); y is (m,) integer codes."""
    y = np.asarray(y)
    if output == "sigmoid":
        z = Z[:, 0]
        # -[y log s(z) + (1-y) log(1-s(z))] == log(1 + e^z) - y z, exactly, for every z
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    zmax = Z.max(axis=1, keepdims=True)
    lse = (zmax + np.log(np.exp(Z - zmax).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(lse - Z[np.arange(Z.shape[0]), y]))


def cross_entropy_from_probs(P: np.ndarray, y: np.ndarray, output: str) -> float:
    """Mean cross-entropy from probabilities P (m, n_out), clipped away from log(0)."""
    y = np.asarray(y)
    tiny = np.finfo(P.dtype).tiny
    if output == "sigmoid":
        p = P[:, 0]
        log_p = np.log(np.maximum(p, tiny))
        log_q = np.log(np.maximum(1.0 - p, tiny))
        return float(-np.mean(y * log_p + (1 - y) * log_q))
    return float(-np.mean(np.log(np.maximum(P[np.arange(P.shape[0]), y], tiny))))


def penalty(weights, m: int, *, l2: float = 0.0, l1: float = 0.0) -> float:
    """l2/(2m) * sum ||W||_F^2 + l1/m * sum |W| over the weight matrices (biases excluded)."""
    total = 0.0
    if l2:
        total += l2 / (2.0 * m) * sum(float(np.vdot(W, W)) for W in weights)
    if l1:
        total += l1 / m * sum(float(np.abs(W).sum()) for W in weights)
    return total


class Penalty:
    """The L2/L1 terms on a flat parameter vector theta: the value (`penalty`) beside its
    gradient, written once for the public gradient, the gradient check and `fit`.

    `weight_mask` (1 on weights, 0 on biases) keeps biases unpenalized. With `prox_l1` the L1
    term leaves the gradient and is applied by `prox` after the optimizer's step instead
    (soft-thresholding: same objective, weights land on exactly 0).
    """

    def __init__(self, weight_mask: np.ndarray, m: int, *, l2: float = 0.0, l1: float = 0.0,
                 prox_l1: bool = False):
        self.l2, self.l1, self.m, self.prox_l1 = l2, l1, m, bool(l1) and prox_l1
        self.l2_vec = weight_mask * (l2 / m)             # l2/m on weights, 0 on biases
        self.l1_vec = weight_mask * (l1 / m)
        self.tmp = np.empty_like(weight_mask)
        self._step = (None, None)                        # (learning_rate, lr * l1_vec)

    def value(self, weights) -> float:
        return penalty(weights, self.m, l2=self.l2, l1=self.l1)

    def add_gradient(self, theta: np.ndarray, grad: np.ndarray) -> None:
        tmp = self.tmp
        if self.l2:
            np.multiply(theta, self.l2_vec, out=tmp)
            np.add(grad, tmp, out=grad)                  # + l2/m W
        if self.l1 and not self.prox_l1:
            np.sign(theta, out=tmp)
            np.multiply(tmp, self.l1_vec, out=tmp)
            np.add(grad, tmp, out=grad)                  # + l1/m sign(W)

    def prox(self, theta: np.ndarray, learning_rate: float) -> None:
        """w <- sign(w) max(|w| - lr l1/m, 0), after a step that left L1 out of the gradient."""
        if not self.prox_l1:
            return
        if self._step[0] != learning_rate:
            self._step = (learning_rate, self.l1_vec * learning_rate)
        tmp = self.tmp
        np.abs(theta, out=tmp)
        np.subtract(tmp, self._step[1], out=tmp)
        np.maximum(tmp, 0.0, out=tmp)
        np.copysign(tmp, theta, out=theta)


def weight_sparsity(params: dict[str, np.ndarray], tol: float = 1e-8) -> float:
    """Fraction of weight entries (biases excluded) with |w| < tol (tol=0: exactly zero only).

    `fit` with optimizer "gd" applies L1 as a proximal step, so pruned weights are exactly 0
    (use tol=0). With momentum/Adam L1 is a subgradient: weights then hover at about
    learning_rate * l1 / m around zero, so pick `tol` above that to count them as pruned.
    """
    Ws = [v for k, v in params.items() if k.startswith("W")]
    n = sum(W.size for W in Ws)
    if tol == 0:
        small = sum(int(np.count_nonzero(W == 0)) for W in Ws)
    else:
        small = sum(int(np.count_nonzero(np.abs(W) < tol)) for W in Ws)
    return small / n if n else 0.0
