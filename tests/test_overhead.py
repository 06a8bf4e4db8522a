"""Issue 12: the evaluation cadence, bounded curves, lazy imports."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.config.sections import eval_cadence
from pipeline.curve_points import CurvePoints, curve_stride
from pipeline.tracking.records import history_metrics

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("epochs, every", [(1, 1), (199, 1), (200, 1), (400, 2), (2000, 10),
                                           (20_000, 100), (20_199, 100)])
def test_auto_cadence_gives_200_to_399_evaluations_or_one_per_epoch(epochs, every):
    assert eval_cadence("auto", epochs) == every
    n = -(-epochs // every)
    assert n == epochs if epochs < 200 else 200 <= n < 400


def test_an_explicit_cadence_is_kept_and_bad_ones_name_the_key():
    assert eval_cadence(3, 2000) == 3
    assert load_config(["training.eval_every=7"], conf_dir=CONF).training.eval_every == 7
    with pytest.raises(ValueError, match="training.eval_every must be a positive integer or "
                                         "'auto', got 0"):
        load_config(["training.eval_every=0"], conf_dir=CONF)


def test_curves_hold_at_most_about_1000_points_keeping_the_last_and_the_best():
    assert curve_stride(2000, 10) == 1 and curve_stride(20_000, 1) == 20
    keep = CurvePoints(20, 20).kept(list(range(1, 20_001)), best_epoch=4568)
    assert len(keep) == 1002 and keep[0] == 0 and 19_999 in keep and 4567 in keep
    history = {"epoch": list(range(1, 20_001)), "dev_loss": [1.0 / e for e in range(1, 20_001)]}
    points = history_metrics(history, CurvePoints(20, 20), best_epoch=4568)
    assert len(points) == 1002 and {p.step for p in points} >= {1, 4568, 20_000}


def test_the_core_and_a_config_error_import_neither_sklearn_nor_pandas_nor_mlflow():
    code = ("import sys; from pipeline.config import load_config; from pipeline import stages; "
            f"cfg = load_config(['training.epochs=20'], conf_dir={str(CONF)!r}); "
            "stages.train(cfg, stages.prepare(cfg)); "
            "print(sorted(m for m in ('sklearn', 'pandas', 'mlflow', 'optuna', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_new_sqlite_store_is_a_copy_of_the_template_with_its_own_default_experiment(
        tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pipeline.tracking.store import seed_store, sqlite_path

    monkeypatch.setenv("NN_PIPELINE_CACHE", str(tmp_path / "cache"))
    assert sqlite_path("postgresql://db") is None and sqlite_path("sqlite:///:memory:") is None
    for name in ("a", "b"):                       # "a" builds the template, "b" copies it
        (tmp_path / name).mkdir()
        uri = f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        assert seed_store(uri) is True
        assert seed_store(uri) is False           # it exists now: never overwritten
        monkeypatch.chdir(tmp_path / name)
        client = MlflowClient(uri)
        assert client.get_experiment("0").artifact_location == str(tmp_path / name / "mlruns" / "0")
        run = client.create_run(client.create_experiment("x"))
        client.log_metric(run.info.run_id, "m", 1.0)
        assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert [p.name for p in (tmp_path / "cache").iterdir()][0].endswith("-store.db")


def test_one_log_batch_call_beyond_mlflows_limits_stores_everything(tmp_path, monkeypatch):
    # The child run's writes are ONE client.log_batch; MLflow's client splits it by its own
    # limits (1000 entities, 100 params/tags per request), so we keep no chunking of our own.
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("x")).info.run_id
    metrics = [Metric("dev_loss", float(i), 0, i) for i in range(1500)]
    params = [Param(f"p{i}", str(i)) for i in range(120)]
    tags = [RunTag(f"t{i}", str(i)) for i in range(130)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    data = client.get_run(run_id).data
    assert len(data.params) == 120 and data.tags["t129"] == "129"
    history = client.get_metric_history(run_id, "dev_loss")
    assert sorted(m.step for m in history) == list(range(1500))

def test_diagnostic_series_keep_about_100_points_on_evaluations_the_curves_keep():
    from types import SimpleNamespace

    from pipeline.curve_points import DIAGNOSTIC
    from pipeline.tracking.records import MetricBuffer

    def diagnostic_stride(epochs, eval_every):
        settings = SimpleNamespace(epochs=epochs, eval_every=eval_every)
        return CurvePoints.of_training(settings).diagnostic_stride

    assert diagnostic_stride(2000, 10) == 2                  # 200 evaluations -> every 2nd
    assert diagnostic_stride(20_000, 1) == 200               # curve stride 20 -> a multiple of it
    assert diagnostic_stride(300, 1) == 3 and diagnostic_stride(100, 1) == 1
    n = 200
    history = {"epoch": [10 * (i + 1) for i in range(n)], "dev_loss": [1.0] * n,
               "grad_norm_W1": [2.0] * n, "act_mean_1": [3.0] * n}
    points = history_metrics(history, CurvePoints(1, 2), best_epoch=1020)
    steps = {k: sorted(p.step for p in points if p.key == k)
             for k in ("curves/dev_loss", "gradients/norm_W1", "hidden/act_mean_1")}
    assert len(steps["curves/dev_loss"]) == 200
    # every 2nd evaluation (epochs 10, 30, ...), plus the best (1020) and the last (2000)
    assert steps["gradients/norm_W1"] == steps["hidden/act_mean_1"]
    assert len(steps["gradients/norm_W1"]) == 102
    assert {10, 30, 1020, 2000} <= set(steps["gradients/norm_W1"])
    assert 20 not in steps["gradients/norm_W1"]

    # the live buffer logs the same points as history_metrics (MetricBuffer never writes here:
    # its client is only called on flush, which this test replaces)
    buffer = MetricBuffer("run", CurvePoints(1, 2), client=object())
    buffer.flush = lambda: None
    for i, epoch in enumerate(history["epoch"]):
        buffer(epoch, {k: v[i] for k, v in history.items() if k != "epoch"})
    buffer.finish(history, best_epoch=1020)
    live = sorted((p.key, p.step) for p in buffer.points)
    assert live == sorted((p.key, p.step) for p in points)
    assert all(k.startswith(DIAGNOSTIC) for k in ("grad_norm_W1", "act_std_3"))


def test_a_trials_curves_keep_every_kth_evaluation_the_last_and_the_reported_steps():
    from types import SimpleNamespace

    from pipeline.tracking.search_runs import _Trial

    plan = CurvePoints.of_trial(SimpleNamespace(epochs=2000, eval_every=10))
    assert (plan.stride, plan.keep_best) == (2, False)            # 200 evaluations -> 100 + ...
    trial = _Trial(0, {}, "dev_loss", [], plan)
    for epoch in range(10, 2001, 10):                             # 200 evaluations
        trial.evaluations.append((epoch, {"dev_error": 0.1, "dev_loss": 0.2}))
    reported = [110, 120, 130]                                    # what Optuna was told
    points = trial.curve_points(reported)
    steps = sorted({p.step for p in points})
    assert len(points) == 2 * len(steps)
    assert len(steps) == 102                                      # 10, 30, ..., 1990 + 120 + 2000
    assert {10, 30, 1990, 2000, 110, 120, 130} <= set(steps) and 20 not in steps


def test_a_tracked_run_does_not_import_ipython_and_records_its_model(tmp_path):
    # MLflow imports IPython (0.3-2.4 s) only to learn that it is not running inside it
    code = ("import sys\nfrom pipeline.cli import main\n"
            "rc = main(['train', '--quiet', '--conf-dir', sys.argv[1], 'training.epochs=20',"
            " 'tracking.log_figures=false'])\n"
            "print(rc, 'IPython' in sys.modules, sys.modules.get('IPython', 0) is None)\n"
            "from pipeline.tracking.runs import without_ipython_probe\n"
            "with without_ipython_probe():\n"
            "    try:\n        import IPython\n    except ImportError:\n        print('refused')\n"
            "print('IPython' in sys.modules)\n")
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    out = subprocess.run([sys.executable, "-c", code, str(CONF)], capture_output=True,
                         text=True, check=True, cwd=tmp_path, env=env).stdout.splitlines()
    assert out[-3:] == ["0 False False", "refused", "False"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("nn-pipeline").experiment_id])
    assert run.info.status == "FINISHED" and len(run.outputs.model_outputs) == 1
    assert "mlflow.source.name" in run.data.tags           # the run-context tags still resolved


def test_reproduce_compares_a_thinned_trial_curve_at_its_logged_steps():
    from pipeline import stages
    from pipeline.commands.reproduce import CURVES, metric_checks

    cfg = load_config(["model.hidden=[5]", "training.epochs=300", "training.eval_every=1"],
                      conf_dir=CONF)
    trained = stages.train(cfg, stages.prepare(cfg))
    history = trained.fit.history
    assert curve_stride(300, 1, 100) == 3
    steps = sorted(set(history["epoch"][::3]) | {history["epoch"][-1], 151})  # + a reported step
    logged = {"metrics": {}, "tags": {},
              "curves": {k: [history[k][e - 1] for e in steps] for k in CURVES},
              "steps": {k: steps for k in CURVES}}
    rows = [r for r in metric_checks(logged, trained, CurvePoints(keep_best=False), trial=True)
            if r[0].startswith("curve")]
    assert len(rows) == len(CURVES) and all(a == b == "identical" for _, a, b in rows)
    assert all(f"({len(steps)} points)" in what for what, _, _ in rows)
    logged["curves"]["dev_loss"][5] += 1e-9                    # one logged point off: caught
    rows = dict((w.split(" (")[0], (a, b)) for w, a, b in metric_checks(logged, trained,
                                                                         trial=True))
    assert rows["curve dev_loss"][0] != rows["curve dev_loss"][1]
