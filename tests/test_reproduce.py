"""`python -m pipeline reproduce <run_id>`: a fresh run matches; a tampered one names the difference."""

from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from pipeline.cli import main  # noqa: E402

CONF = str(Path(__file__).resolve().parents[1] / "conf")


# One xdist worker builds this module's store once (--dist loadgroup in pyproject); split
# across two workers the module fixture was built twice.
pytestmark = pytest.mark.xdist_group("test_reproduce")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short tracked run (figures and model off: reproduce needs neither)."""
    tmp = tmp_path_factory.mktemp("repro")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        assert main(["train", "--quiet", "--conf-dir", CONF, "training.epochs=120",
                     "training.eval_every=3", "training.patience=100", "tracking.log_model=false",
                     "tracking.log_figures=false"]) == 0
        (run,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name(
            "nn-pipeline").experiment_id])
        yield uri, run.info.run_id, mp


@pytest.fixture
def store(trained_run, monkeypatch):
    uri, run_id, _ = trained_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri, run_id


def copy_run(uri, run_id, *, skip_metric=None, skip_tag=None, params=None, tags=None):
    """A copy of the run (params, tags, every metric point, config.yaml when it is an
    artifact) to tamper with; `params` / `tags` replace values in the copy."""
    client = MlflowClient(uri)
    src = client.get_run(run_id)
    new = client.create_run(src.info.experiment_id, run_name="tampered-copy")
    new_id = new.info.run_id
    p = {**src.data.params, **(params or {})}
    t = {k: v for k, v in src.data.tags.items() if k != skip_tag and not k.startswith("mlflow.")}
    t.update(tags or {})
    items = [mlflow.entities.Param(k, v) for k, v in p.items()]
    for i in range(0, len(items), 100):
        client.log_batch(new_id, params=items[i:i + 100])
    items = [mlflow.entities.RunTag(k, v) for k, v in t.items()]
    for i in range(0, len(items), 100):
        client.log_batch(new_id, tags=items[i:i + 100])
    points = []
    for key in src.data.metrics:
        if key != skip_metric:
            points += client.get_metric_history(run_id, key)
    for i in range(0, len(points), 1000):
        client.log_batch(new_id, metrics=points[i:i + 1000])
    if "config.json" not in t:      # a training run's config is an artifact, a trial's a tag
        client.log_text(new_id, mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml"),
                        "config.yaml")
    if t.get("git.dirty") == "true" and "git.diff_digest" not in t:
        client.log_text(new_id, mlflow.artifacts.load_text(f"runs:/{run_id}/git/diff.patch"),
                        "git/diff.patch")
    client.set_terminated(new_id)
    return new_id


def test_a_fresh_run_reproduces_bit_for_bit(store, capsys):
    uri, run_id = store
    code = main(["reproduce", run_id])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"run {run_id} reproduces: all" in out
    assert "metric final/dev_loss" in out and "curve dev_loss (40 points)" in out
    assert "DIFFERS" not in out
    assert "match    logged 1  now 1" in out.split("blas threads")[1]   # logged, read back
    assert "(rerun with 1 BLAS thread(s), as logged (blas.threads))" in out


def test_a_run_that_logged_no_thread_count_says_what_it_used(store, capsys):
    """Runs made before blas.threads existed: rerun with this process's count, and say so."""
    uri, run_id = store
    assert main(["reproduce", copy_run(uri, run_id, skip_tag="blas.threads")]) == 0
    out = capsys.readouterr().out
    assert "(the run logged no BLAS thread count: rerun with 1 BLAS thread(s)" in out
    assert "blas threads" not in out


def test_the_untampered_copy_also_reproduces(store, capsys):
    uri, run_id = store
    assert main(["reproduce", copy_run(uri, run_id), "--quiet"]) == 0, capsys.readouterr().out


def test_a_changed_metric_is_named(store, capsys):
    uri, run_id = store
    copy = copy_run(uri, run_id)
    client = MlflowClient(uri)
    value = client.get_run(copy).data.metrics["final/dev_loss"]
    client.log_metric(copy, "final/dev_loss", value + 1e-12, step=10**6)   # the latest value wins
    code = main(["reproduce", copy])
    out = capsys.readouterr().out
    assert code == 1
    assert "does NOT reproduce: 1 of" in out and out.rstrip().endswith("metric final/dev_loss")


def test_a_changed_param_is_named_and_a_runners_own_param_is_not(store, capsys):
    """`mlflow run -P epochs=300` logs `epochs` beside the config's params: not a config key,
    not compared. A config key's param that disagrees with config.yaml is named."""
    uri, run_id = store
    assert main(["reproduce", copy_run(uri, run_id, params={"epochs": "300"}), "--quiet"]) == 0
    capsys.readouterr()
    copy = copy_run(uri, run_id, params={"training.learning_rate": "0.5"})
    assert main(["reproduce", copy, "--quiet"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("checks differ: param training.learning_rate")


def test_a_changed_data_digest_is_named(store, capsys):
    uri, run_id = store
    copy = copy_run(uri, run_id)
    MlflowClient(uri).set_tag(copy, "data.digest.dev", "0000000000000000")
    assert main(["reproduce", copy, "--quiet"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("checks differ: data digest dev")


def test_a_changed_commit_is_named(store, capsys):
    uri, run_id = store
    copy = copy_run(uri, run_id)
    MlflowClient(uri).set_tag(copy, "git.commit", "0" * 40)
    assert main(["reproduce", copy, "--quiet"]) == 1
    assert "checks differ: git commit" in capsys.readouterr().out


def test_an_unknown_run_exits_2_with_one_line(store, capsys):
    assert main(["reproduce", "0123456789abcdef0123456789abcdef"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run 0123456789abcdef0123456789abcdef cannot be reproduced")
    assert err.count("\n") == 1


def _all_runs(uri):
    client = MlflowClient(uri)
    return {r.info.run_id for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()])}


def test_plain_reproduce_creates_no_run_and_writes_nothing(store, tmp_path, monkeypatch, capsys):
    uri, run_id = store
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    before = _all_runs(uri)
    assert main(["reproduce", run_id, "--quiet"]) == 0
    assert capsys.readouterr().out.startswith(f"run {run_id} reproduces: all ")
    assert _all_runs(uri) == before
    assert list(tmp_path.iterdir()) == []


def test_under_mlflow_run_the_runners_run_records_the_check(store, monkeypatch, capsys):
    """`mlflow run -e reproduce` creates a run and exports MLFLOW_RUN_ID before the command
    starts (here created the same way, with the client); the check is recorded in it."""
    uri, run_id = store
    client = MlflowClient(uri)
    copy = copy_run(uri, run_id)
    client.set_tag(copy, "data.digest.dev", "0000000000000000")
    runner = client.create_run(client.get_run(run_id).info.experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", runner)
    before = _all_runs(uri)
    assert main(["reproduce", copy]) == 1
    capsys.readouterr()
    assert _all_runs(uri) == before                       # no run besides the runner's
    run = client.get_run(runner)
    assert run.info.run_name == f"reproduce-{copy[:8]}"
    tags = run.data.tags
    assert (tags["reproduce.of"], tags["reproduce.match"], tags["reproduce.differs"]) == (
        copy, "false", "data digest dev")
    assert tags["mlflow.note.content"].startswith(f"Reproduction check of run {copy}: does NOT")
    report = mlflow.artifacts.load_text(f"runs:/{runner}/reproduce/report.txt")
    assert "data digest dev" in report and "DIFFERS" in report
    assert report.rstrip().endswith("checks differ: data digest dev")
