"""MLproject: entry points parse; a real `mlflow run . --env-manager local` records everything;
`mlflow models predict` on raw inputs gives the pipeline's predictions."""

import json
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow
from mlflow.tracking import MlflowClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# One xdist worker runs this module (--dist loadgroup): the slow tests share `project_run`, a
# module fixture (one `mlflow run` of 300 epochs); split across the two workers it ran twice.
pytestmark = pytest.mark.xdist_group("test_mlproject")


def test_entry_points_and_typed_parameters():
    from mlflow.projects._project_spec import load_project

    project = load_project(str(ROOT))
    assert project.env_type == "python_env"
    main = project.get_entry_point("main")
    assert {"dataset", "init", "l2", "keep_prob", "learning_rate", "epochs", "seed"} <= set(main.parameters)
    assert main.parameters["l2"].type == "float"
    command = main.compute_command({"l2": 0.7, "dataset": "rings"}, storage_dir=None)
    assert "python -m pipeline train" in command
    assert "regularization.l2=0.7" in command and "data.name=rings" in command
    assert "reproduce" in project._entry_points


def test_mlproject_defaults_match_the_base_config():
    from mlflow.projects._project_spec import load_project

    from pipeline.config import load_config, parse_override

    command = load_project(str(ROOT)).get_entry_point("main").compute_command({}, storage_dir=None)
    overrides = [t for t in command.split() if "=" in t]
    assert load_config(overrides, conf_dir=ROOT / "conf") == load_config(conf_dir=ROOT / "conf"), \
        [parse_override(o) for o in overrides]


@pytest.mark.parametrize("params, n_trials, target", [({}, 20, None),
                                                      ({"target_trials": "80"}, 20, 80)])
def test_search_entry_point_passes_n_trials_and_an_optional_target(params, n_trials, target):
    from mlflow.projects._project_spec import load_project

    from pipeline.commands.search import expand
    from pipeline.config import load_config

    entry = load_project(str(ROOT)).get_entry_point("search")
    command = entry.compute_command(params, storage_dir=None)
    overrides = [t for t in shlex.split(command) if "=" in t]   # as the shell passes them
    cfg = load_config(expand(overrides), conf_dir=ROOT / "conf")
    assert (cfg.search.n_trials, cfg.search.target_trials) == (n_trials, target)


def _env(tmp_path):
    # mlflow.set_experiment (run by earlier tests in this process) exports MLFLOW_EXPERIMENT_ID;
    # a child pointed at another store must not inherit it
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    return {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def project_run(tmp_path_factory, new_store):
    """`mlflow run <repo> --env-manager local -P epochs=300` against a temporary store, with no
    experiment named (so it also shows what a run in Default prints) and a dataset that is not
    the default one (whose labels are integers too: the predictions test compares numbers)."""
    tmp = tmp_path_factory.mktemp("mlproject")
    # the store made first from the template (tests/conftest.py new_store): `mlflow run`
    # otherwise runs MLflow's ~60 migrations itself, for a schema no test here is about
    new_store(_env(tmp)["MLFLOW_TRACKING_URI"])
    done = subprocess.run(["mlflow", "run", str(ROOT), "--env-manager", "local",
                           "-P", "epochs=300", "-P", "l2=0.05", "-P", "dataset=moons"],
                          cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    (run,) = client.search_runs(["0"])             # mlflow run's experiment: Default unless named
    assert f"run {run.info.run_id} finished" in done.stdout
    return tmp, client, run, done


@pytest.mark.slow
def test_mlflow_run_records_params_metrics_figures_inputs_and_model(project_run):
    _, client, run, _ = project_run
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params["regularization.l2"] == "0.05"
    assert run.data.params["training.epochs"] == "300"
    assert run.data.tags["mlflow.project.entryPoint"] == "main"
    curve = {m.step for m in client.get_metric_history(run_id, "curves/dev_loss")}
    grads = {m.step for m in client.get_metric_history(run_id, "gradients/norm_W1")}
    # learning curves keep every evaluation (300 epochs, eval_every auto = 1); the diagnostic
    # series about 100 of those same evaluations (pipeline/curve_points.py)
    assert len(curve) == 300 and 20 < len(grads) <= 101 and grads <= curve
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/boundary_train.png", "plots/boundary_dev.png", "plots/learning_curves.png",
            "plots/gradient_norms.png"} <= plots
    contexts = sorted(t.value for d in run.inputs.dataset_inputs for t in d.tags)
    assert contexts == ["training", "validation"]
    assert any(a.path == "model" for a in client.list_artifacts(run_id)) or run.outputs.model_outputs


@pytest.mark.slow
def test_mlflow_models_predict_matches_the_pipeline(project_run):
    tmp, _, run, _ = project_run
    run_id = run.info.run_id
    from pipeline import stages
    from pipeline.config import config_from_yaml

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    cfg = config_from_yaml(mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml"))
    prepared = stages.prepare(cfg)
    trained = stages.train(cfg, prepared)                  # bit-identical retrain (same config)
    X = prepared.raw_dev.X
    expected = np.asarray(prepared.classes)[trained.model.predict(X)]
    frame = pd.DataFrame(X, columns=list(prepared.feature_names))
    frame.to_csv(tmp / "dev.csv", index=False)
    done = subprocess.run(["mlflow", "models", "predict", "-m", f"runs:/{run_id}/model",
                           "-i", str(tmp / "dev.csv"), "-t", "csv", "-o", str(tmp / "pred.json"),
                           "--env-manager", "local"],
                          cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    predictions = json.loads((tmp / "pred.json").read_text())["predictions"]
    labels = [p["label"] if isinstance(p, dict) else p for p in predictions]
    assert labels == [int(v) for v in expected]               # integer classes: JSON numbers
    assert len(labels) == prepared.raw_dev.n


@pytest.mark.slow
def test_mlflow_run_reproduce_records_the_check_in_the_runners_run(project_run):
    """`mlflow run -e reproduce` makes a run before our command starts; it ends FINISHED,
    named and tagged as the check, and no other run appears."""
    tmp, client, run, _ = project_run
    before = {r.info.run_id for r in client.search_runs(["0"])}
    done = subprocess.run(["mlflow", "run", str(ROOT), "-e", "reproduce", "--env-manager", "local",
                           "-P", f"run_id={run.info.run_id}"],
                          cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"run {run.info.run_id} reproduces: all" in done.stdout
    (new,) = [r for r in client.search_runs(["0"]) if r.info.run_id not in before]
    assert new.info.status == "FINISHED"
    assert new.info.run_name == f"reproduce-{run.info.run_id[:8]}"
    assert new.data.tags["reproduce.of"] == run.info.run_id
    assert new.data.tags["reproduce.match"] == "true"
    assert new.data.tags["mlflow.project.entryPoint"] == "reproduce"
    assert [a.path for a in client.list_artifacts(new.info.run_id, "reproduce")] == [
        "reproduce/report.txt"]


@pytest.mark.slow
def test_mlflow_run_in_default_says_how_to_name_the_experiment(project_run):
    """(Issue 18; was a second `mlflow run` in tests/test_daily_commands.py.)"""
    _, _, run, done = project_run
    assert ("note: mlflow run put its run in experiment Default; add --experiment-name "
            "nn-pipeline to `mlflow run`") in done.stderr
    assert run.info.experiment_id == "0" and run.data.params["data.name"] == "moons"
