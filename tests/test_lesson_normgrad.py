"""The normalization and gradient-checking lessons: the cost-contour panel on a hand-worked
case, best_of ... chosen_by / *_than_best_of checks, the gradient check's planted cost bugs
failing exactly the blocks the course says, and the normalization direction on a small budget."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.lessons import judge, load_lesson, parse_lesson, run_lesson
from pipeline.lessons.execute import cost_without_l2, fresh_mask_cost
from pipeline.nn import Architecture, gradient_check, init_network
from pipeline.plots.contours import (best_stable, cost_contours, descent_path, logistic_cost,
                                     optimum)

CONF = Path(__file__).resolve().parents[1] / "conf"

# x = (1, 0) three times with y = 1 and once with y = 0; x = (0, 1) once with y = 1, three
# times with y = 0: J separates into the two weights, minimized at the logits of 3/4 and 1/4.
X_HAND = np.array([[1, 0]] * 4 + [[0, 1]] * 4, dtype=float)
Y_HAND = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=float)


def test_the_logistic_cost_its_descent_and_its_minimum_by_hand():
    assert logistic_cost(X_HAND, Y_HAND, np.zeros((1, 2)))[0] == pytest.approx(np.log(2))
    # dJ/dw at 0: X^T (1/2 - y) / 8 = ((4 * 1/2 - 3) / 8, (4 * 1/2 - 1) / 8) = (-1/8, 1/8)
    path = descent_path(X_HAND, Y_HAND, (0.0, 0.0), lr=2.0, steps=3)
    assert path.shape == (4, 2)
    np.testing.assert_allclose(path[1], [0.25, -0.25])
    np.testing.assert_allclose(optimum(X_HAND, Y_HAND), [np.log(3), -np.log(3)], atol=1e-10)


def test_the_best_stable_rate_is_smaller_for_a_stretched_feature_and_the_panels_show_it():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X @ [1.0, -1.0] + 0.5 * rng.normal(size=200) > 0).astype(float)
    X_raw = X * [1.0, 10.0]
    raw, std = (best_stable(A, y, np.zeros(2), 40) for A in (X_raw, X))
    assert raw.rate * 30 < std.rate         # curvature x 100 along x2: the rate must shrink
    assert np.all(np.diff(raw.costs) <= 1e-12) and np.all(np.diff(std.costs) <= 1e-12)
    assert std.steps_to_tol is not None and (raw.steps_to_tol or 41) > 2 * std.steps_to_tol
    fig = cost_contours(X_raw, y, steps=40)
    left, middle, right = fig.axes[:3]
    for ax in (left, middle):
        assert ax.get_aspect() == 1.0       # equal scales: elongation is drawn as elongation
        path = ax.lines[0].get_xydata()
        assert path.shape == (41, 2) and np.all(path[0] == 0)
    assert len(right.lines) == 2 and right.get_yscale() == "log"
    assert "standardized" in middle.get_title() and "raw" in left.get_title()


def _table(means: dict) -> pd.DataFrame:
    rows = [{"arm": a, "n_seeds": 5, "optimistic": False, **{f"{k}_mean": v for k, v in m.items()}}
            for a, m in means.items()]
    return pd.DataFrame(rows).set_index("arm")


def test_best_of_chosen_by_compares_the_best_of_each_group():
    spec = parse_lesson("""
title: t
arms: {r1: {}, r2: {}, s1: {}, s2: {}}
claim:
  text: c
  checks:
    - {metric: epochs_to_threshold, best_of: [r1, r2], greater_than_best_of: [s1, s2], factor: 10}
    - {metric: learning_rate, best_of: [r1, r2], chosen_by: epochs_to_threshold, less_than_best_of: [s1, s2], factor: 3}
""", "t")
    table = _table({"r1": {"epochs_to_threshold": 3000, "learning_rate": 1.0},   # dead
                    "r2": {"epochs_to_threshold": 700, "learning_rate": 0.3},
                    "s1": {"epochs_to_threshold": 30, "learning_rate": 3.0},
                    "s2": {"epochs_to_threshold": 400, "learning_rate": 0.1}})
    v = judge(spec, table)
    assert v.held, v.format()
    assert "(r2) epochs_to_threshold mean 700 > 10x best of ['s1', 's2'] (s1)'s 30" in v.checks[0].text
    assert "best by epochs_to_threshold of ['r1', 'r2'] (r2) learning_rate mean 0.3 < 1/3" \
        in v.checks[1].text
    # learning_rate's own best (the smallest) would pick s2: chosen_by is what makes it s1
    table.loc["s1", "epochs_to_threshold_mean"] = 500
    assert not judge(spec, table).held


def test_a_bad_chosen_by_or_cost_bug_arm_is_one_line_naming_the_key():
    base = "title: t\narms: {a: {}}\nclaim: {text: c, checks: [%s]}\n"
    with pytest.raises(ValueError, match=r"claim.checks\[0\].chosen_by must be one of .* got "
                                         r"'speed'"):
        parse_lesson(base % "{metric: learning_rate, best_of: [a], chosen_by: speed, at_most: 1}",
                     "t")
    with pytest.raises(ValueError, match=r"cost_bugs names arm 'b'; arms: \['a'\]"):
        parse_lesson(base % "{metric: n_failed, arm: a, at_most: 0}"
                     + "kind: gradcheck\ncost_bugs: {b: no_l2}\n", "t")


def _failed(rep) -> set:
    return {b.name for b in rep.blocks if b.relative_error >= 1e-5}


def test_a_cost_without_l2_fails_every_weight_block_and_no_bias_block(rng):
    net = init_network(Architecture((2, 5, 3, 1), "tanh"), "he", rng)
    X, y = rng.normal(size=(8, 2)), rng.integers(0, 2, 8)
    assert _failed(gradient_check(net, X, y, l2=0.7)) == set()
    assert _failed(gradient_check(net, X, y, l2=0.7, loss_fn=cost_without_l2)) == {"W1", "W2",
                                                                                     "W3"}


def test_a_fresh_dropout_mask_per_evaluation_fails_every_block_one_fixed_mask_none(rng):
    net = init_network(Architecture((2, 5, 3, 1), "tanh"), "he", rng)
    X, y = rng.normal(size=(8, 2)), rng.integers(0, 2, 8)
    fixed = gradient_check(net, X, y, keep_prob=0.8, rng=np.random.default_rng(1))
    assert _failed(fixed) == set()
    fresh_rng = np.random.default_rng(1)
    fresh = gradient_check(net, X, y, keep_prob=0.8, rng=fresh_rng,
                           loss_fn=fresh_mask_cost(0.8, fresh_rng))
    assert _failed(fresh) == {"W1", "b1", "W2", "b2", "W3", "b3"}


def test_the_gradient_checking_lesson_fails_exactly_the_expected_blocks_at_both_moments():
    r = run_lesson("gradient_checking", seeds=2, conf_dir=CONF, figures=False,
                   overrides=["training.epochs=200"])
    assert r.verdict.held, r.verdict.format()
    expected = {"correct": set(), "scaled_W2": {"W2"}, "forgot_l2": {"W1", "W2", "W3"},
                "dropout_fresh_mask": {"W1", "b1", "W2", "b2", "W3", "b3"},
                "dropout_fixed_mask": set()}
    for run in r.runs:
        for blocks in (run.blocks_init, run.blocks):
            assert {b for b, e in blocks.items() if e >= 1e-5} == expected[run.arm], run.arm


def test_normalization_direction_on_a_small_budget():
    """Best rates of the full lesson (raw 0.3, standardized 3) against a rate that kills raw."""
    r = run_lesson("normalization", seeds=2, conf_dir=CONF, figures=False,
                   arms=["standardized_gd_lr3", "raw_gd_lr3", "raw_gd_lr0.3"],
                   overrides=["training.epochs=1500"])
    t = r.table
    assert t.loc["standardized_gd_lr3", "reached_threshold_min"] == 1.0
    assert t.loc["raw_gd_lr0.3", "reached_threshold_min"] == 1.0     # slower, not dead
    assert t.loc["raw_gd_lr0.3", "epochs_to_threshold_mean"] > 10 * t.loc[
        "standardized_gd_lr3", "epochs_to_threshold_mean"]
    assert t.loc["raw_gd_lr3", "train_accuracy_max"] < 0.6          # the rate that kills raw


def test_the_curves_show_only_figure_curve_arms_when_the_lesson_names_them():
    """normalization has ten arms; its curve panels show the four it names (each scaling at
    its best rate and at the other's), the table keeps all of them."""
    from pipeline.lessons.figures import comparison

    lesson = load_lesson("normalization", CONF)
    r = run_lesson(lesson, seeds=1, conf_dir=CONF, figures=False,
                   arms=["standardized_gd_lr3", "standardized_gd_lr1", "raw_gd_lr3",
                         "raw_gd_lr0.3"], overrides=["training.epochs=20"])
    fig = comparison(lesson, r.runs, list(r.table.index))
    loss = next(ax for ax in fig.axes if ax.get_ylabel() == "train_loss")
    shown = [l.get_label() for l in loss.get_lines() if not l.get_label().startswith("threshold")]
    assert shown == ["standardized_gd_lr3", "raw_gd_lr3", "raw_gd_lr0.3"]
    assert len(r.table) == 4
