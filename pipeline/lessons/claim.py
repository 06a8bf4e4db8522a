"""The verdict: each declarative check of a lesson's claim evaluated on the per-arm means.

`best_of` picks the best mean among its arms (max for accuracies, min for losses, errors and
counts) and leaves out arms that selected on dev (early stopping: optimistic), saying so.
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


def judge(lesson, table: pd.DataFrame, diagnoses: Mapping[str, str] | None = None,
          runs: Sequence | None = None) -> Verdict:
    """`diagnoses`: {arm: verdict of the arm's mean errors} (grid); `runs`: the ArmRuns, whose
    per-seed diagnoses a check with `share` counts."""
    optimistic = [a for a in table.index if bool(table.loc[a, "optimistic"])]
    per_seed: dict[str, list[str]] = {}
    for run in runs or ():
        per_seed.setdefault(run.arm, []).append(run.diagnosis)
    results = tuple(_check(c, table, optimistic, diagnoses or {}, per_seed)
                    for c in lesson.claim.checks)
    n_ok = sum(r.passed for r in results)
    seeds = int(table["n_seeds"].min()) if len(table) else 0
    held = n_ok == len(results)
    line = f"{lesson.claim.text.strip()} ({n_ok}/{len(results)} checks, mean over {seeds} seeds)"
    if not held:
        first = next(r for r in results if not r.passed)
        line += f"; not met: {first.text}"
    return Verdict(held, f"{'held' if held else 'failed'}: {line}", results)


def _check(check, table: pd.DataFrame, optimistic: Sequence[str], diagnoses,
           per_seed: Mapping[str, list[str]] = {}) -> CheckResult:
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
    if check.diagnosis_in is not None and check.share is not None:
        passed, said = _share(per_seed.get(arm, []), check.diagnosis_in, check.share)
        ok &= passed
        parts.append(said)
    elif check.diagnosis_in is not None:
        got = diagnoses.get(arm, "?")
        passed = got in check.diagnosis_in
        ok &= passed
        parts.append(f"diagnosis {got!r} in {list(check.diagnosis_in)}")
    text = f"{who} {m} mean {_fmt(value)} " + " and ".join(parts)
    return CheckResult(bool(ok) and not math.isnan(value), text)


def _share(verdicts: Sequence[str], wanted: Sequence[str], share: float):
    """At least `share` of the seeds diagnosed as one of `wanted` (no seeds: not met)."""
    hits = sum(v in wanted for v in verdicts)
    n = len(verdicts)
    passed = n > 0 and hits >= share * n - 1e-9
    seen = ", ".join(f"{v!r} x{verdicts.count(v)}" for v in dict.fromkeys(verdicts)) or "none"
    return passed, (f"diagnosis in {list(wanted)} on {hits}/{n} seeds (needs >= {share:.0%}; "
                    f"seen {seen})")


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
