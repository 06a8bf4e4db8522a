"""Runs a dead process left RUNNING, ended when the next command finds them."""

from __future__ import annotations

from mlflow.tracking import MlflowClient


def end_if_running(run_ids: list[str], reason: str, status: str = "FAILED") -> list[str]:
    """End each run that is still RUNNING with `status` and a `fault` tag; returns those ended.
    Runs already ended (or deleted) are left as they are."""
    client, ended = MlflowClient(), []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except Exception:  # deleted or from another store: nothing to end
            continue
        if run.info.status == "RUNNING":
            client.set_tag(run_id, "fault", reason)
            client.set_terminated(run_id, status)
            ended.append(run_id)
    return ended
