"""The verdict: each declarative check of a lesson's claim evaluated on the per-arm means.

`best_of` picks the best mean among its arms (max for accuracies, min for losses, errors and
counts; by `chosen_by` when given, e.g. the arm of lowest train_loss and then its learning rate)
and leaves out arms that selected on dev (early stopping: optimistic), saying so.
`greater_than_best_of`/`less_than_best_of` compare with the best of other arms, picked alike.
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


def judge(lesson, table: pd.DataFrame, diagnoses: Mapping[str, str] | None = None) -> Verdict:
    optimistic = [a for a in table.index if bool(table.loc[a, "optimistic"])]
    results = tuple(_check(c, table, optimistic, diagnoses or {}) for c in lesson.claim.checks)
    n_ok = sum(r.passed for r in results)
    seeds = int(table["n_seeds"].min()) if len(table) else 0
    held = n_ok == len(results)
    line = f"{lesson.claim.text.strip()} ({n_ok}/{len(results)} checks, mean over {seeds} seeds)"
    if not held:
        first = next(r for r in results if not r.passed)
        line += f"; not met: {first.text}"
    return Verdict(held, f"{'held' if held else 'failed'}: {line}", results)


def _check(check, table: pd.DataFrame, optimistic: Sequence[str], diagnoses) -> CheckResult:
    m = check.metric
    missing = [a for a in check.arms() if a not in table.index]
    if missing:
        return CheckResult(False, f"{m}: arm(s) {missing} not run")
    if check.best_of is not None:
        arm, who = _best(check.best_of, check.chosen_by or m, table, optimistic, m)
        if arm is None:
            return CheckResult(False, who)
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
    for other, greater in ((check.greater_than_arm, True), (check.less_than_arm, False),
                           (check.greater_than_best_of, True), (check.less_than_best_of, False)):
        if other is None:
            continue
        name = other
        if not isinstance(other, str):
            other, name = _best(other, check.chosen_by or m, table, optimistic, m)
            if other is None:
                return CheckResult(False, name)
        ref = float(table.loc[other, f"{m}_mean"])
        passed, text = _relative(value, ref, greater, check.margin, check.factor)
        ok &= passed
        parts.append(f"{text} {name}'s {_fmt(ref)}")
    if check.diagnosis_in is not None:
        got = diagnoses.get(arm, "?")
        passed = got in check.diagnosis_in
        ok &= passed
        parts.append(f"diagnosis {got!r} in {list(check.diagnosis_in)}")
    text = f"{who} {m} mean {_fmt(value)} " + " and ".join(parts)
    return CheckResult(bool(ok) and not math.isnan(value), text)


def _best(arms, by: str, table: pd.DataFrame, optimistic: Sequence[str], metric: str):
    """(the arm with the best mean of `by` among `arms` minus the optimistic ones, its label),
    or (None, why) when every arm is optimistic."""
    pool = [a for a in arms if a not in optimistic]
    left = [a for a in arms if a in optimistic]
    if not pool:
        return None, f"best_of {list(arms)}: every arm is optimistic"
    higher = higher_is_better(by)
    arm = (max if higher else min)(pool, key=lambda a: _nan_last(table.loc[a, f"{by}_mean"],
                                                                 higher))
    how = "" if by == metric else f" by {by}"
    return arm, (f"best{how} of {pool} ({arm})"
                 + (f", {left} left out as optimistic" if left else ""))


def _relative(value, ref, greater: bool, margin: float, factor: float | None):
    if factor is not None:  # a ratio: greater means > factor x ref, less means < ref / factor
        if greater:
            return value > factor * ref, f"> {factor:g}x"
        return value < ref / factor, f"< 1/{factor:g} x"
    passed = value > ref + margin if greater else value < ref - margin
    sign = ">" if greater else "<"
    return passed, f"{sign} (margin {margin:g})" if margin else sign


def _nan_last(v: float, higher: bool) -> float:
    if math.isnan(v):
        return -math.inf if higher else math.inf
    return v


def _fmt(v: float) -> str:
    return f"{v:.4g}"
