"""Metrics against hand-computed values."""

import numpy as np
import pytest

from pipeline.metrics import accuracy, classification_metrics, confusion_matrix, predictions


def test_binary_metrics_by_hand():
    probs = np.array([[0.9], [0.2], [0.6], [0.4]])
    y = np.array([1, 0, 0, 0])
    m = classification_metrics(probs, y, "dev")
    assert m["dev_accuracy"] == 0.75
    assert m["dev_error"] == 0.25
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.6]))
    assert m["dev_loss"] == pytest.approx(expected, rel=1e-12)


def test_softmax_metrics_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    y = np.array([0, 1, 1])
    m = classification_metrics(probs, y)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["loss"] == pytest.approx(-np.mean(np.log([0.7, 0.1, 0.4])), rel=1e-12)
    np.testing.assert_array_equal(predictions(probs), [0, 2, 1])


def test_threshold_half_is_positive():
    np.testing.assert_array_equal(predictions(np.array([[0.5], [0.4999]])), [1, 0])


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def test_accuracy_rejects_mismatched_shapes_and_empty():
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        accuracy(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="0 examples"):
        accuracy(np.zeros(0), np.zeros(0))
