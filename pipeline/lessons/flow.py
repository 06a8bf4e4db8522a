"""The trend of a signal with depth, for the gradient_flow lessons: how fast it grows or dies
per layer in the direction it travels, not only how large it is.

Both halves of a pass are read the same way, in the direction the signal travels: the forward
signal (each hidden layer's activations, `pipeline.nn.hidden_signal`) from the first hidden
layer to the last, the gradient (||dJ/dW_l||) from the last layer back to the first. Negative
numbers mean the signal dies on its way, positive that it grows: log10 of end over start,
and the least-squares slope of log10 against the number of layers travelled. A line flat at
1e-31 has neither: it is a level, and a slope of 0 says so.
"""

from __future__ import annotations

import math

import numpy as np


def log10_trend(values) -> tuple[float, float]:
    """(log10(end / start), least-squares slope of log10 v per step) of `values` (k,) ordered
    in the direction of travel; (nan, nan) when one is 0 or not finite (no log) or k < 2."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or np.any(~np.isfinite(v)) or np.any(v <= 0):
        return math.nan, math.nan
    logs = np.log10(v)
    steps = np.arange(v.size, dtype=float)
    slope = np.polyfit(steps, logs, 1)[0]
    return float(logs[-1] - logs[0]), float(slope)


def activation_flow(signal) -> dict[str, float]:
    """Metrics of the forward signal per hidden layer (first to last): act_A<l>, the first and
    last layer's, and their trend (log10 last/first, slope per layer toward the output)."""
    signal = np.asarray(signal, dtype=float)
    ratio, slope = log10_trend(signal)
    out = {f"act_A{l}": float(v) for l, v in enumerate(signal, start=1)}
    out.update(act_norm_first=float(signal[0]), act_norm_last=float(signal[-1]),
               log10_act_ratio=ratio, log10_act_slope=slope)
    return out
