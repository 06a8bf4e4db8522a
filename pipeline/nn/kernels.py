"""Forward and backward kernels that fill a preallocated `Workspace` (no allocation per call).

Written once and used by both the public `forward`/`backward` (fresh workspace per call) and
`pipeline.train.fit` (one workspace per batch size, reused every step).
"""

from __future__ import annotations

import numpy as np

from pipeline.nn.activations import get_activation
from pipeline.nn.dropout import draw_mask
from pipeline.nn.losses import output_probs


def augment_rows(XT: np.ndarray) -> np.ndarray:
    """[XT; 1]: features-first inputs (n, m) with a row of ones appended, (n + 1, m)."""
    out = np.empty((XT.shape[0] + 1, XT.shape[1]), dtype=XT.dtype)
    out[:-1] = XT
    out[-1] = 1.0
    return out


class Workspace:
    """Buffers for one batch size m; also serves as the forward cache.

    Inside, arrays are FEATURES-FIRST, (n_l, m): for small layers the bias broadcast and the
    BLAS calls are several times cheaper per call than samples-first, and that per-call cost is
    most of the time of a small network. Public functions transpose at the boundary;
    `pre_activation(l)`, `activation(l)`, `mask(l)`, `probs`, `logits` give (m, n) views.
    Fields: A[l] augmented layer inputs (n_l + 1, m) ending in a row of ones (A[0] = [XT; 1]);
    Z[l] pre-activations/logits; H[l] hidden activations before dropout; masks[l] scaled masks
    or None; P probabilities (n_out, m); D[l] dJ/dZ. keep_z=False computes activations in place
    (fit's hot path), so Z[l] then holds the activation.
    """

    def __init__(self, arch, m: int, dtype, keep=None, keep_z: bool = True,
                 dropout=None):
        sizes = arch.layer_sizes
        self.arch, self.m, self.L, self.output = arch, m, arch.n_layers, arch.output
        self.act = get_activation(arch.hidden_activation)
        self.keep = tuple(keep) if keep is not None else (1.0,) * arch.n_hidden
        drop = tuple(dropout) if dropout is not None else tuple(k < 1.0 for k in self.keep)
        new = lambda n: np.empty((n, m), dtype=dtype)  # noqa: E731
        self.A: list = [None] + [augment_rows(new(n)) for n in sizes[1:-1]]
        self.Z, self.H = [], []
        for l, n in enumerate(sizes[1:-1]):
            rows = self.A[l + 1][:-1]                 # contiguous view: the first n rows
            H = new(n) if drop[l] else rows
            self.H.append(H)
            self.Z.append(new(n) if keep_z else H)
        self.Z.append(new(sizes[-1]))
        self.own_masks = [new(n) if d else None for n, d in zip(sizes[1:-1], drop)]
        self.masks: list = [None] * arch.n_hidden
        self.P = new(sizes[-1])
        self.D = [new(n) for n in sizes[1:]]
        scratch = np.empty(m * max(sizes[1:]), dtype=dtype)
        self.tmp = [scratch[: m * n].reshape(n, m) for n in sizes[1:-1]]
        self.inv_m = 1.0 / m

    @property
    def probs(self) -> np.ndarray:
        return self.P.T                                   # (m, n_out)

    @property
    def logits(self) -> np.ndarray:
        return self.Z[-1].T                               # (m, n_out)

    def pre_activation(self, l: int) -> np.ndarray:
        """Z_l as (m, n_l), l = 1..L (for hidden layers only meaningful with keep_z=True)."""
        return self.Z[l - 1].T

    def activation(self, l: int) -> np.ndarray:
        """Hidden activation H_l before dropout as (m, n_l), l = 1..L-1."""
        return self.H[l - 1].T

    def mask(self, l: int):
        """Scaled dropout mask of hidden layer l as (m, n_l), or None."""
        M = self.masks[l - 1]
        return None if M is None else M.T


def forward_into(ws: Workspace, Was, XA: np.ndarray, rng=None, masks=None) -> np.ndarray:
    """Forward pass into `ws`: XA = [XT; 1] (n0 + 1, m), Was[l] = [W_l; b_l] blocks.

    Layers with dropout draw a fresh mask from `rng` unless fixed `masks` (internal (n_l, m)
    layout, e.g. `cache.masks` of an earlier call) are given.
    """
    ws.A[0] = A = XA
    fwd = ws.act.forward
    for l in range(ws.L - 1):
        Z = ws.Z[l]
        np.dot(Was[l].T, A, out=Z)                    # (n_l, m), bias included via the ones row
        H = ws.H[l]
        fwd(Z, H)
        A = ws.A[l + 1]
        if ws.own_masks[l] is None:
            ws.masks[l] = None
            continue                                  # H already is A's first n_l rows
        if masks is not None and masks[l] is not None:
            M = masks[l]
        else:
            M = draw_mask(rng, ws.keep[l], ws.own_masks[l])
        ws.masks[l] = M
        np.multiply(H, M, out=A[:-1])                 # inverted dropout: the scale is in M
    Z = ws.Z[-1]
    np.dot(Was[-1].T, A, out=Z)                       # (n_out, m) logits
    return output_probs(Z, ws.output, out=ws.P)


def backward_into(ws: Workspace, Ws, TT: np.ndarray, gWas) -> None:
    """Gradients of the mean cross-entropy into the augmented blocks gWas (no penalty).

    Ws[l]: weights without the bias row (n_{l-1}, n_l); TT: targets (n_out, m).
    """
    D = ws.D[-1]
    np.subtract(ws.P, TT, out=D)
    np.multiply(D, ws.inv_m, out=D)                   # dJ/dZ_L = (P - T) / m
    bwd = ws.act.backward
    for l in range(ws.L - 1, -1, -1):
        np.dot(ws.A[l], D.T, out=gWas[l])             # [dW_l; db_l], (n_{l-1} + 1, n_l)
        if l == 0:
            break
        Dp = ws.D[l - 1]
        np.dot(Ws[l], D, out=Dp)                      # dJ/dA_{l-1}, (n_{l-1}, m)
        if ws.masks[l - 1] is not None:
            np.multiply(Dp, ws.masks[l - 1], out=Dp)  # same mask and scale as forward
        bwd(Dp, ws.H[l - 1], ws.tmp[l - 1])           # dJ/dZ_{l-1}
        D = Dp
