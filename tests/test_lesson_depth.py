"""Vanishing/exploding with depth: the trend metrics on hand-made norms, the forward signal of
a hand-checkable network, the initial network is the one that trained, the two-panel figure,
and the lesson's direction (slow: the full lesson's 150 steps on 2 seeds)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline import stages
from pipeline.config import load_config
from pipeline.lessons import run_lesson
from pipeline.lessons import figures as F
from pipeline.lessons.execute import grad_flow
from pipeline.lessons.flow import activation_flow, log10_trend
from pipeline.nn import Architecture, Network, hidden_signal

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_a_straight_line_on_the_log_plot_gives_its_slope_and_a_flat_one_zero():
    v = 10.0 ** (2.0 - 0.6 * np.arange(21))              # down 10^0.6 per step, as sigmoid's
    ratio, slope = log10_trend(v)
    assert slope == pytest.approx(-0.6, abs=1e-12) and ratio == pytest.approx(-12.0, abs=1e-12)
    assert log10_trend(np.full(20, 1e-31)) == pytest.approx((0.0, 0.0), abs=1e-12)  # a level
    noisy = 1e-31 * 10.0 ** np.array([0.3, -0.3] * 10)      # zig-zag around a level
    assert abs(log10_trend(noisy)[1]) < 0.05
    assert all(math.isnan(x) for x in log10_trend([1.0, 0.0, 2.0]))   # no log of 0
    assert all(math.isnan(x) for x in log10_trend([1.0]))


def test_the_gradient_is_read_from_the_last_layer_back_to_the_first():
    """Norms growing from layer 1 to layer 4 (small at the input) vanish on the way back:
    first/last and the slope per layer are both negative."""
    norms = [1e-6, 1e-4, 1e-2, 1.0]                          # W1 .. W4
    hist = {f"grad_norm_W{l}": [n, 123.0] for l, n in enumerate(norms, start=1)}
    out = grad_flow(hist, 4)
    assert out["log10_grad_ratio"] == pytest.approx(-6.0)
    assert out["log10_grad_slope"] == pytest.approx(-2.0)
    assert out["log10_grad_spread"] == pytest.approx(6.0)
    assert (out["grad_W1"], out["grad_norm_first"], out["grad_norm_last"]) == (1e-6, 1e-6, 1.0)
    hist["grad_norm_W2"] = [0.0]
    zero = grad_flow(hist, 4)
    assert zero["zero_gradient"] == 1.0 and math.isnan(zero["log10_grad_slope"])


def test_the_forward_signal_is_read_from_the_first_hidden_layer_to_the_last():
    out = activation_flow([1.0, 0.1, 0.01])
    assert (out["act_A1"], out["act_A3"], out["act_norm_first"], out["act_norm_last"]) == (
        1.0, 0.01, 1.0, 0.01)
    assert out["log10_act_ratio"] == pytest.approx(-2.0)
    assert out["log10_act_slope"] == pytest.approx(-1.0)


def test_hidden_signal_of_a_network_worked_by_hand():
    """x in {-1, 1, 3}; layer 1 = relu(x), relu(-x): [0, 1, 3] (variance 14/9) and [1, 0, 0]
    (2/9), RMS over units sqrt(8/9); layer 2 = relu(2 H1) = 2 H1: twice that."""
    arch = Architecture((1, 2, 2, 1), "relu")
    net = Network.from_params(arch, {"W1": [[1.0, -1.0]], "b1": [0.0, 0.0],
                                     "W2": 2.0 * np.eye(2), "b2": [0.0, 0.0],
                                     "W3": [[1.0], [1.0]], "b3": [0.0]})
    signal = hidden_signal(net, np.array([[-1.0], [1.0], [3.0]]))
    assert signal == pytest.approx([math.sqrt(8 / 9), 2 * math.sqrt(8 / 9)], rel=1e-12)


def test_hidden_signal_leaves_out_a_constant_output():
    """A sigmoid layer with zero weights outputs 0.5 for every example: RMS 0.5, signal 0."""
    arch = Architecture((2, 3, 1), "sigmoid")
    net = Network.from_params(arch, {"W1": np.zeros((2, 3)), "b1": np.zeros(3),
                                     "W2": np.ones((3, 1)), "b2": [0.0]})
    assert hidden_signal(net, np.random.default_rng(0).normal(size=(5, 2))) == pytest.approx(
        [0.0, ])


def test_the_initial_network_is_the_one_that_trained():
    """Its gradient on the training set is the first step's gradient that `fit` recorded."""
    cfg = load_config(["model.hidden=[6,5]", "model.activation=tanh",
                       "training.epochs=2", "training.eval_every=1", "training.optimizer=gd",
                       "data.target=null", "seed=3"], conf_dir=CONF)
    prepared = stages.prepare(cfg)
    net = stages.initial_network(cfg, prepared)
    _, buf = net.forward(prepared.train.X)
    grad = net.gradient(buf, prepared.train.y)
    hist = stages.train(cfg, prepared).fit.history
    for l in (1, 2, 3):
        assert np.linalg.norm(grad[f"W{l}"]) == pytest.approx(hist[f"grad_norm_W{l}"][0],
                                                              rel=1e-12)


def _run(arm, seed, scale):
    metrics = {f"grad_W{l}": scale * 10.0 ** l for l in (1, 2, 3)}
    metrics.update({f"act_A{l}": scale * 10.0 ** -l for l in (1, 2)}, act_norm_first=scale)
    return SimpleNamespace(arm=arm, seed=seed, metrics=metrics)


def test_the_figure_has_a_backward_and_a_forward_panel_and_its_legend_outside_them():
    runs = [_run("a", 0, 1.0), _run("a", 1, 2.0), _run("b", 0, 1e-3)]
    fig = F.grad_flow(runs, ["a", "b"])
    back, fwd = fig.axes
    assert [len(ax.lines) for ax in (back, fwd)] == [2, 2]
    assert list(back.lines[0].get_xdata()) == [1, 2, 3] and list(fwd.lines[0].get_xdata()) == [1, 2]
    # mean of log10 over the seeds: arm a, layer 1 is mean(log10 10, log10 20)
    assert back.lines[0].get_ydata()[0] == pytest.approx((1 + math.log10(20)) / 2)
    assert fwd.lines[1].get_ydata()[1] == pytest.approx(-5.0)           # arm b, hidden layer 2
    fig.canvas.draw()
    legend = fwd.get_legend().get_window_extent()
    assert legend.x0 > fwd.get_window_extent().x1       # beside the lines, not on them


@pytest.mark.slow
@pytest.mark.xdist_group("lesson_run_cache")   # conftest.py lesson_run_cache
def test_the_lesson_shows_the_trends_and_he_learns_where_xavier_is_stuck(lesson_run_cache):
    from pipeline.tracking.cache import lesson_cache

    # seeds 0 and 1: notebook 05 at its defaults (5 seeds) reuses them from the run cache
    r = run_lesson("vanishing_exploding", seeds=2, conf_dir=CONF, figures=False,
                   cache=lesson_cache(lesson_run_cache))
    assert r.verdict.held, r.verdict.format()
    t = r.table
    # vanishing toward the input, about log10(1/4) per layer (sigmoid's largest slope)
    assert -0.7 < t.loc["sigmoid_xavier", "log10_grad_slope_mean"] < -0.5
    assert t.loc["tanh_large", "log10_grad_slope_min"] > 0                # exploding
    assert abs(t.loc["tanh_small", "log10_grad_slope_mean"]) < 0.05       # a level
    assert t.loc["relu_xavier", "log10_act_ratio_mean"] < -3              # forward dies ...
    assert t.loc["relu_he", "log10_act_ratio_mean"] > -1.5                # ... He keeps it
    assert t.loc["relu_he", "train_loss_max"] < 0.3 < 0.68 < t.loc["relu_xavier", "train_loss_min"]
