"""The study record (search/record.py): the one reader and writer of a study's user attributes,
and a store written by the previous version (record version 1) read and resumed."""

import io
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from pipeline.search import storage as S
from pipeline.search.record import (VERSION, ParentRun, StudyRecord, add_parent,
                                    add_test_evaluation, write_base_config)

CONF = Path(__file__).resolve().parents[1] / "conf"


def _new_study(tmp_path, name="s") -> optuna.Study:
    spec = S.resolve(str(tmp_path / "s.journal"), name, tmp_path)
    return optuna.create_study(study_name=name, storage=S.open_storage(spec))


def _write_version_1(study, *, parents: dict, experiment: str, config: str, space: str,
                     target: int) -> None:
    """Exactly the keys the previous version's search wrote (sweep._announce before the record)."""
    study.set_user_attr("base_config", config)
    study.set_user_attr("mlflow_parent_runs", list(parents))
    for run_id, owner in parents.items():
        if owner is not None:  # parents of searches before owners were recorded have none
            study.set_user_attr(f"mlflow_parent_owner.{run_id}", owner)
    study.set_user_attr("mlflow_parent_run", list(parents)[-1])
    study.set_user_attr("mlflow_experiment_id", "0")
    study.set_user_attr("mlflow_search_experiment_id", experiment)
    study.set_user_attr("space", space)
    study.set_user_attr("target_trials", target)


def test_a_version_1_study_is_read_whole(tmp_path):
    study = _new_study(tmp_path)
    _write_version_1(study, parents={"p1": None, "p2": "h:1:2"}, experiment="7",
                     config="seed: 3\n", space="x: 1\n", target=9)
    study.set_user_attr("test_evaluations", [{"test_digest": "d1", "run_id": "e1"}])
    record = StudyRecord.load(study)
    assert record == StudyRecord("seed: 3\n", "x: 1\n", 9,
                                 (ParentRun("p1", None), ParentRun("p2", "h:1:2")), "7",
                                 ({"test_digest": "d1", "run_id": "e1"},), version=1)
    assert record.parent_run_id == "p2"  # what version 1 also kept as mlflow_parent_run
    assert record.missing("base_config", "space", "target_trials", "parent_runs",
                          "search_experiment_id") == []


def test_the_next_search_of_a_version_1_study_writes_the_current_version_keeping_its_parents(
        tmp_path):
    study = _new_study(tmp_path)
    _write_version_1(study, parents={"p1": None, "p2": "h:1:2"}, experiment="7",
                     config="seed: 3\n", space="x: 1\n", target=9)
    after = add_parent(study, "p3", "8", "x: 2\n", 12)
    assert after.version == VERSION == int(study.user_attrs["record_version"])
    # the new parent's owner is its run's tag; the owner version 1 recorded is kept
    assert after.parent_runs == (ParentRun("p1", None), ParentRun("p2", "h:1:2"),
                                 ParentRun("p3", None))
    assert (after.search_experiment_id, after.space, after.target_trials) == ("8", "x: 2\n", 12)
    assert after == StudyRecord.load(study) and after.base_config == "seed: 3\n"


def test_a_new_study_has_no_parent_until_a_search_opens_one(tmp_path):
    study = _new_study(tmp_path)
    write_base_config(study, "seed: 1\n")
    record = StudyRecord.load(study)
    assert record.version == VERSION and record.parent_run_id is None
    assert record.missing("base_config", "space", "parent_runs") == ["space", "parent_runs"]
    with pytest.raises(AttributeError, match="mlflow_parent_run"):
        record.missing("mlflow_parent_run")  # a misspelt field fails loudly, not as "missing"


def test_test_evaluations_append_and_are_found_by_digest(tmp_path):
    study = _new_study(tmp_path)
    add_test_evaluation(study, {"test_digest": "a", "forced": False})
    history = add_test_evaluation(study, {"test_digest": "b", "forced": False})
    add_test_evaluation(study, {"test_digest": "a", "forced": True})
    assert [r["test_digest"] for r in history] == ["a", "b"]
    assert [r["forced"] for r in StudyRecord.load(study).evaluations_on("a")] == [False, True]
    assert StudyRecord.load(study).evaluations_on("c") == []


def test_a_search_resumes_a_version_1_study_ending_its_dead_parent(search_cfg, tracking_uri,
                                                                  gone_owner, new_store):
    """A study the previous version created (its keys only): the resume checks its config,
    ends its parent left RUNNING by a dead search, and appends the new parent to the old."""
    from pipeline.search.space import load_space
    from pipeline.search.study import open_study
    from pipeline.search.sweep import run_search

    cfg = search_cfg("search.n_trials=1", "search.pruner.name=none", "search.trial_figures=none")
    space, text = load_space(cfg.search.space, CONF)
    spec = S.resolve(cfg.search.storage, "tiny", Path("."))
    study = open_study(cfg, spec, create=True)
    client = MlflowClient(new_store(tracking_uri))   # the template's copy, not 60 migrations
    dead = client.create_run(client.create_experiment("tiny-search")).info.run_id
    _write_version_1(study, parents={dead: gone_owner}, experiment="1",
                     config=cfg.to_yaml(), space=text, target=0)
    out = io.StringIO()
    result = run_search(cfg, space, text, progress=False, out=out)
    assert f"ended 1 run(s) left RUNNING by a dead process: {dead}" in out.getvalue()
    assert client.get_run(dead).info.status == "FAILED"
    record = StudyRecord.load(study)
    assert [p.run_id for p in record.parent_runs] == [dead, result.parent_run_id]
    assert record.version == VERSION and record.target_trials == result.target == 1
    assert record.search_experiment_id == result.search_experiment_id
