"""Section models of the run config: data, augment, model, regularization, training, diagnosis
and tracking. Every bound is a type from `constraints.py`; every name is a `Literal` of the core
registry's own keys, imported directly, so an unknown name fails here (closed) and the names an
error lists are always the real ones. The core (`stages.settings`, `fit`, the network) trusts
these values and checks only what data can tell: array shapes, dtypes and finiteness.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import os

from pydantic import BeforeValidator, field_validator, model_validator

# The registries themselves, not their names in strings: importing them costs numpy only (the
# data sets import scikit-learn and pandas inside the functions that use them).
from pipeline.config.constraints import (Count, Fraction, NonNegative, PosInt, Positive, Section,
                                         UnitHalfOpen, check_bound)
from pipeline.data import AUGMENTATIONS, DATASETS, dataset_params
from pipeline.nn import ACTIVATIONS, INITIALIZERS, OPTIMIZERS

DatasetName = Literal[(*DATASETS, "table")]  # type: ignore[valid-type]
AugmentationName = Literal[tuple(AUGMENTATIONS)]  # type: ignore[valid-type]
Activation = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
Initializer = Literal[tuple(INITIALIZERS)]  # type: ignore[valid-type]
Optimizer = Literal[tuple(OPTIMIZERS)]  # type: ignore[valid-type]


def check_keep_prob(value: Any) -> Any:
    """keep_prob: one float for every hidden layer, or a list with one per hidden layer (its
    length against model.hidden is checked by the Config, which sees both). The one bound of
    keep_prob: the gradcheck command's --keep-prob is checked here too."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"must be a number in (0, 1] or a list of them, got {value!r}")
        check_bound(v, 0, 1, lo_open=True)
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else float(value)


class SourceConfig(Section):
    """Where examples come from: a generator from the data registry, or a table (name: table)."""
    name: DatasetName | None = None  # None only in data.target: the same source as data.name
    params: dict[str, Any] = {}      # generator keyword arguments (validated by the generator)
    path: str | None = None          # CSV/Parquet when name == "table"
    label: str | None = None         # label column of the table
    features: tuple[str, ...] | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        """A relative path is made absolute against the directory the config is loaded in,
        once: the logged params and config.yaml then name the file itself, so `reproduce`
        (and a study resumed) from another directory reads the same file. Idempotent."""
        return path if not path else os.path.normpath(os.path.abspath(os.path.expanduser(path)))

    @model_validator(mode="after")
    def _table_needs_path_and_label(self) -> "SourceConfig":
        if self.name == "table" and not (self.path and self.label):
            raise ValueError(f"with name table needs path and label, got path={self.path!r}, "
                             f"label={self.label!r}")
        return self


class DataConfig(SourceConfig):
    name: DatasetName = "noisy_diagonal"
    # dev and test from a separate source, e.g. {params: {variant: clean}}: its params are
    # merged over data.params, name null = the same generator. "auto" = the generator's clean
    # variant when it has a `variant` parameter (noisy_diagonal), else none; null = none.
    target: Literal["auto"] | SourceConfig | None = "auto"
    train: Fraction = 0.6
    dev: Fraction = 0.2
    test: Fraction = 0.2
    dev_count: PosInt | None = None   # absolute sizes instead of fractions
    test_count: PosInt | None = None
    # false: the network sees raw features (the input-normalization lesson); true: standardized
    # with train statistics, which travel with the model
    standardize: bool = True
    # per-feature multipliers on the raw features of every source, e.g. [1, 1000]: features of
    # very different scales for the normalization lesson; null = as generated or read
    feature_scale: tuple[Positive, ...] | None = None

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> "DataConfig":
        total = self.train + self.dev + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"data.train + data.dev + data.test must sum to 1, got {total:g}")
        return self

    @model_validator(mode="after")
    def _params_are_the_generators(self) -> "DataConfig":
        """A misspelt generator parameter fails here, not after a run exists: the valid names
        are the generator's own keyword arguments."""
        for where, source in (("data", self), ("data.target", self.target)):
            name = getattr(source, "name", None) or self.name
            if not isinstance(source, SourceConfig) or name == "table":
                continue
            valid = dataset_params(name)
            unknown = sorted(set(source.params) - set(valid))
            if unknown:
                raise ValueError(f"data set {name!r} has no parameter {unknown[0]!r} "
                                 f"({where}.params.{unknown[0]}); valid parameters: "
                                 f"{', '.join(valid)}")
        return self


class AugmentConfig(Section):
    names: tuple[AugmentationName, ...] = ()
    copies: Count = 0
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _copies_need_names(self) -> "AugmentConfig":
        # `prepare` augments only when both are set: copies alone would train silently without
        if self.copies and not self.names:
            raise ValueError(f"augment.copies is {self.copies} but augment.names is empty; "
                             f"valid names: {', '.join(AUGMENTATIONS)}")
        return self


class ModelConfig(Section):
    # [] is allowed on purpose: no hidden layer is logistic (softmax) regression, the
    # high-bias corner of the bias-variance lesson
    hidden: tuple[PosInt, ...] = (20, 3)
    activation: Activation = "relu"
    init: Initializer = "he"
    init_scale: Positive = 10.0      # only for init: random


def _cadence(value: Any) -> Any:
    """training.eval_every: a positive integer or "auto"."""
    ok = value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
    if not ok:
        raise ValueError(f"must be a positive integer or 'auto', got {value!r}")
    return value


class RegularizationConfig(Section):
    l2: NonNegative = 0.0
    l1: NonNegative = 0.0
    keep_prob: Annotated[float | tuple[float, ...], BeforeValidator(check_keep_prob)] = 1.0


class TrainingConfig(Section):
    optimizer: Optimizer = "gd"
    learning_rate: Positive = 0.01
    epochs: PosInt = 10_000
    batch_size: PosInt | None = None      # None = full batch (train: if it fits, batch_choice.py)
    beta1: UnitHalfOpen = 0.9
    beta2: UnitHalfOpen = 0.999
    epsilon: Positive = 1e-8
    eval_every: Annotated[int | str, BeforeValidator(_cadence)] = "auto"   # see eval_cadence
    patience: PosInt | None = None        # in evaluations; None = no early stopping
    min_delta: NonNegative = 0.0
    monitor: Literal["dev_loss", "dev_error"] = "dev_loss"
    dtype: Literal["float64", "float32"] = "float64"


# `eval_every: auto` evaluates about this many times per run whatever the epochs: one
# evaluation costs ~2 training epochs of the default network, so every epoch (or every 2) made
# `fit` 2.4-3.2x slower than its bare loop, and 20,000 epochs gave 10,000-point curves.
AUTO_EVALUATIONS = 200


def eval_cadence(eval_every: int | str, epochs: int) -> int:
    """Epochs between evaluations: an explicit integer, or for "auto" epochs // 200 (at least
    1): 200-399 evaluations for 200 epochs or more, one per epoch below."""
    if eval_every == "auto":
        return max(1, epochs // AUTO_EVALUATIONS)
    return int(eval_every)


def _bayes(value: Any) -> Any:
    """diagnosis.bayes_error: "auto" or a number in [0, 1)."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be auto or a number in [0, 1), got {value!r}")
    return check_bound(float(value), 0, 1, hi_open=True)


class DiagnosisConfig(Section):
    # "auto": the data set's declared Bayes error (a generator that flips labels knows it:
    # noisy_diagonal), else 0; a number overrides (runs logged before "auto" carry one)
    bayes_error: Annotated[float | str, BeforeValidator(_bayes)] = "auto"
    threshold: Fraction = 0.02


class TrackingConfig(Section):
    uri: str | None = None                # None = $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str = "nn-pipeline"
    run_name: str | None = None
    log_model: bool = True
    log_figures: bool = True
    # where printed links point; None: a tracking server itself (an http store), else
    # http://127.0.0.1:5000, where `mlflow ui` listens (tracking/ui.py ui_address)
    ui_url: str | None = None
    # reuse a FINISHED run of the store whose config, data, code and arithmetic are identical
    # (docs/tracking.md, "Run cache"); false (or --no-cache) trains afresh
    cache: bool = True
