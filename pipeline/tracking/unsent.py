"""What a run could not send when the tracking server went away, sent later (see docs/tracking.md).

The command keeps the unsent curve points and final metrics in a local JSON file
(`mlflow-unsent/<run_id>.json`, written by `pipeline/commands/unsent.py`). The next command
started against the same server replays them with `replay`, so nothing is lost, and ends the
run FAILED (it could not end it itself: the server was down), instead of leaving it RUNNING.
Not a second recovery rule: the command's process exited, so `recovery.end_abandoned_runs`
would end the run too (dead owner); replaying first sends what it kept before it is ended.
"""

from __future__ import annotations

import time
from typing import Iterable, Mapping

from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from pipeline.redact import redact
from pipeline.tracking.recovery import end_run


def points(buffer) -> list[list]:
    """A MetricBuffer's unsent points as JSON-able [key, value, timestamp, step] rows."""
    return [[m.key, m.value, m.timestamp, m.step] for m in getattr(buffer, "points", [])]


def replay(run_id: str, rows: Iterable[list], final: Mapping[str, float] | None,
           reason: str, tracking_uri: str | None = None, final_step: int = 0) -> str:
    """Send the kept rows and final metrics to the run and end it FAILED if it is still
    RUNNING; returns the run's status afterwards. MLflow's SQL store skips a metric point it
    already holds, so rows sent before the failure are not doubled."""
    client = MlflowClient(tracking_uri)
    metrics = [Metric(k, float(v), int(t), int(s)) for k, v, t, s in rows]
    now = int(time.time() * 1000)
    metrics += [Metric(k, float(v), now, int(final_step)) for k, v in (final or {}).items()]
    client.log_batch(run_id, metrics=metrics)
    run = client.get_run(run_id)
    if run.info.status == RunStatus.to_string(RunStatus.RUNNING):  # ended as recovery ends
        end_run(client, run_id, "FAILED", {"fault": redact(reason)})  # the run of a dead owner
    return client.get_run(run_id).info.status
