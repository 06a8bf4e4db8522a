"""`python -m pipeline experiment`: the parent/child runs read back from a real SQLite store, in
the lesson's own experiment, with the parent's few metrics, MLflow table and description;
nothing left RUNNING, no run for bad input, and the runner's run a pointer to the parent."""

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
def existing_store(tmp_path_factory, new_store):
    """One store whose experiment exists, so "no run created" is a real count (made once,
    from the template: MLflow's own schema creation costs seconds)."""
    uri = new_store(f"sqlite:///{tmp_path_factory.mktemp('existing') / 'mlflow.db'}")
    MlflowClient(uri).create_experiment("nn-pipeline")
    return uri


def all_runs(uri):
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def experiments(uri) -> dict:
    return {e.name: e.experiment_id for e in MlflowClient(uri).search_experiments()}


def test_a_lesson_is_a_parent_with_one_finished_child_per_arm_and_seed(workdir, tracking_uri,
                                                                       capsys):
    code = main(["experiment", "--quiet", "--conf-dir", CONF, "--output", "out",
                 "gradient_checking", "seeds=2", "training.epochs=10"])
    out = capsys.readouterr().out
    assert code == 0
    client = MlflowClient(tracking_uri)
    runs = all_runs(tracking_uri)
    assert {r.info.status for r in runs} == {"FINISHED"}
    # the lesson's own experiment holds the parent and its children; the training one none
    ids = experiments(tracking_uri)
    lesson_id = ids["nn-pipeline-lesson-gradient_checking"]
    assert client.search_runs([ids["nn-pipeline"]]) == []
    assert client.get_experiment(ids["nn-pipeline"]).tags["lesson.gradient_checking"] == lesson_id
    assert {r.info.experiment_id for r in runs} == {lesson_id}
    (parent,) = [r for r in runs if r.data.tags.get("stage") == "experiment"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    arms = ["correct", "dropout_fixed_mask", "dropout_fresh_mask", "forgot_l2", "scaled_W2"]
    assert len(runs) == 11 and len(children) == 5 * 2
    assert sorted(c.info.run_name for c in children) == [
        f"{a}-seed{s}" for a in arms for s in (0, 1)]
    tags, metrics = parent.data.tags, parent.data.metrics
    assert tags["lesson.verdict"].startswith("held: at initialization and after training alike")
    assert tags["lesson.verdict"] in out
    assert f"parent run {parent.info.run_id}: " in out and f"#/experiments/{lesson_id}/runs/" in out
    # only the means a check rests on, and the verdict, count and time: not every column
    checked = {f"{arm}.{metric}_mean" for arm, metric in [
        ("correct", "n_failed"), ("correct", "init_n_failed"), ("scaled_W2", "target_failed"),
        ("scaled_W2", "n_failed"), ("scaled_W2", "init_target_failed"),
        ("scaled_W2", "init_n_failed"), ("forgot_l2", "failed_W"), ("forgot_l2", "failed_b"),
        ("forgot_l2", "init_failed_W"), ("forgot_l2", "init_failed_b"),
        ("dropout_fresh_mask", "failed_W"), ("dropout_fresh_mask", "failed_b"),
        ("dropout_fresh_mask", "init_failed_W"), ("dropout_fresh_mask", "init_failed_b"),
        ("dropout_fixed_mask", "n_failed"), ("dropout_fixed_mask", "init_n_failed")]}
    assert set(metrics) == checked | {"lesson.held", "lesson.checks_met", "lesson.seconds"}
    assert metrics["correct.n_failed_mean"] == 0 and metrics["scaled_W2.n_failed_mean"] == 1
    assert metrics["scaled_W2.target_failed_mean"] == 1 and metrics["lesson.held"] == 1
    assert metrics["forgot_l2.failed_W_mean"] == 1 and metrics["forgot_l2.failed_b_mean"] == 0
    assert metrics["lesson.checks_met"] == 16
    # the description: verdict first, then the figure, the table and the checks
    note = tags["mlflow.note.content"]
    paragraphs = note.split("\n\n")
    assert paragraphs[0] == f"**{tags['lesson.verdict']}**"
    assert paragraphs[1].startswith("Comparison figure: [lesson/comparison.png](#/experiments/"
                                    f"{lesson_id}/runs/{parent.info.run_id}/artifacts/")
    assert paragraphs[2].startswith("| arm | n_failed |") and "\n| scaled_W2 | 1.000 ± 0.000" in note
    assert "\n- met: scaled_W2 n_failed mean 1 <= 1" in note and "nan" not in note
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, "lesson")}
    assert {"lesson/comparison.png", "lesson/table.csv", "lesson/table.md", "lesson/table.json",
            "lesson/lesson.yaml"} <= arts
    # the MLflow table: the displayed columns of the lesson's table, read back
    assert '"path": "lesson/table.json", "type": "table"' in tags["mlflow.loggedArtifacts"]
    import pandas as pd

    shown = client.load_table(lesson_id, "lesson/table.json", run_ids=[parent.info.run_id])
    full = pd.read_csv(workdir / "out" / "table.csv", index_col="arm")
    assert list(shown["arm"]) == ["correct", "scaled_W2", "forgot_l2", "dropout_fresh_mask",
                                  "dropout_fixed_mask"]
    assert list(shown.columns[:5]) == ["arm", "n_seeds", "n_failed_mean", "init_n_failed_mean",
                                       "target_failed_mean"]   # the claim's metrics first
    for col in shown.columns[1:]:
        assert shown[col].tolist() == pytest.approx(full.loc[shown["arm"], col].tolist(),
                                                    rel=1e-12)     # every digit, even 4e-09
    child = next(c for c in children if c.info.run_name == "scaled_W2-seed1")
    assert child.data.params["seed"] == "1" and child.data.tags["lesson.arm"] == "scaled_W2"
    assert child.data.metrics["final/n_failed"] == 1
    assert (workdir / "out" / "comparison.png").stat().st_size > 10_000
    assert "| scaled_W2 |" in (workdir / "out" / "table.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["nope"], "error: lesson must be one of ['augmentation', 'bias_variance'"),
    (["initialization", "seeds=0"], "error: seeds must be an integer >= 1, got '0'"),
    (["initialization", "model.activation=magic"], "error: lesson initialization: command "
                                                   "line: model.activation must be one of"),
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


def test_under_mlflow_run_the_runners_run_points_at_the_lessons_parent(workdir, tracking_uri,
                                                                       monkeypatch, capsys,
                                                                       new_store):
    client = MlflowClient(new_store(tracking_uri))   # the store `mlflow run` would have made
    experiment = client.create_experiment("runner")
    outer = client.create_run(experiment).info.run_id   # what `mlflow run` creates
    monkeypatch.setenv("MLFLOW_RUN_ID", outer)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    assert main(["experiment", "--quiet", "--conf-dir", CONF, "gradient_checking", "seeds=1",
                 "training.epochs=5"]) == 0
    out = capsys.readouterr().out
    lesson_id = experiments(tracking_uri)["nn-pipeline-lesson-gradient_checking"]
    (pointer,) = client.search_runs([experiment])       # the runner's experiment: the pointer
    lesson_runs = client.search_runs([lesson_id])
    (parent,) = [r for r in lesson_runs if r.data.tags.get("stage") == "experiment"]
    assert len(lesson_runs) == 6 and {r.info.status for r in lesson_runs} == {"FINISHED"}
    assert sum(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
               for r in lesson_runs) == 5
    tags = pointer.data.tags
    assert pointer.info.run_id == outer and pointer.info.run_name == "lesson-gradient_checking"
    assert tags["stage"] == "lesson_pointer" and tags["lesson.experiment_id"] == lesson_id
    assert tags["lesson.parent_run_id"] == parent.info.run_id
    assert tags["mlflow.note.content"].startswith(f"**{parent.data.tags['lesson.verdict']}**")
    assert f"#/experiments/{lesson_id}/runs/{parent.info.run_id}" in tags["mlflow.note.content"]
    assert pointer.data.metrics["lesson.held"] == 1
    assert f"parent run {parent.info.run_id}: http" in out    # the printed link: the parent


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
def test_mlflow_run_experiment_logs_the_lesson_into_the_runners_run(tmp_path, new_store):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PYTHONPATH=str(ROOT),
               MLFLOW_DISABLE_TELEMETRY="true")
    new_store(env["MLFLOW_TRACKING_URI"])   # from the template: `mlflow run` would migrate it
    done = subprocess.run(["mlflow", "run", str(ROOT), "-e", "experiment", "--env-manager",
                           "local", "-P", "lesson=gradient_checking", "-P", "seeds=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (pointer,) = client.search_runs(["0"])          # Default: the runner's run, a pointer
    assert pointer.data.tags["mlflow.project.entryPoint"] == "experiment"
    assert pointer.data.tags["lesson.verdict"].startswith("held")
    lesson = client.get_experiment_by_name("nn-pipeline-lesson-gradient_checking")
    runs = client.search_runs([lesson.experiment_id])
    assert len(runs) == 6 and {r.info.status for r in runs + [pointer]} == {"FINISHED"}
    assert pointer.data.tags["lesson.parent_run_id"] in {r.info.run_id for r in runs}
    assert f"#/experiments/{lesson.experiment_id}/runs/" in done.stdout
