"""Trial child runs reproduce bit for bit, under the BLAS thread count they logged.

The search runs as a real subprocess (`python -m pipeline search`) with no BLAS variable in its
environment, so what the trials log is what the command line chose (pipeline/threads.py)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from pipeline import threads  # noqa: E402
from pipeline.cli import main  # noqa: E402
from pipeline.tracking.reproducible import PACKED, pack_config, unpack_config  # noqa: E402
from test_reproduce import copy_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TWO_CORES = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for 2 threads")


def _env(**blas):
    env = {k: v for k, v in os.environ.items() if k not in threads.ENV_KEYS}
    env.update(blas, PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    return env


def _write_table(path: Path, scale: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 2))
    pd.DataFrame({"a": X[:, 0] * scale, "b": X[:, 1],
                  "y": (X[:, 0] + X[:, 1] > 0).astype(int)}).to_csv(path, index=False)


# One xdist worker builds this module's store once (--dist loadgroup in pyproject); split
# across two workers the module fixture was built twice.
pytestmark = pytest.mark.xdist_group("test_reproduce_trials")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Five trials of a search on a CSV table, made by a subprocess: the median pruner, from
    the third trial on, prunes some (seeded sampler: 2 COMPLETE, 3 PRUNED)."""
    tmp = tmp_path_factory.mktemp("trials")
    _write_table(tmp / "t.csv")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "pipeline", "search", "n_trials=5", "data.name=table",
           f"data.path={tmp / 't.csv'}", "data.label=y", "model.hidden=[20,3]",
           "training.epochs=60", "training.eval_every=5", "training.patience=4",
           f"search.storage={tmp / 'study.journal'}", "search.study=tab",
           "search.trial_figures=none", "search.pruner.name=median",
           "search.pruner.n_startup_trials=2",
           "search.pruner.n_warmup_steps=0", "--quiet",
           "--conf-dir", str(ROOT / "conf")]
    proc = subprocess.run(cmd, cwd=tmp, env=_env(MLFLOW_TRACKING_URI=uri), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(uri)
    trials = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                filter_string="tags.stage = 'search_trial'")
    states = {r.info.run_id: r.data.tags["optuna.state"] for r in trials}
    complete = sorted(k for k, v in states.items() if v == "COMPLETE")
    pruned = sorted(k for k, v in states.items() if v == "PRUNED")
    assert len(complete) >= 2 and pruned, states
    return uri, tmp, complete, pruned


@pytest.fixture
def store(study, monkeypatch):
    uri, tmp, complete, pruned = study
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    return uri, tmp, complete + complete[:1], pruned   # 3 COMPLETE ids (two distinct)


def test_every_trial_records_config_digests_code_and_threads_without_artifacts(store):
    from pipeline.config import config_from_yaml

    uri, tmp, trials, pruned = store
    client = MlflowClient(uri)
    for run_id in trials + pruned:
        tags = client.get_run(run_id).data.tags
        assert tags["blas.threads"] == "1"                # the CLI's default, read back
        assert tags["blas.library"].startswith(("openblas", "mkl", "blis"))
        cfg = config_from_yaml(unpack_config(tags["config.json"]))
        assert cfg.data.path == str(tmp / "t.csv") and cfg.training.epochs == 60
        assert len(tags["data.digest.train"]) == 16 and len(tags["data.digest.dev"]) == 16
        assert "data.digest.test" not in tags              # a trial never holds the test split
        assert tags["git.dirty"] in ("true", "false") and len(tags["git.commit"]) == 40
        assert client.list_artifacts(run_id) == []          # tags only: no upload per trial


@TWO_CORES
def test_a_trial_reproduces_bit_for_bit_with_its_logged_thread_count(store, capsys):
    uri, _, trials, _ = store
    with threads.limit(2):                       # this process would use 2; the trial logged 1
        code = main(["reproduce", trials[0]])
        assert threads.in_effect() == 2          # the logged count applied only for the rerun
    out = capsys.readouterr().out
    assert code == 0, out
    assert "blas threads" in out and "match    logged 1  now 1" in out.split("blas threads")[1]
    assert "(rerun with 1 BLAS thread(s), as logged (blas.threads))" in out
    points = MlflowClient(uri).get_metric_history(trials[0], "curves/dev_loss")
    assert len(points) >= 5 and "metric objective" in out and "DIFFERS" not in out
    assert f"curve dev_loss ({len(points)} points) " in out
    assert out.rstrip().endswith("checks match bit for bit")


@TWO_CORES
def test_a_logged_count_of_two_is_the_count_reproduce_uses(store, capsys):
    uri, _, trials, _ = store
    copy = copy_run(uri, trials[1], tags={"blas.threads": "2"})
    main(["reproduce", copy])
    out = capsys.readouterr().out
    assert "(rerun with 2 BLAS thread(s), as logged (blas.threads))" in out
    assert "match    logged 2  now 2" in out.split("blas threads")[1]


def test_a_tampered_trial_param_is_named(store, capsys):
    uri, _, trials, _ = store
    copy = copy_run(uri, trials[1], params={"regularization.l2": "123.0"})
    assert main(["reproduce", copy, "--quiet"]) == 1
    verdict = capsys.readouterr().out.rstrip()
    assert " does NOT reproduce: 1 of " in verdict
    assert verdict.endswith(" checks differ: param regularization.l2")


def test_changed_data_is_named_and_changes_the_numbers(store, capsys):
    uri, tmp, trials, _ = store
    _write_table(tmp / "t.csv", scale=1.0 + 1e-9)          # every row, so every split
    try:
        assert main(["reproduce", trials[2], "--quiet"]) == 1
    finally:
        _write_table(tmp / "t.csv")
    verdict = capsys.readouterr().out.rstrip()
    assert (f"checks differ: data digest train, data digest dev, file digest data.path "
            f"({tmp / 't.csv'}), metric final/train_loss") in verdict
    assert main(["reproduce", trials[2], "--quiet"]) == 0   # the data back: matches again


def test_a_pruned_trial_reproduces_its_curves_up_to_the_pruning_epoch(store, capsys):
    uri, _, _, pruned = store
    run_id = pruned[0]
    points = MlflowClient(uri).get_metric_history(run_id, "curves/dev_loss")
    last = max(p.step for p in points)
    assert main(["reproduce", run_id]) == 0
    out = capsys.readouterr().out
    assert f"(a PRUNED trial (at epoch {last}): it has no final numbers" in out
    assert f"curve dev_loss ({len(points)} points) " in out and "metric " not in out
    assert out.rstrip().endswith("checks match bit for bit")


def test_a_failed_trial_is_refused_in_one_line(store, capsys):
    uri, _, trials, _ = store
    copy = copy_run(uri, trials[0], tags={"optuna.state": "FAIL"})
    assert main(["reproduce", copy]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "of study tab, which ended FAIL: it has no numbers" in err


def test_a_long_config_is_packed_in_its_tag_and_read_back():
    text = "".join(f"key_{i}: {i * 7919 % 1000}\n" for i in range(900))   # ~11 kB
    packed = pack_config(text)
    assert len(text) > 8000 >= len(packed) and packed.startswith(PACKED)
    assert unpack_config(packed) == text and pack_config("a: 1\n") == "a: 1\n"
    noise = np.random.default_rng(0).bytes(12000).hex()       # incompressible
    assert pack_config(noise).startswith("not recorded: 24000 characters")


def test_the_chosen_count_and_what_export_sets():
    assert threads.chosen({}) == 1
    assert threads.chosen({"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2"}) == 3
    assert threads.chosen({"OPENBLAS_NUM_THREADS": "0", "MKL_NUM_THREADS": "x"}) == 1
    env = {"OMP_NUM_THREADS": "2"}
    assert threads.export(env) == 2
    assert env == {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


@pytest.mark.slow
@TWO_CORES
def test_a_two_thread_training_logs_two_and_reproduces_under_two(tmp_path, monkeypatch, capsys):
    """OMP_NUM_THREADS=2 alone (OpenBLAS reads its own variable first): the CLI sets all three,
    the run logs 2, and reproduce in this 1-thread test process reruns with 2."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "pipeline", "train", "--quiet", "--conf-dir", str(ROOT / "conf"),
           "training.epochs=120", "tracking.log_model=false", "tracking.log_figures=false"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(MLFLOW_TRACKING_URI=uri,
                                                      OMP_NUM_THREADS="2"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("nn-pipeline").experiment_id])
    assert run.data.tags["blas.threads"] == "2"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    assert threads.in_effect() == 1
    code = main(["reproduce", run.info.run_id])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "match    logged 2  now 2" in out.split("blas threads")[1]


@TWO_CORES
def test_lesson_jobs_run_and_record_the_chosen_count_in_a_notebook_process():
    """A notebook has numpy loaded with the machine's threads (2 here): the runner applies the
    chosen count (1) to each job with threadpoolctl, records it, and gives the 2 back."""
    from pipeline.lessons import parse_lesson, plan
    from pipeline.lessons.runner import run_jobs

    tiny = parse_lesson("title: t\nbase: {data.params: {n_samples: 60}, training.epochs: 5}\n"
                        "arms: {a: {}}\nclaim: {text: c, checks: [{metric: dev_accuracy, "
                        "arm: a, at_least: 0.0}]}\n", "tiny")
    with threads.limit(2):
        runs = run_jobs(plan(tiny, seeds=2, conf_dir=ROOT / "conf"), workers=1)
        assert threads.in_effect() == 2
    assert [r.blas_threads for r in runs] == [1, 1]
