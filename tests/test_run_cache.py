"""The run cache: its key misses on any change that can move a number and hits on a
tracking-only change; a reuse returns the fresh result bit for bit; a damaged record, --no-cache
and tracking.cache false train afresh; searches never look. Real SQLite stores under tmp_path.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import cache_key as K, cached, stages
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.lessons import load_lesson, run_lesson

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = ["data.params={n_samples: 200}", "model.hidden=[8]", "training.epochs=40",
        "tracking.log_model=false", "tracking.log_figures=false"]


def key(overrides=(), threads=1, digests=None):
    cfg = load_config([*TINY, *overrides], conf_dir=CONF)
    digests = digests if digests is not None else stages.prepare(cfg).digests
    return K.key_of(K.ingredients(cfg, digests, what="train", thread_count=threads))


# ------------------------------------------------------------------ the key (pure, no store)

def test_a_config_value_or_the_thread_count_misses_a_tracking_only_change_hits():
    base = key()
    assert key(["regularization.l2=0.1"]) != base
    assert key(["training.epochs=41"]) != base
    assert key(threads=2) != base
    assert key(["tracking.run_name=other", "tracking.experiment=elsewhere",
                "tracking.uri=sqlite:///x.db", "tracking.log_model=true",
                "tracking.cache=false", "search.n_trials=7"]) == base


def test_a_changed_data_byte_misses(tmp_path):
    table = tmp_path / "points.csv"
    table.write_text("x1,x2,y\n" + "".join(f"{i * 0.1:.1f},{(i % 7) * 0.3:.1f},{i % 2}\n"
                                           for i in range(40)))
    over = ["data.name=table", f"data.path={table}", "data.label=y", "data.target=null"]
    before = key(over)
    assert key(over) == before                       # same bytes, same key
    table.write_text(table.read_text().replace("0.3,", "0.4,", 1))  # one digit of one row
    assert key(over) != before


def test_the_numeric_code_misses(tmp_path, monkeypatch):
    digests = {"train": "a", "dev": "b", "test": "c"}
    base = key(digests=digests)
    copy = tmp_path / "pipeline"
    shutil.copytree(K.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(K, "PACKAGE", copy)
    assert key(digests=digests) == base              # a copy of the same code
    with (copy / "train.py").open("a") as f:
        f.write("\n")
    assert key(digests=digests) != base
    shutil.copyfile(Path(K.__file__).parent / "train.py", copy / "train.py")
    assert key(digests=digests) == base              # back to the same bytes
    (copy / "tracking" / "runs.py").write_text("# records, computes nothing\n")
    assert key(digests=digests) == base              # tracking/ is not numeric code


def test_the_result_file_keeps_dtypes_and_bits_and_damage_raises():
    cfg = load_config([*TINY, "training.dtype=float32"], conf_dir=CONF)
    fresh = stages.train(cfg, stages.prepare(cfg))
    data = cached.pack_trained(fresh)
    back = cached.unpack_trained(data)
    assert back.model.network.theta.dtype == np.float32
    assert back.model.network.theta.tobytes() == fresh.model.network.theta.tobytes()
    assert back.fit.history == fresh.fit.history and same(back.metrics, fresh.metrics)
    with pytest.raises(Exception):
        cached.unpack_trained(data[: len(data) // 2])


def test_the_key_and_the_result_files_are_core_modules():
    import subprocess
    import sys

    code = ("import sys, pipeline.cache_key, pipeline.cached, pipeline.lessons.runner; "
            "print(sorted(m for m in ('mlflow', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ train through the store

def train(*args: str, capsys) -> tuple[str, str]:
    """Run `train`; (its run id, stdout + stderr)."""
    assert main(["train", "--quiet", *TINY, *args]) == 0
    out, err = capsys.readouterr()
    line = next(l for l in out.splitlines() if l.startswith("run "))
    return line.split()[1], out + err


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(x) and math.isnan(b[k])) if isinstance(x, float) and x != x else x == b[k]
        for k, x in a.items())


def test_a_rerun_reuses_the_run_bit_for_bit_and_records_the_reuse(tracking_uri, capsys):
    first, _ = train(capsys=capsys)
    second, out = train("tracking.run_name=again", "tracking.experiment=another", capsys=capsys)
    assert f"reused run {first}" in out and second != first
    client = MlflowClient()
    run = client.get_run(second)
    assert run.data.tags["cache.reused_from"] == first and "cache.key" not in run.data.tags
    assert run.info.status == "FINISHED" and run.info.run_name == "again"
    assert run.data.metrics["final/dev_loss"] == client.get_run(first).data.metrics[
        "final/dev_loss"]
    # the reused Trained against a fresh training of the same config, bit for bit
    from pipeline.tracking.cache import TrainCache

    cfg = load_config(TINY, conf_dir=CONF)
    prepared = stages.prepare(cfg)
    fresh = stages.train(cfg, prepared)
    source, reused = TrainCache(cfg, prepared).hit
    assert source == first
    assert same(reused.metrics, fresh.metrics)
    assert reused.fit.history == fresh.fit.history
    assert reused.model.network.theta.tobytes() == fresh.model.network.theta.tobytes()
    assert reused.model.network.theta.dtype == fresh.model.network.theta.dtype
    assert np.array_equal(reused.model.mean, fresh.model.mean)
    assert np.array_equal(reused.model.std, fresh.model.std)
    assert reused.model.classes == fresh.model.classes
    assert (reused.fit.best_epoch, reused.fit.stop_reason, reused.fit.epochs_run) == (
        fresh.fit.best_epoch, fresh.fit.stop_reason, fresh.fit.epochs_run)
    assert reused.diagnosis == fresh.diagnosis
    assert np.array_equal(reused.model.predict(prepared.raw_dev.X),
                          fresh.model.predict(prepared.raw_dev.X))


def test_no_cache_and_the_config_key_train_afresh_and_store_the_result(tracking_uri, capsys):
    first, _ = train(capsys=capsys)
    for flag in (["--no-cache"], ["tracking.cache=false"]):
        again, out = train(*flag, capsys=capsys)
        tags = MlflowClient().get_run(again).data.tags
        assert "reused run" not in out and "cache.reused_from" not in tags
        assert tags["cache.key"] == MlflowClient().get_run(first).data.tags["cache.key"]
    _, out = train(capsys=capsys)
    assert f"reused run {again}" in out               # the newest identical run


def test_a_record_whose_result_is_missing_is_retrained(tracking_uri, capsys, tmp_path):
    first, _ = train(capsys=capsys)
    artifacts = MlflowClient().get_run(first).info.artifact_uri.removeprefix("file://")
    (Path(artifacts) / "cache" / cached.FILE).unlink()
    second, out = train(capsys=capsys)
    assert "reused run" not in out
    assert f"run cache: run {first} has this key but its result is unreadable" in out
    assert "cache.key" in MlflowClient().get_run(second).data.tags  # the fresh record
    _, out = train(capsys=capsys)
    assert f"reused run {second}" in out


@pytest.mark.slow
def test_a_search_never_looks_in_the_cache(tracking_uri, search_cfg, monkeypatch, capsys):
    from pipeline.tracking import cache as C

    looked = []
    monkeypatch.setattr(C.Store, "find", lambda self, key: looked.append(key))
    assert main(["train", "--quiet", *search_cfg.args("tracking.log_model=false",
                                                       "tracking.log_figures=false")]) == 0
    assert len(looked) == 1                           # the spy sees train's lookup
    assert main(["search", *search_cfg.args("search.n_trials=2")]) == 0
    assert len(looked) == 1                           # and none from the search's trials


# ------------------------------------------------------------------ lesson arms

LESSON_TINY = ["data.params={n_samples: 160}", "model.hidden=[8]", "training.epochs=30"]


def _arms_equal(a, b) -> None:
    assert (a.arm, a.seed) == (b.arm, b.seed)
    assert same(a.metrics, b.metrics) and a.history == b.history
    assert a.model.params.keys() == b.model.params.keys()
    assert all(np.array_equal(a.model.params[k], b.model.params[k]) for k in a.model.params)
    assert (a.report, a.blocks, a.diagnosis, a.stop_message) == (
        b.report, b.blocks, b.diagnosis, b.stop_message)


def test_arms_that_differ_only_by_a_lesson_option_have_different_keys():
    """gradient_checking's dropout arms share a config and differ by cost_bugs (a fresh mask
    per evaluation of J, or none); scaled_W2 differs from correct by `corrupt` alone."""
    from pipeline import cache_key as K
    from pipeline.lessons import plan

    jobs = plan(load_lesson("gradient_checking", CONF), seeds=1, conf_dir=CONF)
    extras = [json.dumps(K.lesson_extra(j), sort_keys=True) for j in jobs]
    assert len(set(extras)) == len(jobs) - 1       # correct and dropout_fixed_mask: no option
    fixed = [j for j in jobs if j.arm == "dropout_fixed_mask"][0]
    fresh = [j for j in jobs if j.arm == "dropout_fresh_mask"][0]
    assert fixed.cfg_yaml == fresh.cfg_yaml and K.lesson_extra(fixed) != K.lesson_extra(fresh)


@pytest.mark.parametrize("name", ["regularization", "gradient_checking"])
def test_a_lesson_rerun_in_a_notebook_reuses_every_arm(name, tmp_path, monkeypatch):
    from pipeline.tracking.cache import lesson_cache

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    lesson = load_lesson(name, CONF)
    over = LESSON_TINY if name == "regularization" else []
    runs = {}
    for attempt in ("fresh", "reused"):
        cache = lesson_cache(tmp_path / "mlflow.db")
        result = run_lesson(lesson, seeds=1, overrides=over, conf_dir=CONF, cache=cache,
                            figures=False)
        runs[attempt] = result
        assert len(cache.reused) == (0 if attempt == "fresh" else len(result.runs))
    for a, b in zip(runs["fresh"].runs, runs["reused"].runs):
        _arms_equal(a, b)
        assert b.reused_from and not a.reused_from
    assert runs["fresh"].table.equals(runs["reused"].table)


@pytest.mark.slow
def test_the_experiment_command_reuses_arms_as_tagged_children(tracking_uri, capsys):
    args = ["experiment", "gradient_checking", "seeds=1", "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    n = len(load_lesson("gradient_checking", CONF).arm_names())
    assert f"run cache: {n} of {n} (arm, seed) results reused" in second
    table = lambda out: out[out.index("# "):out.index(" runs in ")]  # noqa: E731
    assert table(first) == table(second)
    client = MlflowClient()
    children = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  "tags.stage = 'lesson_arm'")
    keyed = {r.info.run_id for r in children if "cache.key" in r.data.tags}
    reused = [r for r in children if "cache.reused_from" in r.data.tags]
    assert len(keyed) == len(reused) == n
    assert {r.data.tags["cache.reused_from"] for r in reused} == keyed
    assert main([*args, "--no-cache"]) == 0
    assert f"run cache: none of {n} (arm, seed) results reused" in capsys.readouterr().out
