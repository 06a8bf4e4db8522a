"""The network: an architecture and ONE flat parameter vector, with the public pass over it.

Samples-first at this boundary: X (m, n_0), Z_l = A_{l-1} @ W_l + b_l, W_l (n_{l-1}, n_l),
b_l (n_l,). `params` are views into `theta`, so a dict of W/b and the flat vector the training
loop updates are the same memory, not two representations. The pass itself is layers.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.nn import layers
from pipeline.nn.activations import get_activation
from pipeline.nn.losses import (Penalty, cross_entropy_from_logits, labels_from_probs,
                                output_for, targets)

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
        return output_for(self.layer_sizes[-1])


class Layout:
    """Where each block lives in theta: per layer the rows of W_l, then b_l as one more row,
    i.e. an augmented block [W_l; b_l] (n_{l-1} + 1, n_l). Keys W1, b1, W2, ... in order."""

    def __init__(self, arch: Architecture):
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.slices: dict[str, slice] = {}
        self.aug: list[tuple[slice, tuple[int, int]]] = []
        start, s = 0, arch.layer_sizes
        for l in range(1, len(s)):
            n_in, n_out = s[l - 1], s[l]
            self.shapes[f"W{l}"], self.shapes[f"b{l}"] = (n_in, n_out), (n_out,)
            self.slices[f"W{l}"] = slice(start, start + n_in * n_out)
            self.slices[f"b{l}"] = slice(start + n_in * n_out, start + (n_in + 1) * n_out)
            self.aug.append((slice(start, start + (n_in + 1) * n_out), (n_in + 1, n_out)))
            start += (n_in + 1) * n_out
        self.keys, self.size = tuple(self.shapes), start
        self.weight_mask = np.zeros(self.size)
        for k in self.keys[::2]:
            self.weight_mask[self.slices[k]] = 1.0

    def views(self, vec: np.ndarray) -> Params:
        return {k: vec[self.slices[k]].reshape(self.shapes[k]) for k in self.keys}

    def blocks(self, vec: np.ndarray) -> list[np.ndarray]:
        return [vec[s].reshape(shape) for s, shape in self.aug]


class Network:
    """Architecture + parameters theta (flat, float32 or float64) and its views:
    `params` {W_l, b_l} samples-first, `Was` augmented blocks, `Ws` weights alone."""

    def __init__(self, arch: Architecture, theta: np.ndarray):
        self.arch, self.layout = arch, Layout(arch)
        if theta.shape != (self.layout.size,) or theta.dtype not in (np.float32, np.float64):
            raise ValueError(f"theta must be float32/float64 of shape ({self.layout.size},), "
                             f"got {theta.dtype} {theta.shape}")
        self.theta = theta
        self.params = self.layout.views(theta)
        self.Was = self.layout.blocks(theta)
        self.Ws = [Wa[:-1] for Wa in self.Was]

    @classmethod
    def from_params(cls, arch: Architecture, params, dtype=None) -> "Network":
        """A network owning a copy of `params` {W1: (n0, n1), b1: (n1,), ...}."""
        layout = Layout(arch)
        theta = np.empty(layout.size, dtype=dtype or np.asarray(params["W1"]).dtype)
        for k in layout.keys:
            if np.shape(params.get(k)) != layout.shapes[k]:
                raise ValueError(f"params[{k!r}] must have shape {layout.shapes[k]}, "
                                 f"got {np.shape(params.get(k))}")
            theta[layout.slices[k]] = np.asarray(params[k]).reshape(-1)
        return cls(arch, theta)

    def copy(self, dtype=None) -> "Network":
        return Network(self.arch, self.theta.astype(dtype or self.theta.dtype, copy=True))

    def penalty(self, m: int, *, l2: float = 0.0, l1: float = 0.0, prox_l1=False) -> Penalty:
        mask = self.layout.weight_mask.astype(self.theta.dtype)
        return Penalty(mask, m, l2=l2, l1=l1, prox_l1=prox_l1)

    def forward(self, X: np.ndarray, *, keep_prob=1.0, rng=None, masks=None,
                training: bool = False):
        """Probabilities (m, n_out) and the pass's `Buffers` (for `gradient`).

        Dropout only with training=True: fixed `masks` (per hidden layer, the (n_l, m) masks of
        an earlier pass, or None) are reused, else layers with keep_prob < 1 draw from `rng`.
        """
        X = np.asarray(X, dtype=self.theta.dtype)
        if X.ndim != 2 or X.shape[1] != self.arch.layer_sizes[0]:
            raise ValueError(f"X must have shape (m, {self.arch.layer_sizes[0]}), got {X.shape}")
        m, dtype = X.shape[0], self.theta.dtype
        if training and masks is not None:            # replay: the masks say where dropout is
            masks = [None if mk is None else np.ascontiguousarray(mk) for mk in masks]
            buf = layers.Buffers(self.arch, m, dtype, dropout=[mk is not None for mk in masks])
        else:
            masks = None
            buf = layers.Buffers(self.arch, m, dtype, keep_prob if training else None)
        P = layers.forward(buf, self.Was, layers.with_ones(X.T), rng, masks)
        return P.T, buf

    def gradient(self, buf: layers.Buffers, y: np.ndarray, *, l2: float = 0.0,
                 l1: float = 0.0) -> Params:
        """dJ/dparams of `loss` at the pass in `buf` (views of one new flat vector)."""
        grad = np.empty_like(self.theta)
        TT = np.ascontiguousarray(targets(y, self.arch.output, self.arch.layer_sizes[-1],
                                          self.theta.dtype).T)
        layers.backward(buf, self.Ws, TT, self.layout.blocks(grad))
        self.penalty(buf.m, l2=l2, l1=l1).add_gradient(self.theta, grad)
        return self.layout.views(grad)

    def loss(self, buf: layers.Buffers, y: np.ndarray, *, l2: float = 0.0,
             l1: float = 0.0) -> float:
        """Mean cross-entropy from the logits of the pass in `buf` (exact) + the L2/L1 terms."""
        data = cross_entropy_from_logits(buf.Z[-1].T, y, self.arch.output)
        return data + self.penalty(buf.m, l2=l2, l1=l1).value(self.Ws)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (m, n_out) in evaluation mode (no dropout), computed over chunks
        of `layers.eval_chunk_rows` samples so the buffers do not grow with m (a split that
        fits in one chunk is one pass, as `forward`)."""
        X = np.asarray(X, dtype=self.theta.dtype)
        rows = layers.eval_chunk_rows(self.arch, self.theta.dtype)
        if X.ndim != 2 or X.shape[0] <= rows:
            return self.forward(X)[0]                 # (shape errors are forward's to raise)
        out = np.empty((X.shape[0], self.arch.layer_sizes[-1]), dtype=self.theta.dtype)
        buf = None
        for s in range(0, X.shape[0], rows):
            n = min(rows, X.shape[0] - s)
            # the last, shorter chunk is carved from the first one's memory
            buf = layers.Buffers(self.arch, n, self.theta.dtype,
                                 arena=None if buf is None else buf.arena)
            out[s:s + n] = layers.forward(buf, self.Was, layers.with_ones(X[s:s + n].T)).T
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Integer class codes (m,) by `labels_from_probs`."""
        return labels_from_probs(self.predict_proba(X))
