"""A lesson's figures as values: {"lesson/<name>.png": Figure} (matplotlib only, no pyplot).

comparison  the arms' decision boundaries side by side (2-D data; one seed's model per arm,
            the seed whose dev accuracy is the arm's median, named in the title) above their
            learning curves overlaid: mean over seeds with a min-max (or std) band
grad_flow   layer index vs ||dJ/dW_l|| at the first step, one line per arm (log scale)
gradcheck   per-block relative error of each arm, with the verdict thresholds
diagnoses   the grid's cells placed on the four bias/variance diagnoses, with the next step
            (a grid's comparison figure; its curves go to lesson/curves.png)
cell_curves a grid's learning curves as small multiples: one panel per cell (rows x cols, one
            y scale), each curve key its own colour, the legend below the panels
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.plots.training import draw_boundary

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def representative(runs: Sequence, arm: str, metric: str = "dev_accuracy"):
    """The arm's run whose `metric` is the median over seeds (lower median; ties: lower seed)."""
    mine = sorted((r for r in runs if r.arm == arm), key=lambda r: (r.metrics.get(metric, 0.0),
                                                                     r.seed))
    return mine[(len(mine) - 1) // 2]


def comparison(lesson, runs: Sequence, arms: Sequence[str]) -> Figure:
    model = runs[0].model
    boundaries = lesson.figure.boundary and model is not None and model.X.shape[1] == 2
    ncols = min(len(arms), 4) if boundaries else 0
    nrows = -(-len(arms) // ncols) if boundaries else 0
    n_curves = len(lesson.figure.curves)
    width = max(4.0 * max(ncols, 1), 5.0 * n_curves)
    fig = Figure(figsize=(width, 3.8 * nrows + 3.6))
    grid = fig.add_gridspec(nrows + 1, ncols * n_curves if boundaries else n_curves,
                            height_ratios=[1.05] * nrows + [1.0])
    if boundaries:
        for i, arm in enumerate(arms):
            run = representative(runs, arm)
            r, c = divmod(i, ncols)
            ax = fig.add_subplot(grid[r, c * n_curves:(c + 1) * n_curves])
            n = sum(1 for x in runs if x.arm == arm)
            # the points drawn are the run's (possibly noisy) training set: its accuracy there
            # is not the lesson's measure, so the title leads with the dev accuracy
            dev = run.metrics.get("dev_accuracy", float("nan"))
            draw_boundary(ax, run.model.predict, run.model.X, run.model.y, run.model.classes,
                          title=f"{arm}: dev accuracy {dev:.1%}\n(seed {run.seed}, the median of {n})",
                          resolution=200, legend=i == 0, points="train points shown, train")
    span = ncols if boundaries else 1
    for j, key in enumerate(lesson.figure.curves):
        ax = fig.add_subplot(grid[nrows, j * span:(j + 1) * span])
        overlay(ax, runs, arms, key, lesson.figure.band, threshold=_threshold(lesson, key))
    fig.suptitle(f"{lesson.title}: {len(arms)} arms x {len(runs) // max(len(arms), 1)} seeds",
                 fontsize=11)
    fig.tight_layout()
    return fig


def _threshold(lesson, key):
    t = lesson.threshold
    return t.value if t is not None and t.metric == key else None


def _series(history, key: str) -> list:
    """A curve of the history; train_error (not recorded) is 1 - train_accuracy."""
    if key == "train_error" and key not in history and "train_accuracy" in history:
        return [1.0 - v for v in history["train_accuracy"]]
    return history.get(key, [])


def curves(runs: Sequence, arm: str, key: str) -> pd.DataFrame:
    """Evaluations x seeds of one metric (NaN where a seed stopped earlier)."""
    cols = {r.seed: pd.Series(_series(r.history, key), index=r.history["epoch"][:len(
        _series(r.history, key))], dtype=float) for r in runs if r.arm == arm}
    return pd.DataFrame(cols).sort_index()


def overlay(ax, runs, arms, key: str, band: str = "minmax", threshold=None) -> None:
    for i, arm in enumerate(arms):
        frame = curves(runs, arm, key)
        if frame.empty:
            continue
        colour = _COLOURS[i % len(_COLOURS)]
        mean = frame.mean(axis=1)
        if band == "std":
            lo, hi = mean - frame.std(axis=1).fillna(0), mean + frame.std(axis=1).fillna(0)
        else:
            lo, hi = frame.min(axis=1), frame.max(axis=1)
        ax.plot(frame.index, mean, color=colour, lw=1.3, label=arm)
        ax.fill_between(frame.index, lo, hi, color=colour, alpha=0.15, lw=0)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls=":", lw=0.9, label=f"threshold {threshold:g}")
    if "loss" in key:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(f"{key}: mean over seeds, band = {'±1 std' if band == 'std' else 'min-max'}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)


def cell_curves(lesson, runs: Sequence, cells: Mapping[str, object]) -> Figure:
    """One panel per grid cell with the figure's curves (mean over seeds, min-max band), the
    cell's diagnosis in its title: 12 overlaid curves could not be read."""
    rows, cols, keys = list(lesson.grid.rows), list(lesson.grid.cols), lesson.figure.curves
    fig = Figure(figsize=(3.2 * len(cols) + 0.6, 2.5 * len(rows) + 1.2))
    axes = fig.subplots(len(rows), len(cols), sharex=True, sharey=True, squeeze=False)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax, cell = axes[i][j], f"{r}/{c}"
            for k, key in enumerate(keys):
                frame = curves(runs, cell, key)
                if frame.empty:
                    continue
                colour = _COLOURS[k % len(_COLOURS)]
                ax.plot(frame.index, frame.mean(axis=1), color=colour, lw=1.3, label=key)
                ax.fill_between(frame.index, frame.min(axis=1), frame.max(axis=1),
                                color=colour, alpha=0.2, lw=0)
            d = cells.get(cell)
            ax.set_title(f"{cell}: {d.verdict}" if d is not None else cell, fontsize=8,
                         backgroundcolor=_DIAG_COLOURS.get(getattr(d, "verdict", ""), "white"))
            ax.grid(alpha=0.3)
            if any("loss" in key for key in keys):
                ax.set_yscale("log")
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(keys), fontsize=8)
    fig.suptitle(textwrap.fill(f"{lesson.title}: {', '.join(keys)} per cell (mean over seeds, "
                               f"band min-max)", 70), fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def grad_flow(runs: Sequence, arms: Sequence[str]) -> Figure:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    notes = []
    for i, arm in enumerate(arms):
        mine = [r for r in runs if r.arm == arm]
        layers = sorted(int(k[6:]) for k in mine[0].metrics if k.startswith("grad_W"))
        norms = np.array([[r.metrics[f"grad_W{l}"] for l in layers] for r in mine])  # (seeds, L)
        if np.all(norms == 0):
            notes.append(f"{arm}: every weight gradient is exactly 0")
            continue
        with np.errstate(divide="ignore"):
            logs = np.where(norms > 0, np.log10(np.where(norms > 0, norms, 1)), np.nan)
        colour = _COLOURS[i % len(_COLOURS)]
        ax.plot(layers, np.nanmean(logs, axis=0), "o-", ms=3, color=colour, label=arm)
        ax.fill_between(layers, np.nanmin(logs, axis=0), np.nanmax(logs, axis=0), color=colour,
                        alpha=0.15, lw=0)
    ax.set_xlabel("layer l (1 = first hidden layer's weights)")
    ax.set_ylabel("log10 ||dJ/dW_l||  at the first step")
    ax.set_title("gradient norm per layer at initialization: mean over seeds, band min-max",
                 fontsize=9)
    if notes:
        ax.text(0.01, 0.01, "\n".join(notes), transform=ax.transAxes, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gradcheck(runs: Sequence, arms: Sequence[str]) -> Figure:
    from pipeline.nn.gradcheck import THRESHOLDS

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    blocks = list(runs[0].blocks)
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        errs = np.array([[r.blocks[b] for b in blocks] for r in runs if r.arm == arm])
        worst = np.maximum(errs.max(axis=0), 1e-16)          # the worst seed: a check is a bound
        ax.bar(np.arange(len(blocks)) + i * width, worst, width, label=arm,
               color=_COLOURS[i % len(_COLOURS)])
    for name, bound in THRESHOLDS:
        ax.axhline(bound, ls=":", lw=0.8, color="k")
        ax.text(len(blocks) - 0.4, bound, f" {name} <", fontsize=7, va="bottom")
    ax.set_xticks(np.arange(len(blocks)) + 0.4 - width / 2, blocks)
    ax.set_yscale("log")
    ax.set_ylabel("relative error (worst seed)")
    ax.set_title("gradient check per parameter block", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


_DIAG_COLOURS = {"fine": "#b7e4c7", "high bias": "#ffd6a5", "high variance": "#a0c4ff",
                 "high bias and high variance": "#ffadad", "never broke symmetry": "#d9d9d9",
                 "train/dev mismatch": "#e2c2ff"}


def diagnoses(grid, table: pd.DataFrame, cells: Mapping[str, object]) -> Figure:
    """Rows x cols of the grid; each cell: its diagnosis (colour), mean train/dev error, next step."""
    rows, cols = list(grid.rows), list(grid.cols)
    fig = Figure(figsize=(2.9 * len(cols) + 1, 1.5 * len(rows) + 1.3))
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            d = cells.get(f"{r}/{c}")
            if d is None:  # a cell left out (run_lesson(arms=...))
                continue
            ax.add_patch(_rect(j, i, _DIAG_COLOURS.get(d.verdict, "white")))
            step = textwrap.fill(d.recommendation, 34)
            ax.text(j + 0.5, i + 0.5, f"{d.verdict}\ntrain err {d.train_error:.1%}  dev err "
                    f"{d.dev_error:.1%}\n{step}", ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows)
    ax.tick_params(length=0)
    shown = [k for k in _DIAG_COLOURS if k in {d.verdict for d in cells.values()}]
    ax.legend([_rect(0, 0, _DIAG_COLOURS[k]) for k in shown], shown, fontsize=7,
              loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=len(shown))
    bayes = sorted({f"{d.bayes_error:.2%}" for d in cells.values()})
    ax.set_title("bias/variance diagnosis per cell (mean errors over seeds) and the next step"
                 f"\n(Bayes error {' / '.join(bayes)}, a gap above "
                 f"{next(iter(cells.values())).threshold:.0%} is high)", fontsize=10)
    fig.tight_layout()
    return fig


def _rect(x, y, colour):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="white", lw=2)
