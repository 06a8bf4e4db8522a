"""`mlflow run . -e search`: the runner's run becomes a pointer, the search its own experiment.

The runner creates a run in its experiment before our code starts; the search's parent and
trials go to `<study>-search` (so they never bury the training runs) and the runner's run is
renamed and described as a pointer to them (docs/tracking.md, "The MLflow UI").
"""

import os
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mlflow_run_search_leaves_a_pointer_run_and_logs_into_the_study_experiment(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
               MLFLOW_DISABLE_TELEMETRY="true", PYTHONPATH=str(ROOT))
    # `mlflow run` starts the entry point in the project directory (the checkout): the journal
    # goes under tmp_path explicitly; the search experiment's artifacts go beside "proj"'s
    # (tracking.search_runs.search_experiment), which is asserted below
    done = subprocess.run(["mlflow", "run", str(ROOT), "-e", "search", "--env-manager", "local",
                           "--experiment-name", "proj", "-P", "n_trials=2", "-P", "study=mr",
                           "-P", f"storage={tmp_path / 'mr.journal'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    proj, search = (client.get_experiment_by_name(n) for n in ("proj", "mr-search"))
    (pointer,) = client.search_runs([proj.experiment_id])        # nothing else in "proj"
    tags = pointer.data.tags
    assert pointer.info.status == "FINISHED" and pointer.info.run_name == "search-mr trials 1-2"
    assert tags["stage"] == "search_pointer" and tags["search.experiment_id"] == search.experiment_id
    assert tags["mlflow.project.entryPoint"] == "search"
    parent = client.get_run(tags["search.parent_run_id"])
    assert parent.info.experiment_id == search.experiment_id and parent.info.status == "FINISHED"
    trials = client.search_runs([search.experiment_id],
                                f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(trials) == 2
    assert pointer.data.metrics["best_value"] == parent.data.metrics["best_value"]
    assert tags["mlflow.note.content"] == parent.data.tags["mlflow.note.content"] + (
        "\n\nThe search's parent run and its trials are in experiment `mr-search`: "
        f"[open the parent run](#/experiments/{search.experiment_id}/runs/"
        f"{parent.info.run_id}?workflowType=machine_learning).")
    assert proj.tags["search.mr"] == search.experiment_id
    # artifacts beside the runner's experiment, not in the checkout the runner runs the command in
    assert search.artifact_location == proj.artifact_location.rsplit("/", 1)[0] + "/mr-search"
    assert str(tmp_path) in search.artifact_location
    for experiment in (proj, search):
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
