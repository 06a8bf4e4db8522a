"""Numerical gradient check: two-sided differences on the flattened parameter vector theta.

J(theta) is the exact (logit-form) cross-entropy plus the L2/L1 terms, evaluated with dropout
either off or with ONE fixed mask drawn once and reused for every perturbed evaluation (a fresh
mask per evaluation would make J random and the check meaningless).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.nn.network import Network

# Upper bounds of each verdict band: < 1e-7 correct, < 1e-5 borderline, < 1e-3 suspicious.
THRESHOLDS = (("correct", 1e-7), ("borderline", 1e-5), ("suspicious", 1e-3))
PASSING = ("correct", "borderline")


def verdict(relative_error: float) -> str:
    """correct < 1e-7 <= borderline < 1e-5 <= suspicious < 1e-3 <= wrong (nan is wrong)."""
    for name, bound in THRESHOLDS:
        if relative_error < bound:
            return name
    return "wrong"


def relative_error(approx: np.ndarray, exact: np.ndarray) -> float:
    """||approx - exact|| / (||approx|| + ||exact||); 0 when both are exactly zero."""
    denom = np.linalg.norm(approx) + np.linalg.norm(exact)
    if denom == 0:
        return 0.0
    return float(np.linalg.norm(approx - exact) / denom)


@dataclass(frozen=True)
class BlockResult:
    name: str                 # "W1", "b1", ...
    shape: tuple[int, ...]
    relative_error: float
    verdict: str


@dataclass(frozen=True)
class GradCheckReport:
    blocks: tuple[BlockResult, ...]
    relative_error: float     # over the whole vector theta
    verdict: str
    epsilon: float
    kinks: int = 0            # relu/leaky_relu pre-activations within 1e-6 of 0 (see format)

    @property
    def passed(self) -> bool:
        return self.verdict in PASSING and all(b.verdict in PASSING for b in self.blocks)

    def format(self) -> str:
        lines = [f"{'block':<8}{'shape':<12}{'relative error':>16}  verdict"]
        for b in self.blocks:
            lines.append(f"{b.name:<8}{str(b.shape):<12}{b.relative_error:>16.3e}  {b.verdict}")
        lines.append(f"{'overall':<20}{self.relative_error:>16.3e}  {self.verdict}")
        if self.kinks:
            lines.append(f"note: {self.kinks} hidden pre-activation(s) within 1e-6 of the relu "
                         f"kink at 0; a large error there can be the kink, not a bug")
        return "\n".join(lines)


def gradient_check(net: Network, X, y, *, l2: float = 0.0, l1: float = 0.0, keep_prob=1.0,
                   rng: np.random.Generator | None = None, epsilon: float = 1e-7, masks=None,
                   gradient_fn=None, loss_fn=None) -> GradCheckReport:
    """Compare `Network.gradient` (the one `fit` steps with) with two-sided differences of
    `Network.loss` for every parameter, in float64 on a copy of `net`.

    keep_prob < 1 draws one mask set from `rng` (or uses `masks`) and keeps it fixed.
    `gradient_fn(net, buffers, y, l2=, l1=)` replaces the gradient so tests can break it, and
    `loss_fn(net, X, y, masks, l2=, l1=)` replaces J (a cost missing a term, a fresh mask).
    Cost: 2 forward passes per parameter; use a few samples and a small network.
    """
    net = net.copy(np.float64)
    X = np.asarray(X, dtype=np.float64)
    training = masks is not None or np.min(keep_prob) < 1.0
    if training and masks is None:
        if rng is None:
            raise ValueError("gradient_check with keep_prob < 1 needs rng to draw the fixed mask")
        masks = net.forward(X, keep_prob=keep_prob, rng=rng, training=True)[1].masks
    masks = list(masks) if masks is not None else None

    def J() -> float:
        if loss_fn is not None:
            return loss_fn(net, X, y, masks, l2=l2, l1=l1)
        return net.loss(net.forward(X, masks=masks, training=training)[1], y, l2=l2, l1=l1)

    buf = net.forward(X, masks=masks, training=training)[1]
    if gradient_fn is None:
        grads = net.gradient(buf, y, l2=l2, l1=l1)
    else:
        grads = gradient_fn(net, buf, y, l2=l2, l1=l1)
    layout, theta = net.layout, net.theta
    exact = np.concatenate([np.ravel(grads[k]) for k in layout.keys])   # layout order
    approx = np.empty_like(theta)
    for i in range(theta.size):
        saved = theta[i]
        theta[i] = saved + epsilon
        j_plus = J()
        theta[i] = saved - epsilon
        j_minus = J()
        theta[i] = saved
        approx[i] = (j_plus - j_minus) / (2.0 * epsilon)
    blocks = []
    for key in layout.keys:
        s = layout.slices[key]
        err = relative_error(approx[s], exact[s])
        blocks.append(BlockResult(key, layout.shapes[key], err, verdict(err)))
    total = relative_error(approx, exact)
    kinks = 0
    if net.arch.hidden_activation in ("relu", "leaky_relu"):
        kinks = sum(int(np.count_nonzero(np.abs(Z) < 1e-6)) for Z in buf.Z[:-1])
    return GradCheckReport(tuple(blocks), total, verdict(total), epsilon, kinks)
