"""The MLflow side of a lesson: one child run per (arm, seed) under the parent, and the summary
(table, per-arm metrics, figures, verdict) on the parent.

Children are created with `MlflowClient.create_run` and an explicit `mlflow.parentRunId` tag
(MLflow's fluent active run is per thread), in the process that runs the lesson, after their
job finished: workers never write to the store, and a child is never left RUNNING.
"""

from __future__ import annotations

import json
import re
import time
from typing import Mapping

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from pipeline.tracking import records as R
from pipeline.tracking.ui import NOTE  # the run's description (markdown) in the MLflow UI

# Curves a child keeps: the learning curves, plus gradient norms for the gradient-flow lesson.
CURVES = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_error",
          "train_objective")


def metric_key(text: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / space and colon."""
    return re.sub(r"[^\w\-./ :]", "_", text)


class LessonLogger:
    """`on_result` of `run_lesson`: each finished (arm, seed) becomes a FINISHED child run."""

    def __init__(self, experiment_id: str, parent_run_id: str, lesson_name: str,
                 grad_curves: bool = False):
        self.client = MlflowClient()
        self.experiment_id, self.parent, self.lesson = experiment_id, parent_run_id, lesson_name
        self.grad_curves = grad_curves
        self.children: dict[tuple[str, int], str] = {}

    def __call__(self, run) -> None:
        from pipeline.config import config_from_yaml
        name = f"{run.arm}-seed{run.seed}"
        tags = resolve_tags({MLFLOW_PARENT_RUN_ID: self.parent, MLFLOW_RUN_NAME: name,
                             "stage": "lesson_arm", "lesson.name": self.lesson,
                             "lesson.arm": run.arm, "lesson.seed": str(run.seed),
                             "lesson.train_command": "python -m pipeline train "
                             + " ".join(f"'{o}'" for o in run.overrides),
                             "stop_message": run.stop_message[:5000],
                             "diagnosis.verdict": run.diagnosis or "n/a",
                             "blas.threads": str(run.blas_threads)})
        child = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self.children[(run.arm, run.seed)] = child
        status = "FAILED"
        try:
            cfg = config_from_yaml(run.cfg_yaml)
            R.log_params(child, cfg.flat(), self.client)
            self.client.log_text(child, run.cfg_yaml, "config.yaml")
            self._metrics(child, run)
            if run.report:
                self.client.log_text(child, run.report + "\n", "gradcheck.txt")
            status = "FINISHED"
        finally:  # the status is written even if logging is interrupted
            self.client.set_terminated(child, status)

    def _metrics(self, child: str, run) -> None:
        now = int(time.time() * 1000)
        keep = CURVES + (tuple(k for k in run.history if k.startswith("grad_norm_W"))
                         if self.grad_curves else ())
        # the same names as a training run's (curves/, gradients/, final/: records.metric_name)
        points = [Metric(R.metric_name(k), float(v), now, int(e)) for k in keep
                  if k in run.history for e, v in zip(run.history["epoch"], run.history[k])]
        finals = {f"final/{k}": v for k, v in run.metrics.items()}
        finals["seconds"] = run.seconds
        points += [Metric(metric_key(k), float(v), now, 0) for k, v in finals.items()]
        self.client.log_batch(child, metrics=points)


def log_summary(parent_run_id: str, result, *, lesson_yaml: str, seconds: float) -> None:
    """Table (csv, md, and `<arm>.<metric>_<stat>` metrics), figures, verdict on the parent."""
    client = MlflowClient()
    table = result.table
    values = {}
    for arm, row in table.iterrows():
        for col, v in row.items():
            if col not in ("optimistic", "n_seeds") and v == v:  # NaN (no gradient) is left out
                values[metric_key(f"{arm}.{col}")] = float(v)
    values["lesson.seconds"] = seconds
    values["lesson.held"] = float(result.verdict.held)
    R.log_metrics(parent_run_id, values, client=client)
    for path, text in result.texts.items():
        client.log_text(parent_run_id, text, path)
    client.log_text(parent_run_id, lesson_yaml, "lesson/lesson.yaml")
    for path, fig in result.figures.items():
        client.log_figure(parent_run_id, fig, path)
    verdict = result.verdict
    note = "\n".join([f"**{verdict.line}**", ""] + [
        f"- {'met' if c.passed else 'NOT met'}: {c.text}" for c in verdict.checks])
    R.set_tags(parent_run_id, {"lesson.verdict": verdict.line, NOTE: note,
                               "lesson.held": str(verdict.held).lower()}, client)


def parent_params(lesson, seeds: int, workers: int, overrides: list[str]) -> Mapping[str, str]:
    return {"lesson.name": lesson.name, "lesson.kind": lesson.kind, "lesson.seeds": str(seeds),
            "lesson.workers": str(workers), "lesson.arms": json.dumps(lesson.arm_names()),
            "lesson.overrides": json.dumps(list(overrides))}
