"""Runs a dead process (or a dead tracking server) left RUNNING, ended when the next command
finds them: parent runs of a search process that died, child runs of trials that are over."""

from __future__ import annotations

import re

from mlflow.tracking import MlflowClient

from pipeline.redact import redact


def run_status(run_id: str) -> str | None:
    """The run's status, None when this store has no such run."""
    try:
        return MlflowClient().get_run(run_id).info.status
    except Exception as exc:  # RESOURCE_DOES_NOT_EXIST; a dead server is raised as such
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


_IDS_PER_SEARCH = 500  # bounds the filter string of one search
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")  # MLflow's own rule: nothing else is a run


def end_if_running(run_ids: list[str], experiment_ids: list[str], reason: str,
                   status: str = "FAILED") -> list[str]:
    """End each run that is still RUNNING with `status` and a `fault` tag; returns those ended.
    Runs already ended (or deleted: MLflow refuses writes to them) are left as they are, and
    so are runs outside `experiment_ids`. The RUNNING ones are found with one search per
    `_IDS_PER_SEARCH` ids: a resumed search checks every parent its study ever had, and one
    `get_run` each cost a request per earlier search."""
    client = MlflowClient()
    ids = [r for r in dict.fromkeys(run_ids) if isinstance(r, str) and _RUN_ID.fullmatch(r)]
    experiments = list(dict.fromkeys(e for e in experiment_ids if e is not None))
    if not experiments:
        return []
    running: set[str] = set()
    for start in range(0, len(ids), _IDS_PER_SEARCH):
        chunk = ids[start:start + _IDS_PER_SEARCH]
        quoted = ", ".join(f"'{r}'" for r in chunk)
        running.update(run.info.run_id for run in client.search_runs(
            experiments, max_results=len(chunk),
            filter_string=f"attributes.status = 'RUNNING' and attributes.run_id IN ({quoted})"))
    ended = [r for r in ids if r in running]
    for run_id in ended:
        client.set_tag(run_id, "fault", redact(reason))
        client.set_terminated(run_id, status)
    return ended


def end_trial_runs(experiment_id: str, study: str, states: dict[int, str]) -> list[str]:
    """Child runs left RUNNING although their trial is over in Optuna (`states`: trial number ->
    Optuna state name): the worker died between the two writes, or the tracking server was
    down when it tried to end the run. Ended with the status the trial's state maps to, and a
    `fault` tag. Trials still RUNNING, or unknown here, are left to their worker. One query."""
    from pipeline.tracking.search_runs import STATUS
    from functools import partial

    from pipeline.tracking import records
    from pipeline.tracking.store import retry_lost_create

    client, ended = MlflowClient(), []
    runs = client.search_runs(
        [experiment_id], max_results=1000,
        filter_string=f"attributes.status = 'RUNNING' and tags.stage = 'search_trial' "
                      f"and tags.`optuna.study_name` = '{study}'")
    for run in runs:
        state = states.get(int(run.data.tags.get("optuna.trial_number", -1)))
        if state in STATUS:
            # every live worker that sees the new FAIL ends the same run: on a tracking server
            # the slower one's tag insert lost with "duplicate key ... tag_pk" and the worker
            # exited 2; tried again, the write updates the row the other one made
            retry_lost_create(partial(records.set_tags, run.info.run_id, {
                "optuna.state": state,
                "fault": f"trial {state} in Optuna, run left RUNNING by its worker (ended by "
                         "the next search or worker)"}, client))
            client.set_terminated(run.info.run_id, STATUS[state])
            ended.append(run.info.run_id)
    return ended
