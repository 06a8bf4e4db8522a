"""A lesson file (`conf/lessons/<name>.yaml`) as validated data: arms, seeds and the claim.

A lesson is data, not code: base overrides (dotted keys onto conf/base.yaml), `arms` (name ->
dotted overrides) or a `grid` (rows x cols of overrides), and a `claim` made of declarative
checks over per-arm means. Errors are one line naming the key (the config's house style); the
dotted overrides themselves are validated by building every arm's Config (`plan.plan`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ValidationError, model_validator

from pipeline.config.constraints import (NonEmpty, PosInt, Positive, Section, bound,
                                         explain_error)
from pipeline.config.safe_yaml import MAX_BYTES, load_yaml
from pipeline.input_files import read_text

KINDS = ("arms", "grid", "gradient_flow", "gradcheck")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

# Metrics every arm run reports (pipeline.lessons.execute), by kind; checks and curves must
# name one of them, so a typo fails at the door instead of as a "failed" verdict.
FINAL = ("train_loss", "train_accuracy", "train_error", "dev_loss", "dev_accuracy", "dev_error",
         "best_epoch", "epochs_run", "first_train_loss", "first_dev_loss", "symmetric_units",
         "non_finite", "epochs_to_threshold", "reached_threshold", "learning_rate",
         "train_objective", "avoidable_bias", "variance", "bayes_error")
# Scored on the lesson's `holdout` set (absent without one): a second clean held-out sample
# that nothing chose on, so an arm that stopped early on dev is not optimistic there.
HOLDOUT = ("holdout_loss", "holdout_accuracy", "holdout_error")
METRICS = {"arms": FINAL + HOLDOUT, "grid": FINAL + HOLDOUT,
           "gradient_flow": FINAL + ("log10_grad_ratio", "log10_grad_spread", "grad_norm_first",
                                     "grad_norm_last", "zero_gradient", "log10_grad_slope",
                                     "act_norm_first", "act_norm_last", "log10_act_ratio",
                                     "log10_act_slope"),
           "gradcheck": ("n_failed", "target_failed", "relative_error", "failed_W", "failed_b")}
# gradcheck: relerr_<block> per block; init_<metric> the same check at initialization
METRIC_PREFIXES = {"gradcheck": ("relerr_", "init_"), "gradient_flow": ("grad_W", "act_A")}
CURVES = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_error",
          "train_objective", "train_error")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"must use only letters, digits, _ . and -, got {value!r}")
    return value


Name = Annotated[str, AfterValidator(_name)]


class Check(Section):
    """One declarative comparison over per-arm means, or seed by seed (`share`; see
    docs/lessons.md)."""
    metric: str
    arm: str | None = None                       # the arm whose mean is tested ...
    best_of: tuple[str, ...] | None = None       # ... or the best mean among these arms
    chosen_by: str | None = None                 # best_of*: best by this metric (default: metric)
    greater_than_arm: str | None = None          # mean > other arm's mean + margin
    less_than_arm: str | None = None             # mean < other arm's mean - margin
    greater_than_best_of: tuple[str, ...] | None = None   # as *_than_arm, against the best of
    less_than_best_of: tuple[str, ...] | None = None      # these arms (picked as best_of is)
    margin: float = 0.0
    factor: Positive | None = None               # with *_than_arm: mean > factor * other (or <)
    at_least: float | None = None
    at_most: float | None = None
    diagnosis_in: tuple[str, ...] | None = None  # grid: the cell's diagnosis verdict is one of these
    # judged seed by seed instead of on the means, and passes when at least this share of the
    # arm's seeds meet it. With arm and one *_than_arm: the same seed is the same data, split
    # and initialization in every arm, so each seed is a pair, whose difference must be at
    # least `margin`. With diagnosis_in: each run's own diagnosis is one of those.
    share: Annotated[float, bound(0, 1, lo_open=True)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> "Check":
        if (self.arm is None) == (self.best_of is None):
            raise ValueError("needs exactly one of arm or best_of")
        if self.share is not None:
            _paired_shape(self)
        tests = [self.greater_than_arm, self.less_than_arm, self.at_least, self.at_most,
                 self.diagnosis_in, self.greater_than_best_of, self.less_than_best_of]
        if all(t is None for t in tests):
            raise ValueError("needs a comparison: greater_than_arm, less_than_arm, at_least, "
                             "at_most or diagnosis_in")
        return self

    @property
    def paired(self) -> bool:
        """Judged seed by seed as a difference against another arm (share with *_than_arm),
        not as a count of per-seed diagnoses (share with diagnosis_in)."""
        return self.share is not None and self.diagnosis_in is None

    def arms(self) -> list[str]:
        named = [self.arm, self.greater_than_arm, self.less_than_arm, *(self.best_of or ()),
                 *(self.greater_than_best_of or ()), *(self.less_than_best_of or ())]
        return [a for a in named if a is not None]


def _paired_shape(check: Check) -> None:
    """share compares one arm with one other arm, seed by seed, by a difference (margin), or
    counts the seeds of one arm whose own diagnosis is among diagnosis_in."""
    if check.diagnosis_in is not None:
        if check.arm is None or check.greater_than_arm or check.less_than_arm:
            raise ValueError("share with diagnosis_in needs arm and no *_than_arm")
        return
    others = [o for o in (check.greater_than_arm, check.less_than_arm) if o is not None]
    if check.arm is None or len(others) != 1:
        raise ValueError("share needs arm and exactly one of greater_than_arm or less_than_arm")
    extra = [k for k in ("factor", "at_least", "at_most", "diagnosis_in")
             if getattr(check, k) is not None]
    if extra:
        raise ValueError(f"share compares differences seed by seed and takes margin, not "
                         f"{extra[0]}")


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


# gradcheck: the cost J the check differentiates is wrong while backprop is the real one:
# no_l2 = J without its L2 term (backprop includes lambda), fresh_mask = J draws a new dropout
# mask at every evaluation (the check's one fixed mask is the right way)
CostBug = Literal["no_l2", "fresh_mask"]


class Holdout(Section):
    """A second held-out set (stages.draw_holdout): fresh rows from dev's source."""
    n_samples: PosInt = 1000


class Figure(Section):
    curves: tuple[str, ...] = ("train_loss", "dev_accuracy")
    band: Literal["std", "minmax"] = "minmax"
    boundary: bool = True                       # decision boundaries when the data is 2-D
    contours: bool = False                      # lesson/contours.png: a 2-weight logistic
                                                # model's cost, raw vs standardized (2-D data)
    cells: tuple[str, ...] = ()                 # grid: these metrics' means as rows x cols
                                                # heatmaps (lesson/cells.png)
    curve_arms: tuple[str, ...] = ()            # only these arms' curves (default: every arm)


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
    holdout: Holdout | None = None
    corrupt: Corrupt | None = None
    cost_bugs: dict[Name, CostBug] = {}
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
            if check.chosen_by is not None:
                _check_metric(check.chosen_by, self.kind, f"claim.checks[{i}].chosen_by")
            if check.diagnosis_in is not None and check.share is None and self.kind != "grid":
                raise ValueError(f"claim.checks[{i}]: diagnosis_in in a {self.kind} lesson needs "
                                 f"share (each seed's diagnosis; only a grid diagnoses a mean)")
        for i, metric in enumerate(self.figure.cells):
            _check_metric(metric, self.kind, f"figure.cells[{i}]")
        if self.figure.cells and self.kind != "grid":
            raise ValueError(f"figure.cells needs kind grid, got kind {self.kind}")
        wanted = [m for m in [c.metric for c in self.claim.checks] + list(self.figure.cells)
                  if m in HOLDOUT]
        if wanted and self.holdout is None:
            raise ValueError(f"{wanted[0]} needs a holdout set: add holdout: {{n_samples: 1000}}")
        for curve in self.figure.curves:
            if curve not in CURVES:
                raise ValueError(f"figure.curves must be among {list(CURVES)}, got {curve!r}")
        for arm in self.figure.curve_arms:
            if arm not in names:
                raise ValueError(f"figure.curve_arms must be among {names}, got {arm!r}")
        if self.corrupt is not None and self.corrupt.arm not in names:
            raise ValueError(f"corrupt.arm must be one of {names}, got {self.corrupt.arm!r}")
        for arm in self.cost_bugs:
            if arm not in names:
                raise ValueError(f"cost_bugs names arm {arm!r}; arms: {names}")
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
    if path.suffix not in (".yaml", ".yml") or not os.path.lexists(path):
        path = Path(conf_dir) / "lessons" / f"{name}.yaml"
        if not os.path.lexists(path):
            raise ValueError(f"lesson must be one of {available(conf_dir)} (or a path to a "
                             f".yaml file), got {name!r}")
    # a directory, symlink loop, oversized or non-UTF-8 file: one line naming it
    return parse_lesson(read_text(path, "lesson file", MAX_BYTES), path.stem, str(path))


def parse_lesson(text: str, name: str, source: str = "lesson") -> Lesson:
    data = load_yaml(text, source)  # bounded: a lesson's `base` alias bomb is refused here
    if not isinstance(data, dict):
        raise ValueError(f"{source} must hold a mapping, got {type(data).__name__}")
    data.setdefault("name", name)
    try:
        return Lesson.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"lesson {name}: {explain_error(exc, Lesson)}") from None
