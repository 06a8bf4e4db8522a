"""The verdict: each declarative check of a lesson's claim evaluated on the per-arm means.

`best_of` picks the best mean among its arms (max for accuracies, min for losses, errors and
counts) and, for a dev metric, leaves out arms that selected on dev (early stopping:
optimistic), saying so; on the lesson's holdout set nothing selected, so they stay in.
`paired_wins` also counts the seeds on which the comparison holds, arm against arm by seed.
The verdict is "held" only when every check passes; the one line says which check failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    text: str               # "he dev_accuracy mean 0.981 >= 0.9"


@dataclass(frozen=True)
class Verdict:
    held: bool
    line: str               # "held: <claim> (4/4 checks, 5 seeds)" or "failed: ... (<first failure>)"
    checks: tuple[CheckResult, ...]

    @property
    def label(self) -> str:
        return "held" if self.held else "failed"

    def format(self) -> str:
        marks = [f"  [{'x' if c.passed else ' '}] {c.text}" for c in self.checks]
        return "\n".join([f"verdict: {self.line}", *marks])


def higher_is_better(metric: str) -> bool:
    return "accuracy" in metric


def optimistic_for(metric: str) -> bool:
    """Early stopping chose its epoch on dev: only its dev numbers are optimistic."""
    return metric.startswith("dev_")


def judge(lesson, table: pd.DataFrame, diagnoses: Mapping[str, str] | None = None,
          runs: Sequence = ()) -> Verdict:
    """`runs` (the ArmRuns): needed by checks with paired_wins."""
    optimistic = [a for a in table.index if bool(table.loc[a, "optimistic"])]
    results = tuple(_check(c, table, optimistic if optimistic_for(c.metric) else [],
                           diagnoses or {}, runs) for c in lesson.claim.checks)
    n_ok = sum(r.passed for r in results)
    seeds = int(table["n_seeds"].min()) if len(table) else 0
    held = n_ok == len(results)
    line = f"{lesson.claim.text.strip()} ({n_ok}/{len(results)} checks, mean over {seeds} seeds)"
    if not held:
        first = next(r for r in results if not r.passed)
        line += f"; not met: {first.text}"
    return Verdict(held, f"{'held' if held else 'failed'}: {line}", results)


def _check(check, table: pd.DataFrame, optimistic: Sequence[str], diagnoses,
           runs: Sequence = ()) -> CheckResult:
    m = check.metric
    missing = [a for a in check.arms() if a not in table.index]
    if missing:
        return CheckResult(False, f"{m}: arm(s) {missing} not run")
    if check.best_of is not None:
        pool = [a for a in check.best_of if a not in optimistic]
        left = [a for a in check.best_of if a in optimistic]
        if not pool:
            return CheckResult(False, f"best_of {list(check.best_of)}: every arm is optimistic")
        pick = max if higher_is_better(m) else min
        arm = pick(pool, key=lambda a: _nan_last(table.loc[a, f"{m}_mean"], higher_is_better(m)))
        who = f"best of {pool} ({arm})" + (f", {left} left out as optimistic" if left else "")
    else:
        arm = check.arm
        who = arm + (" (optimistic)" if arm in optimistic else "")
    value = float(table.loc[arm, f"{m}_mean"])
    parts, ok = [], True
    for bound, op in ((check.at_least, ">="), (check.at_most, "<=")):
        if bound is not None:
            passed = value >= bound if op == ">=" else value <= bound
            ok &= passed
            parts.append(f"{op} {bound:g}")
    for other, greater in ((check.greater_than_arm, True), (check.less_than_arm, False)):
        if other is None:
            continue
        ref = float(table.loc[other, f"{m}_mean"])
        passed, text = _relative(value, ref, greater, check.margin, check.factor)
        ok &= passed
        parts.append(f"{text} {other}'s {_fmt(ref)}")
        if check.paired_wins is not None:
            wins, n = paired(runs, m, arm, other, greater, check.margin, check.factor)
            passed = n > 0 and wins >= check.paired_wins * n - 1e-9
            ok &= passed
            parts.append(f"on {wins}/{n} paired seeds (need {check.paired_wins:.0%})")
    if check.diagnosis_in is not None:
        got = diagnoses.get(arm, "?")
        passed = got in check.diagnosis_in
        ok &= passed
        parts.append(f"diagnosis {got!r} in {list(check.diagnosis_in)}")
    text = f"{who} {m} mean {_fmt(value)} " + " and ".join(parts)
    return CheckResult(bool(ok) and not math.isnan(value), text)


def _relative(value, ref, greater: bool, margin: float, factor: float | None):
    if factor is not None:  # a ratio: greater means > factor x ref, less means < ref / factor
        if greater:
            return value > factor * ref, f"> {factor:g}x"
        return value < ref / factor, f"< 1/{factor:g} x"
    passed = value > ref + margin if greater else value < ref - margin
    sign = ">" if greater else "<"
    return passed, f"{sign} (margin {margin:g})" if margin else sign


def paired(runs: Sequence, metric: str, arm: str, other: str, greater: bool, margin: float,
           factor: float | None) -> tuple[int, int]:
    """(seeds on which `arm` beats `other` as the check says, seeds both ran)."""
    mine = {r.seed: r.metrics.get(metric, math.nan) for r in runs if r.arm == arm}
    theirs = {r.seed: r.metrics.get(metric, math.nan) for r in runs if r.arm == other}
    seeds = sorted(set(mine) & set(theirs))
    wins = sum(_relative(mine[s], theirs[s], greater, margin, factor)[0] for s in seeds)
    return int(wins), len(seeds)


def _nan_last(v: float, higher: bool) -> float:
    if math.isnan(v):
        return -math.inf if higher else math.inf
    return v


def _fmt(v: float) -> str:
    return f"{v:.4g}"
