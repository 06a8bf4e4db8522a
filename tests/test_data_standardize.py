"""Standardizer: train-only statistics, constant features, no mutation, bounds checked."""

import numpy as np
import pytest

from pipeline.data import Standardizer, fit_standardizer, make_dataset, split_dataset


def test_fitted_statistics_are_the_training_mean_and_std():
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    s = fit_standardizer(X)
    np.testing.assert_array_equal(s.mean, [3.0, 10.0])
    np.testing.assert_allclose(s.std, [np.sqrt(8 / 3), 1.0])  # constant column -> std 1
    np.testing.assert_allclose(s.transform(X), [[-1.2247448714, 0], [0, 0], [1.2247448714, 0]])


def test_transformed_training_data_has_zero_mean_unit_std(rng):
    X = rng.normal([5.0, -3.0, 100.0], [2.0, 0.1, 30.0], size=(500, 3))
    Z = fit_standardizer(X).transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-12)


def test_constant_feature_does_not_divide_by_zero():
    X = np.column_stack([np.full(4, 0.1), [1.0, 2.0, 3.0, 4.0]])
    s = fit_standardizer(X)
    assert s.std[0] == 1.0
    Z = s.transform(np.array([[0.1, 2.5], [1.1, 2.5]]))
    assert np.all(np.isfinite(Z)) and abs(Z[0, 0]) < 1e-15 and abs(Z[1, 0] - 1.0) < 1e-15


def test_changing_dev_and_test_values_does_not_change_the_statistics():
    ds = make_dataset("blobs", np.random.default_rng(0))
    splits = split_dataset(ds, np.random.default_rng(1))
    before = fit_standardizer(splits.train.X)
    # Same split of a data set whose non-training rows are wildly different.
    train_rows = {tuple(r) for r in splits.train.X}
    X = ds.X.copy()
    for i, row in enumerate(ds.X):
        if tuple(row) not in train_rows:
            X[i] = 1e6
    changed = split_dataset(type(ds)(X, ds.y, ds.classes, ds.feature_names, ds.name), np.random.default_rng(1))
    after = fit_standardizer(changed.train.X)
    assert changed.dev.X.max() == 1e6  # the dev rows really changed
    assert after == before
    assert changed.train.digest == splits.train.digest and changed.dev.digest != splits.dev.digest


def test_transform_does_not_mutate_its_input(rng):
    X = rng.normal(size=(20, 2))
    copy = X.copy()
    Z = fit_standardizer(X).transform(X)
    np.testing.assert_array_equal(X, copy)
    assert Z is not X and not np.shares_memory(Z, X)


def test_standardizer_is_frozen_and_read_only(rng):
    s = fit_standardizer(rng.normal(size=(10, 2)))
    with pytest.raises(AttributeError):
        s.mean = np.zeros(2)
    with pytest.raises(ValueError, match="read-only"):
        s.mean[0] = 0.0


def test_wrong_feature_count_is_refused(rng):
    s = fit_standardizer(rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match=r"fitted on 2 features, got X of shape \(4, 3\)"):
        s.transform(np.zeros((4, 3)))


def test_bad_inputs_to_fit_and_to_the_constructor():
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_standardizer(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="std finite and > 0"):
        Standardizer(np.array([0.0]), np.array([0.0]))


def test_inverse_transform_undoes_transform(rng):
    """Public (notebook 08 plots augmented copies in raw units with it)."""
    X = rng.normal(3.0, 4.0, size=(30, 2))
    s = fit_standardizer(X)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X, rtol=1e-13)
