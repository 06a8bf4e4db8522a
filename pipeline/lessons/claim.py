"""The verdict: each declarative check of a lesson's claim evaluated on the per-arm means.

`best_of` picks the best mean among its arms (max for accuracies, min for losses, errors and
counts; by `chosen_by` when given, e.g. the arm of lowest train_loss and then its learning rate)
and, for a dev metric, leaves out arms that selected on dev (early stopping: optimistic),
saying so; on the lesson's holdout set nothing selected, so they stay in.
`greater_than_best_of`/`less_than_best_of` compare with the best of other arms, picked alike.
The verdict is "held" only when every check passes; the one line says which check failed.
A check with `share` is judged on the runs, seed by seed (paired: the same seed is the same data,
split and initialization in both arms), and its text gives every seed's difference.
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
          runs: Sequence | None = None) -> Verdict:
    """`diagnoses`: {arm: verdict of the arm's mean errors} (grid); `runs`: the ArmRuns, needed
    by the checks with `share` (judged seed by seed: paired differences, or each seed's own
    diagnosis), which fail without them."""
    optimistic = [a for a in table.index if bool(table.loc[a, "optimistic"])]
    per_seed: dict[str, list[str]] = {}
    for run in runs or ():
        per_seed.setdefault(run.arm, []).append(getattr(run, "diagnosis", ""))
    results = tuple(_paired(c, runs) if c.paired
                    else _check(c, table, optimistic if optimistic_for(c.metric) else [],
                                diagnoses or {}, per_seed)
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


def paired_differences(runs: Sequence, arm: str, other: str, metric: str) -> dict[int, float]:
    """{seed: arm's metric - other's metric} over the seeds both arms ran, ascending."""
    mine = {r.seed: r.metrics.get(metric, math.nan) for r in runs if r.arm == arm}
    theirs = {r.seed: r.metrics.get(metric, math.nan) for r in runs if r.arm == other}
    return {s: float(mine[s] - theirs[s]) for s in sorted(set(mine) & set(theirs))}


def paired_outcome(check, runs: Sequence) -> tuple[str, dict[int, float], list[bool]]:
    """(the other arm, {seed: difference}, whether each seed passes). A seed passes when the
    difference is in the check's direction by at least `margin` (margin 0: strictly, a tie is
    not a win); the tolerance keeps a difference of exactly the margin (0.03 = 60 of 2000 dev
    points) from failing on rounding."""
    greater = check.greater_than_arm is not None
    other = check.greater_than_arm if greater else check.less_than_arm
    diffs = paired_differences(runs, check.arm, other, check.metric)
    sign = 1.0 if greater else -1.0
    wins = [sign * d > 0 if check.margin == 0 else sign * d >= check.margin - 1e-9
            for d in diffs.values()]
    return other, diffs, wins


def paired_column(lesson, runs: Sequence) -> dict[str, dict[str, str]]:
    """The table's column for the paired checks: {title: {arm: "mean [min, max] of the
    differences, k/n seeds"}}, or {} when the claim has none."""
    cells: dict[str, str] = {}
    for check in (c for c in lesson.claim.checks if c.paired):
        other, diffs, wins = paired_outcome(check, runs)
        if diffs:
            d = list(diffs.values())
            cells[check.arm] = (f"{sum(d) / len(d):+.3f} [{min(d):+.3f}, {max(d):+.3f}] vs "
                                f"{other}, {sum(wins)}/{len(d)} seeds")
            cells.setdefault(other, "(reference)")
    return {"paired difference (same seed)": cells} if cells else {}


def _paired(check, runs: Sequence | None) -> CheckResult:
    m, arm = check.metric, check.arm
    if runs is None:
        return CheckResult(False, f"{arm} {m} paired by seed: needs the runs (judge(..., runs=))")
    other, diffs, wins = paired_outcome(check, runs)
    if not diffs:
        return CheckResult(False, f"{arm} {m} paired by seed: no seed ran in both {arm} and "
                                  f"{other}")
    n, k = len(diffs), sum(wins)
    word = "beats" if check.greater_than_arm is not None else "is below"
    by = f" by >= {check.margin:g}" if check.margin else ""
    passed = k >= check.share * n - 1e-9 and not any(math.isnan(d) for d in diffs.values())
    values = list(diffs.values())
    each = " ".join(f"{d:+.3f}" for d in values)
    # the seed closest to failing: the smallest difference for "beats", the largest for "below"
    edge = (f"min {min(values):+.3f}" if check.greater_than_arm is not None
            else f"max {max(values):+.3f}")
    text = (f"{arm} {word} {other}{by} on {k}/{n} paired seeds ({m}; needs "
            f"{check.share:.0%}); {arm} - {other} by seed: {each} ({edge}, "
            f"mean {sum(values) / n:+.3f})")
    return CheckResult(bool(passed), text)


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
