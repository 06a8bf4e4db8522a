"""Cost contours of a two-weight logistic model, raw vs standardized inputs, with descent paths.

The model is z = w1 x1 + w2 x2 (no bias: the bias is fixed at 0, so the whole parameter vector
is the plotted plane and the path drawn IS gradient descent, not a projection of it). The cost
is the mean cross-entropy J(w) = mean(log(1 + e^z) - y z). Its Hessian is X^T S X / m, so
features of very different scales make it ill-conditioned: elongated ellipses, and a learning
rate small enough for the steep direction crawls along the flat one, zig-zagging across the
valley. Standardized features give round contours and a direct path.

"Stable" here: the cost never increases along the path (and stays finite). Each input scaling
gets its own best stable learning rate from a grid: the one that comes within 1e-3 of the
minimum cost in the fewest steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

RATES = tuple(float(r) for r in np.logspace(-7, 1, 33))   # 4 per decade, 1e-7 .. 10


def logistic_cost(X: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """J at each of k weight pairs: X (m, 2), y (m,), W (k, 2) -> (k,)."""
    Z = X @ np.asarray(W, dtype=float).T                       # (m, k)
    return np.mean(np.logaddexp(0.0, Z) - y[:, None] * Z, axis=0)


def logistic_gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dJ/dw (2,) at w (2,)."""
    p = 0.5 * (1.0 + np.tanh(0.5 * (X @ w)))                   # sigmoid without overflow
    return X.T @ (p - y) / X.shape[0]


def descent_path(X, y, start, lr: float, steps: int) -> np.ndarray:
    """Gradient descent from `start`: the weights after 0..steps steps, (steps + 1, 2)."""
    path = np.empty((steps + 1, 2))
    path[0] = start
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            path[t + 1] = path[t] - lr * logistic_gradient(X, y, path[t])
    return path


def optimum(X, y, iterations: int = 50) -> np.ndarray:
    """The minimizer by Newton's method (J is convex; 2 x 2 Hessian solves)."""
    w = np.zeros(2)
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (X @ w)))
        H = (X * (p * (1 - p))[:, None]).T @ X / X.shape[0] + 1e-12 * np.eye(2)
        w = w - np.linalg.solve(H, X.T @ (p - y) / X.shape[0])
    return w


@dataclass(frozen=True)
class Descent:
    rate: float               # the best stable learning rate of the grid
    path: np.ndarray          # (steps + 1, 2)
    costs: np.ndarray         # (steps + 1,) J along the path
    steps_to_tol: int | None  # first step with J - min J <= tol (None: not within the steps)


def best_stable(X, y, start, steps: int, rates: Sequence[float] = RATES,
                tol: float = 1e-3) -> Descent:
    """Among the grid's stable rates (J finite and never increasing), the one whose path first
    comes within `tol` of the minimum (the lesson's epochs-to-threshold, for this small model);
    if none does within `steps`, the lowest final cost. Ties go to the smaller rate."""
    j_star = float(logistic_cost(X, y, optimum(X, y)[None])[0])
    best, key = None, None
    for lr in sorted(rates):
        path = descent_path(X, y, start, lr, steps)
        costs = logistic_cost(X, y, path)
        if not (np.all(np.isfinite(costs)) and np.all(np.diff(costs) <= 1e-12)):
            continue
        near = np.flatnonzero(costs - j_star <= tol)
        hit = int(near[0]) if near.size else None
        k = (hit if hit is not None else steps + 1, float(costs[-1]))
        if key is None or k < key:
            best, key = Descent(lr, path, costs, hit), k
    if best is None:
        raise ValueError(f"no stable learning rate among {len(rates)} rates from {min(rates):g}")
    return best


def _window(points: np.ndarray, pad: float = 0.15) -> tuple[np.ndarray, float]:
    """Centre and half-width of a square around `points` (k, 2): equal scales on both axes,
    so an elongated cost is drawn elongated."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    half = max(0.5 * float(np.max(hi - lo)) * (1 + 2 * pad), 1e-9)
    return (lo + hi) / 2, half


def draw_contours(ax, X, y, descent: Descent, w_star: np.ndarray, title: str,
                  resolution: int = 160) -> None:
    """J(w1, w2) as contours (levels log-spaced above the minimum) with the path on top."""
    centre, half = _window(np.vstack([descent.path, w_star]))
    g1 = np.linspace(centre[0] - half, centre[0] + half, resolution)
    g2 = np.linspace(centre[1] - half, centre[1] + half, resolution)
    G1, G2 = np.meshgrid(g1, g2)
    J = logistic_cost(X, y, np.column_stack([G1.ravel(), G2.ravel()])).reshape(G1.shape)
    j_star = float(logistic_cost(X, y, w_star[None])[0])
    top = max(float(descent.costs[0]), j_star + 1e-6) - j_star
    levels = j_star + top * np.geomspace(1e-3, 1.0, 12)
    ax.contour(G1, G2, J, levels=levels, cmap="viridis", linewidths=0.8)
    p = descent.path
    ax.plot(p[:, 0], p[:, 1], ".-", color="tab:red", lw=1.0, ms=3,
            label=f"gradient descent, lr {descent.rate:.2g}")
    ax.plot(*p[0], "o", color="k", ms=5, label="start")
    ax.plot(*w_star, "*", color="gold", mec="k", ms=12, label="minimum")
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")


def cost_contours(X_raw: np.ndarray, y: np.ndarray, *, start=(0.0, 0.0), steps: int = 40,
                  rates: Sequence[float] = RATES, note: str = "") -> Figure:
    """Raw X_raw (m, 2) vs standardized (its own mean and std): the cost contours of a
    two-weight logistic model (bias fixed at 0), each with `steps` steps of gradient descent
    from the same `start` at that scaling's best stable rate, and the cost along both paths."""
    X_raw = np.asarray(X_raw, dtype=float)
    y = np.asarray(y, dtype=float)
    X_std = (X_raw - X_raw.mean(axis=0)) / X_raw.std(axis=0)
    fig = Figure(figsize=(13, 4.6))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
    start = np.asarray(start, dtype=float)
    for ax, (name, X) in zip(axes, (("raw", X_raw), ("standardized", X_std))):
        d = best_stable(X, y, start, steps, rates)
        w_star = optimum(X, y)
        j_star = float(logistic_cost(X, y, w_star[None])[0])
        spread = X.std(axis=0)
        near = "not within" if d.steps_to_tol is None else f"{d.steps_to_tol} steps to"
        draw_contours(ax, X, y, d, w_star,
                      f"{name} inputs (std of x1, x2: {spread[0]:.2g}, {spread[1]:.2g})\n"
                      f"best stable lr {d.rate:.2g}: {near} min J + 0.001 (min J {j_star:.3f})")
        gap = np.maximum(d.costs - j_star, 1e-16)
        axes[2].plot(np.arange(steps + 1), gap, label=f"{name}, lr {d.rate:.2g}")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("gradient-descent step")
    axes[2].set_ylabel("J - min J")
    axes[2].set_title("cost above its minimum along each path", fontsize=9)
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Logistic model z = w1 x1 + w2 x2 (bias fixed at 0): cost contours and "
                 f"{steps} steps of gradient descent from the same start w = ({start[0]:g}, {start[1]:g})"
                 + (f"\n{note}" if note else ""),
                 fontsize=10)
    fig.tight_layout()
    return fig
