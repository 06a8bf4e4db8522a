"""The MLflow side of a study: a parent run per invocation, a child run per trial (no optuna here).

Child runs are created with `MlflowClient.create_run` and the parent id set explicitly in the
`mlflow.parentRunId` tag: no fluent, thread-local active-run state, so workers in other
processes (or threads) attach their trials to the right parent. Each child ends with the status
mapped from its Optuna state (COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED) and an
`optuna.state` tag, so pruned and failed trials are visible as such in the runs table.
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any, Mapping

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_BATCH = 1000  # log_batch limit for metrics; params go in chunks of 100


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])


def log_metrics(client: MlflowClient, run_id: str, values: Mapping[str, float], step: int = 0):
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in values.items()]
    for i in range(0, len(items), _BATCH):
        client.log_batch(run_id, metrics=items[i:i + _BATCH])


class _Curves:
    """A `fit` callback buffering every evaluation; flushed with `log_batch` when the trial ends
    (one synchronous MLflow call per evaluation would cost more than a small trial's training)."""

    def __init__(self):
        self.points: list[Metric] = []

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self.points.extend(Metric(k, float(v), now, int(epoch)) for k, v in metrics.items())

    def flush(self, client: MlflowClient, run_id: str) -> None:
        for i in range(0, len(self.points), _BATCH):
            client.log_batch(run_id, metrics=self.points[i:i + _BATCH])
        self.points.clear()


class StudyLogger:
    """Trial -> child run of `parent_run_id`; used by the objective in every worker process."""

    def __init__(self, experiment_id: str, parent_run_id: str, study_name: str):
        self.client = MlflowClient()
        self.experiment_id, self.parent_run_id, self.study_name = (experiment_id, parent_run_id,
                                                                   study_name)
        self._curves: dict[str, _Curves] = {}

    def start_trial(self, number: int, cfg, overrides: Mapping[str, Any]) -> str:
        name = f"trial-{number}"
        tags = resolve_tags({MLFLOW_PARENT_RUN_ID: self.parent_run_id, MLFLOW_RUN_NAME: name,
                             "stage": "search_trial", "optuna.study_name": self.study_name,
                             "optuna.trial_number": str(number), "optuna.state": "RUNNING",
                             "optuna.params": json.dumps(dict(overrides), default=str)})
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        log_params(self.client, run.info.run_id, cfg.flat())
        self._curves[run.info.run_id] = _Curves()
        return run.info.run_id

    def metric_callback(self, run_id: str) -> _Curves:
        return self._curves[run_id]

    def finish_trial(self, run_id: str, state: str, *, reason: str | None = None,
                     attrs: Mapping[str, Any] = (), value: float | None = None,
                     metrics: Mapping[str, float] | None = None,
                     figures: Mapping[str, Any] | None = None) -> None:
        client = self.client
        curves = self._curves.pop(run_id, None)
        if curves:
            curves.flush(client, run_id)
        final = {f"final_{k}": v for k, v in (metrics or {}).items()
                 if isinstance(v, (int, float))}
        if value is not None:
            final["objective"] = value
        if final:
            log_metrics(client, run_id, final)
        tags = [RunTag("optuna.state", state)] + [RunTag(f"trial.{k}", str(v))
                                                  for k, v in dict(attrs).items()]
        if reason:
            tags.append(RunTag("optuna.reason", reason[:5000]))
        client.log_batch(run_id, tags=tags)
        for path, fig in (figures or {}).items():
            client.log_figure(run_id, fig, path)
        client.set_terminated(run_id, STATUS[state])


def mark_runs_failed(run_ids: list[str], reason: str) -> None:
    """Child runs of trials whose worker died (stale on resume): FAILED, with the reason."""
    client = MlflowClient()
    for run_id in run_ids:
        client.set_tag(run_id, "optuna.state", "FAIL")
        client.set_tag(run_id, "optuna.reason", reason)
        client.set_terminated(run_id, "FAILED")


def log_study_summary(parent_run_id: str, *, best: Mapping[str, Any] | None,
                      counts: Mapping[str, int], figures: Mapping[str, Any],
                      table: str, best_run_id: str | None) -> None:
    """Best params (`best.<key>` params) and value, state counts, the study's figures, the
    top-trials table, and the best trial's decision-boundary figures copied from its child."""
    client = MlflowClient()
    log_metrics(client, parent_run_id, {f"trials_{k.lower()}": v for k, v in counts.items()})
    if best:
        log_params(client, parent_run_id, {f"best.{k}": v for k, v in best["params"].items()})
        log_metrics(client, parent_run_id, {"best_value": best["value"]})
        client.set_tag(parent_run_id, "best_trial", str(best["number"]))
    for path, fig in figures.items():
        client.log_figure(parent_run_id, fig, path)
    client.log_text(parent_run_id, table, "study/top_trials.txt")
    if best_run_id:
        _copy_plots(client, best_run_id, parent_run_id)


def _copy_plots(client: MlflowClient, src: str, dst: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for art in client.list_artifacts(src, "plots"):
            if "boundary" in art.path or "confusion" in art.path:
                local = client.download_artifacts(src, art.path, tmp)
                client.log_artifact(dst, local, "best_trial")


def evaluation_tag_key(study: str) -> str:
    return f"test_evaluation.{study}"


def record_evaluation(experiment_id: str, key: str, record: Mapping[str, Any], *, count: int,
                      forced: int) -> None:
    """The evaluation as experiment tags: the last record (JSON), how many, how many forced."""
    client = MlflowClient()
    client.set_experiment_tag(experiment_id, key, json.dumps(record, default=str)[:5000])
    client.set_experiment_tag(experiment_id, f"{key}.count", str(count))
    client.set_experiment_tag(experiment_id, f"{key}.forced_count", str(forced))


def log_test_metrics(run_ids: list[str | None], metrics: Mapping[str, float],
                     record: Mapping[str, Any]) -> None:
    """Test metrics + digest on the dedicated run and the study's parent run (never children)."""
    client = MlflowClient()
    for run_id in filter(None, run_ids):
        log_metrics(client, run_id, metrics)
        client.log_batch(run_id, tags=[RunTag("test_digest", str(record["test_digest"])),
                                       RunTag("test_evaluation.run_id", str(record["run_id"])),
                                       RunTag("test_evaluation.time", str(record["time"])),
                                       RunTag("test_evaluation.forced",
                                              str(record["forced"]).lower())])


def register(run_id: str, name: str, alias: str, gate_passed: bool, gate_text: str) -> str | None:
    """Register the run's logged model; point `alias` at it only when the dev gate passed.
    A failed gate still registers the version (tagged gate=failed) and leaves the alias where
    it was, so `models:/<name>@<alias>` keeps serving the last model that passed."""
    client = MlflowClient()
    if not any(a.path == "model" for a in client.list_artifacts(run_id)) and \
            not _has_logged_model(client, run_id):
        return None
    version = mlflow.register_model(f"runs:/{run_id}/model", name).version
    client.set_model_version_tag(name, version, "gate", "passed" if gate_passed else "failed")
    client.set_model_version_tag(name, version, "gate.detail", gate_text)
    client.set_model_version_tag(name, version, "stage", "final_test")
    if gate_passed:
        client.set_registered_model_alias(name, alias, version)
    client.set_tag(run_id, "registry.version", f"{name}/{version}")
    client.set_tag(run_id, "registry.alias", alias if gate_passed else "none (gate failed)")
    return str(version)


def _has_logged_model(client: MlflowClient, run_id: str) -> bool:
    run = client.get_run(run_id)
    return bool(getattr(run, "outputs", None) and run.outputs.model_outputs)


def ui_link(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def experiment_tags(experiment_id: str) -> dict[str, str]:
    return dict(MlflowClient().get_experiment(experiment_id).tags)


def set_experiment_tag(experiment_id: str, key: str, value: str) -> None:
    MlflowClient().set_experiment_tag(experiment_id, key, value)


def log_params_dict(run_id: str, params: Mapping[str, Any]) -> None:
    log_params(MlflowClient(), run_id, params)


def log_text(run_id: str, text: str, path: str) -> None:
    MlflowClient().log_text(run_id, text, path)


def current_tracking_uri() -> str:
    return mlflow.get_tracking_uri()


def use_tracking_uri(uri: str | None) -> None:
    """Workers (spawned processes) point MLflow at the parent's store before any call."""
    if uri:
        mlflow.set_tracking_uri(uri)
