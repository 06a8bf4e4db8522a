"""Inverted dropout: a keep_prob per hidden layer, masks drawn from a Generator, scaled."""

from __future__ import annotations

import numbers

import numpy as np


def normalize_keep_prob(keep_prob, n_hidden: int) -> tuple[float, ...]:
    """One keep probability per hidden layer; a scalar applies to all of them.

    A sequence must have exactly one entry per hidden layer; every value must lie in (0, 1].
    """
    if isinstance(keep_prob, numbers.Real):
        values, shown = (float(keep_prob),) * n_hidden, keep_prob
        checked = (float(keep_prob),)
    else:
        values = checked = tuple(float(v) for v in keep_prob)
        shown = tuple(keep_prob)
        if len(values) != n_hidden:
            raise ValueError(
                f"keep_prob must have one entry per hidden layer ({n_hidden}), "
                f"got {len(values)}: {shown}"
            )
    if not all(0.0 < v <= 1.0 for v in checked):
        raise ValueError(f"keep_prob must be in (0, 1], got {shown}")
    return values


def draw_mask(rng: np.random.Generator, keep_prob: float, out: np.ndarray) -> np.ndarray:
    """Fill `out` (m, n) with the scaled mask: 1/keep_prob with probability keep_prob, else 0."""
    rng.random(dtype=out.dtype, out=out)
    np.less(out, keep_prob, out=out)  # 1.0 where kept
    out *= 1.0 / keep_prob
    return out
