"""Hostile input through the real commands (issue 17, item 12, the rest): a lesson with a
million seeds, a network too large for memory, NaN or tampered weights in a logged model, and
edited code logged with a model. Each case runs the real command (a subprocess where a signal,
a fresh import or a memory limit matters) against a real SQLite store under tmp_path."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

pytestmark = pytest.mark.xdist_group("test_faults_hostile")


def command(*args, cwd):
    """`python -m pipeline <args>` as a user types it (this checkout first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ a lesson with 1M seeds
def test_a_million_seeds_are_refused_before_planning(tmp_path):
    """Before: 4 minutes of planning, deaf to SIGINT/SIGTERM. Now one line naming the key, the
    bound and the value, before a config is built or a store is opened."""
    from pipeline.lessons.plan import MAX_SEEDS

    store = tmp_path / "mlflow.db"
    started = time.perf_counter()
    proc = command("experiment", "--conf-dir", str(CONF), "initialization", "seeds=1000000",
                   f"tracking.uri=sqlite:///{store}", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert lines(err) == [f"error: seeds must be an integer in [1, {MAX_SEEDS}], got 1000000"]
    assert time.perf_counter() - started < 30  # the interpreter and imports, not a plan
    assert not store.exists()                  # no store, no run


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_planning_many_seeds_stops_on_a_signal(tmp_path, signum, code):
    """The bound's worth of seeds (5 arms x 1,000 = 5,000 configs) takes 30 s to plan on a
    loaded machine (announced, so the terminal does not look hung); a signal during it ends
    the command within a second or two, with the shell's exit code and one line, before any
    run or store exists."""
    from pipeline.lessons.plan import MAX_SEEDS

    store = tmp_path / "mlflow.db"
    proc = command("experiment", "--conf-dir", str(CONF), "regularization",
                   f"seeds={MAX_SEEDS}", f"tracking.uri=sqlite:///{store}", cwd=tmp_path)
    assert proc.stderr.readline() == f"planning {5 * MAX_SEEDS} runs...\n"
    time.sleep(1)                              # well into the plan (30 s of it)
    assert proc.poll() is None, proc.communicate()
    sent = time.perf_counter()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    waited = time.perf_counter() - sent
    assert proc.returncode == code, err
    assert lines(err)[-1].endswith("stopped while planning the lesson; no run was created")
    assert waited < 3.0, f"{waited:.1f} s from the signal to the exit"
    assert not store.exists()


# ------------------------------------------------------------------ the served model
def test_model_load_checks_the_weights_digest_and_finiteness(tmp_path):
    """The core's half, without MLflow (fast): `Model.save` records the sha256 of the file it
    wrote; `load` refuses another file, then a logged NaN."""
    import json

    import numpy as np

    from pipeline.nn import Architecture, Model, init_network

    net = init_network(Architecture((2, 3, 1)), "he", np.random.default_rng(0))
    model = Model(net, np.zeros(2), np.ones(2), ("a", "b"), ("x1", "x2"))
    weights, network = tmp_path / "weights.npz", tmp_path / "network.json"
    model.save(weights, network)
    meta = json.loads(network.read_text())
    assert meta["weights_digest"] == sha256(weights)
    loaded = Model.load(weights, meta)
    np.testing.assert_array_equal(loaded.network.theta, net.theta)
    params = dict(net.params, b1=np.array([0.0, np.inf, 0.0]))
    np.savez(weights, **params)
    with pytest.raises(ValueError, match=f"weights file {weights} is not the one logged with "
                                         f"the model: sha256 {sha256(weights)[:16]} != logged "
                                         f"{meta['weights_digest'][:16]}$"):
        Model.load(weights, meta)
    with pytest.raises(ValueError, match=r"b1 holds 1 non-finite value\(s\) \(nan/inf\)"):
        Model.load(weights, {**meta, "weights_digest": sha256(weights)})


@pytest.fixture(scope="module")
def logged_model(tmp_path_factory):
    """The model directory of one real `train` (20 epochs, no figures) in a SQLite store."""
    from pipeline.cli import main

    tmp = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)                                    # the store's artifacts land here
        code = main(["train", "--quiet", "--conf-dir", str(CONF), "training.epochs=20",
                     "tracking.log_figures=false", f"tracking.uri=sqlite:///{tmp / 'm.db'}"])
    assert code == 0
    (model,) = tmp.glob("mlruns/*/models/*/artifacts")
    return model


@pytest.fixture
def model_copy(logged_model, tmp_path):
    """A private copy of the logged model to tamper with."""
    import shutil

    return Path(shutil.copytree(logged_model, tmp_path / "model"))


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_weight(model: Path, value: float, *, record_digest: bool) -> Path:
    """W1[0, 0] = value in the model's weights.npz; with record_digest, network.json is made
    to agree (a model LOGGED with that weight), else the file alone changed after logging."""
    import json

    import numpy as np

    weights, network = model / "artifacts" / "weights.npz", model / "artifacts" / "network.json"
    with np.load(weights) as npz:
        params = {k: npz[k] for k in npz.files}
    params["W1"][0, 0] = value
    np.savez(weights, **params)
    if record_digest:
        meta = json.loads(network.read_text())
        network.write_text(json.dumps({**meta, "weights_digest": sha256(weights)}))
    return weights


def predict(model: Path):
    import mlflow
    import pandas as pd

    served = mlflow.pyfunc.load_model(str(model))
    return served.predict(pd.DataFrame({"x1": [0.1, 0.5], "x2": [0.2, -0.3]}),
                          params={"proba": True})


@pytest.mark.slow
def test_nan_weights_in_a_logged_model_are_refused_at_load(model_copy):
    """Before: NaN probabilities served with a label. Now a one-line refusal naming the file
    and the block (the intact copy serves finite probabilities)."""
    import numpy as np

    assert np.isfinite(predict(model_copy)[["proba_0", "proba_1"]].to_numpy()).all()
    weights = set_weight(model_copy, float("nan"), record_digest=True)
    with pytest.raises(Exception) as caught:
        predict(model_copy)
    assert str(caught.value) == (f"weights file {weights}: W1 holds 1 non-finite value(s) "
                                 "(nan/inf); a model with them is not served")


@pytest.mark.slow
def test_a_weights_file_changed_after_logging_is_refused_with_both_digests(model_copy):
    """A finite but different weight (the file edited, network.json not): refused naming the
    file, the digest found and the digest logged."""
    import json

    logged = json.loads((model_copy / "artifacts" / "network.json").read_text())
    weights = set_weight(model_copy, 0.123, record_digest=False)
    assert sha256(weights) != logged["weights_digest"]
    with pytest.raises(ValueError) as caught:
        predict(model_copy)
    assert str(caught.value) == (
        f"weights file {weights} is not the one logged with the model: sha256 "
        f"{sha256(weights)[:16]} != logged {logged['weights_digest'][:16]}")


PROBE = """
import sys, mlflow
mlflow.pyfunc.load_model(sys.argv[1])
print("loaded", sys.modules["pipeline"].__file__)
"""


@pytest.mark.slow
def test_edited_logged_code_is_refused_before_it_runs(model_copy, tmp_path):
    """Before: an edited network.py in the model's code ran (here: wrote a file), then the
    digest check refused. Now the digest of the code `import pipeline` would run is checked
    before any of it is imported: refused, and the edit never ran. A fresh process, so the
    model's own code is what `import pipeline` finds."""
    import json

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the model
    probe = lambda: subprocess.run([sys.executable, "-c", PROBE, str(model_copy)],  # noqa: E731
                                   capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                   env=env)
    done = probe()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == str(model_copy / "code" / "pipeline" / "__init__.py")
    marker = tmp_path / "network_py_ran"
    edited = model_copy / "code" / "pipeline" / "nn" / "network.py"
    edited.write_text(edited.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    done = probe()
    assert done.returncode != 0
    assert not marker.exists(), "the edited network.py ran before the refusal"
    from pipeline.nn.model import source_digest

    code, network = model_copy / "code" / "pipeline", model_copy / "artifacts" / "network.json"
    logged = json.loads(network.read_text())["code_digest"]
    found = source_digest(code)
    assert (f"the model's code does not match the code logged with it: {code} digest "
            f"{found[:16]} != logged {logged[:16]} in {network}; its files were changed after "
            "logging; nothing of them was imported") in done.stderr


# ------------------------------------------------------------------ a network too large
def test_a_network_too_large_for_memory_is_refused_before_a_run(tmp_path, monkeypatch, capsys):
    """Before: 16 s, then a MemoryError traceback (74.5 GiB for one array) and a FAILED run.
    Now one line naming the key, the estimate and the memory available; no store, no run."""
    from pipeline import stages
    from pipeline.cli import main
    from pipeline.config import load_config
    from pipeline.batch_choice import size_text
    from pipeline.memory_needed import footprint

    monkeypatch.chdir(tmp_path)
    free = 20 * 2**30  # the estimate is of the batch train chooses from it (null batch_size)
    monkeypatch.setattr("pipeline.commands.train.available_memory", lambda: free)
    store = tmp_path / "mlflow.db"
    args = ["model.hidden=[100000,100000]", f"tracking.uri=sqlite:///{store}"]
    code = main(["train", "--quiet", "--conf-dir", str(CONF), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    cfg = load_config(args, conf_dir=CONF)
    prepared = stages.prepare(cfg)
    need = footprint(cfg, prepared, stages.batch_choice(cfg, prepared, free))
    (line,) = lines(err)
    assert line.startswith(f"error: model.hidden=[100000, 100000]: the network needs about "
                           f"{size_text(need.total)} of memory to train (parameters, gradient "
                           f"and adam state {size_text(need.parameters)}; ")
    assert line.endswith(" is available; lower model.hidden")
    assert not store.exists() and not (tmp_path / "mlruns").exists()


def test_data_too_large_for_memory_is_one_line_before_a_run(tmp_path, monkeypatch, capsys):
    """Before: numpy's MemoryError traceback from the generator (1.46 TiB for 10^11 rows).
    Now one line naming the data key and numpy's allocation; no store, no run."""
    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "mlflow.db"
    code = main(["train", "--quiet", "--conf-dir", str(CONF), f"data.params.n_samples={10**11}",
                 f"tracking.uri=sqlite:///{store}"])
    err = capsys.readouterr().err
    assert code == 2, err
    (line,) = lines(err)
    assert line.startswith(f"error: data.params={{'n_samples': {10**11}}}: the data set "
                           "'noisy_diagonal' does not fit in memory (Unable to allocate ")
    assert line.endswith(" available); use fewer rows")
    assert not store.exists()


def _prepared(*overrides):
    from pipeline import stages
    from pipeline.config import load_config

    cfg = load_config(list(overrides), conf_dir=CONF)
    return cfg, stages.prepare(cfg)


@pytest.mark.parametrize("overrides, key, advice", [
    (["model.hidden=[3000,3000]"], "model.hidden=[3000, 3000]", "lower model.hidden"),
    (["model.hidden=[8]", "data.params.n_samples=200000"], "training.batch_size=null",
     "set training.batch_size (null trains on all"),
    (["model.hidden=[8]", "data.params.n_samples=200000", "training.batch_size=32"],
     "data size (", "use fewer rows or a smaller model.hidden"),
])
def test_the_refusal_names_the_largest_part(overrides, key, advice):
    """The core check takes the available memory as a number: the estimate itself passes, one
    byte less is refused, naming the key of the largest part (weights: model.hidden; the
    training pass: training.batch_size; the evaluation: the data size) and what to lower."""
    from pipeline.batch_choice import size_text
    from pipeline.memory_needed import check_memory

    cfg, prepared = _prepared(*overrides)
    need = check_memory(cfg, prepared, None)                  # unknown: never refused
    assert check_memory(cfg, prepared, need.total) == need
    with pytest.raises(ValueError) as caught:
        check_memory(cfg, prepared, need.total - 1)
    text = str(caught.value)
    assert text.startswith(key) and advice in text, text
    assert f"needs about {size_text(need.total)} of memory" in text
    assert f"but {size_text(need.total - 1)} is available" in text


@pytest.mark.parametrize("sizes, m, m_dev, settings", [
    ((2, 1000, 1000, 1), 200, 100, {"optimizer": "adam", "patience": 5}),   # the weights
    ((20, 50, 50, 1), 20000, 5000, {}),                                     # the data
    ((20, 50, 50, 3), 20000, 5000, {"batch_size": 64, "keep_prob": 0.8,
                                    "optimizer": "momentum"}),
    ((20, 300, 100, 1), 4000, 1000, {"dtype": "float32", "l1": 0.1}),
])
def test_the_estimate_bounds_what_fit_really_allocates(sizes, m, m_dev, settings):
    """The oracle is tracemalloc's peak over a real init + fit (numpy reports its buffers to
    it): the estimate is never below it, and at most 25% above."""
    import tracemalloc

    import numpy as np

    from pipeline.nn import Architecture, init_network
    from pipeline.nn.footprint import estimate
    from pipeline.train import TrainSettings, fit

    rng = np.random.default_rng(0)
    X, X_dev = rng.standard_normal((m, sizes[0])), rng.standard_normal((m_dev, sizes[0]))
    label = (lambda A: (A[:, 0] > 0).astype(int)) if sizes[-1] == 1 else (
        lambda A: np.digitize(A[:, 0], [-0.5, 0.5]))
    st = TrainSettings(**{"epochs": 2, "eval_every": 1, "learning_rate": 0.01, **settings})
    tracemalloc.start()
    try:
        net = init_network(Architecture(sizes), "he", rng, dtype=np.dtype(st.dtype).type)
        fit(net, X, label(X), X_dev, label(X_dev), st, rng)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    need = estimate(sizes, m, m_dev, batch_size=st.batch_size, optimizer=st.optimizer,
                    itemsize=np.dtype(st.dtype).itemsize, dropout=st.keep_prob < 1,
                    early_stopping=st.patience is not None,
                    l1_prox=st.l1 > 0 and st.optimizer == "gd")
    assert peak <= need.total <= 1.25 * peak, (peak, need)


@pytest.mark.slow
def test_a_file_added_to_the_logged_code_is_refused(model_copy):
    """MLflow puts the model's code/ first on sys.path, so an added code/<name>.py would shadow
    a module imported later: only the logged files may be there (Python's caches aside)."""
    (model_copy / "code" / "pipeline" / "__pycache__").mkdir()
    (model_copy / "code" / "pipeline" / "__pycache__" / "x.pyc").write_bytes(b"")  # allowed
    (model_copy / "code" / "pandas_extra.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(Exception) as caught:
        predict(model_copy)
    assert (f"the model's code directory {model_copy / 'code'} holds files that were not "
            "logged with it: pandas_extra.py; nothing of it was imported") in str(caught.value)
