"""A lesson's figures as values: {"lesson/<name>.png": Figure} (matplotlib only, no pyplot).

comparison  the arms' decision boundaries side by side (2-D data; one seed's model per arm,
            the seed whose dev accuracy, or held-out accuracy when the lesson has a holdout
            set, is the arm's median, named in the title) above their learning curves
            overlaid: mean over seeds with a min-max (or std) band, and a marker at each
            seed's kept epoch for runs that stopped early; with a paired check (`share`),
            every arm's boundary is drawn for the same seed (the one with the median paired
            difference: the same training points in every panel) and a last panel joins each
            seed's values across the arms (paired)
grad_flow   per layer at the initial weights, one line per arm (log scale): ||dJ/dW_l|| and
            the hidden activations' spread across examples (two panels)
gradcheck   per-block relative error of each arm (one panel each), at initialization and after
            training, failing blocks in red
contours    a two-weight logistic model's cost contours on the raw vs standardized training
            split, with gradient-descent paths (pipeline/plots/contours.py)
diagnoses   the grid's cells placed on the four bias/variance diagnoses, with the next step
            (a grid's comparison figure; its curves go to lesson/curves.png)
cells       a grid's metrics (figure.cells) as rows x cols heatmaps (lesson/cells.png)
cell_curves a grid's learning curves as small multiples: one panel per cell (rows x cols, one
            y scale), each curve key its own colour, the legend below the panels
"""

from __future__ import annotations

import textwrap
import warnings
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
    pair = next((c for c in lesson.claim.checks if c.paired), None)
    n_curves = len(lesson.figure.curves) + (pair is not None)   # the paired panel comes last
    width = max(4.0 * max(ncols, 1), 5.0 * n_curves)
    fig = Figure(figsize=(width, 3.8 * nrows + 3.6))
    grid = fig.add_gridspec(nrows + 1, ncols * n_curves if boundaries else n_curves,
                            height_ratios=[1.05] * nrows + [1.0])
    score = "holdout_accuracy" if getattr(lesson, "holdout", None) else "dev_accuracy"
    # figure.curve_arms: only these arms' curves (ten overlaid arms hide each other)
    curved = [a for a in arms if a in lesson.figure.curve_arms] or list(arms)
    if boundaries:
        seed = median_paired_seed(runs, pair) if pair is not None else None
        for i, arm in enumerate(arms):
            run, why = _shown_run(runs, arm, seed, pair, score)
            r, c = divmod(i, ncols)
            ax = fig.add_subplot(grid[r, c * n_curves:(c + 1) * n_curves])
            # the points drawn are the run's (possibly noisy) training set: its accuracy there
            # is not the lesson's measure, so the title leads with the dev (or held-out:
            # nothing chose on it) accuracy
            acc = run.metrics.get(score, float("nan"))
            draw_boundary(ax, run.model.predict, run.model.X, run.model.y, run.model.classes,
                          title=f"{arm}: {score.split('_')[0]} accuracy {acc:.1%}\n"
                                f"(seed {run.seed}, {why})",
                          resolution=200, legend=i == 0, points="train points shown, train")
    span = ncols if boundaries else 1
    for j, key in enumerate(lesson.figure.curves):
        ax = fig.add_subplot(grid[nrows, j * span:(j + 1) * span])
        overlay(ax, runs, curved, key, lesson.figure.band, threshold=_threshold(lesson, key))
    if pair is not None:
        j = n_curves - 1
        paired(fig.add_subplot(grid[nrows, j * span:(j + 1) * span]), runs, arms, pair)
    title = f"{lesson.title}: {len(arms)} arms x {len(runs) // max(len(arms), 1)} seeds"
    fig.suptitle(textwrap.fill(title, int(width * 11)), fontsize=11)  # ~11 characters an inch
    fig.tight_layout()
    return fig


def _shown_run(runs: Sequence, arm: str, seed: int | None, pair,
               score: str = "dev_accuracy") -> tuple[object, str]:
    """The arm's run at the paired median `seed` when there is one, else its own median run;
    and the title's note saying which."""
    n = sum(1 for x in runs if x.arm == arm)
    run = next((x for x in runs if x.arm == arm and x.seed == seed), None)
    if seed is None or run is None:
        return representative(runs, arm, score), f"the median of {n}"
    return run, f"median {pair.arm} - {_other(pair)} over {n} seeds"


def _other(check) -> str:
    return check.greater_than_arm or check.less_than_arm


def median_paired_seed(runs: Sequence, check) -> int | None:
    """The seed whose paired difference (arm - other) is the median (lower median)."""
    from pipeline.lessons.claim import paired_differences

    diffs = paired_differences(runs, check.arm, _other(check), check.metric)
    if not diffs:
        return None
    ordered = sorted(diffs, key=lambda s: (diffs[s], s))
    return ordered[(len(ordered) - 1) // 2]


def paired(ax, runs: Sequence, arms: Sequence[str], check) -> None:
    """Each seed's `check.metric` in every arm, joined by a grey line (the same seed is the
    same data and initialization: a pair), arm means as black bars; the title counts the
    seeds where the check's arm differs from the other by the margin in the check's way."""
    from pipeline.lessons.claim import paired_outcome

    m = check.metric
    values = {a: {r.seed: r.metrics.get(m, np.nan) for r in runs if r.arm == a} for a in arms}
    x = np.arange(len(arms))
    for seed in sorted({s for v in values.values() for s in v}):
        ax.plot(x, [values[a].get(seed, np.nan) for a in arms], color="0.6", lw=0.8, zorder=1)
    for i, arm in enumerate(arms):
        ys = np.array(list(values[arm].values()), dtype=float)
        ax.scatter(np.full(ys.shape, i), ys, s=18, color=_COLOURS[i % len(_COLOURS)], zorder=2)
        if ys.size:
            ax.hlines(np.nanmean(ys), i - 0.22, i + 0.22, color="k", lw=2, zorder=3)
    other, diffs, wins = paired_outcome(check, runs)
    way = ">=" if check.greater_than_arm is not None else "<="
    ax.set_xticks(x, arms)
    ax.set_xlim(-0.4, len(arms) - 0.6)
    ax.set_ylabel(f"{m} (one line per seed)")
    ax.set_title(f"paired by seed (bar: mean): {check.arm} - {other} {way} "
                 f"{'+' if way == '>=' else '-'}{check.margin:g} on {sum(wins)}/{len(diffs)}",
                 fontsize=9)
    ax.grid(alpha=0.3, axis="y")


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
        stop_marks(ax, runs, arm, frame, colour)
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


def stop_marks(ax, runs, arm: str, frame: pd.DataFrame, colour: str) -> None:
    """A marker at each seed's restored epoch, on that seed's own curve, for runs that stopped
    early (best_epoch before the last epoch trained: early stopping returned earlier params)."""
    points = [(r.metrics["best_epoch"], frame.at[r.metrics["best_epoch"], r.seed])
              for r in runs if r.arm == arm and _stopped_early(r)
              and r.metrics["best_epoch"] in frame.index]
    if points:
        x, y = zip(*points)
        ax.plot(x, y, "v", ms=6, color=colour, mec="k", mew=0.6, ls="none", zorder=5,
                label=f"{arm}: stop epoch kept (each seed)")


def _stopped_early(run) -> bool:
    best, ran = run.metrics.get("best_epoch"), run.metrics.get("epochs_run")
    return best is not None and ran is not None and 0 < best < ran


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
    """One panel per arm (small multiples: readable with many arms): per block the worst
    seed's relative error at initialization and after training, red where the check fails."""
    from pipeline.nn.gradcheck import PASSING, THRESHOLDS

    fail_at = dict(THRESHOLDS)[PASSING[-1]]                 # 1e-5: at or above fails
    ncols = min(len(arms), 3)
    nrows = -(-len(arms) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.3 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    blocks = list(runs[0].blocks)
    x = np.arange(len(blocks))
    for ax, arm in zip(axes, arms):
        mine = [r for r in runs if r.arm == arm]
        failed = set()
        for k, (moment, attr) in enumerate((("init", "blocks_init"), ("trained", "blocks"))):
            errs = np.array([[getattr(r, attr).get(b, np.nan) for b in blocks] for r in mine])
            if np.all(np.isnan(errs)):
                continue
            worst = np.maximum(np.nanmax(errs, axis=0), 1e-16)   # a check is a bound: worst seed
            bad = worst >= fail_at
            failed |= {b for b, f in zip(blocks, bad) if f}
            ax.bar(x + (k - 0.5) * 0.4, worst, 0.38, label=f"at {moment}",
                   color=np.where(bad, "tab:red", "tab:green"), alpha=0.55 if k == 0 else 1.0,
                   edgecolor="k", lw=0.4, hatch="//" if k == 0 else None)
        ax.axhline(fail_at, ls="--", lw=0.9, color="k")
        ax.axhspan(fail_at, 10, color="tab:red", alpha=0.06, lw=0)
        ax.set_xticks(x, blocks)
        ax.set_yscale("log")
        ax.set_ylim(1e-12, 10)
        ax.set_title(f"{arm}: fails {', '.join(b for b in blocks if b in failed) or 'none'}",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(arms):]:
        ax.set_axis_off()
    for ax in axes[::ncols]:
        ax.set_ylabel("relative error (worst seed)")
    axes[0].legend(fontsize=7, loc="upper left", title=f"fails at >= {fail_at:g} (dashed)",
                   title_fontsize=7)
    fig.suptitle(f"Gradient check per parameter block, hatched at initialization, solid after "
                 f"training; red = fails ({len(runs) // max(len(arms), 1)} seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def contours(runs: Sequence) -> Figure:
    """lesson/contours.png on the first run's raw training split (every arm of a seed draws
    the same data; the split is standardized with its own mean and std for the right panel)."""
    from pipeline.plots.contours import cost_contours

    run = runs[0]
    return cost_contours(run.model.X, run.model.y,
                         note=f"{run.model.data_name}, the raw training split of seed {run.seed} "
                              f"({run.model.X.shape[0]} points) vs the same points standardized")


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


_GLOSS = {"train_loss": "the fit of the training labels (training loss)",
          "train_objective": "the cost J the optimizer minimizes (training loss + L2 penalty): "
                             "read a row left to right to see whether J is still falling",
          "holdout_accuracy": "how well it generalizes (held-out accuracy; nothing chose on it)",
          "dev_accuracy": "dev accuracy"}


def cells(grid, table: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """One heatmap per metric, stacked: the grid's rows x cols, each cell its mean (± std)
    over seeds, so one row read left to right shows what the column knob does to each metric."""
    rows, cols = list(grid.rows), list(grid.cols)
    fig = Figure(figsize=(1.15 * len(cols) + 1.5, (0.8 * len(rows) + 1.0) * len(metrics) + 0.4))
    for ax, metric in zip(fig.subplots(len(metrics), 1, squeeze=False)[:, 0], metrics):
        mean, std = (np.array([[table.at[f"{r}/{c}", f"{metric}_{s}"] if f"{r}/{c}" in
                                table.index else np.nan for c in cols] for r in rows])
                     for s in ("mean", "std"))
        # coloured within each row (rows of different lambda minimize different J's): darker
        # green = better for that row, so a row read left to right shows the knob's effect
        with warnings.catch_warnings():   # a row left out (run_lesson(arms=...)) is all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanmin(mean, axis=1, keepdims=True)
            hi = np.nanmax(mean, axis=1, keepdims=True)
        shade = (mean - lo) / np.where(hi > lo, hi - lo, 1.0)
        shade = shade if "accuracy" in metric else 1.0 - shade
        ax.imshow(shade, cmap="YlGn", vmin=0.0, vmax=1.0, aspect="auto")
        for (i, j), v in np.ndenumerate(mean):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}\n±{std[i, j]:.3f}", ha="center", va="center",
                        fontsize=8, color="white" if shade[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_title(textwrap.fill(f"{metric}: {_GLOSS.get(metric, 'mean over seeds')}", 80),
                     fontsize=9)
    fig.suptitle("mean ± std over seeds per cell; colour within each row: darker green = "
                 "better for that row", fontsize=9)
    fig.tight_layout()
    return fig
