"""Section models of the run config and the translation of pydantic errors into one line.

Bounds are written as validators that produce the house message
`<key> must be in (0, 1], got 1.5`; registry names (data sets, initializers, activations,
optimizers, augmentations) are checked against the core's own registries, so the valid names
listed in an error are always the real ones.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError,
                      model_validator)


def _interval(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False):
    """A validator: value in the interval, or 'must be in (lo, hi], got v' / 'must be > lo'."""
    if hi is None:
        text = f"must be {'>' if lo_open else '>='} {lo}"
    else:
        text = f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"

    def check(value):
        if value is None:
            return value
        if value in (float("inf"), float("-inf")):  # a bound of (0, inf) must not admit inf
            raise ValueError(f"must be finite, got {value}")
        below = lo is not None and (value <= lo if lo_open else value < lo)
        above = hi is not None and (value >= hi if hi_open else value > hi)
        if below or above or value != value:  # value != value: NaN
            raise ValueError(f"{text}, got {value}")
        return value
    return AfterValidator(check)


def _registry(module: str, attr: str, extra: tuple[str, ...] = ()):
    """A validator checking a name against a core registry (imported only when validating)."""
    def check(name):
        import importlib
        names = tuple(getattr(importlib.import_module(module), attr)) + extra
        if name not in names:
            raise ValueError(f"must be one of {list(names)}, got {name!r}")
        return name
    return AfterValidator(check)


def _not_bool(value: Any) -> Any:
    """YAML reads `true` as a bool and pydantic would take it as the int 1: an epochs=true
    typo must not train one epoch."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {value}")
    return value


Positive = Annotated[float, _interval(0, None, lo_open=True)]
NonNegative = Annotated[float, _interval(0, None)]
PosInt = Annotated[int, BeforeValidator(_not_bool), _interval(1, None)]
Count = Annotated[int, BeforeValidator(_not_bool), _interval(0, None)]
Probability = Annotated[float, _interval(0, 1, lo_open=True)]          # (0, 1]
Fraction = Annotated[float, _interval(0, 1, lo_open=True, hi_open=True)]


def _keep_prob(value: Any) -> Any:
    """keep_prob: one float for every hidden layer, or a list with one per hidden layer."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"must be a number in (0, 1] or a list of them, got {value!r}")
        if not 0 < v <= 1:
            raise ValueError(f"must be in (0, 1], got {v}")
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else float(value)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceConfig(Section):
    """Where examples come from: a generator from the data registry, or a table (name: table)."""
    name: str | None = None          # None only in data.target: the same source as data.name
    params: dict[str, Any] = {}      # generator keyword arguments (validated by the generator)
    path: str | None = None          # CSV/Parquet when name == "table"
    label: str | None = None         # label column of the table
    features: tuple[str, ...] | None = None


class DataConfig(SourceConfig):
    name: Annotated[str, _registry("pipeline.data", "DATASETS", ("table",))] | None = "noisy_diagonal"
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


class AugmentConfig(Section):
    names: tuple[Annotated[str, _registry("pipeline.data", "AUGMENTATIONS")], ...] = ()
    copies: Count = 0
    params: dict[str, Any] = {}


class ModelConfig(Section):
    # [] is allowed on purpose: no hidden layer is logistic (softmax) regression, the
    # high-bias corner of the bias-variance lesson
    hidden: tuple[PosInt, ...] = (20, 3)
    activation: Annotated[str, _registry("pipeline.nn.activations", "ACTIVATIONS")] = "relu"
    init: Annotated[str, _registry("pipeline.nn.initializers", "INITIALIZERS")] = "he"
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
    keep_prob: Annotated[float | tuple[float, ...], BeforeValidator(_keep_prob)] = 1.0


class TrainingConfig(Section):
    optimizer: Annotated[str, _registry("pipeline.nn", "OPTIMIZERS")] = "gd"
    learning_rate: Positive = 0.01
    epochs: PosInt = 10_000
    batch_size: PosInt | None = None      # None = full batch
    beta1: Annotated[float, _interval(0, 1, hi_open=True)] = 0.9
    beta2: Annotated[float, _interval(0, 1, hi_open=True)] = 0.999
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


class DiagnosisConfig(Section):
    bayes_error: Annotated[float, _interval(0, 1, hi_open=True)] = 0.0
    threshold: Fraction = 0.02


class TrackingConfig(Section):
    uri: str | None = None                # None = $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str = "nn-pipeline"
    run_name: str | None = None
    log_model: bool = True
    log_figures: bool = True
    ui_url: str = "http://127.0.0.1:5000"  # where `mlflow ui` listens; used for the printed link


def explain_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first pydantic error as `key must be ..., got value` (one line)."""
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not _is_type_tag(p)]
    key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1]) or "the config"
        valid = sorted(_fields_at(root, loc[:-1]))
        return f"unknown key {key}; valid keys of {parent}: {', '.join(valid)}"
    if kind == "missing":
        return f"missing key {key}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
        # model-level validators already name their keys ("data.train + data.dev ...")
        return message if not key or message.startswith(key + ".") else f"{key} {message}"
    if kind == "literal_error":
        return f"{key} must be one of {ctx.get('expected')}, got {value!r}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return f"{key} must be {_BOUNDS[kind]} {bound}, got {value!r}"
    if kind.split("_")[0] in _TYPES:
        return f"{key} must be {_TYPES[kind.split('_')[0]]}, got {value!r}"
    return f"{key}: {err['msg']}, got {value!r}"


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
           "less_than_equal": "<=", "too_short": "of length >=", "string_too_short": "of length >="}
_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
          "dict": "a mapping", "tuple": "a list", "list": "a list", "model": "a mapping"}


def _is_type_tag(part: Any) -> bool:
    """pydantic inserts union member names ('float', 'tuple[...]', 'function-after[...]')."""
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str", "bool", "none"})


def _fields_at(root: type[BaseModel], path: list) -> list[str]:
    model = root
    for part in path:
        if isinstance(part, int):  # an item of a list of models: same model as the list's
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        candidates = [a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return list(model.model_fields)
