"""The fully-connected network: architecture, forward and backward passes, loss, prediction.

Samples-first: Z_l = A_{l-1} @ W_l + b_l with W_l (n_{l-1}, n_l), b_l (n_l,), A_0 = X (m, n_0).
The passes are written once, as kernels (`kernels.py`) that fill a preallocated `Workspace`;
the public `forward`/`backward` allocate a fresh workspace per call, while `pipeline.train.fit`
keeps one per batch size and so does no allocation (and no dict building) per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.nn.activations import get_activation
from pipeline.nn.dropout import normalize_keep_prob
from pipeline.nn.kernels import Workspace, augment_rows, backward_into, forward_into
from pipeline.nn.losses import (cross_entropy_from_logits, cross_entropy_from_probs, penalty,
                                targets)

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Architecture:
    """Layer sizes (n_features, h1, ..., n_out) and the hidden activation.

    The output is derived: n_out == 1 -> sigmoid + binary cross-entropy (labels 0/1);
    n_out > 1 -> softmax + categorical cross-entropy (labels 0..n_out-1).
    """

    layer_sizes: tuple[int, ...]
    hidden_activation: str = "relu"

    def __post_init__(self):
        sizes = tuple(int(n) for n in self.layer_sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(
                f"layer_sizes must have >= 2 entries, each >= 1, got {tuple(self.layer_sizes)}")
        object.__setattr__(self, "layer_sizes", sizes)
        get_activation(self.hidden_activation)  # unknown names raise here, listing valid ones

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    @property
    def n_hidden(self) -> int:
        return len(self.layer_sizes) - 2

    @property
    def output(self) -> str:
        return "sigmoid" if self.layer_sizes[-1] == 1 else "softmax"

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        s = self.layer_sizes
        shapes: dict[str, tuple[int, ...]] = {}
        for l in range(1, len(s)):
            shapes[f"W{l}"] = (s[l - 1], s[l])
            shapes[f"b{l}"] = (s[l],)
        return shapes


class ParamLayout:
    """Where each block lives in one flat vector theta: per layer, the rows of W_l followed by
    b_l as one more row, i.e. an augmented block [W_l; b_l] of shape (n_{l-1} + 1, n_l).

    With a row of ones appended to every layer input, Z_l = [W_l; b_l].T @ [A; 1] is ONE
    matrix product (no separate bias broadcast) and dJ/d[W_l; b_l] = [A; 1] @ dZ.T gives the
    bias gradient for free. `weight_mask` (1 on weights, 0 on biases) keeps biases out of L2/L1.
    """

    def __init__(self, arch: Architecture):
        self.shapes = arch.param_shapes()
        self.keys = tuple(self.shapes)  # W1, b1, W2, b2, ...: the reporting order
        self.slices: dict[str, slice] = {}
        self.aug: list[tuple[slice, tuple[int, int]]] = []
        start = 0
        for l in range(1, arch.n_layers + 1):
            n_in, n_out = self.shapes[f"W{l}"]
            self.slices[f"W{l}"] = slice(start, start + n_in * n_out)
            self.slices[f"b{l}"] = slice(start + n_in * n_out, start + (n_in + 1) * n_out)
            self.aug.append((slice(start, start + (n_in + 1) * n_out), (n_in + 1, n_out)))
            start += (n_in + 1) * n_out
        self.size = start
        self.weight_mask = np.zeros(self.size)
        for k in self.keys:
            if k[0] == "W":
                self.weight_mask[self.slices[k]] = 1.0

    def views(self, theta: np.ndarray) -> Params:
        """Blocks of `theta` as arrays sharing its memory (writes go through)."""
        return {k: theta[self.slices[k]].reshape(self.shapes[k]) for k in self.keys}

    def blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        """Augmented [W_l; b_l] blocks (n_{l-1} + 1, n_l) sharing theta's memory."""
        return [theta[s].reshape(shape) for s, shape in self.aug]

    def flatten(self, params: Params, dtype=None) -> np.ndarray:
        theta = np.empty(self.size, dtype=dtype or params["W1"].dtype)
        for k in self.keys:
            theta[self.slices[k]] = np.asarray(params[k]).reshape(-1)
        return theta


def params_to_vector(params: Params, arch: Architecture) -> np.ndarray:
    """Flatten all blocks into one vector theta (per layer: W_l row-major, then b_l)."""
    return ParamLayout(arch).flatten(params)


def vector_to_params(theta: np.ndarray, arch: Architecture) -> Params:
    """Inverse of `params_to_vector` (copies, so the result owns its memory)."""
    return {k: v.copy() for k, v in ParamLayout(arch).views(theta).items()}


def _blocks(params: Params, L: int):
    return [params[f"W{l}"] for l in range(1, L + 1)], [params[f"b{l}"] for l in range(1, L + 1)]


def forward(params: Params, X: np.ndarray, arch: Architecture, *, keep_prob=1.0,
            rng: np.random.Generator | None = None, masks=None, training: bool = False):
    """Probabilities (m, n_out) and the cache for `backward`.

    Dropout happens only with training=True: fixed `masks` (list per hidden layer of scaled
    masks in the cache's internal (n_l, m) layout or None, i.e. `cache.masks` of an earlier
    call) are reused; otherwise layers with keep_prob < 1 draw a fresh mask from `rng`.
    training=False never touches `rng`. The cache is a `Workspace` (see its docstring).
    """
    Ws, bs = _blocks(params, arch.n_layers)
    dtype = Ws[0].dtype
    X = np.asarray(X, dtype=dtype)
    if X.ndim != 2 or X.shape[1] != arch.layer_sizes[0]:
        raise ValueError(f"X must have shape (m, {arch.layer_sizes[0]}), got {X.shape}")
    keep = normalize_keep_prob(keep_prob, arch.n_hidden) if training else None
    drop = None
    if not training:
        masks = None
    elif masks is not None:
        if len(masks) != arch.n_hidden:
            raise ValueError(f"masks must have one entry per hidden layer ({arch.n_hidden}), "
                             f"got {len(masks)}")
        masks = [None if mk is None else np.ascontiguousarray(mk) for mk in masks]
        drop = [mk is not None for mk in masks]
    elif rng is None and min(keep, default=1.0) < 1.0:
        raise ValueError("forward with keep_prob < 1 and training=True needs rng or masks")
    ws = Workspace(arch, X.shape[0], dtype, keep, keep_z=True, dropout=drop)
    Was = [np.vstack([W, b[None, :]]).astype(dtype, copy=False) for W, b in zip(Ws, bs)]
    forward_into(ws, Was, augment_rows(X.T), rng, masks)
    return ws.probs, ws


def backward(params: Params, cache: Workspace, y: np.ndarray, arch: Architecture, *,
             l2: float = 0.0, l1: float = 0.0) -> Params:
    """Gradients of `compute_loss` (same keys as params), from a `forward` cache."""
    L = arch.n_layers
    Ws, _ = _blocks(params, L)
    dtype = Ws[0].dtype
    gWas = [np.empty((W.shape[0] + 1, W.shape[1]), dtype=dtype) for W in Ws]
    TT = np.ascontiguousarray(targets(y, arch.output, arch.layer_sizes[-1], dtype).T)
    backward_into(cache, [np.ascontiguousarray(W) for W in Ws], TT, gWas)
    grads: Params = {}
    m = cache.m
    for l, (W, g) in enumerate(zip(Ws, gWas), start=1):
        grads[f"W{l}"], grads[f"b{l}"] = g[:-1], g[-1]
        if l2:
            grads[f"W{l}"] += (l2 / m) * W
        if l1:
            grads[f"W{l}"] += (l1 / m) * np.sign(W)
    return grads


def compute_loss(params: Params, probs: np.ndarray, y: np.ndarray, arch: Architecture, *,
                 l2: float = 0.0, l1: float = 0.0) -> float:
    """Mean cross-entropy from probabilities (clipped away from log 0) plus the L2/L1 terms."""
    Ws, _ = _blocks(params, arch.n_layers)
    return cross_entropy_from_probs(probs, y, arch.output) + penalty(Ws, len(y), l2=l2, l1=l1)


def compute_loss_from_logits(params: Params, logits: np.ndarray, y: np.ndarray,
                             arch: Architecture, *, l2: float = 0.0, l1: float = 0.0) -> float:
    """Same as `compute_loss` but exact: from the logits (`cache.logits`, (m, n_out))."""
    Ws, _ = _blocks(params, arch.n_layers)
    return cross_entropy_from_logits(logits, y, arch.output) + penalty(Ws, len(y), l2=l2, l1=l1)


def predict_proba(params: Params, X: np.ndarray, arch: Architecture) -> np.ndarray:
    """Class probabilities (m, n_out) in evaluation mode (no dropout)."""
    return forward(params, X, arch)[0]


def predict(params: Params, X: np.ndarray, arch: Architecture) -> np.ndarray:
    """Integer class codes (m,): sigmoid p >= 0.5 -> 1, softmax -> argmax."""
    return labels_from_probs(predict_proba(params, X, arch))


def labels_from_probs(P: np.ndarray) -> np.ndarray:
    if P.shape[1] == 1:
        return (P[:, 0] >= 0.5).astype(np.int64)
    return P.argmax(axis=1).astype(np.int64)
