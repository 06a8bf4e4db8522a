"""The core against the independent oracle (tests/oracle.py): forward, gradient (with L2, L1
and inverted dropout), and one step of the training loop -- the same oracle for all three, so
a sign flipped in the training loop's penalty or a wrong dropout scale cannot pass."""

import numpy as np
import pytest
from oracle import forward as o_forward, gradient as o_gradient, masks_from

from pipeline.nn import Architecture, init_network
from pipeline.train import TrainSettings, fit

ACTS = ["relu", "leaky_relu", "tanh", "sigmoid"]


def _setup(act, n_out, seed=0, m=7):
    rng = np.random.default_rng(seed)
    arch = Architecture((3, 5, 4, n_out), act)
    net = init_network(arch, "xavier", rng)
    for b in ("b1", "b2", "b3"):           # nonzero biases, so the bias gradients matter
        net.params[b][...] = rng.uniform(-0.3, 0.3, net.params[b].shape)
    X = rng.standard_normal((m, 3))
    return net, X, rng.integers(0, max(n_out, 2), m)


@pytest.mark.parametrize("n_out", [1, 3], ids=["sigmoid", "softmax"])
@pytest.mark.parametrize("act", ACTS)
def test_forward_matches_the_oracle(act, n_out):
    net, X, _ = _setup(act, n_out)
    expected, _ = o_forward(net.params, X, act)
    np.testing.assert_allclose(net.predict_proba(X), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("keep", [1.0, 0.6], ids=["no_dropout", "dropout"])
@pytest.mark.parametrize("l2, l1", [(0.0, 0.0), (0.7, 0.0), (0.0, 0.9), (0.4, 0.5)])
@pytest.mark.parametrize("n_out", [1, 3], ids=["sigmoid", "softmax"])
@pytest.mark.parametrize("act", ACTS)
def test_gradient_matches_the_oracle(act, n_out, l2, l1, keep):
    net, X, y = _setup(act, n_out)
    _, buf = net.forward(X, keep_prob=keep, rng=np.random.default_rng(3), training=True)
    masks = masks_from(np.random.default_rng(3), keep, net.arch.layer_sizes, X.shape[0])
    if keep < 1:
        np.testing.assert_array_equal(buf.masks[0].T, masks[0])   # the same scaled masks
    grads = net.gradient(buf, y, l2=l2, l1=l1)
    expected = o_gradient(net.params, X, y, act, l2=l2, l1=l1, masks=masks)
    for k, v in expected.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("keep", [1.0, 0.6], ids=["no_dropout", "dropout"])
@pytest.mark.parametrize("l2, l1", [(0.7, 0.0), (0.0, 0.9), (0.4, 0.5)])
@pytest.mark.parametrize("optimizer", ["momentum", "gd"], ids=["subgradient", "prox"])
def test_one_training_step_matches_the_oracle(optimizer, l2, l1, keep):
    # momentum with beta=0 is a plain step on the full (sub)gradient; gd takes the smooth
    # step, then soft-thresholds the weights by lr * l1/m (biases untouched)
    net, X, y = _setup("tanh", 1, m=20)
    lr, m = 0.3, X.shape[0]
    s = TrainSettings(learning_rate=lr, epochs=1, eval_every=1, l2=l2, l1=l1,
                      keep_prob=keep, optimizer=optimizer, beta1=0.0)
    got = fit(net, X, y, None, None, s, np.random.default_rng(11)).network.params
    masks = masks_from(np.random.default_rng(11), keep, net.arch.layer_sizes, m)
    smooth_l1 = l1 if optimizer == "momentum" else 0.0
    g = o_gradient(net.params, X, y, "tanh", l2=l2, l1=smooth_l1, masks=masks)
    for k, v in net.params.items():
        new = v - lr * g[k]
        if optimizer == "gd" and k[0] == "W":
            new = np.sign(new) * np.maximum(np.abs(new) - lr * l1 / m, 0.0)
        np.testing.assert_allclose(got[k], new, rtol=1e-10, atol=1e-13, err_msg=k)
