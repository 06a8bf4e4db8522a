"""Figures of a training run: decision boundary, confusion matrix, learning curves, grad norms.

Each function returns a `matplotlib.figure.Figure` built without pyplot (no global state, no
display), so the tracking layer can log it and tests can inspect it.

Cost (they are drawn once per run, but for a short run they were a third of its wall time):
fixed margins instead of a tight layout (which measured every tick label's box: 60% of the
time of saving a figure), the boundary is a raster (`imshow`, not `contourf`), and legends
have a fixed place (`loc="best"` tests every data point for overlap).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

_CMAP = "coolwarm"


def decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                      classes: Sequence[str], *, title: str = "", resolution: int = 200) -> Figure:
    """Predicted class over a grid covering X (m, 2), with the points coloured by true label.

    `predict` maps raw points (k, 2) to label codes (k,); the grid is in the same raw units.
    """
    fig = Figure(figsize=(5.5, 5))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.9)
    draw_boundary(fig.add_subplot(), predict, X, y, classes, title=title, resolution=resolution)
    return fig


def draw_boundary(ax, predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                  classes: Sequence[str], *, title: str = "", resolution: int = 200,
                  legend: bool = True, points: str = "") -> float:
    """`decision_boundary` onto an existing axes (side-by-side comparisons); returns the
    accuracy on X. `points` names what X is (e.g. "train"), so the accuracy in the title says
    which data it was measured on."""
    if X.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2 features, got {X.shape[1]}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.05 * (hi - lo) + 1e-9
    g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    G1, G2 = np.meshgrid(g1, g2)                                  # (r, r) each
    Z = predict(np.column_stack([G1.ravel(), G2.ravel()])).reshape(G1.shape)
    k = len(classes)
    ax.imshow(Z, origin="lower", extent=(g1[0], g1[-1], g2[0], g2[-1]), aspect="auto",
              cmap=_CMAP, vmin=0, vmax=max(k - 1, 1), alpha=0.3, interpolation="nearest")
    for c, name in enumerate(classes):
        pts = X[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=12, label=str(name), edgecolors="k", linewidths=0.3,
                   color=_class_colour(c, k))
    acc = float(np.mean(predict(X) == y))
    shown = f"{points} accuracy {acc:.1%}" if points else f"accuracy {acc:.1%}"
    ax.set_title(f"{title}\n{shown}" if title else shown, fontsize=9)
    if legend:
        ax.legend(loc="upper right", fontsize=8, title="true label", framealpha=0.8)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    return acc


def _class_colour(c: int, k: int):
    from matplotlib import colormaps

    return colormaps[_CMAP](c / max(k - 1, 1))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], *,
              title: str = "") -> Figure:
    """Counts with row = true class, column = predicted class (for data with != 2 features)."""
    from pipeline.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, len(classes))          # (k, k)
    fig = Figure(figsize=(5.5, 5))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes], fontsize=7)
    ax.set_yticks(ticks, [str(c) for c in classes], fontsize=7)
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                color="white" if n > cm.max() / 2 else "black")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}  accuracy {acc:.1%}", fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def learning_curves(history: Mapping[str, Sequence[float]], best_epoch: int | None = None) -> Figure:
    """Train/dev loss and accuracy against epoch, with the best (restored) epoch marked."""
    epochs = np.asarray(history["epoch"])
    fig = Figure(figsize=(10, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.9, wspace=0.22)
    for i, what in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for split, style in (("train", "-"), ("dev", "--")):
            key = f"{split}_{what}"
            if key in history:
                ax.plot(epochs, history[key], style, label=split)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", lw=0.8, ls=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.legend(fontsize=8, loc="upper right" if what == "loss" else "lower right")
        ax.grid(alpha=0.3)
    fig.suptitle("learning curves (evaluation mode: no dropout)", fontsize=10)
    return fig


def gradient_norms(history: Mapping[str, Sequence[float]]) -> Figure:
    """Frobenius norm of each weight matrix's gradient per evaluation (log scale)."""
    epochs = np.asarray(history["epoch"])
    keys = sorted((k for k in history if k.startswith("grad_norm_W")), key=lambda k: int(k[11:]))
    fig = Figure(figsize=(6, 4))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    ax = fig.add_subplot()
    for key in keys:
        values = np.asarray(history[key], dtype=float)
        ax.plot(epochs, np.where(values > 0, values, np.nan), label=f"layer {key[11:]} (dJ/d{key[10:]})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("||dJ/dW||_F")
    ax.set_title("gradient norm per layer", fontsize=10)
    if keys:
        ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return fig
