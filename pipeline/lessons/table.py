"""Per-arm mean and spread over seeds, as a DataFrame and as Markdown (pandas only).

Spread: the sample standard deviation (ddof=1; 0 with one seed) and the min and max. An arm
whose config stops early on dev (training.patience set) chose its epoch with the dev data, so
its dev numbers are optimistic: the table says so in the `optimistic` column.

A metric undefined on some seed (NaN: log10 of a zero gradient norm) has an undefined mean; the
table counts those seeds (`<metric>_undefined`) and the markdown prints "n/a: <reason>" with a
footnote naming the arms and metrics, never `nan ± nan`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

STATS = ("mean", "std", "min", "max")
# Why a metric can be undefined for an arm: (short cell text, footnote sentence).
UNDEFINED = {
    "log10_grad_ratio": ("zero gradient", "a layer's first-step gradient is exactly 0 (as "
                         "with zero initialization), and log10(0) is undefined"),
    "log10_grad_spread": ("zero gradient", "a layer's first-step gradient is exactly 0 (as "
                          "with zero initialization), and log10(0) is undefined"),
}


def summarize(runs: Sequence, arms: Sequence[str], optimistic: Sequence[str] = ()) -> pd.DataFrame:
    """One row per arm (in `arms` order): `<metric>_mean/_std/_min/_max`, n_seeds, optimistic,
    and `<metric>_undefined` (seeds where it is NaN) for a metric undefined somewhere."""
    rows = []
    for arm in arms:
        mine = [r for r in runs if r.arm == arm]
        row = {"arm": arm, "n_seeds": len(mine), "optimistic": arm in optimistic}
        keys = sorted({k for r in mine for k in r.metrics})
        for key in keys:
            values = np.array([r.metrics.get(key, math.nan) for r in mine], dtype=float)
            row[f"{key}_mean"] = float(np.mean(values))
            row[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            row[f"{key}_min"] = float(np.min(values))
            row[f"{key}_max"] = float(np.max(values))
            if np.isnan(values).any():  # the seeds the mean could not use (a column only then)
                row[f"{key}_undefined"] = int(np.isnan(values).sum())
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def markdown(table: pd.DataFrame, metrics: Sequence[str], *, extra: dict | None = None) -> str:
    """`| arm | dev_accuracy | ... |` with `mean ± std [min, max]` cells; optimistic arms
    are marked with a footnote. `extra`: {column title: {arm: text}} appended columns."""
    shown = [m for m in metrics if f"{m}_mean" in table.columns]
    extra = extra or {}
    head = ["arm", *shown, *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, row in table.iterrows():
        name = f"{arm} (optimistic*)" if row.get("optimistic") else str(arm)
        cells = [_cell(row, m) for m in shown] + [str(col.get(arm, "")) for col in extra.values()]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    n = int(table["n_seeds"].max()) if len(table) else 0
    lines.append(f"\nmean ± std [min, max] over {n} seeds (std with ddof=1).")
    lines += undefined_notes(table, shown)
    if table.get("optimistic", pd.Series(dtype=bool)).any():
        lines.append("*optimistic: early stopping chose its epoch on this dev set, so its dev "
                     "numbers were used for selection; the verdict does not rest on them.")
        if any(m.startswith("holdout_") for m in shown):
            lines[-1] += (" Its holdout numbers are honest: that set was drawn apart and "
                          "nothing chose on it.")
    return "\n".join(lines)


def _cell(row, metric: str) -> str:
    mean, std, lo, hi = (row[f"{metric}_{s}"] for s in STATS)
    if math.isnan(mean):
        return f"n/a: {UNDEFINED.get(metric, ('undefined',))[0]}"
    return f"{_fmt(mean)} ± {_fmt(std)} [{_fmt(lo)}, {_fmt(hi)}]"


def undefined_notes(table: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """Footnote paragraphs for the metrics shown as n/a: which arms, on how many seeds, and
    why; metrics undefined for the same arms and reason share one."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in metrics:
        arms = [a for a, row in table.iterrows() if math.isnan(row[f"{m}_mean"])]
        if arms:
            who = ", ".join(f"{a} ({_undefined_count(table.loc[a], m)} of "
                            f"{int(table.loc[a, 'n_seeds'])} seeds)" for a in arms)
            why = UNDEFINED.get(m, ("", "its value is not a number on those seeds"))[1]
            groups.setdefault((who, why), []).append(m)
    return [f"\nn/a: {' and '.join(ms)} {'is' if len(ms) == 1 else 'are'} undefined for {who}: "
            f"{why}, so the mean over seeds is undefined too." for (who, why), ms in groups.items()]


def _undefined_count(row, metric: str):
    n = row.get(f"{metric}_undefined", math.nan)
    return "?" if n != n else int(n)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v == 0 or 1e-3 <= abs(v) < 10:
        return f"{v:.3f}"
    if 10 <= abs(v) < 1e5:
        return f"{v:.1f}"
    return f"{v:.2e}"
