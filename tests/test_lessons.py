"""Lessons: the YAML at the door, configs equal to `train`'s, the verdict logic, and each
shipped lesson's claim in the same direction on a small budget (2 seeds, fewer epochs)."""

from pathlib import Path

import pandas as pd
import pytest

from pipeline import stages
from pipeline.config import load_config
from pipeline.lessons import available, judge, load_lesson, parse_lesson, plan, run_lesson
from pipeline.lessons.execute import execute
from pipeline.lessons.spec import Corrupt
from pipeline.nn import Architecture, init_network, symmetric_units

CONF = Path(__file__).resolve().parents[1] / "conf"
SHIPPED = ["augmentation", "bias_variance", "early_stopping", "early_stopping_tradeoff",
           "gradient_checking", "initialization", "normalization", "regularization",
           "regularization_coin_flip", "vanishing_exploding"]

MINIMAL = """
title: t
base: {data.params: {n_samples: 60}, training.epochs: 5, training.eval_every: 1}
arms: {a: {}, b: {regularization.l2: 0.5}}
claim: {text: c, checks: [{metric: dev_accuracy, arm: a, at_least: 0.0}]}
"""


def lesson(text: str = MINIMAL, **replace):
    import yaml
    data = yaml.safe_load(text)
    data.update(replace)
    return parse_lesson(yaml.safe_dump(data), "tiny")


def test_the_shipped_lessons_are_listed_and_valid():
    assert available(CONF) == SHIPPED
    for name in SHIPPED:
        assert plan(load_lesson(name, CONF), seeds=1, conf_dir=CONF)  # every arm's config builds


def test_an_unknown_lesson_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"lesson must be one of \['augmentation', "
                                         r"'bias_variance', .*got 'nope'"):
        load_lesson("nope", CONF)


@pytest.mark.parametrize("replace, message", [
    ({"arms": {}}, "kind arms needs arms"),
    ({"kind": "spiral"}, "lesson tiny: kind must be one of"),
    ({"seeds": 0}, "lesson tiny: seeds must be >= 1, got 0"),
    ({"claim": {"text": "c", "checks": [{"metric": "dev_accuracy", "arm": "zz", "at_least": 1}]}},
     "claim.checks[0] names arm 'zz'; arms: ['a', 'b']"),
    ({"claim": {"text": "c", "checks": [{"metric": "dev_acc", "arm": "a", "at_least": 1}]}},
     "claim.checks[0].metric must be one of"),
    ({"claim": {"text": "c", "checks": [{"metric": "dev_accuracy", "arm": "a"}]}},
     "claim.checks[0] needs a comparison"),
    ({"arms": {"a b": {}}}, "arms.a b must use only letters"),
    ({"colour": "red"}, "unknown key colour; valid keys of the config"),
    ({"title": None}, "lesson tiny: title must be a string, got None"),
    ({"claim": {"text": "c", "checks": [{"metric": "dev_accuracy", "arm": "a", "above": 1}]}},
     "unknown key claim.checks[0].above; valid keys of claim.checks.0: arm, at_least,"),
])
def test_a_bad_lesson_file_is_one_line_naming_the_key(replace, message):
    with pytest.raises(ValueError) as err:
        lesson(**replace)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_override_in_an_arm_names_the_arm_and_the_key():
    bad = lesson(arms={"a": {}, "b": {"regularization.keep_prob": 1.5}})
    with pytest.raises(ValueError, match=r"lesson tiny: arms.b: regularization.keep_prob must be "
                                         r"in \(0, 1\], got 1.5"):
        plan(bad, seeds=1, conf_dir=CONF)
    with pytest.raises(ValueError, match=r"seeds must be an integer in \[1, 1000\], got 0"):
        plan(lesson(), seeds=0, conf_dir=CONF)
    with pytest.raises(ValueError, match=r"corrupt.block must be one of \['W1', 'b1', 'W2', "
                                         r"'b2', 'W3', 'b3'\], got 'W9'"):
        plan(load_lesson("gradient_checking", CONF).model_copy(
            update={"corrupt": Corrupt(arm="scaled_W2", block="W9")}), seeds=1, conf_dir=CONF)
    with pytest.raises(ValueError, match="kind gradient_flow needs training.eval_every=1"):
        plan(load_lesson("vanishing_exploding", CONF), overrides=["training.eval_every=2"],
             conf_dir=CONF)


def test_an_arm_seed_is_exactly_the_train_command_with_its_overrides():
    """Same config as `python -m pipeline train <overrides>`, hence the same numbers."""
    jobs = plan(lesson(), seeds=2, overrides=["training.learning_rate=0.05"], conf_dir=CONF)
    assert [(j.arm, j.seed) for j in jobs] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    job = jobs[3]
    cfg = load_config(job.overrides, conf_dir=CONF)
    assert cfg.to_yaml() == job.cfg_yaml
    assert (cfg.seed, cfg.regularization.l2, cfg.training.learning_rate) == (1, 0.5, 0.05)
    trained = stages.train(cfg, stages.prepare(cfg))
    run = execute(job)
    assert run.metrics["dev_loss"] == trained.metrics["dev_loss"]
    assert run.history["train_loss"] == trained.fit.history["train_loss"]


def test_symmetric_units_counts_units_with_an_identical_twin(rng):
    arch = Architecture((2, 5, 3, 1))
    assert symmetric_units(init_network(arch, "zeros", rng).params) == 1.0
    params = init_network(arch, "he", rng).params
    assert symmetric_units(params) == 0.0
    params["W1"][:, 1] = params["W1"][:, 0]          # units 0 and 1 of layer 1: twins
    assert symmetric_units(params) == pytest.approx(2 / 8)


def _table(rows):
    frame = pd.DataFrame(rows).set_index("arm")
    frame["n_seeds"], frame["optimistic"] = 5, frame.index == "es"
    for col in [c for c in frame.columns if c.endswith("_mean")]:
        frame[col.replace("_mean", "_std")] = 0.0
    return frame


def test_judge_leaves_optimistic_arms_out_of_best_of_and_names_the_failed_check():
    spec = lesson(arms={"none": {}, "l2": {}, "es": {}}, claim={"text": "reg helps", "checks": [
        {"metric": "dev_accuracy", "best_of": ["l2", "es"], "at_least": 0.95},
        {"metric": "dev_loss", "arm": "none", "greater_than_arm": "l2", "factor": 2}]})
    table = _table([{"arm": "none", "dev_accuracy_mean": 0.85, "dev_loss_mean": 0.9},
                    {"arm": "l2", "dev_accuracy_mean": 0.93, "dev_loss_mean": 0.3},
                    {"arm": "es", "dev_accuracy_mean": 0.99, "dev_loss_mean": 0.2}])
    v = judge(spec, table)
    assert not v.held and [c.passed for c in v.checks] == [False, True]
    assert v.line.startswith("failed: reg helps (1/2 checks, mean over 5 seeds); not met: best "
                             "of ['l2'] (l2), ['es'] left out as optimistic")
    table.loc["l2", "dev_accuracy_mean"] = 0.96
    assert judge(spec, table).held


def _held(result, *indices):
    checks = result.verdict.checks
    return [checks[i].passed for i in indices] == [True] * len(indices), result.verdict.format()


def test_initialization_direction_on_a_small_budget():
    r = run_lesson("initialization", seeds=2, conf_dir=CONF,
                   overrides=["data.params={n_samples: 160}", "training.epochs=1500"])
    t = r.table
    axes = r.figures["lesson/comparison.png"].axes     # 4 boundaries, then the 2 curve panels
    assert [a.get_title().split(":")[0] for a in axes[:4]] == list(t.index)
    assert "seed" in axes[0].get_title() and axes[4].get_ylabel() == "train_loss"
    assert [l.get_label() for l in axes[5].get_lines()] == list(t.index)
    assert t.loc["zeros", "dev_accuracy_max"] == 0.5 and t.loc["zeros", "symmetric_units_min"] == 1
    assert t.loc["random_large", "first_train_loss_min"] > 10 * t.loc["he", "first_train_loss_max"]
    assert t.loc["he", "dev_accuracy_mean"] > t.loc["random_large", "dev_accuracy_mean"] + 0.1
    assert _held(r, 0, 1, 2, 3)[0]


def test_regularization_direction_on_a_small_budget():
    r = run_lesson("regularization", seeds=2, conf_dir=CONF, figures=False,
                   arms=["none", "dropout", "early_stopping"],
                   overrides=["model.hidden=[40,25,15]", "training.epochs=250"])
    t = r.table
    assert t.loc["dropout", "dev_accuracy_mean"] > t.loc["none", "dev_accuracy_mean"] + 0.03
    assert t.loc["none", "train_accuracy_mean"] > t.loc["dropout", "train_accuracy_mean"]
    assert bool(t.loc["early_stopping", "optimistic"]) and not t["optimistic"].drop(
        "early_stopping").any()


def test_bias_variance_direction_on_a_small_budget():
    r = run_lesson("bias_variance", seeds=2, conf_dir=CONF, arms=["small/n50", "large/n50"],
                   overrides=["training.epochs=300"])
    assert set(r.figures) == {"lesson/comparison.png", "lesson/curves.png"}
    assert r.diagnoses["small/n50"].verdict == "high bias and high variance"
    assert r.diagnoses["large/n50"].verdict == "high variance"
    assert r.table.loc["large/n50", "train_error_mean"] < r.table.loc[
        "small/n50", "train_error_mean"] - 0.1
    assert "next step" in r.texts["lesson/table.md"]


def test_vanishing_exploding_and_gradient_checking_hold():
    # one step: every check about the initial weights holds; the two about training (the relu
    # arms' train_loss) need the lesson's 150 steps (tests/test_lesson_depth.py, slow)
    r = run_lesson("vanishing_exploding", seeds=2, conf_dir=CONF, overrides=["training.epochs=1"])
    at_init = [c for c in r.verdict.checks if " train_loss " not in c.text]
    assert len(at_init) == len(r.verdict.checks) - 2, r.verdict.format()
    assert all(c.passed for c in at_init), r.verdict.format()
    assert r.table.loc["sigmoid_xavier", "log10_grad_ratio_mean"] < -6
    assert set(r.figures) == {"lesson/comparison.png", "lesson/curves.png"}
    g = run_lesson("gradient_checking", seeds=2, conf_dir=CONF)
    assert g.verdict.held, g.verdict.format()
    assert g.texts["lesson/gradcheck/scaled_W2-seed0.txt"].count("failed blocks: W2\n") == 2
    assert g.texts["lesson/gradcheck/correct-seed1.txt"].count("failed blocks: none") == 2


@pytest.mark.slow
@pytest.mark.xdist_group("lesson_run_cache")   # conftest.py lesson_run_cache
def test_the_full_regularization_lesson_reaches_the_target(lesson_run_cache):
    """The issue's target: the best regularized arm that did not select on dev >= 0.95 mean
    clean-dev accuracy over 5 seeds, and the verdict says held. (Its runs are the ones
    notebook 02 reuses at its defaults: conftest.py lesson_run_cache.)"""
    from pipeline.tracking.cache import lesson_cache

    r = run_lesson("regularization", conf_dir=CONF, figures=False, workers=2,
                   cache=lesson_cache(lesson_run_cache))
    assert r.verdict.held, r.verdict.format()
    honest = r.table.drop(index=["none", "early_stopping"])
    assert honest["dev_accuracy_mean"].max() >= 0.95
    assert (r.table["n_seeds"] == 5).all()


@pytest.mark.slow
def test_two_workers_give_the_same_numbers_as_one():
    kw = dict(seeds=2, conf_dir=CONF, figures=False, arms=["zeros", "he"],
              overrides=["training.epochs=300"])
    one, two = run_lesson("initialization", **kw), run_lesson("initialization", workers=2, **kw)
    assert [(r.arm, r.seed) for r in two.runs] == [(r.arm, r.seed) for r in one.runs]
    pd.testing.assert_frame_equal(one.table, two.table, rtol=1e-12)
