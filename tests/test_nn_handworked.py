"""A tiny network with known weights, worked by hand: forward values, loss with L2, one step.

The expected numbers are written out as explicit arithmetic on the given weights, independent
of the module's code (no matrix helpers, no shared functions).
"""

import math

import numpy as np

from pipeline.metrics import classification_metrics
from pipeline.nn import Architecture, Network
from pipeline.train import TrainSettings, fit

ARCH = Architecture((2, 2, 1), "relu")
X = np.array([[1.0, 2.0], [-1.0, 0.5]])
Y = np.array([1, 0])
PARAMS = {
    "W1": np.array([[0.1, 0.5], [0.3, 0.4]]),
    "b1": np.array([0.01, -0.02]),
    "W2": np.array([[0.5], [-0.6]]),
    "b2": np.array([0.05]),
}
LAM, LR = 0.2, 0.1


def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


# sample 1: z1 = 1*0.1 + 2*0.3 + 0.01, z2 = 1*0.5 + 2*0.4 - 0.02 (both > 0)
# sample 2: z1 = -1*0.1 + 0.5*0.3 + 0.01 (> 0), z2 = -1*0.5 + 0.5*0.4 - 0.02 (< 0 -> relu 0)
Z1 = [[0.1 + 0.6 + 0.01, 0.5 + 0.8 - 0.02], [-0.1 + 0.15 + 0.01, -0.5 + 0.2 - 0.02]]
A1 = [[Z1[0][0], Z1[0][1]], [Z1[1][0], 0.0]]
OUT = [A1[0][0] * 0.5 + A1[0][1] * -0.6 + 0.05, A1[1][0] * 0.5 + A1[1][1] * -0.6 + 0.05]
P = [sig(OUT[0]), sig(OUT[1])]
SUMSQ = 0.1**2 + 0.5**2 + 0.3**2 + 0.4**2 + 0.5**2 + 0.6**2
LOSS = -(math.log(P[0]) + math.log(1.0 - P[1])) / 2 + LAM / (2 * 2) * SUMSQ
D1, D2 = (P[0] - 1) / 2, (P[1] - 0) / 2          # dJ/d(out) per sample, already / m
GRADS = {
    "W2": [[A1[0][0] * D1 + A1[1][0] * D2 + LAM / 2 * 0.5],
           [A1[0][1] * D1 + A1[1][1] * D2 + LAM / 2 * -0.6]],
    "b2": [D1 + D2],
    # hidden unit 1 is active for both samples, unit 2 only for sample 1
    "W1": [[1.0 * 0.5 * D1 + -1.0 * 0.5 * D2 + LAM / 2 * 0.1, 1.0 * -0.6 * D1 + LAM / 2 * 0.5],
           [2.0 * 0.5 * D1 + 0.5 * 0.5 * D2 + LAM / 2 * 0.3, 2.0 * -0.6 * D1 + LAM / 2 * 0.4]],
    "b1": [0.5 * D1 + 0.5 * D2, -0.6 * D1],
}


def test_hand_numbers_are_what_we_think():
    assert Z1[1][1] < 0 < min(Z1[0][0], Z1[0][1], Z1[1][0])  # the relu cut is exercised
    assert abs(OUT[0] - (-0.363)) < 1e-15 and abs(OUT[1] - 0.08) < 1e-15


def _net():
    return Network.from_params(ARCH, PARAMS)


def test_forward_values():
    probs, buf = _net().forward(X)
    np.testing.assert_allclose(buf.Z[0].T, Z1, rtol=0, atol=1e-12)       # (m, n1)
    np.testing.assert_allclose(buf.H[0].T, A1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(buf.Z[-1][0], OUT, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probs[:, 0], P, rtol=0, atol=1e-12)


def test_loss_with_l2():
    net = _net()
    probs, buf = net.forward(X)
    assert abs(net.loss(buf, Y, l2=LAM) - LOSS) < 1e-12
    data = classification_metrics(probs, Y)["loss"]                      # from probabilities
    assert abs(data + net.penalty(2, l2=LAM).value(net.Ws) - LOSS) < 1e-12


def test_gradients():
    net = _net()
    grads = net.gradient(net.forward(X)[1], Y, l2=LAM)
    for key, expected in GRADS.items():
        np.testing.assert_allclose(grads[key], expected, rtol=0, atol=1e-12, err_msg=key)


def test_one_gradient_descent_step_through_fit():
    settings = TrainSettings(learning_rate=LR, epochs=1, l2=LAM, eval_every=1)
    net = _net()
    result = fit(net, X, Y, None, None, settings, np.random.default_rng(0))
    for key, grad in GRADS.items():
        expected = np.array(PARAMS[key]) - LR * np.array(grad).reshape(PARAMS[key].shape)
        np.testing.assert_allclose(result.params[key], expected, rtol=0, atol=1e-12, err_msg=key)
    assert net.params["W1"][0, 0] == 0.1 and result.network.theta is not net.theta  # a copy
    # the logged objective at epoch 1 is the loss AFTER the step (new params)
    assert result.history["epoch"] == [1] and result.epochs_run == 1


def test_softmax_loss_hand_example():
    arch = Architecture((1, 3), "relu")            # no hidden layer: logits = x * W + b
    params = {"W1": np.array([[1.0, 2.0, 3.0]]), "b1": np.array([0.0, 0.0, -1.0])}
    x = np.array([[1.0]])
    logits = [1.0, 2.0, 2.0]
    denom = math.exp(1.0) + math.exp(2.0) + math.exp(2.0)
    net = Network.from_params(arch, params)
    probs, buf = net.forward(x)
    np.testing.assert_allclose(probs[0], [math.exp(v) / denom for v in logits], atol=1e-12)
    expected = -math.log(math.exp(2.0) / denom) + 0.3 / 2 * (1 + 4 + 9)
    assert abs(net.loss(buf, np.array([1]), l2=0.3) - expected) < 1e-12
