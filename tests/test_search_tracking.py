"""A small real study in a temp journal + a real MLflow SQLite store, read back with MlflowClient."""

import io
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from pipeline.search.record import StudyRecord
from pipeline.search.sweep import run_search
from pipeline.search.space import load_space
from pipeline.search.study import open_study
from pipeline.search import storage as S

CONF = Path(__file__).resolve().parents[1] / "conf"
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
# he trains, zeros cannot break symmetry: with n_startup_trials=1 the median pruner stops zeros.
SPACE = ("regularization.l2: {type: float, low: 1.0e-3, high: 1.0, log: true}\n"
         "regularization.keep_prob: {type: float, low: 0.7, high: 1.0}\n"
         "model.init: {type: categorical, choices: [he, zeros]}\n")
ARGS = ("search.sampler.name=random", "search.pruner.name=median",
        "search.pruner.n_startup_trials=1", "search.pruner.n_warmup_steps=0",
        "training.patience=null")


def _search(cfg):
    space, text = load_space(cfg.search.space, CONF)
    return run_search(cfg, space, text, workdir=Path("."), progress=False, out=io.StringIO())


def _study(cfg):
    spec = S.resolve(cfg.search.storage, cfg.search.study, Path("."))
    return open_study(cfg, spec, create=False)


def _children(client, result):
    return client.search_runs([result.search_experiment_id],
                              f"tags.mlflow.parentRunId = '{result.parent_run_id}'")


def test_one_child_run_per_trial_with_mapped_status_and_best_on_parent(search_cfg, tracking_uri):
    # two startup trials: the contour of l2 x keep_prob needs two complete trials
    cfg = search_cfg("search.n_trials=6", *ARGS, "search.pruner.n_startup_trials=2",
                     "search.trial_figures=best", space=SPACE)
    result = _search(cfg)
    study, client = _study(cfg), MlflowClient()
    children = {r.info.run_id: r for r in _children(client, result)}
    assert len(children) == len(study.trials) == 6
    states = [t.state.name for t in study.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    for t in study.trials:
        run = children[t.user_attrs["mlflow_run_id"]]
        assert run.info.status == STATUS[t.state.name]
        assert run.data.tags["optuna.state"] == t.state.name
        assert run.data.params["model.init"] == t.params["model.init"]
        curve = client.get_metric_history(run.info.run_id, "curves/dev_error")
        # reports only where the pruner decides; the child's curve has every evaluation
        assert set(t.intermediate_values) <= {m.step for m in curve}
        init = t.params["model.init"]
        assert run.info.run_name.startswith(f"trial-{t.number} ") and f"init={init}" in \
            run.info.run_name                             # the proposals, readable in the table
        assert run.data.tags["mlflow.note.content"].startswith(f"Trial {t.number} of study tiny")
        if t.state == TrialState.PRUNED:
            assert run.data.tags["optuna.reason"].startswith("pruned at epoch")
            assert "Pruned: pruned at epoch" in run.data.tags["mlflow.note.content"]
        else:
            assert run.data.metrics["objective"] == pytest.approx(t.value)
            assert f"**dev_error {t.value:.4f}**" in run.data.tags["mlflow.note.content"]
    # Figures (search.trial_figures=best, asked for; one worker) on exactly the best trial.
    for t in study.trials:
        plots = {a.path for a in client.list_artifacts(t.user_attrs["mlflow_run_id"], "plots")}
        assert ("plots/boundary_dev.png" in plots) == (t.number == study.best_trial.number)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    # The search has its own experiment; the training experiment holds none of its runs and
    # names it in a tag.
    search = client.get_experiment(result.search_experiment_id)
    assert search.name == "tiny-search" and parent.info.experiment_id == search.experiment_id
    assert search.tags["mlflow.experimentKind"] == "custom_model_development"
    train = client.get_experiment(result.experiment_id)
    assert train.tags["search.tiny"] == search.experiment_id != train.experiment_id
    assert client.search_runs([train.experiment_id]) == []
    assert parent.data.tags["mlflow.note.content"].startswith(
        f"Optuna search of study **tiny** towards 6 finished trials: 6 finished. Best trial "
        f"**{study.best_trial.number}**")
    assert parent.data.metrics["best_value"] == pytest.approx(study.best_value)
    assert parent.data.params["best.model.init"] == study.best_params["model.init"]
    assert float(parent.data.params["best.regularization.l2"]) == pytest.approx(
        study.best_params["regularization.l2"])
    assert parent.data.metrics["trials_pruned"] == states.count("PRUNED")
    arts = {a.path for d in ("study", "best_trial") for a in client.list_artifacts(parent.info.run_id, d)}
    assert {"study/optimization_history.png", "study/contour_l2_keep_prob.png",
            "best_trial/boundary_dev.png", "study/top_trials.txt"} <= arts


def test_resume_marks_the_dead_workers_trial_failed_and_reaches_the_target(search_cfg,
                                                                          tracking_uri,
                                                                          gone_owner):
    cfg = search_cfg("search.n_trials=3", "search.pruner.name=none")
    first = _search(cfg)
    study = _study(cfg)
    dead = study.ask()  # a worker killed mid-trial: RUNNING in Optuna and in MLflow
    dead.set_user_attr("owner", gone_owner)
    from pipeline.tracking.search_runs import StudyLogger
    run_id = StudyLogger(first.search_experiment_id, first.parent_run_id, "tiny").start_trial(
        dead.number, cfg, {})
    dead.set_user_attr("mlflow_run_id", run_id)
    second = _search(cfg.with_overrides({"search.target_trials": 5}))
    study, client = _study(cfg), MlflowClient()
    assert second.stale == (dead.number,)
    assert study.trials[dead.number].state == TrialState.FAIL
    assert client.get_run(run_id).info.status == "FAILED"
    assert second.finished == 5
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 5
    assert len(_children(client, second)) == 2  # only this invocation's new trials
    assert [p.run_id for p in StudyRecord.load(study).parent_runs] == [first.parent_run_id,
                                                                       second.parent_run_id]


def test_resume_ends_only_the_running_parents_of_dead_searches(search_cfg, tracking_uri,
                                                              gone_owner):
    from pipeline.owner import owner

    from pipeline.tracking.recovery import OWNER

    cfg = search_cfg("search.n_trials=1", "search.pruner.name=none", "search.trial_figures=none")
    first = _search(cfg)
    client = MlflowClient()
    assert client.get_run(first.parent_run_id).data.tags[OWNER] == owner()  # from creation
    # earlier parents: of dead searches (two left RUNNING, one ended, one RUNNING in the
    # training experiment, where parents went before <study>-search), of a live search, a
    # deleted one (MLflow refuses to end it) and one without an owner (nothing says whose)
    def new(experiment_id, who=gone_owner):
        tags = {} if who is None else {OWNER: who}
        return client.create_run(experiment_id, tags=tags).info.run_id

    dead = [new(first.search_experiment_id) for _ in range(3)] + [new(first.experiment_id)]
    client.set_terminated(dead[1], "FINISHED")
    live, deleted = new(first.search_experiment_id, owner()), new(first.search_experiment_id)
    unowned = new(first.search_experiment_id, None)
    client.delete_run(deleted)
    space, text = load_space(cfg.search.space, CONF)
    out = io.StringIO()
    run_search(cfg, space, text, progress=False, out=out)
    ended = [dead[0], dead[2], dead[3]]
    line = next(x for x in out.getvalue().splitlines() if x.startswith("ended "))
    assert line.startswith("ended 3 run(s) left RUNNING by a dead process: ")
    assert sorted(line.split(": ", 1)[1].split(", ")) == sorted(ended)
    for run_id in ended:
        run = client.get_run(run_id)
        assert run.info.status == "FAILED" and run.info.end_time is not None
        assert run.data.tags["fault"].startswith(f"left RUNNING by process {gone_owner} ")
    for run_id, status in [(dead[1], "FINISHED"), (first.parent_run_id, "FINISHED"),
                           (live, "RUNNING"), (deleted, "RUNNING"), (unowned, "RUNNING")]:
        run = client.get_run(run_id)
        assert run.info.status == status and "fault" not in run.data.tags


def test_n_trials_runs_that_many_more_each_time_and_a_changed_config_is_refused(search_cfg,
                                                                              tracking_uri):
    cfg = search_cfg("search.n_trials=2", "search.pruner.name=none", "search.trial_figures=none")
    first, second = _search(cfg), _search(cfg)
    assert (first.finished, first.target, second.finished, second.target) == (2, 2, 4, 4)
    parent = MlflowClient().get_run(second.parent_run_id)
    assert parent.data.tags["optuna.target_trials"] == "4"
    assert parent.data.params["search.finished_before"] == "2"
    assert len(_children(MlflowClient(), second)) == 2
    # the same study resumed with another training config is refused (this test's study, not
    # a search of its own: a search is ~1 s of the fast suite); the refusal compares the
    # study's config, not its trials
    with pytest.raises(ValueError, match=r"different config \(training.epochs: 60 -> 70\)"):
        _search(search_cfg("search.n_trials=3", "search.pruner.name=none",
                           "search.trial_figures=none", "training.epochs=70"))


def test_target_reached_runs_nothing_creates_no_run_and_says_why(search_cfg, tracking_uri,
                                                                tmp_path, capsys, monkeypatch):
    from pipeline.cli import main

    args = [*search_cfg.args("search.pruner.name=none", "search.trial_figures=none"),
            "--quiet", "--conf-dir", str(CONF)]
    assert main(["search", "n_trials=3", *args]) == 0
    client = MlflowClient()
    runs_before = client.search_runs([e.experiment_id for e in client.search_experiments()])
    journal = (tmp_path / "study.journal").read_bytes()
    capsys.readouterr()
    assert main(["search", "target_trials=3", *args]) == 0
    out = capsys.readouterr().out
    assert out == ("study tiny (journal:" + str(tmp_path / "study.journal") + ") already has 3 finished "
                   "trials, target_trials=3: nothing to run, no MLflow run created "
                   "(n_trials=N runs N more)\n")
    runs_after = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs_after) == len(runs_before) == 4        # parent + 3 trials, nothing new
    assert (tmp_path / "study.journal").read_bytes() == journal   # the study is untouched
    runner = client.create_run(runs_before[0].info.experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", runner)           # as `mlflow run -e search` does
    assert main(["search", "target_trials=3", *args]) == 0
    note = client.get_run(runner).data.tags["mlflow.note.content"]
    assert note.startswith("Nothing to run: study tiny (journal:") and "3 finished" in note
    assert client.get_run(runner).data.tags["search.nothing_to_do"] == "true"
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)  # the search took it from the env
    assert main(["search", "target_trials=4", *args]) == 0   # one short: runs exactly one
    assert _study(search_cfg()).trials[-1].number == 3 and len(_study(search_cfg()).trials) == 4


@pytest.mark.slow
def test_two_worker_processes_share_one_journal_study(search_cfg, tracking_uri):
    # Trials of ~0.4 s, so worker 0 (in this process) cannot finish them all while worker 1
    # starts (imports + data: seconds).
    cfg = search_cfg("search.n_trials=40", "search.workers=2", "search.trial_figures=none",
                     "training.epochs=800", "training.patience=null", "search.pruner.name=none")
    result = _search(cfg)
    study = _study(cfg)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 40 == result.finished
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}
    ran = [t for t in study.trials if "mlflow_run_id" in t.user_attrs]
    assert len(_children(MlflowClient(), result)) == len(ran) >= 40


def _can_reach_postgres() -> str | None:
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    try:
        psycopg2.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL at 127.0.0.1:5432/test is unreachable: {str(exc).strip()[:120]}"
    return None


# Slow (11-14 s: Optuna's schema on a server, two searches): the resume rule it exercises is
# pinned on the journal by test_n_trials_runs_that_many_more_each_time, and opening a
# PostgreSQL storage by test_faults_fast.py::test_the_postgres_claim_is_an_advisory_lock_held_
# across_processes; this is the PostgreSQL round trip end to end (the whole suite runs it).
@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_storage_runs_and_resumes_a_study(search_cfg, tracking_uri):
    reason = _can_reach_postgres()
    if reason:
        pytest.skip(reason)
    import uuid
    url = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"pytest-{uuid.uuid4().hex[:12]}"
    cfg = search_cfg("search.n_trials=2", f"search.storage={url}", f"search.study={name}",
                     "search.trial_figures=none")
    try:
        first = _search(cfg)
        second = _search(cfg.with_overrides({"search.target_trials": 3}))
        study = optuna.load_study(study_name=name, storage=S.postgres_driver(url))
        assert (first.finished, second.finished, len(study.trials)) == (2, 3, 3)
        assert first.storage == url
    finally:
        optuna.delete_study(study_name=name, storage=S.postgres_driver(url))


def test_bad_data_config_fails_before_any_study_or_run(search_cfg, tracking_uri, tmp_path, capsys,
                                                        new_store):
    from pipeline.cli import main

    code = main(["search", *search_cfg.args("data.params={n_samples:300}"), "--quiet",
                 "--conf-dir", str(CONF)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: data set 'noisy_diagonal' has no parameter 'n_samples:300'")
    assert err.count("\n") == 1
    assert not (tmp_path / "study.journal").exists()
    new_store(tracking_uri)   # (if the search made none: a copy of the template, not migrations)
    assert not MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])


def _sigterm_search_after(search_cfg, tracking_uri, tmp_path, finished: int, *overrides):
    """Start `python -m pipeline search` in a subprocess, SIGTERM it once `finished` trials are
    in the journal, and return (exit code, stderr)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = search_cfg.args("search.n_trials=500", "search.trial_figures=none", *overrides)
    # run in tmp_path (artifacts go to ./mlruns of the working directory), this checkout's code
    path = os.pathsep.join(filter(None, [str(CONF.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": path}
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "search", "--quiet", *args,
                             "--conf-dir", str(CONF)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "study.journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        text = journal.read_text() if journal.exists() else ""
        if text.count('"state":1') + text.count('"state":2') >= finished:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.slow
def test_sigterm_leaves_nothing_running_and_the_same_command_resumes(search_cfg, tracking_uri,
                                                                    tmp_path):
    returncode, err = _sigterm_search_after(search_cfg, tracking_uri, tmp_path, 3)
    assert returncode == 143, err
    assert "terminated (SIGTERM)" in err
    cfg = search_cfg("search.n_trials=500")
    study = _study(cfg)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and len(states) >= 3
    client = MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert "RUNNING" not in {r.info.status for r in runs}
    [parent] = [r for r in runs if r.data.tags.get("stage") == "search"]
    assert parent.info.status == "KILLED"
    done = len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))
    again = _search(search_cfg("search.n_trials=2", "search.trial_figures=none"))  # 2 more
    assert again.finished == done + 2 and again.stale == ()


@pytest.mark.slow
def test_sigterm_with_two_workers_leaves_no_trial_or_run_running(search_cfg, tracking_uri,
                                                                 tmp_path):
    # The parent stops its spawned workers with SIGTERM; each worker acts on it at its next
    # evaluation, so its trial ends FAIL and its child run KILLED instead of staying RUNNING.
    returncode, err = _sigterm_search_after(search_cfg, tracking_uri, tmp_path, 4,
                                            "search.workers=2", "training.epochs=400",
                                            "training.patience=null")
    assert returncode == 143, err
    study = _study(search_cfg("search.n_trials=500"))
    assert TrialState.RUNNING not in {t.state for t in study.trials}
    client = MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert "RUNNING" not in {r.info.status for r in runs}
    assert [r.info.status for r in runs if r.data.tags.get("stage") == "search"] == ["KILLED"]
