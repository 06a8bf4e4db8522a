"""The MLflow side of a study: a parent run per invocation, a child run per trial (no optuna here).

Child runs are created with `MlflowClient.create_run` and the parent id set explicitly in the
`mlflow.parentRunId` tag: no fluent, thread-local active-run state, so workers in other
processes (or threads) attach their trials to the right parent. Each child ends with the status
mapped from its Optuna state (COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED) and an
`optuna.state` tag, so pruned and failed trials are visible as such in the runs table.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from pipeline.curve_points import CurvePoints
from pipeline.redact import redact
from pipeline.tracking import notes, records, reproducible, ui
from pipeline.tracking.recovery import TRIAL_STATUS, owned
from pipeline.tracking.runs import without_ipython_probe

STATUS = TRIAL_STATUS
# Curves a child run keeps: the learning curves. Gradient norms and activation statistics
# (11 more series) made the SQLite writes 0.37 s of a 0.67 s trial; the final evaluation run
# logs every series through log_training.
# How many points each keeps: pipeline/curve_points.py (CurvePoints.of_trial).
TRIAL_CURVES = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_error")


@dataclass
class _Trial:
    """A trial's child run until it ends: what its one `log_batch` will write."""
    number: int
    overrides: dict
    objective: str
    params: list                 # the trial's config as MLflow params
    points: CurvePoints          # which evaluations its curves keep
    evaluations: list = field(default_factory=list)  # (epoch, {curve: value}) of every one

    def curve_points(self, reported) -> list[Metric]:
        """The kept evaluations' points: on the stride, the last, and those `reported` to
        the pruner (its evidence), known only now."""
        epochs = [epoch for epoch, _ in self.evaluations]
        now = int(time.time() * 1000)
        return [Metric(records.metric_name(k), float(v), now, epoch)
                for epoch, values in (self.evaluations[i]
                                      for i in self.points.kept(epochs, also=reported))
                for k, v in values.items()]


class StudyLogger:
    """Trial -> child run of `parent_run_id`; used by the objective in every worker process."""

    def __init__(self, experiment_id: str, parent_run_id: str, study_name: str):
        self.client = MlflowClient()
        self.experiment_id, self.parent_run_id, self.study_name = (experiment_id, parent_run_id,
                                                                   study_name)
        self._trials: dict[str, _Trial] = {}  # run id -> the trial it logs, until it ends
        self.prepared = None  # the worker's data (no test split), for the trials' digests

    def start_trial(self, number: int, cfg, overrides: Mapping[str, Any]) -> str:
        """Create the child run (RUNNING, with the trial's values in `optuna.params`). Its
        params, curves, final metrics and tags are written in one `log_batch` when the trial
        ends: each SQLite write is a transaction with a sync, and a default trial used to
        spend more time in its six writes than in its training."""
        name = notes.trial_name(number, overrides)
        with without_ipython_probe():  # a worker's first trial paid for importing IPython
            tags = resolve_tags(owned({MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                                 MLFLOW_RUN_NAME: name, "stage": "search_trial",
                                 "optuna.study_name": self.study_name,
                                 "optuna.trial_number": str(number), "optuna.state": "RUNNING",
                                 "optuna.params": json.dumps(dict(overrides), default=str),
                                 **reproducible.trial_tags(cfg, self.prepared)}))
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        from pipeline import stages

        self._trials[run.info.run_id] = _Trial(
            number, dict(overrides), cfg.search.objective,
            [Param(k, str(v)[:records.PARAM_LIMIT]) for k, v in cfg.flat().items()],
            CurvePoints.of_trial(stages.settings(cfg)))
        return run.info.run_id

    def metric_callback(self, run_id: str):
        """A `fit` callback keeping the TRIAL_CURVES of every evaluation: which ones the run
        logs is decided when the trial ends (the steps reported to the pruner are kept too)."""
        evaluations = self._trials[run_id].evaluations

        def curves(epoch: int, metrics: Mapping[str, float]) -> None:
            evaluations.append((int(epoch), {k: metrics[k] for k in TRIAL_CURVES
                                             if k in metrics}))
        return curves

    def finish_trial(self, run_id: str, state: str, *, reason: str | None = None,
                     attrs: Mapping[str, Any] = (), value: float | None = None,
                     metrics: Mapping[str, float] | None = None,
                     figures: Mapping[str, Any] | None = None, reported=(),
                     status: str | None = None) -> None:
        """Curves (CurvePoints.of_trial; `reported`: the pruner's evidence), params, metrics,
        tags, note in few `log_batch` calls; then `status` (default: that of `state`)."""
        client = self.client
        try:
            trial = self._trials.pop(run_id, None)
            points, params = [], []
            if trial:
                points, params = trial.curve_points(reported), trial.params
            final = {f"final/{k}": v for k, v in (metrics or {}).items()
                     if isinstance(v, (int, float))}
            if value is not None:
                final["objective"] = value
            now = int(time.time() * 1000)
            points += [Metric(k, float(v), now, 0) for k, v in final.items()]
            tags = [RunTag("optuna.state", state)] + [RunTag(f"trial.{k}", str(v))
                                                      for k, v in dict(attrs).items()]
            if reason:
                tags.append(RunTag("optuna.reason", redact(reason)[:5000]))
            if trial:
                tags.append(RunTag(ui.NOTE, notes.trial_note(
                    self.study_name, trial.number, trial.overrides, state, reason, value,
                    trial.objective, metrics)))
            # one call: the client splits it by MLflow's own limits (1000 entities,
            # 100 params/tags per request)
            client.log_batch(run_id, metrics=points, params=params, tags=tags)
            if figures:
                records.log_figures(run_id, figures, client)
        finally:  # the status is written even if logging is interrupted
            client.set_terminated(run_id, status or STATUS[state])

    def log_figures(self, run_id: str, figures: Mapping[str, Any]) -> None:
        """Figures drawn after the trial ended (search.trial_figures=best)."""
        records.log_figures(run_id, figures, self.client)


def search_experiment(main_experiment_id: str, study: str) -> str:
    """The study's own experiment, `<study>-search` (created, or restored if deleted), so a
    search's parent and trial runs never push the training runs behind the runs table's
    "Load more". Both experiments link to each other (tag `search.<study>` on the training
    experiment, the description of the search one)."""
    client = MlflowClient()
    main = client.get_experiment(main_experiment_id)
    name = f"{study}-search"
    found = client.get_experiment_by_name(name)
    if found is None:
        experiment_id = client.create_experiment(
            name, artifact_location=_beside(main.artifact_location, main_experiment_id, name),
            tags={"train_experiment_id": main_experiment_id})
    else:
        experiment_id = found.experiment_id
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    ui.set_experiment_ui(experiment_id, notes.search_experiment_note(study, main.name,
                                                                     main_experiment_id),
                         search=True, client=client)
    if main.tags.get(f"search.{study}") != experiment_id:
        client.set_experiment_tag(main_experiment_id, f"search.{study}", experiment_id)
    return experiment_id


def _beside(location: str, experiment_id: str, name: str) -> str | None:
    """The artifact location next to the training experiment's (`.../mlruns/1` ->
    `.../mlruns/<name>`). MLflow's own default would resolve `./mlruns` against the working
    directory of the process creating the experiment, which under `mlflow run` is the project
    checkout. A location not laid out as `<root>/<id>` is left to MLflow (None)."""
    head, sep, last = (location or "").rstrip("/").rpartition("/")
    if not sep or last != experiment_id:
        return None
    return f"{head}/{name}"


def describe_search(parent_run_id: str, text: str) -> None:
    ui.set_run_note(parent_run_id, text)


def link_pointer(pointer_run_id: str, *, study: str, experiment_id: str, parent_run_id: str,
                 text: str, best_value: float | None) -> None:
    """Under `mlflow run -e search` the runner's run (in the training experiment) becomes a
    pointer: named as the parent, tagged with the search experiment and parent run, and
    described with the result and a link to the parent, which holds the trials."""
    client = MlflowClient()
    link = ui.ui_links("", experiment_id, parent_run_id)["run"].lstrip("/")
    # the parent's name (`search-<study> trials a-b`): each call's pointer is told apart too
    client.update_run(pointer_run_id, name=client.get_run(parent_run_id).info.run_name)
    client.log_batch(pointer_run_id, tags=[
        RunTag("stage", "search_pointer"), RunTag("optuna.study_name", study),
        RunTag("search.experiment_id", experiment_id),
        RunTag("search.parent_run_id", parent_run_id),
        RunTag(ui.NOTE, f"{text}\n\nThe search's parent run and its trials are in experiment "
                        f"`{study}-search`: [open the parent run]({link}).")])
    if best_value is not None:
        records.log_metrics(pointer_run_id, {"best_value": best_value}, client=client)


def log_study_summary(parent_run_id: str, *, best: Mapping[str, Any] | None,
                      counts: Mapping[str, int], figures: Mapping[str, Any],
                      table: str, best_run_id: str | None) -> None:
    """Best params (`best.<key>` params) and value, state counts, the study's figures, the
    top-trials table, and the best trial's decision-boundary figures copied from its child."""
    client = MlflowClient()
    records.log_metrics(parent_run_id, {f"trials_{k.lower()}": v for k, v in counts.items()},
                        client=client)
    if best:
        records.log_params(parent_run_id, {f"best.{k}": v for k, v in best["params"].items()},
                           client=client)
        records.log_metrics(parent_run_id, {"best_value": best["value"]}, client=client)
        client.set_tag(parent_run_id, "best_trial", str(best["number"]))
    records.log_figures(parent_run_id, figures, client)
    client.log_text(parent_run_id, table, "study/top_trials.txt")
    if best_run_id:
        _copy_plots(client, best_run_id, parent_run_id)


def _copy_plots(client: MlflowClient, src: str, dst: str) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr clean
    with tempfile.TemporaryDirectory() as tmp:
        for art in client.list_artifacts(src, "plots"):
            if "boundary" in art.path or "confusion" in art.path:
                local = client.download_artifacts(src, art.path, tmp)
                client.log_artifact(dst, local, "best_trial")


def log_text(run_id: str, text: str, path: str) -> None:
    MlflowClient().log_text(run_id, text, path)


def use_tracking_uri(uri: str | None) -> None:
    """Workers (spawned processes) point MLflow at the parent's store before any call. Only
    when it differs: pinning the URI in-process would outlive a changed $MLFLOW_TRACKING_URI."""
    if uri and mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
