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
        why = not_reproducible(client, run)
        if why:
            raise ValueError(f"run {run_id} {why}")
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


# Runs that trained nothing themselves: what they are, and what to reproduce instead.
_HOLDS_NO_TRAINING = {
    "experiment": ("is the parent run of lesson {lesson}: it trained nothing itself; "
                   "reproduce one of its child runs{child}"),
    "search": ("is the parent run of search {study}: it trained nothing itself; reproduce one "
               "of its trial runs{child}"),
    "lesson_pointer": "is the `mlflow run` record of lesson {lesson}: it trained nothing itself",
    "search_pointer": "is the `mlflow run` record of search {study}: it trained nothing itself",
    "reproduce": "is the record of a reproduction check (of run {of}): it trained nothing itself",
}


def not_reproducible(client: MlflowClient, run) -> str | None:
    """Why `run` cannot be rerun and compared (one line, after "run <id> "), or None.

    A parent or pointer run holds no training; a training run that did not finish (KILLED,
    FAILED, still RUNNING) has no final numbers. Trials are judged by their Optuna state
    (commands/reproduce.trial_state). Without this the answer was "Failed to download
    artifacts from path 'config.yaml'"."""
    tags = run.data.tags
    stage = tags.get("stage", "")
    if stage in _HOLDS_NO_TRAINING:
        child = _a_child(client, run)
        return _HOLDS_NO_TRAINING[stage].format(
            lesson=tags.get("lesson.name", "?"), study=tags.get("optuna.study_name", "?"),
            of=tags.get("reproduce.of", "?"),
            child=f", e.g. `reproduce {child}`" if child else " (it has none)")
    status = run.info.status
    if stage != "search_trial" and status != "FINISHED":
        what = ("is still RUNNING (or its process died without ending it)" if status == "RUNNING"
                else f"ended {status}")
        return (f"{what}: it has no final numbers to reproduce; train its config afresh "
                "instead (`train` with its overrides)")
    return None


def _a_child(client: MlflowClient, run) -> str | None:
    """One FINISHED child run of `run` (in its experiment), or None."""
    found = client.search_runs(
        [run.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{run.info.run_id}' and attributes.status = 'FINISHED'",
        max_results=1)
    return found[0].info.run_id if found else None
