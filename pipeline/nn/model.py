"""The trained model as one object: network, standardizer statistics, class labels, feature
names. Training returns it; metrics, figures, diagnosis and the served model all take it.

It lives in `pipeline.nn` (numpy only) because the served model loads exactly this code, logged
with the model: `save`/`load` write and read weights.npz (no pickle) + a JSON description, and
`source_digest` names the code so the loader can refuse a copy that differs from what was logged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.nn.losses import class_columns, labels_from_probs
from pipeline.nn.network import Architecture, Network

PACKAGE = Path(__file__).resolve().parents[1]          # the `pipeline` directory
SOURCES = ("__init__.py", "nn/*.py")                    # all the served model imports


def source_files(root: Path = PACKAGE, patterns: tuple[str, ...] = SOURCES) -> list[Path]:
    return sorted({f for pattern in patterns for f in root.glob(pattern)})


def source_digest(root: Path = PACKAGE, patterns: tuple[str, ...] = SOURCES) -> str:
    """sha256 over (relative path, bytes) of the files matching `patterns` under `root`: by
    default every file the served model imports (the run cache hashes its numeric code so)."""
    h = hashlib.sha256()
    for f in source_files(root, patterns):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks: weights can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def label_values(classes: tuple[str, ...]) -> np.ndarray:
    """The class labels with their own type, as the served model returns them: int64 when
    every name is the text of an integer ("0", "1", "-2": the built-in generators' codes and a
    table's integer label column), else the names as strings (object). The names themselves
    stay text (plots, column names); only what a caller receives is typed."""
    try:
        ints = [int(c) for c in classes]
    except ValueError:
        return np.asarray(classes, dtype=object)
    if [str(i) for i in ints] != list(classes):   # "007" or "+1" is a name, not a number
        return np.asarray(classes, dtype=object)
    return np.asarray(ints, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Model:
    """Predicts on RAW features (m, n_features): standardize with the training statistics,
    then the network. mean, std: (n_features,) float64."""

    network: Network
    mean: np.ndarray
    std: np.ndarray
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]

    @property
    def arch(self) -> Architecture:
        return self.network.arch

    def standardize(self, X_raw: np.ndarray) -> np.ndarray:
        X = np.asarray(X_raw, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"X must have shape (m, {self.mean.shape[0]}), got {X.shape}")
        return (X - self.mean) / self.std               # (m, n), as Standardizer.transform

    def predict_proba(self, X_raw: np.ndarray) -> np.ndarray:
        """(m, n_out): the network's output (one column for two classes)."""
        return self.network.predict_proba(self.standardize(X_raw))

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        """Class codes (m,) indexing `classes`."""
        return labels_from_probs(self.predict_proba(X_raw))

    @property
    def labels(self) -> np.ndarray:
        """(len(classes),) the labels with their own type (`label_values`)."""
        return label_values(self.classes)

    def class_probabilities(self, X_raw: np.ndarray) -> np.ndarray:
        """(m, len(classes)): one column per class, in `classes` order (two columns for two
        classes where `predict_proba` has one). Public API for a caller holding a `Model` (what
        `train` returns and `Model.load` gives back); the served pyfunc computes the same with
        `class_columns`."""
        return class_columns(self.predict_proba(X_raw))

    def describe(self) -> dict:
        """Everything but the weights, JSON-able."""
        return {"layer_sizes": list(self.arch.layer_sizes),
                "hidden_activation": self.arch.hidden_activation, "output": self.arch.output,
                "dtype": str(self.network.theta.dtype), "feature_names": list(self.feature_names),
                "classes": [str(c) for c in self.classes],
                "mean": self.mean.tolist(), "std": self.std.tolist()}

    def save(self, weights: Path, description: Path, **extra) -> None:
        """weights.npz, and the description with the sha256 of that very file (`load` checks
        it, so a weights file changed after logging is refused, not served)."""
        np.savez(weights, **self.network.params)
        record = {**self.describe(), "weights_digest": file_digest(weights), **extra}
        description.write_text(json.dumps(record, indent=1))

    @classmethod
    def load(cls, weights: Path, meta: dict) -> "Model":
        """The model `save` wrote; ValueError (one line naming the file) when the weights file
        is not the one logged or holds a non-finite value: a NaN weight would serve NaN
        probabilities with a confident-looking label."""
        found, logged = file_digest(weights), meta.get("weights_digest")
        if found != logged:
            raise ValueError(f"weights file {weights} is not the one logged with the model: "
                             f"sha256 {found[:16]} != logged {str(logged)[:16]}")
        arch = Architecture(tuple(meta["layer_sizes"]), meta["hidden_activation"])
        with np.load(weights, allow_pickle=False) as npz:
            params = {k: npz[k] for k in npz.files}
        for key, value in params.items():
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                raise ValueError(f"weights file {weights}: {key} holds {bad} non-finite "
                                 f"value(s) (nan/inf); a model with them is not served")
        net = Network.from_params(arch, params, dtype=np.dtype(meta.get("dtype", "float64")))
        return cls(net, np.asarray(meta["mean"], dtype=np.float64),
                   np.asarray(meta["std"], dtype=np.float64), tuple(meta["classes"]),
                   tuple(meta["feature_names"]))
