"""Pictures of data: 2-D points coloured by class, or a grid of example images per class."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure


def plot_dataset(data, title: str | None = None, *, classes: Sequence[str] | None = None,
                 image_shape: tuple[int, int] | None = None, per_class: int = 6) -> Figure:
    """A figure of a `Dataset` or an open `Split` (anything with X (m, n) and y (m,)).

    2 features: a scatter, one colour per class, legend with the class names. Images
    (`image_shape` given or carried by the Dataset): `per_class` examples of each class in a
    grid. Anything else raises ValueError: there is no honest 2-D picture of it here.
    """
    X, y = np.asarray(data.X), np.asarray(data.y)
    names = tuple(classes or getattr(data, "classes", None) or (str(c) for c in range(int(y.max()) + 1)))
    shape = image_shape or getattr(data, "image_shape", None)
    label = title if title is not None else getattr(data, "name", "")
    if shape is not None:
        return _image_grid(X, y, names, tuple(shape), label, per_class)
    if X.shape[1] != 2:
        raise ValueError(f"plot_dataset draws 2-D points or images; this data has {X.shape[1]} features "
                         "and no image_shape")
    return _scatter(X, y, names, label)


def _scatter(X: np.ndarray, y: np.ndarray, names: Sequence[str], title: str) -> Figure:
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    colours = _colours(len(names))
    for c, name in enumerate(names):
        pts = X[y == c]  # (m_c, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=10, color=colours[c], edgecolors="k", linewidths=0.2,
                   label=f"{name} ({len(pts)})")
    ax.set_aspect("equal", adjustable="datalim")  # rings look like rings
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(loc="best", fontsize=8, title="class (rows)", title_fontsize=8)
    ax.set_title(f"{title}: {len(y)} rows" if title else f"{len(y)} rows", fontsize=10)
    fig.tight_layout()
    return fig


def _image_grid(X, y, names, shape, title, per_class) -> Figure:
    h, w = shape
    if h * w != X.shape[1]:
        raise ValueError(f"image_shape {shape} has {h * w} pixels but the data has {X.shape[1]} features")
    k = len(names)
    fig = Figure(figsize=(per_class * 0.9, k * 0.9 + 0.4), layout="constrained")
    axes = fig.subplots(k, per_class, squeeze=False)
    vmax = float(X.max()) or 1.0  # one scale for every tile, so faint digits look faint
    for c in range(k):
        rows = np.flatnonzero(y == c)[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(rows):
                ax.imshow(X[rows[j]].reshape(h, w), cmap="gray_r", vmin=0.0, vmax=vmax)
            if j == 0:
                ax.set_ylabel(names[c], rotation=0, labelpad=12, fontsize=9)
    fig.suptitle(f"{title}: {len(y)} rows" if title else f"{len(y)} rows", fontsize=10)
    return fig


def _colours(k: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(c % 10) for c in range(k)]
