"""The study record: what a search writes into an Optuna study for every later process.

A study's user attributes are read by processes on other machines, started later and maybe by
another version of this package (a `worker` joining, an `evaluate`, the next `search`
resuming), so they are an interface between processes. This module is the only one that knows
their keys: everything else reads `StudyRecord.load(study)` and writes through the functions
below.

Keys (format version 3, `record_version`), each written by one kind of process:

| key                    | written by        | holds                                            |
|------------------------|-------------------|--------------------------------------------------|
| `base_config`          | search (creation) | the training config the study was created with   |
| `space`                | search            | the search space's YAML text                     |
| `target_trials`        | search            | the total of finished trials to reach            |
| `parent_runs`          | search            | every parent run, oldest first                   |
| `search_experiment_id` | search            | the `<study>-search` experiment of the parents   |
| `test_evaluations`     | evaluate          | the one-time test evaluations (once-only record) |
| `record_version`       | search            | 3                                                |

A parent's owner process is its run's `pipeline.owner` tag (set at the run's creation:
pipeline/tracking/recovery.py), which the recovery reads; the record names no owner of the
parents it adds. Older versions wrote one: version 2 an `owner` in each `parent_runs` entry
(null for a parent from before owners), version 1 (no `record_version`) the parents as
`mlflow_parent_runs` plus one `mlflow_parent_owner.<run id>` each and the experiment as
`mlflow_search_experiment_id` (it also wrote `mlflow_parent_run`, the last parent again, and
`mlflow_experiment_id`, read by nobody). `load` reads both (the only place that knows those
keys): a parent an older version opened may lack the tag, and its recorded owner is then what
says whether its search is dead (search/recovery.py), so the next search writes version 3 with
those owners carried over. Version 3 changed the meaning of a parent without an owner (before:
opened before owners existed; now: its owner is in its tag), hence the new number. The trials'
own attributes (`owner`, `mlflow_run_id`, ...) are not part of the record: each belongs to one
trial and is written by the process running it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from pipeline.config import config_from_yaml
from pipeline.config.safe_yaml import load_yaml
from pipeline.config.search import parse_space

VERSION = 3


@dataclass(frozen=True)
class ParentRun:
    run_id: str
    # host:pid:start of the search that opened it, as an older version recorded it (the run
    # may lack the tag); None: opened by version 3 (owner in the run's tag) or before owners
    owner: str | None = None


@dataclass(frozen=True)
class StudyRecord:
    base_config: str | None = None          # YAML text
    space: str | None = None                # YAML text
    target_trials: int | None = None
    parent_runs: tuple[ParentRun, ...] = ()
    search_experiment_id: str | None = None
    test_evaluations: tuple[dict, ...] = ()
    version: int = VERSION

    @classmethod
    def load(cls, study) -> StudyRecord:
        """The record as the study holds it now (one read of the user attributes)."""
        return cls.from_attrs(study.user_attrs)

    @classmethod
    def from_attrs(cls, attrs: dict) -> StudyRecord:
        version = int(attrs.get("record_version", 1))
        if version >= 2:  # version 3 writes no owner: p.get("owner") is None then
            parents = tuple(ParentRun(p["run_id"], p.get("owner"))
                            for p in attrs.get("parent_runs", []))
            experiment = attrs.get("search_experiment_id")
        else:  # version 1: the run ids in one list, each owner in a key of its own
            parents = tuple(ParentRun(r, attrs.get(f"mlflow_parent_owner.{r}"))
                            for r in attrs.get("mlflow_parent_runs", []))
            experiment = attrs.get("mlflow_search_experiment_id")
        target = attrs.get("target_trials")
        return cls(attrs.get("base_config"), attrs.get("space"),
                   None if target is None else int(target), parents, experiment,
                   tuple(attrs.get("test_evaluations", [])), version)

    @property
    def parent_run_id(self) -> str | None:
        """The current parent run: the one the latest search opened (workers log under it)."""
        return self.parent_runs[-1].run_id if self.parent_runs else None

    def missing(self, *names: str) -> list[str]:
        """Which of the named fields the study does not hold (a study no search wrote)."""
        known = {f.name for f in fields(self)}
        unknown = set(names) - known
        if unknown:
            raise AttributeError(f"StudyRecord has no field {sorted(unknown)}")
        return [n for n in names if getattr(self, n) in (None, ())]

    def config(self, study: str):
        """The stored training config, validated as any config is."""
        return config_from_yaml(self.base_config, f"study {study} base_config")

    def search_space(self, study: str) -> dict:
        """The stored search space, parsed and validated (`{dotted key: ParamSpec}`)."""
        where = f"study {study} space"
        return parse_space(load_yaml(self.space, where), where)

    def evaluations_on(self, test_digest: str) -> list[dict]:
        """Earlier test evaluations on this test data (same digest), oldest first."""
        return [r for r in self.test_evaluations if r.get("test_digest") == test_digest]


def write_base_config(study, text: str) -> None:
    """At the study's creation: the config every resume, worker and evaluate rebuilds."""
    study.set_user_attr("base_config", text)
    study.set_user_attr("record_version", VERSION)


def add_parent(study, run_id: str, search_experiment_id: str, space: str,
               target: int) -> StudyRecord:
    """A search opened parent run `run_id`: it becomes the current one, with what a worker
    joining later needs (its experiment, the space, the total to reach). Its owner is the
    run's tag; the owners older versions recorded are kept. The version is written last, so a
    reader in between still reads a version-1 study whole."""
    parents = StudyRecord.load(study).parent_runs + (ParentRun(run_id),)
    study.set_user_attr("parent_runs", [_parent_entry(p) for p in parents])
    study.set_user_attr("search_experiment_id", search_experiment_id)
    study.set_user_attr("space", space)
    study.set_user_attr("target_trials", target)
    study.set_user_attr("record_version", VERSION)
    return StudyRecord.load(study)


def _parent_entry(parent: ParentRun) -> dict:
    return {"run_id": parent.run_id, **({"owner": parent.owner} if parent.owner else {})}


def add_test_evaluation(study, evaluation: dict) -> tuple[dict, ...]:
    """Append one test evaluation (the caller holds the study's evaluation lock); returns the
    whole history."""
    history = StudyRecord.load(study).test_evaluations + (evaluation,)
    study.set_user_attr("test_evaluations", list(history))
    return history
