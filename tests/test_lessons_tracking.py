"""`python -m pipeline experiment`: the parent/child runs read back from a real SQLite store,
nothing left RUNNING, no run for bad input, and the runner's run used as parent."""

from pathlib import Path

import pytest

from mlflow.tracking import MlflowClient  # noqa: E402

from pipeline.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")


@pytest.fixture
def workdir(tmp_path, monkeypatch, tracking_uri):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# One xdist worker builds this module's store once (--dist loadgroup in pyproject); split
# across two workers the module fixture was built twice.
pytestmark = pytest.mark.xdist_group("test_lessons_tracking")


@pytest.fixture(scope="module")
def existing_store(tmp_path_factory):
    """One store whose experiment exists, so "no run created" is a real count (made once:
    creating an MLflow SQLite schema costs seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('existing') / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("nn-pipeline")
    return uri


def all_runs(uri):
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def test_a_lesson_is_a_parent_with_one_finished_child_per_arm_and_seed(workdir, tracking_uri,
                                                                       capsys):
    code = main(["experiment", "--quiet", "--conf-dir", CONF, "--output", "out",
                 "gradient_checking", "seeds=2", "training.epochs=10"])
    out = capsys.readouterr().out
    assert code == 0
    runs = all_runs(tracking_uri)
    assert {r.info.status for r in runs} == {"FINISHED"}
    (parent,) = [r for r in runs if r.data.tags.get("stage") == "experiment"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    arms = ["correct", "dropout_fixed_mask", "dropout_fresh_mask", "forgot_l2", "scaled_W2"]
    assert len(runs) == 11 and len(children) == 5 * 2
    assert sorted(c.info.run_name for c in children) == [
        f"{a}-seed{s}" for a in arms for s in (0, 1)]
    tags, metrics = parent.data.tags, parent.data.metrics
    assert tags["lesson.verdict"].startswith("held: at initialization and after training alike")
    assert tags["mlflow.note.content"].startswith("**held: at initialization")
    assert "\n- met: scaled_W2 n_failed mean 1 <= 1" in tags["mlflow.note.content"]
    assert tags["lesson.verdict"] in out
    assert metrics["correct.n_failed_mean"] == 0 and metrics["scaled_W2.n_failed_max"] == 1
    assert metrics["scaled_W2.target_failed_mean"] == 1 and metrics["lesson.held"] == 1
    client = MlflowClient(tracking_uri)
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, "lesson")}
    assert {"lesson/comparison.png", "lesson/table.csv", "lesson/table.md",
            "lesson/lesson.yaml"} <= arts
    child = next(c for c in children if c.info.run_name == "scaled_W2-seed1")
    assert child.data.params["seed"] == "1" and child.data.tags["lesson.arm"] == "scaled_W2"
    assert child.data.metrics["final/n_failed"] == 1
    assert (workdir / "out" / "comparison.png").stat().st_size > 10_000
    assert "| scaled_W2 |" in (workdir / "out" / "table.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["nope"], "error: lesson must be one of ['bias_variance'"),
    (["initialization", "seeds=0"], "error: seeds must be an integer >= 1, got '0'"),
    (["initialization", "model.init=magic"], "error: lesson initialization: command line: "
                                             "model.init must be one of"),
    (["initialization", "data.params={n_samples: 2}"], "error: rings.n_samples must be"),
])
def test_bad_input_exits_2_and_creates_no_run(existing_store, tmp_path, monkeypatch, capsys,
                                              args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "--quiet", "--conf-dir", CONF, *args,
                 f"tracking.uri={existing_store}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert all_runs(existing_store) == []


def test_under_mlflow_run_the_runners_run_is_the_parent(workdir, tracking_uri, monkeypatch):
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("runner")
    outer = client.create_run(experiment).info.run_id   # what `mlflow run` creates
    monkeypatch.setenv("MLFLOW_RUN_ID", outer)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    assert main(["experiment", "--quiet", "--conf-dir", CONF, "gradient_checking", "seeds=1",
                 "training.epochs=5"]) == 0
    runs = all_runs(tracking_uri)
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}
    assert sum(r.data.tags.get("mlflow.parentRunId") == outer for r in runs) == 5
    assert client.get_run(outer).data.tags["lesson.name"] == "gradient_checking"


def test_the_mlproject_entry_point_passes_lesson_seeds_and_workers():
    from mlflow.projects._project_spec import load_project

    from pipeline.commands.experiment import split_own

    entry = load_project(str(ROOT)).get_entry_point("experiment")
    command = entry.compute_command({"lesson": "regularization", "seeds": 3, "workers": 2.0},
                                    storage_dir=None)
    assert command.startswith("python -m pipeline experiment --quiet regularization")
    own, rest = split_own([t for t in command.split() if "=" in t])
    assert own == {"seeds": 3, "workers": 2} and rest == []


@pytest.mark.slow
def test_mlflow_run_experiment_logs_the_lesson_into_the_runners_run(tmp_path):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PYTHONPATH=str(ROOT),
               MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run(["mlflow", "run", str(ROOT), "-e", "experiment", "--env-manager",
                           "local", "-P", "lesson=gradient_checking", "-P", "seeds=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = MlflowClient(env["MLFLOW_TRACKING_URI"]).search_runs(["0"])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.tags["mlflow.project.entryPoint"] == "experiment"
    assert parent.data.tags["lesson.verdict"].startswith("held")
    assert len(runs) == 1 + 5 and {r.info.status for r in runs} == {"FINISHED"}
