"""The training loop: evaluation schedule, callbacks, early stopping, non-finite detection."""

import math

import numpy as np
import pytest

from pipeline.nn import Architecture, init_network
from pipeline.train import FitResult, TrainSettings, fit

ARCH = Architecture((2, 8, 1), "tanh")


def _data(seed=0, m=120):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 2))
    return X, (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64)


def test_evaluation_schedule_metrics_and_callbacks():
    X, y = _data()
    seen = []
    s = TrainSettings(learning_rate=0.5, epochs=250, eval_every=100)
    r = fit(init_network(ARCH, "he", np.random.default_rng(1)), X, y, X[:30], y[:30], s,
            np.random.default_rng(0), callbacks=[lambda e, m: seen.append((e, dict(m)))])
    assert [e for e, _ in seen] == [100, 200, 250] == r.history["epoch"]
    metrics = seen[-1][1]
    for key in ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "grad_norm_W1",
                "grad_norm_W2", "grad_norm_b1", "act_mean_1", "act_std_1"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert r.history["train_loss"][0] > r.history["train_loss"][-1]
    assert metrics["train_accuracy"] > 0.85
    assert r.stop_reason == "completed" and r.epochs_run == 250
    assert r.history["dev_loss"] == [m["dev_loss"] for _, m in seen]


def test_callback_exception_propagates():
    X, y = _data()

    class Prune(Exception):
        pass

    def cb(epoch, metrics):
        if epoch >= 20:
            raise Prune(epoch)

    with pytest.raises(Prune):
        fit(init_network(ARCH, "he", np.random.default_rng(1)), X, y, X, y,
            TrainSettings(epochs=100, eval_every=10), np.random.default_rng(0), callbacks=[cb])


def test_early_stopping_restores_best_params():
    # dev labels are the flipped training labels: as training improves, dev loss only rises,
    # so the best evaluation is the first one and patience 3 stops at the fourth
    X, y = _data()
    p0 = init_network(ARCH, "he", np.random.default_rng(1))
    s = TrainSettings(learning_rate=0.5, epochs=1000, eval_every=10, patience=3)
    r = fit(p0, X, y, X, 1 - y, s, np.random.default_rng(0))
    assert r.stop_reason == "early_stopping" and "dev_loss" in r.stop_message
    assert r.best_epoch == 10 and r.epochs_run == 40
    assert r.history["epoch"] == [10, 20, 30, 40]
    assert np.argmin(r.history["dev_loss"]) == 0
    ref = fit(p0, X, y, None, None, TrainSettings(learning_rate=0.5, epochs=10,
              eval_every=10), np.random.default_rng(0))
    np.testing.assert_array_equal(r.network.theta, ref.network.theta)


def test_without_early_stopping_the_reported_epoch_is_the_one_returned():
    # dev labels flipped: the best dev evaluation is the first, but with patience None the
    # last epoch's params are returned, so best_epoch must name the last epoch, not epoch 10
    X, y = _data()
    p0 = init_network(ARCH, "he", np.random.default_rng(1))
    s = TrainSettings(learning_rate=0.5, epochs=40, eval_every=10)
    r = fit(p0, X, y, X, 1 - y, s, np.random.default_rng(0))
    assert np.argmin(r.history["dev_loss"]) == 0
    assert (r.stop_reason, r.best_epoch, r.epochs_run) == ("completed", 40, 40)
    ref = fit(p0, X, y, None, None, s, np.random.default_rng(0))
    np.testing.assert_array_equal(r.network.theta, ref.network.theta)


def test_early_stopping_min_delta_and_dev_error():
    X, y = _data()
    p0 = init_network(ARCH, "he", np.random.default_rng(1))
    # an impossible min_delta: nothing after the first evaluation counts as improvement
    s = TrainSettings(learning_rate=0.5, epochs=1000, eval_every=5, patience=2, min_delta=10.0,
                      monitor="dev_error")
    r = fit(p0, X, y, X, y, s, np.random.default_rng(0))
    assert (r.stop_reason, r.best_epoch, r.epochs_run) == ("early_stopping", 5, 15)
    with pytest.raises(ValueError, match="dev set"):
        fit(p0, X, y, None, None, s, np.random.default_rng(0))


def test_huge_learning_rate_stops_as_non_finite():
    X, y = _data()
    arch = Architecture((2, 10, 5, 1), "leaky_relu")
    p0 = init_network(arch, "random", np.random.default_rng(1), scale=10.0)
    r = fit(p0, X, y, X, y, TrainSettings(learning_rate=1e6, epochs=3000, eval_every=1),
            np.random.default_rng(0))
    assert r.stop_reason == "non_finite" and r.epochs_run < 50
    assert "nan" in r.stop_message or "non-finite" in r.stop_message
    assert "learning_rate" in r.stop_message
    assert np.isfinite(r.network.theta).all()
    assert all(np.isfinite(v).all() for vals in r.history.values() for v in vals)


def test_minibatches_shuffle_from_rng_and_are_reproducible():
    X, y = _data(m=100)
    p0 = init_network(ARCH, "he", np.random.default_rng(1))
    s = TrainSettings(learning_rate=0.2, epochs=30, batch_size=32, eval_every=30,
                      optimizer="momentum", keep_prob=0.9)
    a = fit(p0, X, y, X, y, s, np.random.default_rng(5))
    b = fit(p0, X, y, X, y, s, np.random.default_rng(5))
    c = fit(p0, X, y, X, y, s, np.random.default_rng(6))
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert a.history["train_accuracy"][-1] > 0.8


def test_float32_with_dropout_and_minibatches():
    X, y = _data()
    r = fit(init_network(ARCH, "he", np.random.default_rng(1)), X, y, X, y,
            TrainSettings(learning_rate=0.3, epochs=50, keep_prob=0.8, batch_size=32,
                          dtype="float32", eval_every=50), np.random.default_rng(0))
    assert r.params["W1"].dtype == np.float32 and r.stop_reason == "completed"
    assert r.history["train_accuracy"][-1] > 0.8


def test_adam_and_float32():
    X, y = _data()
    p0 = init_network(ARCH, "he", np.random.default_rng(1))
    r64 = fit(p0, X, y, X, y, TrainSettings(learning_rate=0.01, epochs=300,
              optimizer="adam", eval_every=300), np.random.default_rng(0))
    r32 = fit(p0, X, y, X, y, TrainSettings(learning_rate=0.01, epochs=300,
              optimizer="adam", eval_every=300, dtype="float32"), np.random.default_rng(0))
    assert r32.params["W1"].dtype == np.float32 and r64.params["W1"].dtype == np.float64
    assert abs(r32.history["train_loss"][-1] - r64.history["train_loss"][-1]) < 1e-3
    assert r64.history["train_accuracy"][-1] > 0.85


def test_softmax_training_learns_three_classes():
    rng = np.random.default_rng(2)
    centers = np.array([[0, 3], [3, 0], [-3, -3]])
    y = rng.integers(0, 3, 150)
    X = centers[y] + rng.standard_normal((150, 2))
    arch = Architecture((2, 6, 3), "relu")
    r = fit(init_network(arch, "he", rng), X, y, X, y,
            TrainSettings(learning_rate=0.3, epochs=200, eval_every=200), rng)
    assert r.history["dev_accuracy"][-1] > 0.95


def test_bad_inputs_are_refused():
    X, y = _data()
    p0 = init_network(ARCH, "he", np.random.default_rng(1))
    s = TrainSettings(epochs=1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"X_train shape must be \(m, 2\)"):
        fit(p0, X[:, :1], y, None, None, s, rng)
    with pytest.raises(ValueError, match="y_train values must be in 0..1"):
        fit(p0, X, y + 1, None, None, s, rng)
    with pytest.raises(ValueError, match="keep_prob must have one entry per hidden layer"):
        fit(p0, X, y, None, None, TrainSettings(keep_prob=(0.5, 0.5)), rng)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_train must be finite"):
        fit(p0, Xn, y, None, None, s, rng)
    assert isinstance(fit(p0, X, y, None, None, s, rng), FitResult)


# Slow (9-12 s, a fresh interpreter importing sklearn): benchmarks/ is not the product, and the
# training it times is pinned in-process by this file's fit tests and tests/test_nn_*.py.
@pytest.mark.slow
def test_benchmark_quick_code_path_on_a_tiny_workload():
    # the benchmark's own code (every peer but torch, the table, the matmul rate) on tiny data
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_nn.py")
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..")}
    proc = subprocess.run([sys.executable, script, "--quick", "--scale", "1000", "--only", "1,3",
                           "--no-torch"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("(")]
    assert any(r.startswith("(1)") and "this project" in r for r in rows)
    assert any(r.startswith("(3)") and "sklearn MLP" in r for r in rows)
    assert "of the NumPy float64 matmul rate on the step's own shapes" in proc.stdout
