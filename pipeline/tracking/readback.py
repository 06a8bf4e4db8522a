"""Reading a logged run back (reproduce compares it with a fresh rerun); never writes."""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.redact import redact
from pipeline.tracking.records import metric_name
from pipeline.tracking.reproducible import NOT_RECORDED, diff_digest, unpack_config


def read_run(run_id: str, curves: tuple[str, ...]) -> dict:
    """Tags, metrics, params, the given curves (values and their steps) and the config text of a
    logged run (read-only), plus the digest of its uncommitted changes (`diff_digest`).

    The config is the `config.yaml` artifact of a training run, or the `config.json` TAG of a
    trial child run (tracking/reproducible.py); likewise the diff: the `git/diff.patch`
    artifact, or the trial's `git.diff_digest` tag.
    `curves` are the core's history keys (`dev_loss`); they are read under their logged names
    (`curves/dev_loss`, records.metric_name) and returned under the history keys.

    A missing run or artifact becomes a ValueError (exit code 2 at the command line)."""
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
        tags = run.data.tags
        config = (unpack_config(tags["config.json"]) if "config.json" in tags else
                  mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml"))
        digest = tags.get("git.diff_digest")
        if digest is None and tags.get("git.dirty") == "true":
            digest = diff_digest(mlflow.artifacts.load_text(f"runs:/{run_id}/git/diff.patch"))
    except MlflowException as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"run {run_id} cannot be reproduced from "
                         f"{redact(mlflow.get_tracking_uri())}: {redact(first)}") from None
    if config.startswith(NOT_RECORDED):
        raise ValueError(f"run {run_id} cannot be reproduced: its config was "
                         f"{config[len(NOT_RECORDED):]}")
    history = {k: sorted(client.get_metric_history(run_id, metric_name(k)),
                         key=lambda m: m.step) for k in curves}
    return {"tags": tags, "metrics": run.data.metrics, "params": run.data.params,
            "config": config,
            "diff_digest": digest or "none",
            "curves": {k: [m.value for m in v] for k, v in history.items()},
            "steps": {k: [m.step for m in v] for k, v in history.items()}}
