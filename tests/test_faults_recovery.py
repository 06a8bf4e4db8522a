"""Runs left RUNNING by a dead command are ended by the next command on the same store.

End to end (slow): real `python -m pipeline train` and `experiment` processes on one SQLite
store, two of them killed with -9 mid-run, one left alive; then a quick `train` and a quick
`experiment` of the same lesson. Each ends FAILED (tag `fault`) exactly the runs of the
killed process in the experiment it writes into, says so in one stderr line, and leaves the
live process's run RUNNING. Before, a kill -9 of `train` or of a lesson left its runs RUNNING
forever: only search parents and trial runs were ever ended.

Fast: `end_abandoned_runs` against a real store, with owners of a real exited process, of this
live one, of another host and none; and the trial-state rule of a search.
"""

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.owner import owner
from pipeline.tracking.recovery import OWNER, end_abandoned_runs

ROOT = Path(__file__).resolve().parents[1]
# Two arms: `quick` trains 5 epochs, `slow` 50,000,000 (an override may not change a key an arm
# sets): the killed lesson has one child logged (FINISHED) and its parent RUNNING while `slow`
# trains for minutes; the next one, of the same name (`recover`), trains both in a moment.
LESSON = """\
title: "Recovery: a lesson killed mid-job"
kind: arms
seeds: 1
base:
  data.name: rings
  data.target: null
  model.hidden: [10, 5]
  training.eval_every: 50
  training.patience: null
arms:
  quick: {{training.epochs: 5}}
  slow: {{training.epochs: {slow}}}
claim:
  text: the slow arm trains
  checks:
    - {{metric: dev_accuracy, arm: slow, at_least: 0.0}}
"""
FOREVER = "training.epochs=50000000"  # minutes of training: killed long before it ends
QUICK = "training.epochs=20"
ENDED = "run(s) left RUNNING by a dead process: "


def _command(store: Path, *args) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{store}/m.db", PYTHONPATH=str(ROOT),
               MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args, "--no-cache",
                             "--conf-dir", str(ROOT / "conf")],
                            cwd=store, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _statuses(store: Path) -> dict[str, str]:
    """Run name -> status, read with sqlite3 (read-only: no schema work racing the commands)."""
    with sqlite3.connect(f"file:{store / 'm.db'}?mode=ro", uri=True, timeout=5) as conn:
        return dict(conn.execute("SELECT name, status FROM runs"))


def _wait_running(store: Path, procs, names: dict[str, str], timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and all(p.poll() is None for p in procs):
        try:
            seen = _statuses(store)
        except sqlite3.Error:  # the store is being created
            seen = {}
        if all(seen.get(n) == s for n, s in names.items()):
            return
        time.sleep(0.3)
    for p in procs:
        p.kill()
    raise AssertionError(f"not all of {names} seen: {[p.communicate() for p in procs]}")


@pytest.fixture(scope="module")
def after(tmp_path_factory):
    """Kill -9 a train and a lesson mid-run with a second train alive, then run a quick train
    and a quick lesson (at once). Returns the store, the runs, and the quick commands."""
    store = tmp_path_factory.mktemp("recovery")
    lessons = {}
    for kind, slow in (("killed", 50_000_000), ("next", 20)):
        (store / kind).mkdir()
        (store / kind / "recover.yaml").write_text(LESSON.format(slow=slow))
        lessons[kind] = str(store / kind / "recover.yaml")
    from pipeline.tracking.store import seed_store  # the schema once, before 3 processes race

    seed_store(f"sqlite:///{store}/m.db")
    MlflowClient(f"sqlite:///{store}/m.db").search_experiments()
    victim = _command(store, "train", FOREVER, "tracking.run_name=victim", "--quiet")
    alive = _command(store, "train", FOREVER, "tracking.run_name=alive", "--quiet")
    parent = _command(store, "experiment", lessons["killed"], "--quiet")
    procs = [victim, alive, parent]
    _wait_running(store, procs, {"victim": "RUNNING", "alive": "RUNNING",
                                 "lesson-recover": "RUNNING", "quick-seed0": "FINISHED"})
    for p in (victim, parent):
        os.kill(p.pid, signal.SIGKILL)
        p.communicate()
    left = _statuses(store)
    train = _command(store, "train", QUICK, "tracking.run_name=next", "--quiet")
    again = _command(store, "experiment", lessons["next"], "--quiet")
    done = {"train": train.communicate(timeout=600), "experiment": again.communicate(timeout=600)}
    codes = {"train": train.returncode, "experiment": again.returncode}
    client = MlflowClient(f"sqlite:///{store}/m.db")
    runs = {}  # by name; a second run of the same name (the rerun's) as "<name>#2"
    for run in sorted(client.search_runs([e.experiment_id for e in client.search_experiments()]),
                      key=lambda r: r.info.start_time):
        name = run.info.run_name
        runs[name + "#2" if name in runs else name] = run
    yield {"left": left, "runs": runs, "out": done, "codes": codes, "alive": alive}
    alive.send_signal(signal.SIGTERM)  # ends its own run KILLED
    alive.communicate(timeout=120)


@pytest.mark.slow
def test_the_runs_of_a_killed_train_are_ended_by_the_next_train(after):
    runs, (_, err) = after["runs"], after["out"]["train"]
    assert after["codes"]["train"] == 0, err
    assert after["left"]["victim"] == "RUNNING"  # what kill -9 left
    killed = runs["victim"]
    assert killed.info.status == "FAILED" and killed.info.end_time is not None
    who = killed.data.tags[OWNER]
    assert killed.data.tags["fault"].startswith(f"left RUNNING by process {who} ")
    # one line, naming only the run of the experiment this train writes into
    lines = [x for x in err.splitlines() if ENDED in x]
    assert lines == [f"ended 1 {ENDED}{killed.info.run_id}"]
    assert runs["next"].info.status == "FINISHED" and runs["next"].data.tags[OWNER] != who


@pytest.mark.slow
def test_a_live_processes_run_is_left_running(after):
    alive = after["runs"]["alive"]
    assert after["alive"].poll() is None  # still training when the others cleaned up
    assert alive.info.status == "RUNNING" and "fault" not in alive.data.tags
    assert alive.data.tags[OWNER].split(":")[1] == str(after["alive"].pid)


@pytest.mark.slow
def test_a_killed_lessons_parent_is_ended_by_the_next_experiment(after):
    runs, (_, err) = after["runs"], after["out"]["experiment"]
    assert after["codes"]["experiment"] == 0, err
    assert after["left"]["lesson-recover"] == "RUNNING"
    parent, child = runs["lesson-recover"], runs["quick-seed0"]
    assert parent.info.status == "FAILED" and "fault" in parent.data.tags
    lines = [x for x in err.splitlines() if ENDED in x]
    assert lines == [f"ended 1 {ENDED}{parent.info.run_id}"]
    # its child, logged before the kill, is FINISHED and was the same process's
    assert child.info.status == "FINISHED" and "fault" not in child.data.tags
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags[OWNER] == parent.data.tags[OWNER]
    # the rerun made a new parent, FINISHED; nothing of a dead process is RUNNING anywhere
    assert runs["lesson-recover#2"].info.status == "FINISHED"
    running = [n for n, r in runs.items() if r.info.status == "RUNNING"]
    assert running == ["alive"]


# --- fast: the rule itself, against a real SQLite store ---

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the fast tests (each uses experiments of its own), as MLflow's
    default (conftest puts MLflow's state back after the module)."""
    import mlflow

    from pipeline.tracking.store import seed_store

    uri = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'm.db'}"
    seed_store(uri)  # a copy of the session's template: its 60 migrations took 8-15 s here
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    return uri


def _run(client, experiment_id, who=None, **tags) -> str:
    if who is not None:
        tags[OWNER] = who
    return client.create_run(experiment_id, tags=tags).info.run_id


def test_only_runs_of_dead_owners_on_this_host_are_ended(store, gone_owner):
    client = MlflowClient()
    here, elsewhere = client.create_experiment("here"), client.create_experiment("elsewhere")
    dead = _run(client, here, gone_owner)
    live, remote = _run(client, here, owner()), _run(client, here, "another-host:1:1")
    unowned, finished = _run(client, here), _run(client, here, gone_owner)
    client.set_terminated(finished, "FINISHED")
    other = _run(client, elsewhere, gone_owner)  # an experiment this command does not write
    out = io.StringIO()
    assert end_abandoned_runs([here, None], out=out) == [dead]
    assert out.getvalue() == f"ended 1 {ENDED}{dead}\n"
    got = {r: client.get_run(r) for r in (dead, live, remote, unowned, finished, other)}
    assert got[dead].info.status == "FAILED" and gone_owner in got[dead].data.tags["fault"]
    assert [got[r].info.status for r in (live, remote, unowned, finished, other)] == \
        ["RUNNING", "RUNNING", "RUNNING", "FINISHED", "RUNNING"]
    assert end_abandoned_runs([here], out=out) == []  # nothing twice, and no second line
    assert out.getvalue().count("\n") == 1


def test_a_trial_run_ends_with_its_trials_state_whoever_owns_it(store):
    client = MlflowClient()
    experiment = client.create_experiment("s-search")

    def trial(number, study="s"):
        return _run(client, experiment, owner(), stage="search_trial",
                    **{"optuna.study_name": study, "optuna.trial_number": str(number)})

    pruned, failed, running, other_study = trial(0), trial(1), trial(2), trial(0, "t")
    states = {0: "PRUNED", 1: "FAIL", 2: "RUNNING"}
    ended = end_abandoned_runs([experiment], study="s", trial_states=states)
    assert sorted(ended) == sorted([pruned, failed])
    for run_id, status, state in [(pruned, "KILLED", "PRUNED"), (failed, "FAILED", "FAIL")]:
        run = client.get_run(run_id)
        assert (run.info.status, run.data.tags["optuna.state"]) == (status, state)
        assert run.data.tags["fault"].startswith(f"trial {state} in Optuna")
    # a trial still running, and another study's trial of the same number: its worker's
    assert {client.get_run(r).info.status for r in (running, other_study)} == {"RUNNING"}


def test_the_owner_module_is_stdlib_only():
    script = ("import sys, pipeline.owner; "
              "print(sorted(m for m in ('mlflow', 'optuna', 'numpy') if m in sys.modules))")
    got = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert got.stdout.strip() == "[]", got.stderr
