"""`python -m pipeline train`: console report, exit codes, no run for a bad config, SIGTERM."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlflow
from mlflow.tracking import MlflowClient  # noqa: E402

from pipeline.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")


@pytest.fixture
def workdir(tmp_path, monkeypatch, tracking_uri):
    monkeypatch.chdir(tmp_path)                 # artifacts (./mlruns) stay in the temp dir
    mlflow.set_tracking_uri(tracking_uri)
    return tmp_path


def runs_in(uri):
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def test_train_prints_the_run_and_records_it(workdir, tracking_uri, capsys):
    code = main(["train", "--quiet", "--conf-dir", CONF, f"tracking.uri={tracking_uri}",
                 "training.epochs=100", "training.eval_every=5"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "figures..." not in err and "curve points" not in err   # --quiet: no status lines
    (run,) = runs_in(tracking_uri)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert f"run {run_id} finished" in out
    m = run.data.metrics
    assert f"train: loss {m['final/train_loss']:.4f}  accuracy {m['final/train_accuracy']:.2%}" in out
    assert f"dev:   loss {m['final/dev_loss']:.4f}  accuracy {m['final/dev_accuracy']:.2%}" in out
    assert f"diagnosis: {run.data.tags['diagnosis.verdict']}" in out
    assert "next step: " in out
    assert f"model: the parameters of epoch {int(m['final/best_epoch'])}" in out
    assert f"#/experiments/{run.info.experiment_id}/runs" in out
    assert len(MlflowClient(tracking_uri).get_metric_history(run_id, "curves/dev_loss")) == 20


# One xdist worker builds this module's store once (--dist loadgroup in pyproject); split
# across two workers the module fixture was built twice.
pytestmark = pytest.mark.xdist_group("test_train_command")


@pytest.fixture(scope="module")
def existing_store(tmp_path_factory, new_store):
    """A store whose experiment already exists, so "no run created" is a real count."""
    tmp = tmp_path_factory.mktemp("existing")
    uri = new_store(f"sqlite:///{tmp / 'mlflow.db'}")
    MlflowClient(uri).create_experiment("nn-pipeline")
    return uri


def test_after_the_bar_each_post_training_step_is_announced_on_stderr(workdir, tracking_uri,
                                                                     capsys):
    # 100 epochs, eval every 5: 20 evaluations x 17 series, all still buffered (10 s flush)
    assert main(["train", "--conf-dir", CONF, f"tracking.uri={tracking_uri}", "training.epochs=100",
                 "training.eval_every=5", "tracking.log_model=false"]) == 0
    out, err = capsys.readouterr()
    (run,) = runs_in(tracking_uri)
    series = len(run.data.metrics) - len([k for k in run.data.metrics
                                          if k.startswith("final")])
    lines = [line for line in err.splitlines() if line.endswith("...") and "INFO" not in line]
    assert lines == [f"writing {20 * series} curve points...",
                     "recording config, tags, source and data lineage...",
                     "drawing figures...", "saving 4 figures to the run..."]
    assert "..." not in out                          # status goes to stderr, the report to stdout


@pytest.mark.parametrize("args, message", [
    (["regularization.keep_prob=1.5"], "error: regularization.keep_prob must be in (0, 1], got 1.5"),
    (["model.depth=3"], "error: unknown key model.depth; valid keys of model:"),
    (["data.params.radius=2"], "error: data set 'noisy_diagonal' has no parameter 'radius'"),
    (["--preset", "nope"], "error: preset must be one of"),
])
def test_bad_config_exits_2_with_one_line_and_creates_no_run(existing_store, tmp_path, monkeypatch,
                                                             capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--quiet", "--conf-dir", CONF, f"tracking.uri={existing_store}", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1
    assert runs_in(existing_store) == []


def _wait_for_running(uri, timeout=120):
    deadline = time.monotonic() + timeout
    db = Path(uri.removeprefix("sqlite:///"))
    while time.monotonic() < deadline:
        if not db.exists():  # the command creates the store: opening it here would race it
            time.sleep(0.3)
            continue
        try:
            runs = runs_in(uri)
        except Exception:                        # the DB is still being created
            runs = []
        if runs and runs[0].info.status == "RUNNING":
            return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("no RUNNING run appeared")


@pytest.mark.slow
def test_sigterm_mid_run_ends_the_run_killed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items()          # set_experiment exports these
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "train", "--quiet", "--conf-dir", CONF,
         "training.epochs=10000000", "training.patience=null", "training.eval_every=1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = _wait_for_running(uri)
        time.sleep(3.0)                           # mid-training (evaluated every epoch)
        proc.send_signal(subprocess.signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate()
    assert proc.returncode == 143, err
    assert f"terminated (SIGTERM): run {run_id} ended KILLED" in err
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "KILLED"
    # the curves evaluated before the signal were flushed
    assert len(MlflowClient(uri).get_metric_history(run_id, "curves/dev_loss")) > 0
