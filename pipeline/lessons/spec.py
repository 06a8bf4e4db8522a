"""A lesson file (`conf/lessons/<name>.yaml`) as validated data: arms, seeds and the claim.

A lesson is data, not code: base overrides (dotted keys onto conf/base.yaml), `arms` (name ->
dotted overrides) or a `grid` (rows x cols of overrides), and a `claim` made of declarative
checks over per-arm means. Errors are one line naming the key (the config's house style); the
dotted overrides themselves are validated by building every arm's Config (`plan.plan`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, ValidationError, model_validator

from pipeline.config.constraints import (NonEmpty, PosInt, Positive, Section, bound,
                                         explain_error)

KINDS = ("arms", "grid", "gradient_flow", "gradcheck")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

# Metrics every arm run reports (pipeline.lessons.execute), by kind; checks and curves must
# name one of them, so a typo fails at the door instead of as a "failed" verdict.
FINAL = ("train_loss", "train_accuracy", "train_error", "dev_loss", "dev_accuracy", "dev_error",
         "best_epoch", "epochs_run", "first_train_loss", "first_dev_loss", "symmetric_units",
         "non_finite", "epochs_to_threshold", "reached_threshold", "avoidable_bias", "variance",
         "bayes_error")
METRICS = {"arms": FINAL, "grid": FINAL,
           "gradient_flow": FINAL + ("log10_grad_ratio", "log10_grad_spread", "grad_norm_first",
                                     "grad_norm_last", "zero_gradient"),
           "gradcheck": ("n_failed", "target_failed", "relative_error")}
METRIC_PREFIXES = {"gradcheck": ("relerr_",), "gradient_flow": ("grad_W",)}
CURVES = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_error",
          "train_objective", "train_error")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"must use only letters, digits, _ . and -, got {value!r}")
    return value


Name = Annotated[str, AfterValidator(_name)]


class Check(Section):
    """One declarative comparison over per-arm means (see docs/lessons.md)."""
    metric: str
    arm: str | None = None                       # the arm whose mean is tested ...
    best_of: tuple[str, ...] | None = None       # ... or the best mean among these arms
    greater_than_arm: str | None = None          # mean > other arm's mean + margin
    less_than_arm: str | None = None             # mean < other arm's mean - margin
    margin: float = 0.0
    factor: Positive | None = None               # with *_than_arm: mean > factor * other (or <)
    at_least: float | None = None
    at_most: float | None = None
    diagnosis_in: tuple[str, ...] | None = None  # grid: the cell's diagnosis verdict is one of these
    share: Annotated[float, bound(0, 1, lo_open=True)] | None = None  # with diagnosis_in: judged
    # per seed instead (each run's own diagnosis): at least this share of the arm's seeds

    @model_validator(mode="after")
    def _shape(self) -> "Check":
        if (self.arm is None) == (self.best_of is None):
            raise ValueError("needs exactly one of arm or best_of")
        tests = [self.greater_than_arm, self.less_than_arm, self.at_least, self.at_most,
                 self.diagnosis_in]
        if all(t is None for t in tests):
            raise ValueError("needs a comparison: greater_than_arm, less_than_arm, at_least, "
                             "at_most or diagnosis_in")
        if self.share is not None and (self.diagnosis_in is None or self.arm is None):
            raise ValueError(f"share needs diagnosis_in and arm, got share={self.share}")
        return self

    def arms(self) -> list[str]:
        named = [self.arm, self.greater_than_arm, self.less_than_arm, *(self.best_of or ())]
        return [a for a in named if a is not None]


class Claim(Section):
    text: str
    checks: Annotated[tuple[Check, ...], NonEmpty]


class Grid(Section):
    """Cells are `<row>/<col>`: each applies its row's and its column's overrides."""
    rows: Annotated[dict[Name, dict[str, Any]], NonEmpty]
    cols: Annotated[dict[Name, dict[str, Any]], NonEmpty]


class Threshold(Section):
    """epochs_to_threshold: the first evaluated epoch where `metric` <= value (budget if never)."""
    metric: Literal["train_loss", "dev_loss", "train_objective"] = "train_loss"
    value: Positive


class Corrupt(Section):
    """gradcheck: the arm whose backward pass is wrapped to scale one block's gradient."""
    arm: Name
    block: str = "W2"
    factor: float = 1.1


class Figure(Section):
    curves: tuple[str, ...] = ("train_loss", "dev_accuracy")
    band: Literal["std", "minmax"] = "minmax"
    boundary: bool = True                       # decision boundaries when the data is 2-D


class Lesson(Section):
    name: Name
    title: str
    kind: Literal["arms", "grid", "gradient_flow", "gradcheck"] = "arms"
    base: dict[str, Any] = {}
    seeds: PosInt = 5
    arms: dict[Name, dict[str, Any]] = {}
    grid: Grid | None = None
    claim: Claim
    figure: Figure = Figure()
    threshold: Threshold | None = None
    corrupt: Corrupt | None = None
    gradcheck_samples: PosInt = 8
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "Lesson":
        if self.kind == "grid":
            if self.grid is None or self.arms:
                raise ValueError("kind grid needs grid (rows, cols) and no arms")
        elif not self.arms or self.grid is not None:
            raise ValueError(f"kind {self.kind} needs arms (name -> overrides) and no grid")
        names = self.arm_names()
        for i, check in enumerate(self.claim.checks):
            for arm in check.arms():
                if arm not in names:
                    raise ValueError(f"claim.checks[{i}] names arm {arm!r}; arms: {names}")
            _check_metric(check.metric, self.kind, f"claim.checks[{i}].metric")
            if check.diagnosis_in is not None and check.share is None and self.kind != "grid":
                raise ValueError(f"claim.checks[{i}]: diagnosis_in in a {self.kind} lesson needs "
                                 f"share (each seed's diagnosis; only a grid diagnoses a mean)")
        for curve in self.figure.curves:
            if curve not in CURVES:
                raise ValueError(f"figure.curves must be among {list(CURVES)}, got {curve!r}")
        if self.corrupt is not None and self.corrupt.arm not in names:
            raise ValueError(f"corrupt.arm must be one of {names}, got {self.corrupt.arm!r}")
        return self

    def arm_names(self) -> list[str]:
        return list(self.arm_overrides())

    def arm_overrides(self) -> dict[str, dict[str, Any]]:
        """{arm: dotted overrides} in display order (grid: row-major `<row>/<col>`)."""
        if self.grid is None:
            return dict(self.arms)
        return {f"{r}/{c}": {**ro, **co} for r, ro in self.grid.rows.items()
                for c, co in self.grid.cols.items()}


def _check_metric(metric: str, kind: str, key: str) -> None:
    if metric in METRICS[kind] or metric.startswith(METRIC_PREFIXES.get(kind, ("\0",))):
        return
    prefixes = [p + "*" for p in METRIC_PREFIXES.get(kind, ())]
    raise ValueError(f"{key} must be one of {list(METRICS[kind]) + prefixes} for kind {kind}, "
                     f"got {metric!r}")


def available(conf_dir: Path | str = Path("conf")) -> list[str]:
    return sorted(p.stem for p in (Path(conf_dir) / "lessons").glob("*.yaml"))


def load_lesson(name: str, conf_dir: Path | str = Path("conf")) -> Lesson:
    """`conf/lessons/<name>.yaml` (or a path to a .yaml file) as a validated Lesson."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        path = Path(conf_dir) / "lessons" / f"{name}.yaml"
        if not path.is_file():
            raise ValueError(f"lesson must be one of {available(conf_dir)} (or a path to a "
                             f".yaml file), got {name!r}")
    return parse_lesson(path.read_text(encoding="utf-8"), path.stem, str(path))


def parse_lesson(text: str, name: str, source: str = "lesson") -> Lesson:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{source} must hold a mapping, got {type(data).__name__}")
    data.setdefault("name", name)
    try:
        return Lesson.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"lesson {name}: {explain_error(exc, Lesson)}") from None
