"""The `search` and `evaluate` sections of the config (pydantic v2, frozen, no optuna here).

`load.py` imports `SearchConfig` and `EvaluateConfig` as two sections of the main config; every
field has a default so `search: {}` is valid. The search space itself lives in
`conf/search/<name>.yaml` (chosen with `search.space=<name>` or a path to a YAML file) and is
validated by `parse_space`: a mapping from a dotted config key (`regularization.l2`) to a
`ParamSpec`, so a user adds a knob (learning rate, hidden sizes, optimizer) by editing YAML only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, ValidationError, model_validator

from pipeline.config.constraints import (Count, Finite, NonEmpty, PosInt, Positive, Section,
                                         UnitHalfOpen, at_least, explain_error)

AtLeastTwo = at_least(2)


class ParamSpec(Section):
    """One searched knob: a float/int range (optionally log or stepped) or a list of choices."""

    type: Literal["float", "int", "categorical"]
    low: Finite | None = None
    high: Finite | None = None
    log: bool = False
    step: Positive | None = None
    choices: tuple[Any, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> "ParamSpec":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError(f"categorical needs a non-empty choices list, "
                                 f"got {self.choices!r}")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("categorical takes only choices, not low/high/log/step")
            return self
        if self.choices is not None:
            raise ValueError(f"{self.type} takes low/high, not choices "
                             f"(got choices={self.choices!r})")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs low and high, "
                             f"got low={self.low}, high={self.high}")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("log scale cannot be combined with step (Optuna refuses it)")
        if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high)):
            raise ValueError(f"int needs integer low/high, got low={self.low}, high={self.high}")
        return self


def parse_space(data: Any, source: str = "search space") -> dict[str, ParamSpec]:
    """Validate a `{dotted.key: {type: ..., ...}}` mapping; errors name the source and the key."""
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{source}: expected a non-empty mapping of dotted config keys, "
                         f"got {data!r}")
    space: dict[str, ParamSpec] = {}
    for key, spec in data.items():
        if not isinstance(key, str) or "." not in key:
            raise ValueError(f"{source}: key {key!r} must be a dotted config key "
                             "like regularization.l2")
        if not isinstance(spec, Mapping):
            raise ValueError(f"{source}: {key} must be a mapping with a type, got {spec!r}")
        try:
            space[key] = ParamSpec.model_validate(spec)
        except ValidationError as exc:
            raise ValueError(f"{source}: {key}: {explain_error(exc, ParamSpec, key)}") from None
    return space


class SamplerConfig(Section):
    name: Literal["tpe", "random"] = "tpe"
    seed: Count | None = None  # None = the config's top-level seed (the study's seed)


class PrunerConfig(Section):
    name: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: Count = 5  # median: trials that are never pruned
    n_warmup_steps: Count = 100  # median: epochs before pruning may start (early dev
    # error is noisy: at warmup 0 the median pruner stopped 14 of 20 default trials at epoch 15)
    interval_steps: PosInt = 1
    min_resource: PosInt = 1  # hyperband, in epochs
    reduction_factor: AtLeastTwo = 3  # hyperband


_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _study_name(value: str | None) -> str | None:
    """The study name becomes a file name (optuna/<study>.journal): a path such as ../../x or
    /tmp/x would write outside the working directory."""
    if value is not None and (not _STUDY_NAME.fullmatch(value) or ".." in value):
        raise ValueError("must be a name of letters, digits, '.', '_' or '-' (it names the file "
                         f"optuna/<study>.journal), got {value!r}")
    return value


class SearchConfig(Section):
    study: Annotated[str | None, AfterValidator(_study_name)] = None  # None = "<experiment>-<data.name>"
    # As in Optuna's optimize(n_trials=N): run N more trials in this invocation. Only finished
    # ones (COMPLETE or PRUNED) count; a FAIL trial is redone.
    n_trials: PosInt = 20
    # A target total of finished trials instead (resume after a crash: "until the study has T").
    # When set, n_trials is not used; a study that already has T finished trials runs nothing.
    target_trials: PosInt | None = None
    workers: PosInt = 1  # processes sharing one storage
    storage: str | None = None  # None = journal file optuna/<study>.journal; else an Optuna URL
    space: str = "default"  # conf/search/<space>.yaml, or a path to a YAML file
    objective: Literal["dev_loss", "dev_error"] = "dev_error"
    sampler: SamplerConfig = SamplerConfig()
    pruner: PrunerConfig = PrunerConfig()
    heartbeat_interval: PosInt = 60  # RDB storages only (journal has no heartbeat)
    grace_period: PosInt = 120
    # Figures on a child run cost ~1.7 s per trial here (2.6x fewer trials per minute when every
    # trial draws them): "best" draws them once per worker, when it finishes, for its last
    # trial that beat the study's best (so the best trial has them, and the parent copies its
    # boundary); "improving" for each such trial as it ends; "all"; "none".
    trial_figures: Literal["best", "improving", "all", "none"] = "best"
    top: PosInt = 10  # rows of the final table


class GateConfig(Section):
    """Dev-set gate for the registry alias: metric <= threshold (>= for accuracy)."""

    metric: Literal["dev_error", "dev_loss", "dev_accuracy"] = "dev_error"
    threshold: float | None = 0.2  # None = no gate, the alias is always set

    def passes(self, value: float) -> bool:
        if self.threshold is None:
            return True
        if self.metric == "dev_accuracy":
            return value >= self.threshold
        return value <= self.threshold


class EvaluateConfig(Section):
    # "train": the retrained model is the trial's model (same data, same seed), so its dev
    # metrics reproduce the search's and the gate is honest. "train+dev" uses more data but
    # leaves no held-out set before the test; documented in docs/search.md.
    retrain_on: Literal["train", "train+dev"] = "train"
    gate: GateConfig = GateConfig()
    # The prefix of the registered models: one per task (data set name, features, classes),
    # named `<prefix>-<data set>-<8 hex of the task digest>` (pipeline/promotion.py).
    registered_model: Annotated[str, NonEmpty] = "nn-pipeline"
    alias: Annotated[str, NonEmpty] = "champion"
    challenger_alias: Annotated[str, NonEmpty] = "challenger"  # every new version takes it
    # The champion moves only for a test error below its own by more than this, on the same
    # test split. 0: any strictly lower error (one more test example right); a tie keeps it.
    min_improvement: UnitHalfOpen = 0.0
    force: bool = False  # explicit override of the once-only rule; recorded as such

    @model_validator(mode="after")
    def _two_aliases(self) -> "EvaluateConfig":
        if self.alias == self.challenger_alias:  # one alias cannot mean "served" and "newest"
            raise ValueError(f"evaluate.challenger_alias must differ from evaluate.alias, got "
                             f"{self.alias!r} for both")
        return self
