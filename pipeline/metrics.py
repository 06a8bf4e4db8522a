"""Classification metrics as plain dicts of floats, computed from probabilities and label codes.

Loss here is the data cross-entropy (no L2/L1 penalty): it is what "dev loss" means when
comparing models with different regularization strengths.
"""

from __future__ import annotations

import numpy as np

from pipeline.nn.losses import cross_entropy_from_probs, labels_from_probs, output_for

# Label codes (m,) from probabilities (m, n_out): the network's own decision rule, not a copy.
predictions = labels_from_probs


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} "
                         f"and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("accuracy of an empty split is undefined (0 examples)")
    return float(np.mean(y_true == y_pred))


def classification_metrics(probs: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, float]:
    """{prefix_loss, prefix_accuracy, prefix_error} for probs (m, n_out) and codes y (m,)."""
    acc = accuracy(np.asarray(y), predictions(probs))
    p = f"{prefix}_" if prefix else ""
    loss = cross_entropy_from_probs(probs, np.asarray(y), output_for(probs.shape[1]))
    return {f"{p}loss": loss,
            f"{p}accuracy": acc, f"{p}error": 1.0 - acc}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts
