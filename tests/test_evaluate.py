"""The one-time test evaluation through the real CLI: once, refused, forced, registered."""

import io
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline import stages
from pipeline.cli import main
from pipeline.promotion import task_of
from pipeline.search import storage as S
from pipeline.search.sweep import run_search
from pipeline.search.space import load_space
from pipeline.search.study import open_study

CONF = Path(__file__).resolve().parents[1] / "conf"
TEST_METRICS = ("test_loss", "test_accuracy", "test_error")


@pytest.fixture
def searched(search_cfg, tracking_uri):
    cfg = search_cfg("search.n_trials=4", "search.pruner.name=none", "search.trial_figures=none")
    space, text = load_space(cfg.search.space, CONF)
    result = run_search(cfg, space, text, progress=False, out=io.StringIO())
    return cfg, result


def _evaluate(search_cfg, *extra):
    return main(["evaluate", *search_cfg.args(*extra), "--conf-dir", str(CONF)])


def _study(cfg):
    return open_study(cfg, S.resolve(cfg.search.storage, cfg.search.study, Path(".")), create=False)


def test_evaluate_once_then_refuse_then_forced_and_recorded(searched, search_cfg, capsys):
    cfg, result = searched
    client = MlflowClient()
    assert _evaluate(search_cfg, "evaluate.gate.threshold=1.0") == 0
    study = _study(cfg)
    [record] = study.user_attrs["test_evaluations"]
    digest = stages.prepare(cfg).test.digest
    assert record["test_digest"] == digest and record["forced"] is False
    assert record["trial"] == study.best_trial.number
    run = client.get_run(record["run_id"])
    assert run.data.tags["stage"] == "final_test" and run.data.tags["forced"] == "false"
    assert run.data.tags["test_digest"] == digest
    assert run.data.tags["evaluate.dev_reproduced"] == "true"
    # ONE once-only record, the study's: no second copy in the experiment's tags to disagree
    tagged = client.get_experiment(result.experiment_id).tags
    assert not [k for k in tagged if k.startswith("test_evaluation")]
    # Test metrics on the dedicated run and the study's parent run, nowhere else.
    with_test = client.search_runs([result.experiment_id, result.search_experiment_id],
                                   "metrics.test_error >= 0")
    assert run.info.experiment_id == result.experiment_id     # with the training runs
    assert run.data.tags["search.parent_run_id"] == result.parent_run_id
    assert run.data.tags["search.experiment_id"] == result.search_experiment_id
    assert run.data.tags["mlflow.note.content"].startswith(
        "The one-time **test** evaluation of study tiny: best trial")
    assert {r.info.run_id for r in with_test} == {record["run_id"], result.parent_run_id}
    parent = client.get_run(result.parent_run_id)
    for key in TEST_METRICS:
        assert parent.data.metrics[key] == run.data.metrics[key] == record["test_metrics"][key]
    assert 0.0 <= run.data.metrics["test_error"] <= 0.5
    model = task_of(stages.prepare(cfg)).model_name("nn-pipeline")  # one model per task
    version = client.get_model_version_by_alias(model, "champion")
    assert version.run_id == record["run_id"] and version.tags["gate"] == "passed"
    assert version.description.startswith("The one-time **test** evaluation of study tiny")
    assert "alias `champion`" in client.get_registered_model(model).description

    capsys.readouterr()
    assert _evaluate(search_cfg) == 2  # the second look is refused, nothing new is written
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"already evaluated on this test set (test digest {digest}) at {record['time']} " \
           f"in run {record['run_id']}" in err and "evaluate.force=true" in err
    assert len(client.search_runs([result.experiment_id], "tags.stage = 'final_test'")) == 1

    # Forced, with a gate it cannot pass: recorded as forced, registered, alias not moved.
    assert _evaluate(search_cfg, "evaluate.gate.threshold=0.0", "--force") == 0
    records = _study(cfg).user_attrs["test_evaluations"]
    assert [r["forced"] for r in records] == [False, True]
    forced = client.get_run(records[1]["run_id"])
    assert forced.data.tags["forced"] == "true"
    latest = client.get_model_version(model, "2")
    assert latest.run_id == records[1]["run_id"] and latest.tags["gate"] == "failed"
    assert latest.tags["decision"] == "not promoted"
    assert latest.tags["reason"].startswith("dev gate failed (dev_error=")
    assert str(client.get_model_version_by_alias(model, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(model, "challenger").version) == "2"
    assert forced.data.metrics["test_error"] == run.data.metrics["test_error"]  # same model


def test_retrain_on_train_plus_dev_uses_the_best_epoch_without_early_stopping(searched,
                                                                               search_cfg):
    cfg, result = searched
    assert _evaluate(search_cfg, "evaluate.retrain_on=train+dev") == 0
    study = _study(cfg)
    [record] = study.user_attrs["test_evaluations"]
    run = MlflowClient().get_run(record["run_id"])
    assert run.data.tags["evaluate.retrain_on"] == "train+dev"
    assert run.data.params["training.patience"] == "null"
    assert run.data.params["training.epochs"] == str(study.best_trial.user_attrs["best_epoch"])
    assert run.data.tags["evaluate.dev_reproduced"].startswith("n/a")


def test_evaluating_a_missing_study_is_one_line_and_exit_2(search_cfg, tracking_uri, capsys):
    assert _evaluate(search_cfg, "study=nope") == 2
    err = capsys.readouterr().err
    assert "study 'nope' not found: no journal file" in err and err.count("\n") == 1
