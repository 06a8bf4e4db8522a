"""The tracking edge against a real SQLite store: statuses, batches, what a run records, the model."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow
from mlflow.tracking import MlflowClient  # noqa: E402

from pipeline import stages, tracking  # noqa: E402
from pipeline.tracking import ui  # noqa: E402
from pipeline.config import config_from_yaml, load_config  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"


# One xdist worker builds this module's store once (--dist loadgroup in pyproject); split
# across two workers the module fixture was built twice.
pytestmark = pytest.mark.xdist_group("test_tracking")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store per module (creating one costs seconds); artifacts land next to it."""
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = load_config([f"tracking.uri={uri}", "tracking.experiment=t", "training.epochs=60",
                           "training.eval_every=3"], conf_dir=CONF)
        yield cfg, tracking.configure(cfg.tracking)
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(autouse=True)
def _uri(store):
    mlflow.set_tracking_uri(store[0].tracking.uri)     # other modules may have pointed elsewhere


def status(run_id):
    return MlflowClient().get_run(run_id).info.status


def test_configure_creates_the_experiment_as_a_training_experiment(store):
    cfg, experiment_id = store
    exp = MlflowClient().get_experiment(experiment_id)
    assert exp.name == "t"
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert tracking.configure(cfg.tracking) == experiment_id          # idempotent
    view = json.loads(exp.tags[ui.VIEW_TAG])             # the columns a link opens with
    assert "params.`regularization.l2`" in view["selectedColumns"]
    assert view["selectedColumns"][0] == "metrics.`final/dev_accuracy`"
    assert exp.tags[ui.NOTE].startswith("**t**: a neural network written in NumPy")
    links = tracking.ui_links("http://127.0.0.1:5000/", experiment_id, "abc")
    base = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs"
    assert links == {"runs": f"{base}?workflowType=machine_learning&viewStateShareKey=nn-pipeline",
                     "run": f"{base}/abc?workflowType=machine_learning"}


def test_an_edited_experiment_description_is_kept(store):
    cfg, experiment_id = store
    client = MlflowClient()
    client.set_experiment_tag(experiment_id, ui.NOTE, "my own words")
    tracking.configure(cfg.tracking)
    assert client.get_experiment(experiment_id).tags[ui.NOTE] == "my own words"
    client.delete_experiment_tag(experiment_id, ui.NOTE)
    tracking.configure(cfg.tracking)                      # a missing one is written again
    assert client.get_experiment(experiment_id).tags[ui.NOTE].startswith("**t**")


def test_statuses_are_honest(store):
    with tracking.run("ok") as ok:
        pass
    assert status(ok.info.run_id) == "FINISHED"
    with pytest.raises(ZeroDivisionError):
        with tracking.run("boom") as boom:
            1 / 0
    assert status(boom.info.run_id) == "FAILED"
    with pytest.raises(KeyboardInterrupt):
        with tracking.run("ctrl-c") as stopped:
            raise KeyboardInterrupt
    assert status(stopped.info.run_id) == "KILLED"


def test_a_stop_ends_the_run_killed_and_one_requested_before_creates_no_run(store):
    from pipeline.stop import Stop, Stopped

    stop = Stop()
    with pytest.raises(Stopped):
        with tracking.run("term", stop=stop) as term:
            stop.request("received SIGTERM")   # during the run's last writes: checked at the end
    assert status(term.info.run_id) == "KILLED"
    assert mlflow.active_run() is None
    client = mlflow.tracking.MlflowClient()
    before = len(client.search_runs([term.info.experiment_id]))
    with pytest.raises(Stopped):
        with tracking.run("never", stop=stop):
            pass
    assert len(client.search_runs([term.info.experiment_id])) == before


def test_metric_buffer_logs_everything_in_batches(store):
    with tracking.run("buffer") as active:
        run_id = active.info.run_id
        buffer = tracking.MetricBuffer(run_id)
        for epoch in range(1, 301):                  # 300 evaluations x 5 metrics = 1500 points
            buffer(epoch, {f"m{i}": epoch * 0.5 + i for i in range(5)})
        assert buffer.n_logged == 0                  # nothing written during the loop
        buffer.flush()
    assert buffer.n_logged == 1500
    history = MlflowClient().get_metric_history(run_id, "m3")
    assert len(history) == 300
    assert sorted((m.step, m.value) for m in history)[-1] == (300, 153.0)


@pytest.fixture(scope="module")
def logged(store):
    """One fully logged short run shared by the read-back tests (logging costs seconds)."""
    cfg = store[0]
    mlflow.set_tracking_uri(cfg.tracking.uri)
    prepared = stages.prepare(cfg)
    with tracking.run("logged") as active:
        run_id = active.info.run_id
        trained = stages.train(cfg, prepared)
        tracking.log_training(run_id, cfg, prepared, trained)
    return cfg, prepared, trained, run_id


def test_a_run_records_params_config_tags_and_metrics(logged):
    cfg, prepared, trained, run_id = logged
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == cfg.flat()
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    assert config_from_yaml(text) == cfg
    tags = run.data.tags
    assert tags["data.digest.train"] == prepared.digests["train"]
    assert tags["data.digest.test"] == prepared.digests["test"]
    assert tags["diagnosis.verdict"] == trained.diagnosis.verdict
    assert tags["stop_reason"] == trained.fit.stop_reason
    assert len(tags["git.commit"]) == 40 and tags["git.dirty"] in ("true", "false")
    assert tags["version.numpy"] == np.__version__ and tags["version.mlflow"] == mlflow.__version__
    # curves/ first on the run page, then final/, gradients/, hidden/ (records.metric_name)
    assert len(client.get_metric_history(run_id, "curves/dev_loss")) == 20    # 60 / 3 evaluations
    assert len(client.get_metric_history(run_id, "gradients/norm_W2")) == 20
    assert len(client.get_metric_history(run_id, "hidden/act_mean_1")) == 20
    assert not {"dev_loss", "grad_norm_W2", "act_mean_1"} & set(run.data.metrics)
    assert run.data.metrics["final/dev_accuracy"] == trained.metrics["dev_accuracy"]
    assert run.data.metrics["final/best_epoch"] == trained.fit.best_epoch
    note = tags[ui.NOTE]                                  # the run's description: knobs + result
    hidden, r = "x".join(map(str, cfg.model.hidden)), cfg.regularization
    assert note.startswith(f"**{cfg.data.name}**, hidden {hidden} {cfg.model.activation}, init "
                           f"{cfg.model.init}, L2 {r.l2:g}, keep_prob {r.keep_prob:g}")
    assert f"**dev accuracy {trained.metrics['dev_accuracy']:.1%}**" in note
    assert f"Diagnosis: **{trained.diagnosis.verdict}**" in note


def test_dataset_inputs_are_train_and_dev_only(logged):
    _, prepared, _, run_id = logged
    inputs = MlflowClient().get_run(run_id).inputs.dataset_inputs
    found = {d.dataset.name: (d.dataset.digest, {t.key: t.value for t in d.tags}) for d in inputs}
    assert found == {
        "noisy_diagonal-train": (prepared.digests["train"], {"mlflow.data.context": "training"}),
        "noisy_diagonal-dev": (prepared.digests["dev"], {"mlflow.data.context": "validation"}),
    }


def test_figures_are_logged_as_png(logged):
    run_id = logged[3]
    paths = sorted(a.path for a in MlflowClient().list_artifacts(run_id, "plots"))
    assert paths == ["plots/boundary_dev.png", "plots/boundary_train.png",
                     "plots/gradient_norms.png", "plots/learning_curves.png"]


def test_pyfunc_predicts_raw_inputs_like_the_pipeline(logged):
    _, prepared, trained, run_id = logged
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    X = prepared.raw_dev.X                                             # raw, unstandardized
    expected = [int(c) for c in np.asarray(prepared.classes)[trained.model.predict(X)]]
    got = model.predict(pd.DataFrame(X, columns=list(prepared.feature_names)))
    assert got.dtype == np.int64 and list(got) == expected    # integer classes come back as ints
    proba = model.predict(pd.DataFrame(X[:4], columns=["x1", "x2"]), params={"proba": True})
    assert list(proba.columns) == ["label", "proba_0", "proba_1"]
    p1 = trained.model.predict_proba(X[:4])[:, 0]                     # the core's P(class 1)
    np.testing.assert_array_equal(proba["proba_1"], p1)
    np.testing.assert_array_equal(proba["proba_0"], 1.0 - p1)
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == ["x1", "x2"]
    with pytest.raises(Exception, match="x2"):
        model.predict(pd.DataFrame({"x1": [0.5]}))


def _log_model_with(store, activation):
    """A short run of `activation`, its model logged; (prepared, trained, model URI)."""
    from pipeline.tracking.model import log_model

    cfg = load_config([f"tracking.uri={store[0].tracking.uri}", "tracking.experiment=t",
                       "training.epochs=6", "training.eval_every=3",
                       f"model.activation={activation}"], conf_dir=CONF)
    prepared = stages.prepare(cfg)
    trained = stages.train(cfg, prepared)
    with tracking.run(f"served-{activation}") as active:
        log_model(active.info.run_id, prepared, trained)
    return prepared, trained, f"runs:/{active.info.run_id}/model"


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
def test_served_model_runs_the_core_and_agrees_with_the_oracle(store, activation):
    # served == core exactly (one forward), and both == the independent oracle, so a wrong
    # tanh or leaky relu in the shared forward fails here too
    from oracle import forward as o_forward

    prepared, trained, uri = _log_model_with(store, activation)
    X = prepared.raw_dev.X
    got = mlflow.pyfunc.load_model(uri).predict(
        pd.DataFrame(X, columns=list(prepared.feature_names)), params={"proba": True})
    core = trained.model.predict_proba(X)[:, 0]
    np.testing.assert_array_equal(got["proba_1"], core)
    oracle, _ = o_forward(trained.model.network.params, prepared.standardizer.transform(X),
                          activation)
    np.testing.assert_allclose(got["proba_1"], oracle[:, 0], rtol=1e-10, atol=1e-12)
    assert list(got["label"]) == [int(c) for c in np.asarray(prepared.classes)[trained.model.predict(X)]]


def _download(uri, dest):
    return Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(dest)))


def test_served_model_logs_its_code_and_refuses_a_digest_mismatch(logged, tmp_path):
    from pipeline.nn import source_digest

    local = _download(f"runs:/{logged[3]}/model", tmp_path)
    code = local / "code" / "pipeline"
    assert (code / "nn" / "layers.py").read_bytes() == (
        Path(__file__).resolve().parents[1] / "pipeline" / "nn" / "layers.py").read_bytes()
    assert not (code / "tracking").exists()                 # only what the loader imports
    meta_path = next(local.rglob("network.json"))
    meta = json.loads(meta_path.read_text())
    assert meta["code_digest"] == source_digest(code) == source_digest()
    assert not any(p.suffix in (".pkl", ".pickle") for p in local.rglob("*"))
    meta_path.write_text(json.dumps({**meta, "code_digest": "0" * 64}))
    with pytest.raises(Exception, match="does not match the code logged"):
        mlflow.pyfunc.load_model(str(local))


@pytest.mark.slow
def test_a_fresh_process_imports_the_logged_code_and_refuses_edited_code(logged, tmp_path):
    import subprocess
    import sys

    local = _download(f"runs:/{logged[3]}/model", tmp_path)
    probe = ("import sys, mlflow; m = mlflow.pyfunc.load_model(sys.argv[1]); "
             "import pipeline.nn; print(pipeline.nn.__file__)")
    run = lambda: subprocess.run([sys.executable, "-c", probe, str(local)],  # noqa: E731
                                 capture_output=True, text=True, timeout=300, cwd=tmp_path)
    done = run()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith(str(local / "code" / "pipeline"))
    edited = local / "code" / "pipeline" / "nn" / "activations.py"
    edited.write_text(edited.read_text().replace("LEAKY_SLOPE = 0.01", "LEAKY_SLOPE = 0.02"))
    done = run()
    assert done.returncode != 0 and "does not match the code logged" in done.stderr


def test_git_state_outside_a_repository(tmp_path):
    assert tracking.git_state(tmp_path) is None
