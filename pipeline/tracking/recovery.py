"""Runs a dead process left RUNNING, found and ended by the next command on the same store.

A command killed with -9 (or by the OOM killer, or a lost machine) cannot end its runs; MLflow
shows them RUNNING forever. Every run any command creates (train, evaluate, a lesson's parent
and children, a search's parent and trials, cache runs) carries the tag `pipeline.owner`
(`owned`: "<host>:<pid>:<start>", pipeline/owner.py) from its creation, and every command
that opens a store calls `end_abandoned_runs` once for the experiments it is about to write
into, before it creates its own run. One query finds the RUNNING runs there; ended FAILED
with a `fault` tag saying why are:

- runs whose owner is a dead process on this host;
- given `trial_states` (a search, a worker: trial number -> Optuna state name of `study`),
  the search-trial runs of that study whose trial is over in Optuna: the worker died between
  the two writes, or the tracking server was down when it tried to end the run. They end
  with the status the trial's state maps to (`TRIAL_STATUS`), as a live worker would.

Left alone: runs whose owner is alive, runs owned on another host (a process there cannot be
checked from here), and runs without an owner (made by an older version, by `mlflow run`'s
runner, or by a user's own code: nothing says who would end them), except those the caller
names in `untagged_dead`: a search's parents that an older version recorded, with their
owners, in the study instead (pipeline/search/recovery.py decides which are dead).
"""

from __future__ import annotations

from functools import partial
from typing import Collection, Iterator, Mapping

from mlflow.tracking import MlflowClient

from pipeline.owner import owner, owner_alive
from pipeline.tracking import records
from pipeline.tracking.store import retry_lost_create

OWNER = "pipeline.owner"
# An Optuna trial's state -> the status of its child run (search_runs.py ends them so too).
TRIAL_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_PAGE = 1000  # MLflow's largest page of search results


def owned(tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """`tags` plus this process as the run's owner: pass it to every run created."""
    return {**(tags or {}), OWNER: owner()}


def end_abandoned_runs(experiment_ids, *, study: str | None = None,
                       trial_states: Mapping[int, str] | None = None, out=None,
                       untagged_dead: Collection[str] = ()) -> list[str]:
    """End the runs of `experiment_ids` that a dead process left RUNNING (module doc); returns
    their ids, in the order found. `out`: where to say so in one line (nothing when none)."""
    experiments = list(dict.fromkeys(e for e in experiment_ids if e is not None))
    if not experiments:
        return []
    client, ended = MlflowClient(), []
    for run in _running(client, experiments):
        verdict = _abandoned(run, study, trial_states or {}, untagged_dead)
        if verdict is not None:
            status, tags = verdict
            end_run(client, run.info.run_id, status, tags)
            ended.append(run.info.run_id)
    if ended and out is not None:
        print(f"ended {len(ended)} run(s) left RUNNING by a dead process: {', '.join(ended)}",
              file=out, flush=True)
    return ended


def end_run(client: MlflowClient, run_id: str, status: str, tags: Mapping[str, str]) -> None:
    """Tags (with `fault`), then the status. Every live process that finds the same run ends
    it: on a tracking server the slower one's tag insert lost with "duplicate key ... tag_pk"
    and the command exited 2; tried again, the write updates the row the other one made."""
    retry_lost_create(partial(records.set_tags, run_id, tags, client))
    client.set_terminated(run_id, status)


def _running(client: MlflowClient, experiments: list[str]) -> Iterator:
    """The RUNNING runs of `experiments`: one query (one request per 1000 runs)."""
    token = None
    while True:
        page = client.search_runs(experiments, "attributes.status = 'RUNNING'",
                                  max_results=_PAGE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _abandoned(run, study: str | None, trial_states: Mapping[int, str],
               untagged_dead: Collection[str]):
    """(status, tags) to end `run` with, or None to leave it alone."""
    tags = run.data.tags
    if study is not None and tags.get("stage") == "search_trial" \
            and tags.get("optuna.study_name") == study:
        state = trial_states.get(_int(tags.get("optuna.trial_number")))
        if state in TRIAL_STATUS:
            return TRIAL_STATUS[state], {
                "optuna.state": state,
                "fault": f"trial {state} in Optuna, run left RUNNING by its worker (ended by "
                         "the next search or worker)"}
    who = tags.get(OWNER)
    if owner_alive(who) is False:
        return "FAILED", {"fault": f"left RUNNING by process {who} (host:pid:start), which "
                                   "is gone; ended by the next command on this store"}
    if who is None and run.info.run_id in untagged_dead:
        return "FAILED", {"fault": "left RUNNING by a search process that is gone (its owner "
                                   "recorded in the study by an older version); ended by the "
                                   "next search"}
    return None


def _int(text: str | None) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
