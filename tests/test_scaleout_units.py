"""Fast checks of the scale-out pieces: owners of trials, which RUNNING trials are stale on the
journal, the worker command's arguments and refusals (no servers needed)."""

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from pipeline.cli import main
from pipeline.commands.worker import parse
from pipeline.search import recovery as R
from pipeline.search import storage as S
from pipeline.owner import owner, owner_alive

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_an_owner_is_alive_while_its_process_runs_and_dead_after():
    assert owner_alive(owner()) is True
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    text = owner(child.pid)
    assert owner_alive(text) is True
    child.kill()
    child.wait()
    assert owner_alive(text) is False
    host, pid, start = owner().rsplit(":", 2)
    assert owner_alive(f"{host}:{pid}:{int(start) + 1}") is False  # a reused pid is not it
    assert owner_alive(f"another-host:{pid}:{start}") is None      # cannot be checked here
    assert owner_alive(None) is None and owner_alive("garbage") is None


def test_journal_stale_trials_are_those_of_dead_or_unknown_owners_only(tmp_path, gone_owner):
    spec = S.resolve(str(tmp_path / "s.journal"), "s", tmp_path)
    study = optuna.create_study(study_name="s", storage=S.open_storage(spec))
    live, dead, unknown, remote = (study.ask() for _ in range(4))
    live.set_user_attr("owner", owner())
    dead.set_user_attr("owner", gone_owner)  # a worker that was killed
    remote.set_user_attr("owner", "another-host:1:1")
    done = study.ask()
    study.tell(done, 1.0)
    snapshot = study.get_trials(deepcopy=False)  # as a worker's sweep passes it: all states
    # unknown: unowned for less than a minute
    assert R.fail_stale_trials(study, spec, trials=snapshot) == [dead.number]
    a_minute_on = datetime.now()  # as a sweep a minute after the trials were created
    assert R.fail_stale_trials(study, spec, unowned_before=a_minute_on) == [unknown.number]
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states == {live.number: "RUNNING", dead.number: "FAIL", unknown.number: "FAIL",
                      remote.number: "RUNNING", done.number: "COMPLETE"}
    assert R.fail_stale_trials(study, spec, unowned_before=a_minute_on) == []  # nothing more


def test_a_workers_sweep_leaves_a_young_unowned_trial_to_the_worker_about_to_own_it(tmp_path):
    # Optuna's ask creates a trial RUNNING and samples before the worker writes its owner; a
    # sweep by another worker in that gap failed a live trial (a fresh-clone CI run saw it)
    spec = S.resolve(str(tmp_path / "s.journal"), "s", tmp_path)
    study = optuna.create_study(study_name="s", storage=S.open_storage(spec))
    new = study.ask()
    assert R.fail_stale_trials(study, spec, unowned_before=datetime.now() - R.UNOWNED_GRACE) == []
    assert study.trials[new.number].state.name == "RUNNING"
    # a trial unowned for longer than the grace: its worker died between ask and owner
    assert R.fail_stale_trials(study, spec, unowned_before=datetime.now()) == [new.number]


@pytest.mark.parametrize("args, message", [
    (["study=x"], "worker needs storage="),
    (["storage=a.journal"], "worker needs study="),
    (["study=x", "storage=a.journal", "epochs=3"], "worker takes study=, storage=, tracking.uri="),
    (["study=", "storage=a.journal"], "worker study= must not be empty"),
])
def test_worker_arguments_are_refused_in_one_line(args, message):
    with pytest.raises(ValueError, match=message):
        parse(args)


def test_worker_of_a_missing_study_exits_2_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    assert main(["worker", "study=x", f"storage={tmp_path / 'none.journal'}"]) == 2
    assert "no journal file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_worker_refuses_a_study_no_search_started(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.journal"
    optuna.create_study(study_name="bare", storage=S.open_storage(S.resolve(str(path), "bare",
                                                                            tmp_path)))
    assert main(["worker", "study=bare", f"storage={path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: study 'bare' in journal:") and "has no base_config" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.journal"]


def test_worker_refuses_a_tracking_store_without_the_parent_run(search_cfg, tracking_uri,
                                                                tmp_path, capsys, new_store):
    from pipeline.search.sweep import run_search
    from pipeline.search.space import load_space

    # no trial figures: the refusal is about the parent run, not what its trials drew
    cfg = search_cfg("search.n_trials=1", "search.pruner.name=none", "search.trial_figures=none")
    conf = Path(__file__).resolve().parents[1] / "conf"
    space, text = load_space(cfg.search.space, conf)
    run_search(cfg, space, text, workdir=tmp_path, progress=False)
    # another store, empty (a copy of the template: the worker would otherwise run MLflow's
    # ~60 migrations on it first, a second of this test)
    other = new_store(f"sqlite:///{tmp_path / 'other.db'}")
    assert main(["worker", "study=tiny", f"storage={tmp_path / 'study.journal'}",
                 f"tracking.uri={other}"]) == 2
    assert "does not hold the study's parent run" in capsys.readouterr().err


def test_a_lost_create_race_is_tried_again_and_anything_else_raised_at_once(monkeypatch):
    import types

    import pipeline.races

    calls, pauses = [], []
    # the pauses are recorded, not slept (2 s of this test's 2 s were the second try's 1 s)
    monkeypatch.setattr(pipeline.races, "time", types.SimpleNamespace(sleep=pauses.append))

    def make(failures):
        def attempt():
            calls.append(1)
            if len(calls) <= failures:
                raise RuntimeError("duplicate key" if len(calls) < 3 else "still duplicate")
            return "made"
        return attempt

    lost = lambda exc: "duplicate" in str(exc)  # noqa: E731
    assert S.retry_lost_race(make(2), lost, pause=0.0) == "made" and len(calls) == 3
    assert pauses == [0.0, 1.0]                                  # pause, then pause + 1
    calls.clear()
    with pytest.raises(RuntimeError, match="still duplicate"):  # the third loss is raised
        S.retry_lost_race(make(3), lost, pause=0.0)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(RuntimeError, match="duplicate key"):  # not a lost race: no retry
        S.retry_lost_race(make(1), lambda exc: False, pause=0.0)
    assert len(calls) == 1
