"""Faults around the one-time test look, with real `python -m pipeline evaluate` processes.

Two evaluates at once: exactly one unseals, records and registers; the other exits 2 with one
line. A signal before the unsealing spends nothing; after it, the numbers are still recorded and
printed, then the command exits 143/130.

The searches before the evaluations are setup, not the subject: two studies (a short one, and
one long trial whose retrain can be signalled) are searched once per module, in this process,
and each test evaluates in its own copy of the journal and the store (the once-only record
lives in them), as tests/test_registry_rules.py does. Six `python -m pipeline search`
subprocesses (each ~4 s of CPU for its imports alone) became two in-process searches.
"""

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def _env(tmp_path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/m.db",
               MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    env.pop("MLFLOW_RUN_ID", None)
    return env


def _args(tmp_path, *extra) -> list[str]:
    return ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.eval_every=5",
            f"search.storage={tmp_path / 'study.journal'}", "search.study=tiny",
            *extra, "--conf-dir", str(CONF)]


def _start(tmp_path, command: str, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", command, *_args(tmp_path, *extra)],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


SEARCHES = {"short": ("training.epochs=60",),
            # a long retrain (no early stopping) leaves time to signal it mid-training
            "long": ("training.epochs=10000", "training.patience=null", "search.n_trials=1")}
# One xdist worker builds this module's studies once (--dist loadgroup in pyproject).
pytestmark = pytest.mark.xdist_group("test_faults_evaluate")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """`searched(kind)`: the directory of the `kind` study (SEARCHES) and its SQLite store,
    searched on first use (in this process: the search is setup here, not the subject)."""
    import mlflow

    from pipeline.config import load_config
    from pipeline.search.space import load_space
    from pipeline.search.sweep import run_search

    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            root = tmp_path_factory.mktemp(f"searched-{kind}")
            uri = f"sqlite:///{root}/m.db"
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(root)  # MLflow's artifacts go to ./mlruns of the working directory
                mp.setenv("MLFLOW_TRACKING_URI", uri)
                mlflow.set_tracking_uri(uri)
                cfg = load_config(_args(root, "search.n_trials=2", "search.pruner.name=none",
                                        "search.trial_figures=none", *SEARCHES[kind])[:-2],
                                  conf_dir=CONF)
                space, text = load_space(cfg.search.space, CONF)
                run_search(cfg, space, text, progress=False, out=io.StringIO())
            made[kind] = root
        return made[kind]

    return make


def _search(searched, tmp_path, kind: str) -> None:
    """This test's own copy of the `kind` study and its store (the runs' artifacts stay
    beside the module's store: their experiment's location)."""
    for name in ("study.journal", "m.db"):
        shutil.copy(searched(kind) / name, tmp_path / name)


def _final_test_runs(tmp_path) -> dict[str, int]:
    """{status: count} of the final-test runs, read with a fresh client of the store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.stage = 'final_test'")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.info.status] = counts.get(r.info.status, 0) + 1
    return counts


def _versions(tmp_path) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    return len(client.search_model_versions())


def _evaluations(tmp_path) -> list:
    from pipeline.config import load_config
    from pipeline.search import storage as S
    from pipeline.search.study import open_study

    cfg = load_config(_args(tmp_path)[:-2], conf_dir=CONF)
    study = open_study(cfg, S.resolve(cfg.search.storage, "tiny", tmp_path), create=False)
    return list(study.user_attrs.get("test_evaluations", []))


@pytest.mark.slow
def test_two_evaluates_at_the_same_instant_unseal_once(searched, tmp_path):
    _search(searched, tmp_path, "short")
    procs = [_start(tmp_path, "evaluate", "evaluate.gate.threshold=1.0") for _ in range(2)]
    done = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], done
    refused = [err for p, (out, err) in zip(procs, done) if p.returncode == 2][0]
    lines = [line for line in refused.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: study 'tiny'"), refused
    assert "being evaluated by another process" in lines[0] or "already evaluated" in lines[0]
    assert _final_test_runs(tmp_path) == {"FINISHED": 1}
    assert _versions(tmp_path) == 1
    assert len(_evaluations(tmp_path)) == 1


@pytest.mark.slow
def test_an_evaluate_while_the_claim_is_held_is_refused_at_once(searched, tmp_path):
    """Deterministic version of the race: this process holds the claim, evaluate is refused
    with the lock named, no final-test run, nothing recorded."""
    from pipeline.search import storage as S
    from pipeline.search.evaluate_lock import evaluation_claim

    _search(searched, tmp_path, "short")
    spec = S.resolve(str(tmp_path / "study.journal"), "tiny", tmp_path)
    with evaluation_claim(spec, "tiny", tmp_path):
        p = _start(tmp_path, "evaluate")
        out, err = p.communicate(timeout=300)
    assert p.returncode == 2
    assert err.strip().count("\n") == 0 and "is being evaluated by another process" in err
    assert _final_test_runs(tmp_path) == {} and _evaluations(tmp_path) == []
    p = _start(tmp_path, "evaluate")  # released: evaluate runs now
    assert p.wait(timeout=300) == 0


WHAT = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGINT: "interrupted (Ctrl-C)"}


# MLflow's own stderr: INFO logging (schema, experiment, input example) and the registry's
# "Successfully registered model ..." / "Created version ..." lines
MLFLOW_NOISE = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO mlflow|Successfully registered "
                          r"model '|Created version ')")


def _own_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not MLFLOW_NOISE.match(line)]


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_before_the_unsealing_spends_nothing(searched, tmp_path, signum, code):
    _search(searched, tmp_path, "long")
    p = _start(tmp_path, "evaluate")
    _wait_for(lambda: _final_test_runs(tmp_path).get("RUNNING") == 1 or p.poll() is not None,
              120, "the final-test run to start")
    time.sleep(0.2)  # inside the retrain (~5 s)
    p.send_signal(signum)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert _own_lines(err) == [f"{WHAT[signum]}: before the test split was opened: nothing "
                               "recorded, the test look is not spent (run evaluate again)"]
    assert "test:" not in out
    assert _final_test_runs(tmp_path) == {"KILLED": 1}
    assert _evaluations(tmp_path) == [] and _versions(tmp_path) == 0
    again = _start(tmp_path, "evaluate", "evaluate.gate.threshold=1.0")
    assert again.wait(timeout=300) == 0  # the look was not spent
    assert _final_test_runs(tmp_path) == {"KILLED": 1, "FINISHED": 1}


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_after_the_unsealing_still_records_and_prints(searched, tmp_path, signum,
                                                               code):
    _search(searched, tmp_path, "short")
    journal = tmp_path / "study.journal"
    p = _start(tmp_path, "evaluate", "evaluate.gate.threshold=1.0")
    # the record is the first write after the unsealing: signal as soon as it is in the journal
    _wait_for(lambda: "test_evaluations" in journal.read_text() or p.poll() is not None,
              120, "the evaluation record")
    p.send_signal(signum)
    out, err = p.communicate(timeout=120)
    assert p.returncode == code, (out, err)
    assert _own_lines(err) == [f"{WHAT[signum]}: after the test look: the evaluation above "
                               "was recorded and printed in full"]
    assert "test: test_loss=" in out and "dev gate" in out
    assert _final_test_runs(tmp_path) == {"FINISHED": 1}
    records = _evaluations(tmp_path)
    assert len(records) == 1 and _versions(tmp_path) == 1
    printed = re.search(r"test: test_loss=([0-9.]+)", out).group(1)
    assert printed == f"{records[0]['test_metrics']['test_loss']:.4f}"  # printed = recorded
    assert "alias" in out and "version 1" in out  # the registry step finished
    again = _start(tmp_path, "evaluate")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 2 and "already evaluated" in err
