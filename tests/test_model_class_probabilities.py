"""`Model.class_probabilities` (public API for a caller holding a Model): one column per class
in `classes` order, rows summing to 1, and its argmax is `predict` (two and three classes)."""

import numpy as np
import pytest

from pipeline.nn.initializers import init_network
from pipeline.nn.model import Model
from pipeline.nn.network import Architecture


@pytest.mark.parametrize("classes", [("no", "yes"), ("a", "b", "c")])
def test_one_column_per_class_whose_argmax_is_predict(classes):
    n_out = 1 if len(classes) == 2 else len(classes)  # two classes: one sigmoid output
    net = init_network(Architecture((2, 5, n_out)), "xavier", np.random.default_rng(0))
    model = Model(net, np.array([1.0, -2.0]), np.array([2.0, 0.5]), classes, ("x1", "x2"))
    X = np.random.default_rng(1).normal(size=(40, 2))
    probs = model.class_probabilities(X)
    assert probs.shape == (40, len(classes))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(probs.argmax(axis=1), model.predict(X))
