"""Every command against a real `mlflow server` (PostgreSQL backend store, served artifacts) and
a PostgreSQL Optuna storage; an independent `worker` joining a search (tests/servers.py)."""

from collections import Counter

import pytest
from mlflow.tracking import MlflowClient

from servers import ON_SHARED_SERVER, ROOT, TINY, cli

CONF = str(ROOT / "conf")
pytestmark = [pytest.mark.slow, pytest.mark.postgres, ON_SHARED_SERVER]


def _trials(client, parent):
    return client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def test_train_search_evaluate_reproduce_through_the_server(tmp_path, tracking_server,
                                                            pg_database):
    client, exp = MlflowClient(tracking_server), "srv-all"
    base = [*TINY, f"tracking.experiment={exp}", "--conf-dir", CONF]
    train = cli(tmp_path, tracking_server, "train", "--quiet", *base)
    assert train.returncode == 0, train.stderr
    (run,) = client.search_runs([client.get_experiment_by_name(exp).experiment_id])
    assert run.info.status == "FINISHED" and 0 <= run.data.metrics["final/dev_error"] <= 1
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}

    search = cli(tmp_path, tracking_server, "search", "--quiet", "study=srv-all", "workers=2",
                 f"storage={pg_database}", "target_trials=4", *base)
    assert search.returncode == 0, search.stderr
    (parent,) = client.search_runs([client.get_experiment_by_name("srv-all-search")
                                    .experiment_id], filter_string="tags.stage = 'search'")
    trials = _trials(client, parent)
    numbers = [r.data.tags["optuna.trial_number"] for r in trials
               if r.data.tags["optuna.state"] in ("COMPLETE", "PRUNED")]
    assert parent.info.status == "FINISHED" and len(numbers) == len(set(numbers)) == 4
    assert parent.data.metrics["trials_complete"] + parent.data.metrics["trials_pruned"] == 4
    assert {r.info.status for r in trials} <= {"FINISHED", "KILLED"}
    assert len({r.data.tags.get("trial.worker") for r in trials}) >= 1

    evaluate = cli(tmp_path, tracking_server, "evaluate", "study=srv-all",
                   f"storage={pg_database}", *base)
    assert evaluate.returncode == 0, evaluate.stderr
    final = client.search_runs([client.get_experiment_by_name(exp).experiment_id],
                               filter_string="tags.stage = 'final_test'")
    assert len(final) == 1 and 0 <= final[0].data.metrics["test_error"] <= 1

    again = cli(tmp_path, tracking_server, "reproduce", run.info.run_id)
    assert again.returncode == 0, again.stderr
    assert f"run {run.info.run_id} reproduces" in again.stdout
    # nothing of the search or the commands' artifacts went to the working directory's stores
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def _wait_for(predicate, what: str, seconds: float = 300):
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _attrs(url: str, name: str) -> dict:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=url).user_attrs
    except KeyError:
        return {}


def test_an_independent_worker_joins_the_search_and_logs_under_its_one_parent(
        tmp_path, tracking_server, pg_database):
    import optuna

    client, target = MlflowClient(tracking_server), 8
    # trials of seconds (no early stop, ~5 s alone on a 2-core Xeon, 10+ s loaded): the
    # search is still running when the worker has started (~5-10 s of imports), so both
    # processes run some of the 8. Not shorter: on a faster, quiet machine the search must not
    # finish its 8 before the worker's first trial. An evaluation every 50 epochs, not 5, and
    # twice the epochs: as long a trial, but 800 evaluations instead of 4,000, each a round
    # trip to the PostgreSQL storage and the server (149 s of CPU for this test before, 9x a
    # journal study's trials of the same length)
    slow = ["training.epochs=40000", "training.eval_every=50", "training.patience=null",
            "search.pruner.name=none",
            "tracking.experiment=srv-join", "--conf-dir", CONF]
    search = cli(tmp_path, tracking_server, "search", "--quiet", "study=srv-join", *TINY,
                 f"storage={pg_database}", f"target_trials={target}", *slow, wait=False)
    def parent_run():
        assert search.poll() is None, search.communicate()  # still running
        from pipeline.search.record import StudyRecord

        return StudyRecord.from_attrs(_attrs(pg_database, "srv-join")).parent_run_id

    parent_id = _wait_for(parent_run, "the search's parent run")
    (tmp_path / "elsewhere").mkdir()  # the worker needs nothing of the search's directory
    worker = cli(tmp_path / "elsewhere", tracking_server, "worker", "study=srv-join", f"storage={pg_database}",
                 wait=False)
    out, err = worker.communicate(timeout=900)
    assert worker.returncode == 0, err
    s_out, s_err = search.communicate(timeout=900)
    assert search.returncode == 0, s_err
    assert f"parent run {parent_id}" in out and f"(target {target})" in out

    study = optuna.load_study(study_name="srv-join", storage=pg_database)
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] == target and states["RUNNING"] == 0
    owners = Counter(t.user_attrs["owner"].split(":")[1] for t in study.trials
                     if t.state.name == "COMPLETE")
    assert owners[str(worker.pid)] >= 1 and owners[str(search.pid)] >= 1  # both ran trials
    (line,) = [x for x in out.splitlines() if x.startswith("worker: ")]
    ran_here = int(line.split()[1])
    assert ran_here == owners[str(worker.pid)]
    parent = client.get_run(parent_id)
    trials = _trials(client, parent)
    numbers = [r.data.tags["optuna.trial_number"] for r in trials if r.info.status == "FINISHED"]
    assert len(numbers) == len(set(numbers)) == target  # under the ONE parent, no duplicates
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_complete"] == target
