"""The network's steps, each forward beside its backward (micrograd's idea), and the one
forward/backward pass built from them over preallocated `Buffers`.

Inside, arrays are FEATURES-FIRST, (n_l, m): for small layers the bias broadcast and the BLAS
calls are several times cheaper per call than samples-first, and that per-call cost is most of
the time of a small network. Parameters are augmented blocks Wa_l = [W_l; b_l]
(n_{l-1} + 1, n_l) and every layer input ends in a row of ones, so Z_l = Wa_l.T @ [A; 1] is ONE
matrix product and dJ/dWa_l = [A; 1] @ dZ.T gives the bias gradient with the weights'.
`Network` (network.py) transposes at its public boundary; `fit` calls `forward`/`backward`
here directly on the same buffers, so there is one pass, not two.
"""

from __future__ import annotations

import numpy as np

from pipeline.nn.activations import get_activation
from pipeline.nn.losses import output_probs


# ------------------------------------------------------------------ dense: Z = Wa.T @ [A; 1]
def dense_forward(Wa: np.ndarray, A: np.ndarray, Z: np.ndarray) -> None:
    np.dot(Wa.T, A, out=Z)                            # (n_l, m), bias via the ones row


def dense_backward(W: np.ndarray, A: np.ndarray, D: np.ndarray, gWa: np.ndarray,
                   D_in: np.ndarray | None) -> None:
    np.dot(A, D.T, out=gWa)                           # [dW; db], (n_{l-1} + 1, n_l)
    if D_in is not None:
        np.dot(W, D, out=D_in)                        # dJ/dA_{l-1}, (n_{l-1}, m)


# ------------------------------------------------------------------ inverted dropout
def draw_mask(rng: np.random.Generator, keep_prob: float, out: np.ndarray) -> np.ndarray:
    """Fill `out` (n, m) with the scaled mask: 1/keep_prob with probability keep_prob, else 0."""
    rng.random(dtype=out.dtype, out=out)
    np.less(out, keep_prob, out=out)                  # 1.0 where kept
    out *= 1.0 / keep_prob
    return out


def dropout_forward(H: np.ndarray, M: np.ndarray, A_out: np.ndarray) -> None:
    np.multiply(H, M, out=A_out)                      # the 1/keep_prob scale is in M


def dropout_backward(D: np.ndarray, M: np.ndarray) -> None:
    np.multiply(D, M, out=D)                          # same mask and scale as forward


# ------------------------------------------------------------------ output + cross-entropy
def output_backward(P: np.ndarray, T: np.ndarray, inv_m: float, D: np.ndarray) -> None:
    """dJ/dZ_L = (P - T) / m for sigmoid + BCE and softmax + CE alike (forward: output_probs)."""
    np.subtract(P, T, out=D)
    np.multiply(D, inv_m, out=D)


def keep_per_layer(keep_prob, n_hidden: int) -> tuple[float, ...]:
    """One keep probability per hidden layer (a scalar applies to all). Bounds are the config's
    business; a sequence of the wrong length is a shape error."""
    if np.ndim(keep_prob) == 0:
        return (float(keep_prob),) * n_hidden
    values = tuple(float(v) for v in keep_prob)
    if len(values) != n_hidden:
        raise ValueError(f"keep_prob must have one entry per hidden layer ({n_hidden}), "
                         f"got {len(values)}: {tuple(keep_prob)}")
    return values


def dropout_flags(arch, keep=None, dropout=None) -> tuple[bool, ...]:
    """Which hidden layers hold dropout buffers: `dropout` (one flag per hidden layer) when
    given, else the layers whose keep probability is below 1 (`keep=None`: none)."""
    if dropout is not None:
        flags = tuple(bool(d) for d in dropout)
        if len(flags) != arch.n_hidden:
            raise ValueError(f"dropout must have one flag per hidden layer ({arch.n_hidden}), "
                             f"got {len(flags)}")
        return flags
    return tuple(k < 1.0 for k in keep_per_layer(1.0 if keep is None else keep, arch.n_hidden))


def buffer_rows(arch, keep=None, *, dropout=None) -> int:
    """Rows of (n, m) arrays one `Buffers` of `keep` (or `dropout` flags) holds per sample: its
    size is this times m times the item size (`choose_batch_size` and the evaluation's chunks
    budget with it)."""
    sizes, drop = arch.layer_sizes, dropout_flags(arch, keep, dropout)
    dropped = sum(n for n, d in zip(sizes[1:-1], drop) if d)
    return (sum(n + 1 for n in sizes[1:-1]) + 2 * sum(sizes[1:]) + 2 * dropped + sizes[-1]
            + max(sizes[1:]))


# Evaluation (and prediction) runs over chunks of about this many bytes of buffers, not over
# the whole split at once: a 600,000-row train split of the default network held a 2.6 GB
# buffer set for evaluation alone. Below ~10,000 rows a chunk's per-call overhead shows.
EVAL_CHUNK_BYTES = 64 * 2**20


def eval_chunk_rows(arch, dtype) -> int:
    """Samples per evaluation chunk: EVAL_CHUNK_BYTES of evaluation-mode buffers, >= 4096."""
    return max(4096, EVAL_CHUNK_BYTES // (buffer_rows(arch) * np.dtype(dtype).itemsize))


class Buffers:
    """Every array one pass over a batch of m samples needs, allocated once, as views of ONE
    flat `arena` (buffer_rows * m items).

    A[l] layer inputs (n_l + 1, m) ending in a row of ones (A[0] is the caller's [XT; 1]);
    Z[l] pre-activations (the last one the logits); H[l] hidden activations before dropout
    (the first rows of A[l + 1] when layer l has no dropout); masks[l] the scaled mask of the
    last forward or None; P probabilities (n_out, m); D[l] dJ/dZ.

    `keep`: the keep probability per hidden layer (or one for all) the forward draws masks
    with; layers with keep < 1 get dropout buffers; `keep=None` is evaluation mode (no dropout
    anywhere). `dropout` instead (one flag per hidden layer, `keep` left None): buffers for
    replaying fixed masks, which draws nothing, so `self.keep` is None.

    `arena`: carve the arrays from the front of an existing arena (another Buffers' of at
    least as many items) instead of allocating: a shorter batch or an evaluation chunk then
    costs no memory. Buffers sharing an arena overwrite each other's ones rows: call `ones()`
    before using one after another was used.
    """

    def __init__(self, arch, m: int, dtype, keep=None, arena: np.ndarray | None = None, *,
                 dropout=None):
        sizes, self.L, self.output, self.m = arch.layer_sizes, arch.n_layers, arch.output, m
        self.act = get_activation(arch.hidden_activation)
        if dropout is not None and keep is not None:
            raise ValueError("Buffers takes keep probabilities or dropout flags, not both")
        self.keep = (None if dropout is not None else
                     keep_per_layer(1.0 if keep is None else keep, arch.n_hidden))
        self.dropout = drop = dropout_flags(arch, self.keep, dropout)
        need = buffer_rows(arch, dropout=drop) * m
        if arena is None:
            arena = np.empty(need, dtype=dtype)
        elif arena.size < need or arena.dtype != np.dtype(dtype):
            raise ValueError(f"arena of {arena.size} {arena.dtype} items cannot hold {need} "
                             f"{np.dtype(dtype)} items ({m} samples)")
        self.arena, at = arena, 0

        def new(n):
            nonlocal at
            at += n * m
            return arena[at - n * m:at].reshape(n, m)

        self.A: list = [None] + [_with_ones(new(n + 1)) for n in sizes[1:-1]]
        self.Z = [new(n) for n in sizes[1:]]
        self.H = [new(n) if d else A[:-1] for n, d, A in zip(sizes[1:-1], drop, self.A[1:])]
        self.own_masks = [new(n) if d else None for n, d in zip(sizes[1:-1], drop)]
        self.masks: list = [None] * arch.n_hidden
        self.P = new(sizes[-1])
        self.D = [new(n) for n in sizes[1:]]
        scratch = new(max(sizes[1:])).reshape(-1)
        self.tmp = [scratch[: m * n].reshape(n, m) for n in sizes[1:-1]]
        self.inv_m = 1.0 / m

    def ones(self) -> "Buffers":
        """Rewrite the ones rows (another Buffers on the same arena may have overwritten them)."""
        for A in self.A[1:]:
            _with_ones(A)
        return self


def _with_ones(A: np.ndarray) -> np.ndarray:
    A[-1] = 1.0
    return A


def with_ones(XT: np.ndarray) -> np.ndarray:
    """[XT; 1]: features-first inputs (n, m) with a row of ones appended, (n + 1, m)."""
    out = np.empty((XT.shape[0] + 1, XT.shape[1]), dtype=XT.dtype)
    out[:-1] = XT
    return _with_ones(out)


def forward(buf: Buffers, Was, XA: np.ndarray, rng=None, masks=None) -> np.ndarray:
    """Probabilities (n_out, m) of XA = [XT; 1] (n0 + 1, m); Was[l] = [W_l; b_l].

    Layers with dropout buffers draw a fresh mask from `rng` unless fixed `masks` (a list per
    hidden layer in this (n_l, m) layout, e.g. the `masks` of an earlier pass) are given.
    """
    buf.A[0] = A = XA
    act = buf.act.forward
    for l in range(buf.L - 1):
        dense_forward(Was[l], A, buf.Z[l])
        act(buf.Z[l], buf.H[l])
        A = buf.A[l + 1]
        own = buf.own_masks[l]
        if own is None:
            continue                                  # H already is A's first n_l rows
        M = masks[l] if masks is not None else draw_mask(rng, buf.keep[l], own)
        buf.masks[l] = M
        dropout_forward(buf.H[l], M, A[:-1])
    dense_forward(Was[-1], A, buf.Z[-1])
    return output_probs(buf.Z[-1], buf.output, out=buf.P)


def backward(buf: Buffers, Ws, TT: np.ndarray, gWas) -> None:
    """Gradients of the mean cross-entropy of the last `forward` into gWas (no penalty).

    Ws[l]: weights without the bias row (n_{l-1}, n_l); TT: targets (n_out, m).
    """
    D = buf.D[-1]
    output_backward(buf.P, TT, buf.inv_m, D)
    act = buf.act.backward
    for l in range(buf.L - 1, -1, -1):
        D_in = buf.D[l - 1] if l else None
        dense_backward(Ws[l], buf.A[l], D, gWas[l], D_in)
        if D_in is None:
            break
        if buf.masks[l - 1] is not None:
            dropout_backward(D_in, buf.masks[l - 1])
        act(D_in, buf.H[l - 1], buf.tmp[l - 1])       # dJ/dZ_{l-1}
        D = D_in
