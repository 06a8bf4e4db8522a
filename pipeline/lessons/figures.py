"""A lesson's figures as values: {"lesson/<name>.png": Figure} (matplotlib only, no pyplot).

comparison  the arms' decision boundaries side by side (2-D data; one seed's model per arm,
            the seed whose dev accuracy is the arm's median, named in the title) above their
            learning curves overlaid: mean over seeds with a min-max (or std) band
grad_flow   per layer at the initial weights, one line per arm (log scale): ||dJ/dW_l|| and
            the hidden activations' spread across examples (two panels)
gradcheck   per-block relative error of each arm, with the verdict thresholds
diagnoses   the grid's cells placed on the four bias/variance diagnoses, with the next step
            (a grid's comparison figure; its curves go to lesson/curves.png)
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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
    title = f"{lesson.title}: {len(arms)} arms x {len(runs) // max(len(arms), 1)} seeds"
    fig.suptitle(textwrap.fill(title, int(width * 11)), fontsize=11)  # ~11 characters an inch
    fig.tight_layout()
    return fig


def _threshold(lesson, key):
    t = lesson.threshold
    return t.value if t is not None and t.metric == key else None


def curves(runs: Sequence, arm: str, key: str) -> pd.DataFrame:
    """Evaluations x seeds of one metric (NaN where a seed stopped earlier)."""
    cols = {r.seed: pd.Series(r.history.get(key, []), index=r.history["epoch"][:len(
        r.history.get(key, []))], dtype=float) for r in runs if r.arm == arm}
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


def grad_flow(runs: Sequence, arms: Sequence[str]) -> Figure:
    """Two panels at the initial weights, one colour per arm: ||dJ/dW_l|| per layer (the
    backward signal) and the hidden activations' spread per layer (the forward signal, when
    the runs carry it), log scale, mean over seeds with a min-max band; legend outside."""
    forward = any(k.startswith("act_A") for k in runs[0].metrics)
    fig = Figure(figsize=(12.5 if forward else 8.5, 4.6))
    axes = fig.subplots(1, 2 if forward else 1, squeeze=False)[0]
    notes = []
    for i, arm in enumerate(arms):
        mine = [r for r in runs if r.arm == arm]
        colour = _COLOURS[i % len(_COLOURS)]
        if not _per_layer(axes[0], mine, "grad_W", colour, arm):
            notes.append(f"{arm}: every weight gradient is exactly 0")
        if forward:
            _per_layer(axes[1], mine, "act_A", colour, arm)
    axes[0].set_xlabel("layer l (1 = first hidden layer's weights)")
    axes[0].set_ylabel("log10 ||dJ/dW_l||  at the first step")
    axes[0].set_title("backward: gradient norm per layer at initialization", fontsize=9)
    if notes:
        axes[0].text(0.01, 0.01, "\n".join(notes), transform=axes[0].transAxes, fontsize=8)
    if forward:
        axes[1].set_xlabel("hidden layer l")
        axes[1].set_ylabel("log10 spread of A_l across the examples")
        axes[1].set_title("forward: how much each hidden layer's output varies with the input\n"
                          "(RMS over its units of each unit's std over the training set)",
                          fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle("at the initial weights: mean over seeds, band min-max", fontsize=10)
    fig.tight_layout()
    return fig


def _per_layer(ax, mine: Sequence, prefix: str, colour: str, arm: str) -> bool:
    """One arm's log10 of metrics `<prefix><l>` against l; False when all are exactly 0."""
    layers = sorted(int(k[len(prefix):]) for k in mine[0].metrics if k.startswith(prefix)
                    and k[len(prefix):].isdigit())
    values = np.array([[r.metrics[f"{prefix}{l}"] for l in layers] for r in mine])  # (seeds, L)
    if np.all(values == 0):
        return False
    with np.errstate(divide="ignore"):
        logs = np.where(values > 0, np.log10(np.where(values > 0, values, 1)), np.nan)
    ax.plot(layers, np.nanmean(logs, axis=0), "o-", ms=3, color=colour, label=arm)
    ax.fill_between(layers, np.nanmin(logs, axis=0), np.nanmax(logs, axis=0), color=colour,
                    alpha=0.15, lw=0)
    return True


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
    ax.set_title("bias/variance diagnosis per cell (mean errors over seeds) and the next step",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _rect(x, y, colour):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="white", lw=2)
