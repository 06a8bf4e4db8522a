"""Reading a logged run back (reproduce compares it with a fresh rerun); never writes."""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.tracking.records import metric_name


def read_run(run_id: str, curves: tuple[str, ...]) -> dict:
    """Tags, metrics, the given curves and the config text of a logged run (read-only).

    `curves` are the core's history keys (`dev_loss`); they are read under their logged names
    (`curves/dev_loss`, records.metric_name) and returned under the history keys.

    A missing run or artifact becomes a ValueError (exit code 2 at the command line)."""
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
        config = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"run {run_id} cannot be reproduced from {mlflow.get_tracking_uri()}: "
                         f"{first}") from None
    diff = ""
    if run.data.tags.get("git.dirty") == "true":
        diff = mlflow.artifacts.load_text(f"runs:/{run_id}/git/diff.patch")
    history = {k: [m.value for m in sorted(client.get_metric_history(run_id, metric_name(k)),
                                           key=lambda m: m.step)] for k in curves}
    return {"tags": run.data.tags, "metrics": run.data.metrics, "config": config,
            "diff": diff, "curves": history}
