"""The augmentation lesson: the paired-seed check (`Check.share`) on hand-made runs, and the
lesson's direction on a small budget (rotation beats none by 3 points on every seed, jitter is
worse than none)."""

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pipeline.lessons import judge, load_lesson, parse_lesson, run_lesson
from pipeline.lessons.claim import paired_column, paired_differences
from pipeline.lessons.figures import median_paired_seed

CONF = Path(__file__).resolve().parents[1] / "conf"

PAIRED = """
title: t
arms: {none: {}, rotate: {}, jitter: {}}
claim:
  text: rotation helps, jitter hurts
  checks:
    - {metric: dev_accuracy, arm: rotate, greater_than_arm: none, margin: 0.03, share: 0.8}
    - {metric: dev_accuracy, arm: jitter, less_than_arm: none, share: 0.6}
"""


def runs_of(**by_arm):
    """Hand-made runs: {arm: [dev accuracy of seed 0, seed 1, ...]}."""
    return [SimpleNamespace(arm=arm, seed=seed, metrics={"dev_accuracy": v})
            for arm, values in by_arm.items() for seed, v in enumerate(values)]


def table_of(runs):
    frame = pd.DataFrame([{"arm": r.arm, "dev_accuracy": r.metrics["dev_accuracy"]}
                          for r in runs]).groupby("arm", sort=False)["dev_accuracy"]
    out = pd.DataFrame({"dev_accuracy_mean": frame.mean(), "n_seeds": frame.size()})
    out["optimistic"] = False
    return out


NONE = [0.80, 0.78, 0.81, 0.75, 0.79]


def test_the_paired_check_passes_at_the_share_and_margin_and_names_every_difference():
    spec = parse_lesson(PAIRED, "paired")
    # rotate - none: +0.05 +0.04 +0.03 (exactly the margin, counted) +0.06 +0.01 -> 4/5 = 80%
    runs = runs_of(none=NONE, rotate=[0.85, 0.82, 0.84, 0.81, 0.80],
                   jitter=[0.70, 0.78, 0.80, 0.70, 0.74])
    v = judge(spec, table_of(runs), runs=runs)
    assert v.held, v.format()
    assert v.checks[0].text == (
        "rotate beats none by >= 0.03 on 4/5 paired seeds (dev_accuracy; needs 80%); "
        "rotate - none by seed: +0.050 +0.040 +0.030 +0.060 +0.010 (min +0.010, mean +0.038)")
    # jitter - none: -0.10, 0 (a tie is not a loss), -0.01, -0.05, -0.05 -> 4/5 below
    assert v.checks[1].text.startswith("jitter is below none on 4/5 paired seeds")
    assert "(max +0.000, mean -0.042)" in v.checks[1].text


def test_the_paired_check_fails_below_the_share_or_the_margin():
    spec = parse_lesson(PAIRED, "paired")
    # one more seed under the margin (+0.029 at seed 2): 3/5 = 60% < 80%, though the mean
    # difference (+0.038) is above the margin: the mean alone would have passed
    runs = runs_of(none=NONE, rotate=[0.85, 0.82, 0.839, 0.81, 0.80],
                   jitter=[0.70, 0.78, 0.82, 0.76, 0.74])     # below none on 2/5 only
    v = judge(spec, table_of(runs), runs=runs)
    assert [c.passed for c in v.checks] == [False, False]
    assert "on 3/5 paired seeds" in v.checks[0].text and "on 2/5" in v.checks[1].text
    assert v.line.endswith("not met: " + v.checks[0].text)


def test_without_runs_a_paired_check_fails_saying_why_and_mean_checks_still_work():
    spec = parse_lesson(PAIRED, "paired")
    runs = runs_of(none=NONE, rotate=[v + 0.1 for v in NONE], jitter=NONE)
    v = judge(spec, table_of(runs))                  # the old call: no runs
    assert not v.held and "needs the runs" in v.checks[0].text
    only = runs_of(none=NONE, rotate=NONE)           # jitter not run: no pairs
    assert "no seed ran in both jitter and none" in judge(
        spec, table_of(only), runs=only).checks[1].text


def test_pairs_are_matched_by_seed_and_the_table_column_and_median_seed_follow():
    runs = runs_of(none=NONE, rotate=[0.85, 0.82, 0.84, 0.81, 0.80])
    runs = [r for r in runs if not (r.arm == "none" and r.seed == 4)]  # seed 4: rotate only
    assert paired_differences(runs, "rotate", "none", "dev_accuracy") == pytest.approx(
        {0: 0.05, 1: 0.04, 2: 0.03, 3: 0.06})
    spec = parse_lesson(PAIRED, "paired")
    column = paired_column(spec, runs)["paired difference (same seed)"]
    assert column == {"rotate": "+0.045 [+0.030, +0.060] vs none, 4/4 seeds",
                      "none": "(reference)"}
    assert median_paired_seed(runs, spec.claim.checks[0]) == 1     # +0.04, the lower median


@pytest.mark.parametrize("check, message", [
    ({"best_of": ["rotate"], "greater_than_arm": "none", "share": 0.8},
     "claim.checks[0] share needs arm and exactly one of greater_than_arm or less_than_arm"),
    ({"arm": "rotate", "best_of": None, "greater_than_arm": "none", "share": 0.8,
      "factor": 2}, "share compares differences seed by seed and takes margin, not factor"),
    ({"arm": "rotate", "at_least": 0.5, "share": 0.8},
     "share needs arm and exactly one of greater_than_arm or less_than_arm"),
    ({"arm": "rotate", "greater_than_arm": "none", "share": 1.5},
     "lesson bad: claim.checks[0].share must be in (0, 1], got 1.5"),
])
def test_a_bad_paired_check_is_one_line(check, message):
    import yaml
    data = yaml.safe_load(PAIRED)
    data["claim"]["checks"] = [{"metric": "dev_accuracy", **{k: v for k, v in check.items()
                                                           if v is not None}}]
    with pytest.raises(ValueError) as err:
        parse_lesson(yaml.safe_dump(data), "bad")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_lesson_judges_rotation_seed_by_seed():
    spec = load_lesson("augmentation", CONF)
    first = spec.claim.checks[0]
    assert (first.arm, first.greater_than_arm, first.margin, first.share) == (
        "rotate", "none", 0.03, 0.8)
    assert spec.seeds >= 5


def test_augmentation_direction_on_a_small_budget():
    """3 seeds, 200 epochs: rotation beats none by >= 3 points on every seed, jitter is worse
    than none on average; the figure (without its boundaries, which cost seconds) ends with
    the paired panel: one line per seed across the arms."""
    from pipeline.lessons.figures import comparison

    r = run_lesson("augmentation", seeds=3, conf_dir=CONF, overrides=["training.epochs=200"],
                   figures=False)
    diffs = paired_differences(r.runs, "rotate", "none", "dev_accuracy")
    assert len(diffs) == 3 and min(diffs.values()) >= 0.03, diffs
    t = r.table
    assert t.loc["jitter", "dev_accuracy_mean"] < t.loc["none", "dev_accuracy_mean"]
    assert t.loc["none", "train_accuracy_min"] == 1.0      # none fits its 40 points
    assert r.verdict.checks[0].passed and "on 3/3 paired seeds" in r.verdict.checks[0].text
    assert "paired difference (same seed)" in r.texts["lesson/table.md"]
    flat = r.lesson.model_copy(update={"figure": r.lesson.figure.model_copy(
        update={"boundary": False})})
    panel = comparison(flat, r.runs, r.arms).axes[-1]
    assert [x.get_text() for x in panel.get_xticklabels()] == ["none", "rotate", "jitter"]
    assert len(panel.get_lines()) == 3 and "rotate - none >= +0.03 on 3/3" in panel.get_title()


@pytest.mark.slow
@pytest.mark.xdist_group("lesson_run_cache")   # conftest.py lesson_run_cache
def test_the_full_augmentation_lesson_holds_and_draws_one_seed_for_every_arm(lesson_run_cache):
    """The lesson's own budget (10 seeds, 1000 epochs): the verdict holds; every boundary
    panel shows the same seed (the median rotate - none difference). (Its runs are the ones
    notebook 08 reuses at its defaults: conftest.py lesson_run_cache.)"""
    from pipeline.tracking.cache import lesson_cache

    r = run_lesson("augmentation", conf_dir=CONF, cache=lesson_cache(lesson_run_cache))
    assert r.verdict.held, r.verdict.format()
    assert r.table.loc["rotate", "dev_accuracy_mean"] > r.table.loc["none", "dev_accuracy_mean"]
    axes = r.figures["lesson/comparison.png"].axes   # 3 boundaries, 2 curves, the paired panel
    seeds = {a.get_title().split("(seed ")[1].split(",")[0] for a in axes[:3]}
    assert seeds == {str(median_paired_seed(r.runs, r.lesson.claim.checks[0]))}
    assert "median rotate - none over 10 seeds" in axes[0].get_title()
    assert axes[3].get_ylabel() == "train_loss" and len(axes[5].get_lines()) == 10


def test_a_per_seed_diagnosis_check_is_not_taken_for_a_paired_comparison():
    """share with diagnosis_in counts each seed's diagnosis; only share with *_than_arm is
    paired: the comparison figure's paired panel and the table's column follow the paired one
    (the regularization lesson has both kinds; its panel once read 'none - None on 0/0')."""
    lesson = load_lesson("regularization", CONF)
    kinds = [(c.arm, c.paired) for c in lesson.claim.checks if c.share is not None]
    assert ("none", False) in kinds and ("early_stopping", True) in kinds
    runs = [SimpleNamespace(arm=a, seed=s, metrics={"holdout_accuracy": v}, diagnosis="fine")
            for a, vs in {"none": [0.90, 0.91], "early_stopping": [0.95, 0.97]}.items()
            for s, v in enumerate(vs)]
    (column,) = paired_column(lesson, runs).values()
    assert column == {"early_stopping": "+0.055 [+0.050, +0.060] vs none, 2/2 seeds",
                      "none": "(reference)"}
