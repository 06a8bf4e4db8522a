"""Early stopping scored honestly: the held-out set (stages.draw_holdout) and what it changes
in the lessons (holdout_* metrics, optimism only on dev, paired wins, stop marks, the lambda x
epochs cells), and the early_stopping / early_stopping_tradeoff lessons' directions on a small
budget."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import data as D
from pipeline import stages
from pipeline.config import load_config
from pipeline.lessons import judge, load_lesson, parse_lesson, run_lesson
from pipeline.lessons.execute import ArmRun

CONF = Path(__file__).resolve().parents[1] / "conf"


def config(**overrides):
    return load_config(conf_dir=CONF).with_overrides({"training.epochs": 50, **overrides})


def test_the_holdout_stream_is_appended_and_leaves_every_existing_draw_unchanged():
    # stream i is child i of SeedSequence(seed).spawn, whatever the number of children
    old = np.random.SeedSequence(3).spawn(6)
    new = stages.streams(3)
    assert list(new)[:6] == ["data", "target", "split", "augment", "init", "train"]
    for child, name in zip(old, new):
        assert np.array_equal(np.random.default_rng(child).random(5), new[name].random(5))
    # the digests of the splits of seed 3 as drawn before the stream existed (main, e01240d)
    assert stages.prepare(config(seed=3)).digests == {
        "train": "c57c3c9295071b54", "dev": "fc59653fc826c16c", "test": "a75aaa20f280145d"}


def test_the_holdout_is_fresh_clean_rows_from_its_own_stream_standardized_with_train_stats():
    cfg = config(seed=4)
    prepared = stages.prepare(cfg)
    held = stages.draw_holdout(cfg, prepared, 500)
    # an independent oracle: the seventh child of the seed, the clean variant, a permutation
    rng = np.random.default_rng(np.random.SeedSequence(4).spawn(7)[6])
    ds = D.make_dataset("noisy_diagonal", rng, variant="clean", n_samples=500)
    rows = rng.permutation(ds.n_samples)[:500]
    std = prepared.standardizer
    assert held.n == 500 and held.name == "holdout"
    np.testing.assert_array_equal(held.X, std.transform(ds.X[rows]))
    np.testing.assert_array_equal(held.y, ds.y[rows])
    raw = held.X * std.std + std.mean                      # (m, 2) back to the unit square
    assert np.array_equal(held.y, (raw[:, 0] > raw[:, 1]).astype(int))   # clean: the rule
    seen = np.vstack([prepared.raw_train.X, prepared.raw_dev.X,
                      prepared.test.unseal("test: no overlap").X])
    assert not np.isin(np.round(raw, 9), np.round(seen, 9)).all(axis=1).any()
    again = stages.draw_holdout(cfg, stages.prepare(cfg), 500)
    assert again.digest == held.digest                     # deterministic
    assert stages.draw_holdout(config(seed=5), stages.prepare(config(seed=5)), 500).digest \
        != held.digest


def test_a_holdout_needs_a_generator_that_draws_new_points():
    cfg = config(**{"data.name": "digits", "data.params": {"n_samples": 300}})
    with pytest.raises(ValueError, match="holdout needs a generated data set that draws new "
                                         "points, got data 'digits'"):
        stages.draw_holdout(cfg, None, 100)


LESSON = """
title: t
base: {data.params: {n_samples: 60}, training.epochs: 5, training.eval_every: 1}
arms: {a: {}, b: {regularization.l2: 0.5}}
claim: {text: c, checks: [{metric: holdout_accuracy, arm: a, at_least: 0.0}]}
"""


@pytest.mark.parametrize("extra, message", [
    ({}, "holdout_accuracy needs a holdout set: add holdout: {n_samples: 1000}"),
    ({"holdout": {"n_samples": 0}}, "holdout.n_samples must be >= 1, got 0"),
    ({"holdout": {}, "claim": {"text": "c", "checks": [
        {"metric": "dev_accuracy", "arm": "a", "greater_than_arm": "b", "share": 1.5}]}},
     "share must be"),
    ({"holdout": {}, "figure": {"cells": ["train_loss"]}}, "figure.cells needs kind grid"),
    ({"holdout": {}, "figure": {"curve_arms": ["c"]}},
     "figure.curve_arms must be among ['a', 'b'], got 'c'"),
])
def test_a_bad_holdout_or_paired_check_is_one_line_naming_the_key(extra, message):
    import yaml
    data = {**yaml.safe_load(LESSON), **extra}
    with pytest.raises(ValueError) as err:
        parse_lesson(yaml.safe_dump(data), "tiny")
    assert message in str(err.value) and "\n" not in str(err.value)


def fake(values: dict[str, list[float]], metric: str):
    """A table and runs with `metric` per arm and seed; arm 'es' stopped on dev."""
    runs = [ArmRun(arm, seed, {metric: v}, {}, (), "", 0.0) for arm, vs in values.items()
            for seed, v in enumerate(vs)]
    rows = {arm: {f"{metric}_mean": float(np.mean(vs)), "n_seeds": len(vs),
                  "optimistic": arm == "es"} for arm, vs in values.items()}
    return pd.DataFrame.from_dict(rows, orient="index"), runs


def test_a_paired_check_counts_seeds_and_optimism_applies_to_dev_metrics_only():
    text = """
title: t
holdout: {}
arms: {none: {}, es: {}, l2: {}}
claim: {text: c, checks: [{metric: %s, %s}]}
"""
    def check(metric, body, values):
        table, runs = fake(values, metric)
        return judge(parse_lesson(text % (metric, body), "t"), table, runs=runs)

    # mean 0.95 vs 0.90 by more than 2 points, but seed 2 only by 0.01: 4 of 5 seeds
    values = {"none": [0.90] * 5, "es": [0.95, 0.96, 0.91, 0.97, 0.96], "l2": [0.9] * 5}
    v = check("holdout_accuracy", "arm: es, greater_than_arm: none, margin: 0.02, "
                                  "share: 1.0", values)
    assert not v.held and "on 4/5 paired seeds (holdout_accuracy; needs 100%)" in v.checks[0].text
    assert check("holdout_accuracy", "arm: es, greater_than_arm: none, margin: 0.02, "
                                     "share: 0.8", values).held
    # best_of keeps the early-stopping arm on the held-out set, leaves it out on dev
    best = "best_of: [es, l2], greater_than_arm: none"
    assert "(es)" in check("holdout_accuracy", best, values).checks[0].text
    on_dev = check("dev_accuracy", best, values).checks[0].text
    assert "(l2), ['es'] left out as optimistic" in on_dev


def test_the_stop_epoch_of_each_seed_is_marked_on_the_curves():
    lesson = load_lesson("early_stopping", CONF)
    no_boundaries = lesson.figure.model_copy(update={"boundary": False})   # only the curves
    result = run_lesson(lesson.model_copy(update={"figure": no_boundaries}), seeds=2,
                        conf_dir=CONF, overrides=["training.epochs=150"],
                        arms=["none", "early_stopping"])
    fig = result.figures["lesson/comparison.png"]
    curves = [ax for ax in fig.axes if ax.get_xlabel() == "epoch"]
    assert [ax.get_ylabel() for ax in curves] == ["train_loss", "dev_accuracy"]
    stopped = {r.seed: r for r in result.runs if r.arm == "early_stopping"}
    assert all(r.metrics["best_epoch"] < r.metrics["epochs_run"] for r in stopped.values())
    for ax, key in zip(curves, ("train_loss", "dev_accuracy")):
        marks = [l for l in ax.get_lines() if l.get_marker() == "v"]
        assert len(marks) == 1 and marks[0].get_label().startswith("early_stopping: stop epoch")
        want = sorted((r.metrics["best_epoch"], r.history[key][r.history["epoch"].index(
            int(r.metrics["best_epoch"]))]) for r in stopped.values())
        assert sorted(zip(marks[0].get_xdata(), marks[0].get_ydata())) == want
    none = next(r for r in result.runs if r.arm == "none")   # trained to the end: no mark
    assert none.metrics["best_epoch"] == none.metrics["epochs_run"] == 150


@pytest.mark.slow
def test_early_stopping_direction_on_a_small_budget():
    result = run_lesson("early_stopping", seeds=2, conf_dir=CONF)
    t = result.table
    assert t.loc["early_stopping", "holdout_accuracy_mean"] > t.loc["none",
                                                                    "holdout_accuracy_mean"] + 0.02
    assert t.loc["early_stopping", "train_loss_mean"] > 1.5 * t.loc["none", "train_loss_mean"]
    assert t.loc["l2", "holdout_accuracy_mean"] > t.loc["none", "holdout_accuracy_mean"] + 0.02
    assert list(t.index[t["optimistic"]]) == ["early_stopping"]
    assert "held-out" in result.lesson.claim.text and result.verdict.held


@pytest.mark.slow
def test_the_tradeoff_direction_and_its_cells_figure_on_a_small_budget():
    lesson = load_lesson("early_stopping_tradeoff", CONF)
    cells = ["l2_0/e50", "l2_0/e400", "l2_3/e50", "l2_3/e400"]
    result = run_lesson(lesson, seeds=2, conf_dir=CONF, arms=cells)
    t = result.table
    for row in ("l2_0", "l2_3"):     # more epochs optimize J in both rows ...
        assert t.loc[f"{row}/e400", "train_objective_mean"] < t.loc[f"{row}/e50",
                                                                    "train_objective_mean"]
    h = t["holdout_accuracy_mean"]   # ... but only without L2 do they cost generalization
    assert h["l2_0/e400"] < h["l2_0/e50"] - 0.02
    assert h["l2_3/e400"] > h["l2_3/e50"] - 0.01 and h["l2_3/e400"] > h["l2_0/e400"] + 0.02
    # a fixed budget is the first epochs of the long run: one curve holds the row's cells
    short, long = (next(r for r in result.runs if r.arm == a and r.seed == 0)
                   for a in ("l2_0/e50", "l2_0/e400"))
    at_50 = long.history["epoch"].index(50)
    assert short.metrics["train_objective"] == long.history["train_objective"][at_50]
    assert short.metrics["dev_accuracy"] == long.history["dev_accuracy"][at_50]
    curves = result.figures["lesson/curves.png"].axes[0]
    # figure.curve_arms, among the cells that ran
    assert [l.get_label() for l in curves.get_lines()] == ["l2_0/e400", "l2_3/e400"]
    fig = result.figures["lesson/cells.png"]
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == list(lesson.figure.cells)
    shown = [x.get_text() for x in fig.axes[-1].texts]
    assert len(shown) == len(cells) and f"{h['l2_0/e400']:.3f}" in " ".join(shown)
