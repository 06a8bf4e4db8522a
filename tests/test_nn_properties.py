"""Properties of initialization, regularization and dropout that a practitioner relies on."""

import numpy as np
import pytest

from pipeline.nn import (Architecture, init_network, keep_per_layer, make_optimizer,
                         weight_sparsity)
from pipeline.train import TrainSettings, fit


def _xor(rng, m=200):
    X = rng.standard_normal((m, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def test_zero_init_never_breaks_symmetry(rng):
    arch = Architecture((2, 4, 3, 1), "sigmoid")
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0.3).astype(np.int64)
    net = init_network(arch, "zeros", rng)
    result = fit(net, X, y, None, None,
                 TrainSettings(learning_rate=0.5, epochs=300, eval_every=300), rng)
    W1, W2 = result.params["W1"], result.params["W2"]
    assert np.abs(W1).max() > 1e-3                      # the weights did move ...
    np.testing.assert_allclose(W1, W1[:, :1].repeat(4, axis=1), atol=1e-12)  # ... in lockstep
    np.testing.assert_allclose(W2, W2[:1, :1].repeat(4, 0).repeat(3, 1), atol=1e-12)
    H = result.network.forward(X)[1].H[1]
    assert np.ptp(H, axis=0).max() < 1e-12             # every hidden unit computes the same


def _preact_stds(scheme, scale=10.0, depth=10, width=100):
    rng = np.random.default_rng(1)
    arch = Architecture((width,) * depth + (1,), "relu")
    net = init_network(arch, scheme, rng, scale=scale)
    X = rng.standard_normal((300, width))
    buf = net.forward(X)[1]
    return np.array([buf.Z[l - 1].std() for l in range(1, depth)])


def test_he_keeps_preactivation_scale_through_deep_relu_stack():
    he = _preact_stds("he")
    assert 0.3 < he[-1] / he[0] < 3.0, he
    big = _preact_stds("random", scale=10.0)
    assert big[-1] / big[0] > 1e10, big                 # explodes by orders of magnitude
    tiny = _preact_stds("random", scale=0.01)
    assert tiny[-1] / tiny[0] < 1e-6, tiny              # vanishes


def test_init_scales_and_biases(rng):
    arch = Architecture((400, 300, 1))
    for scheme, std in [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)),
                        ("glorot", np.sqrt(2 / 700)), ("random", 10.0)]:
        p = init_network(arch, scheme, rng).params
        assert abs(p["W1"].std() / std - 1) < 0.02, scheme
        assert not p["b1"].any() and p["W1"].shape == (400, 300) and p["b1"].shape == (300,)
    assert init_network(arch, "he", rng, dtype=np.float32).params["W1"].dtype == np.float32
    with pytest.raises(ValueError, match="'he'.*got 'lecun'"):
        init_network(arch, "lecun", rng)


def test_larger_lambda_gives_smaller_weight_norms():
    arch = Architecture((2, 20, 3, 1), "tanh")
    X, y = _xor(np.random.default_rng(3))
    p0 = init_network(arch, "he", np.random.default_rng(4))
    norms = []
    for lam in (0.0, 0.7, 3.0, 10.0):
        r = fit(p0, X, y, None, None, TrainSettings(learning_rate=0.3, epochs=1500,
                eval_every=1500, l2=lam), np.random.default_rng(0))
        norms.append(sum(float((r.params[f"W{l}"] ** 2).sum()) for l in (1, 2, 3)))
    assert all(a > b for a, b in zip(norms, norms[1:])), norms


def test_l1_drives_weights_to_zero_and_sparsity_is_reported():
    arch = Architecture((2, 20, 1), "tanh")
    X, y = _xor(np.random.default_rng(3))
    p0 = init_network(arch, "he", np.random.default_rng(4))
    s = {}
    for lam in (0.0, 3.0):
        r = fit(p0, X, y, None, None, TrainSettings(learning_rate=0.1, epochs=2000,
                eval_every=2000, l1=lam), np.random.default_rng(0))
        s[lam] = weight_sparsity(r.params, tol=1e-2)
    assert s[0.0] < 0.1 < s[3.0]


def test_l1_with_gd_gives_exact_zeros_and_lowers_the_objective():
    # gd takes a proximal step for L1, so pruned weights are exactly 0, not just small
    arch = Architecture((2, 20, 1), "tanh")
    X, y = _xor(np.random.default_rng(3))
    p0 = init_network(arch, "he", np.random.default_rng(4))
    s = TrainSettings(learning_rate=0.1, epochs=2000, eval_every=100, l1=3.0)
    r = fit(p0, X, y, None, None, s, np.random.default_rng(0))
    assert weight_sparsity(r.params, tol=0) > 0.3
    assert not np.any(r.params["b1"] == 0)                 # biases are never thresholded
    objective = r.history["train_objective"]
    assert objective[-1] < objective[0]
    net = r.network
    assert abs(net.loss(net.forward(X)[1], y, l1=3.0) - objective[-1]) < 1e-12
    mom = fit(p0, X, y, None, None, TrainSettings(learning_rate=0.1, epochs=300,
              eval_every=300, l1=3.0, optimizer="momentum"), np.random.default_rng(0))
    assert weight_sparsity(mom.params, tol=0) == 0.0          # subgradient: near 0, not at 0
    assert weight_sparsity({"W1": np.array([[0.0, 1e-9, 1.0, 0.0]]), "b1": np.zeros(4)}) == 0.75
    assert weight_sparsity({"W1": np.array([[0.0, 1e-9, 1.0, 0.0]])}, tol=0) == 0.5


def test_inverted_dropout_preserves_expected_activation():
    arch = Architecture((10, 50, 1), "relu")
    rng = np.random.default_rng(5)
    net = init_network(arch, "he", rng)
    X = rng.standard_normal((20000, 10))
    cache = net.forward(X, keep_prob=0.8, rng=rng, training=True)[1]
    H, A, M = cache.H[0], cache.A[1][:-1], cache.masks[0]
    assert set(np.unique(M)) == {0.0, 1.25}
    assert abs((M > 0).mean() - 0.8) < 0.005
    assert abs(A.mean() / H.mean() - 1.0) < 0.01       # E[mask * h / p] = h
    np.testing.assert_array_equal(A, H * M)


def test_keep_prob_one_equals_no_dropout_and_draws_nothing():
    arch = Architecture((2, 6, 4, 3), "tanh")
    rng = np.random.default_rng(6)
    net = init_network(arch, "he", rng)
    X = rng.standard_normal((50, 2))
    state = rng.bit_generator.state
    p_train = net.forward(X, keep_prob=1.0, rng=rng, training=True)[0]
    assert rng.bit_generator.state == state
    np.testing.assert_array_equal(p_train, net.forward(X)[0])
    y = rng.integers(0, 3, 50)
    s = TrainSettings(learning_rate=0.1, epochs=20, eval_every=20)
    r1 = fit(net, X, y, None, None, s, np.random.default_rng(0))
    r2 = fit(net, X, y, None, None,
             TrainSettings(learning_rate=0.1, epochs=20, eval_every=20, keep_prob=(1.0, 1.0)),
             np.random.default_rng(0))
    np.testing.assert_array_equal(r1.network.theta, r2.network.theta)


def test_evaluation_mode_draws_no_mask():
    arch = Architecture((2, 6, 1), "relu")
    rng = np.random.default_rng(7)
    net = init_network(arch, "he", rng)
    X = rng.standard_normal((30, 2))
    state = rng.bit_generator.state
    probs, cache = net.forward(X, keep_prob=0.5, rng=rng, training=False)
    assert rng.bit_generator.state == state and cache.masks == [None]
    np.testing.assert_array_equal(probs, net.predict_proba(X))
    assert net.predict(X).dtype == np.int64


def test_keep_prob_is_one_per_hidden_layer():
    # bounds are the config edge's job; the core checks only the shape
    assert keep_per_layer(0.5, 3) == (0.5, 0.5, 0.5)
    assert keep_per_layer((0.5, 1.0), 2) == (0.5, 1.0)
    with pytest.raises(ValueError, match=r"keep_prob must have one entry per hidden layer \(2\)"):
        keep_per_layer((0.5, 0.6, 0.7), 2)


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="relu.*got 'swish'"):
        Architecture((2, 3, 1), "swish")
    with pytest.raises(ValueError, match="gd.*momentum.*adam.*got 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)


def test_optimizers_descend_on_a_quadratic():
    # minimize 0.5 * ||p - 3||^2 (gradient p - 3) from p = 0
    for name, kw in [("gd", {}), ("momentum", {"beta": 0.9}), ("adam", {})]:
        opt = make_optimizer(name, 0.1, **kw)
        w = np.zeros(4)
        for _ in range(500):
            opt.step(w, w - 3.0)
        np.testing.assert_allclose(w, 3.0, atol=1e-3, err_msg=name)
    adam = make_optimizer("adam", 0.01)
    w = np.zeros(2)
    adam.step(w, np.array([5.0, -0.001]))              # first Adam step is lr * sign(g)
    np.testing.assert_allclose(w, [-0.01, 0.01], rtol=1e-4)


def test_zero_init_never_breaks_symmetry_and_he_does():
    from pipeline.nn import distinct_units, never_broke_symmetry

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    arch = Architecture((2, 6, 4, 1), "relu")
    s = TrainSettings(learning_rate=0.1, epochs=50, eval_every=50)
    zeros = fit(init_network(arch, "zeros", rng), X, y, None, None, s, rng)
    he = fit(init_network(arch, "he", rng), X, y, None, None, s, rng)
    assert distinct_units(zeros.params, 2) == (1, 1) and never_broke_symmetry(zeros.params, 2)
    assert distinct_units(he.params, 2) == (6, 4) and not never_broke_symmetry(he.params, 2)


def test_source_digest_names_exactly_the_code_the_served_model_imports(tmp_path):
    import shutil

    from pipeline.nn.model import PACKAGE, source_digest, source_files

    names = {f.relative_to(PACKAGE).as_posix() for f in source_files()}
    assert "__init__.py" in names and "nn/layers.py" in names and "nn/model.py" in names
    assert not any(n.startswith(("tracking/", "data/")) for n in names)   # numpy-only code
    for f in source_files():
        (tmp_path / f.relative_to(PACKAGE)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, tmp_path / f.relative_to(PACKAGE))
    assert source_digest(tmp_path) == source_digest()
    act = tmp_path / "nn" / "activations.py"
    act.write_text(act.read_text() + "\n")                 # one byte more
    assert source_digest(tmp_path) != source_digest()
