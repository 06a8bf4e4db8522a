"""Stages: seeded, independent streams; the clean dev/test target; metrics and figures."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import stages
from pipeline.config import load_config

CONF = Path(__file__).resolve().parents[1] / "conf"


def cfg_of(*overrides, **kw):
    return load_config(overrides, conf_dir=CONF, **kw)


# One xdist worker builds this module's store once (--dist loadgroup in pyproject); split
# across two workers the module fixture was built twice.
pytestmark = pytest.mark.xdist_group("test_stages")


@pytest.fixture(scope="module")
def default_run():
    cfg = cfg_of()
    prepared = stages.prepare(cfg)
    return cfg, prepared, stages.train(cfg, prepared)


def test_prepare_standardizes_with_train_statistics_and_seals_test():
    prepared = stages.prepare(cfg_of())
    raw = prepared.raw_train.X
    np.testing.assert_allclose(prepared.standardizer.mean, raw.mean(axis=0))
    np.testing.assert_allclose(prepared.train.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(prepared.train.X.std(axis=0), 1.0, atol=1e-12)
    np.testing.assert_array_equal(prepared.dev.X, prepared.standardizer.transform(prepared.raw_dev.X))
    assert not hasattr(prepared.test, "X")
    assert set(prepared.digests) == {"train", "dev", "test"}


def test_standardize_false_trains_on_raw_features_and_serves_the_identity():
    prepared = stages.prepare(cfg_of("data.standardize=false"))
    np.testing.assert_array_equal(prepared.train.X, prepared.raw_train.X)
    np.testing.assert_array_equal(prepared.dev.X, prepared.raw_dev.X)
    assert prepared.standardizer.mean.tolist() == [0.0, 0.0]
    assert prepared.standardizer.std.tolist() == [1.0, 1.0]


def test_feature_scale_multiplies_raw_features_of_train_dev_and_test():
    plain = stages.prepare(cfg_of())
    scaled = stages.prepare(cfg_of("data.feature_scale=[1,1000]"))
    np.testing.assert_allclose(scaled.raw_train.X, plain.raw_train.X * [1, 1000])
    np.testing.assert_allclose(scaled.raw_dev.X, plain.raw_dev.X * [1, 1000])
    # standardized, the network sees the same inputs whatever the scale
    np.testing.assert_allclose(scaled.train.X, plain.train.X, atol=1e-9)
    with pytest.raises(ValueError, match=r"data.feature_scale needs one multiplier per feature "
                                         r"\(2 for noisy_diagonal\), got 3"):
        stages.prepare(cfg_of("data.feature_scale=[1,2,3]"))
    with pytest.raises(ValueError, match="data.feature_scale"):
        cfg_of("data.feature_scale=[1,0]")


def test_default_dev_and_test_come_from_the_clean_variant():
    prepared = stages.prepare(cfg_of())
    X, y = prepared.raw_dev.X, prepared.raw_dev.y
    np.testing.assert_array_equal(y, (X[:, 0] > X[:, 1]).astype(int))   # the rule, no noise
    X, y = prepared.raw_train.X, prepared.raw_train.y
    assert np.mean(y != (X[:, 0] > X[:, 1])) > 0.1                      # train has the noisy band
    assert stages.resolve_target(cfg_of("data.name=rings").data) is None


def test_same_config_gives_bit_identical_data_and_training(default_run):
    cfg, prepared, _ = default_run
    again = stages.prepare(cfg)
    assert again.digests == prepared.digests
    np.testing.assert_array_equal(again.train.X, prepared.train.X)
    # the same (dropout, so every stream is drawn) training twice on a 200-epoch budget: a
    # second 2000-epoch default run was 2 s of the fast suite, for the same code path
    cfg = cfg.with_overrides({"training.epochs": 200, "regularization.keep_prob": 0.8})
    trained, retrained = stages.train(cfg, prepared), stages.train(cfg, again)
    assert retrained.metrics == trained.metrics
    np.testing.assert_array_equal(retrained.model.network.theta, trained.model.network.theta)


def test_streams_are_independent_per_concern():
    base = stages.prepare(cfg_of()).digests
    assert stages.prepare(cfg_of("model.init=xavier", "training.learning_rate=0.5")).digests == base
    assert stages.prepare(cfg_of("seed=1")).digests != base
    a, b = stages.streams(0), stages.streams(0)
    assert a["init"].random() == b["init"].random()
    assert stages.streams(0)["init"].random() != stages.streams(0)["split"].random()


def test_default_run_overfits_the_noisy_labels_visibly(default_run):
    # the default is unregularized and trained to the end, so that l2 / keep_prob / patience
    # change what a user sees: it memorizes the flipped labels (train above the rule's ~89%)
    # and the clean dev shows it; the diagnosis says so
    cfg, _, trained = default_run
    n_eval = len(trained.fit.history["epoch"])
    # eval_every: auto = 2000 // 200 = 10 epochs
    assert stages.settings(cfg).eval_every == 10 and trained.fit.history["epoch"][:2] == [10, 20]
    assert 100 <= n_eval <= 300
    assert trained.fit.stop_reason == "completed"
    assert trained.metrics["best_epoch"] == trained.fit.best_epoch == trained.fit.epochs_run
    assert trained.metrics["train_accuracy"] > 0.95
    assert trained.metrics["dev_accuracy"] < trained.metrics["train_accuracy"] - 0.05
    assert trained.diagnosis.verdict == "high variance"


def test_split_metrics_agree_with_the_trained_metrics(default_run):
    _, prepared, trained = default_run
    dev = stages.split_metrics(trained, prepared.dev)
    assert dev == {k: trained.metrics[k] for k in ("dev_loss", "dev_accuracy", "dev_error")}
    assert trained.diagnosis.train_error == trained.metrics["train_error"]


def test_open_test_split_is_standardized_and_recorded(default_run):
    _, prepared, trained = default_run
    fresh = stages.prepare(cfg_of())
    test = stages.open_test_split(fresh, "unit test")
    assert test.n == fresh.test.n and test.name == "test"
    assert abs(test.X.mean()) < 0.5                  # standardized scale, not the raw unit square
    assert fresh.test.unsealed_for == ("unit test",)
    assert set(stages.split_metrics(trained, test)) == {"test_loss", "test_accuracy", "test_error"}


def test_figures_for_2d_data(default_run):
    cfg, prepared, trained = default_run
    figs = stages.figures(cfg, prepared, trained)
    assert sorted(figs) == ["plots/boundary_dev.png", "plots/boundary_train.png",
                            "plots/gradient_norms.png", "plots/learning_curves.png"]
    ax = figs["plots/gradient_norms.png"].axes[0]
    assert len(ax.lines) == 4                         # one line per weight matrix (W1..W4)
    assert "accuracy" in figs["plots/boundary_dev.png"].axes[0].get_title()


def test_figures_for_digits_are_confusion_matrices():
    cfg = cfg_of("training.epochs=4", "training.eval_every=2", preset="digits")
    prepared = stages.prepare(cfg)
    assert prepared.train.n == 2 * prepared.raw_train.n          # one augmented copy
    trained = stages.train(cfg, prepared)
    assert trained.model.arch.layer_sizes == (64, 64, 32, 10)
    figs = stages.figures(cfg, prepared, trained)
    assert "plots/confusion_dev.png" in figs and "plots/boundary_dev.png" not in figs
    image = figs["plots/confusion_dev.png"].axes[0].images[0].get_array()
    assert image.shape == (10, 10) and int(image.sum()) == prepared.raw_dev.n


def test_bad_data_parameter_is_a_value_error():
    with pytest.raises(ValueError, match="no parameter 'radius'"):
        stages.prepare(cfg_of("data.params.radius=3"))


# Slow (a fresh interpreter, 3-4 s at load): pinned in the fast suite by test_boundaries.py::
# test_core_does_not_import_mlflow_or_optuna, whose core list holds all five modules imported
# here (config, stages, metrics, diagnosis, plots.training) and checks optuna too.
@pytest.mark.slow
def test_core_modules_do_not_import_mlflow():
    code = ("import sys, pipeline.config, pipeline.stages, pipeline.metrics, pipeline.diagnosis, "
            "pipeline.plots.training; "
            "print(sorted(m for m in ('mlflow', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
