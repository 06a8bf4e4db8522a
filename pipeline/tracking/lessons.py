"""The MLflow side of a lesson: one child run per (arm, seed) under the parent. The lesson's
experiment and what its parent shows (verdict, table, figures) are in lesson_parent.py.

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

from pipeline.curve_points import CurvePoints
from pipeline.redact import redact
from pipeline.tracking import records as R
from pipeline.tracking.recovery import owned

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
        tags = resolve_tags(owned({MLFLOW_PARENT_RUN_ID: self.parent, MLFLOW_RUN_NAME: name,
                             "stage": "lesson_arm", "lesson.name": self.lesson,
                             "lesson.arm": run.arm, "lesson.seed": str(run.seed),
                             "lesson.train_command": "python -m pipeline train "
                             + " ".join(f"'{o}'" for o in run.overrides),
                             "stop_message": run.stop_message[:5000],
                             "diagnosis.verdict": run.diagnosis or "n/a",
                             **reproduction_tags(run)}))
        child = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self.children[(run.arm, run.seed)] = child
        status = "FAILED"
        try:
            cfg = config_from_yaml(run.cfg_yaml)
            R.log_params(child, cfg.flat(), self.client)
            self.client.log_text(child, redact(run.cfg_yaml), "config.yaml")
            self._metrics(child, run)
            if run.report:
                self.client.log_text(child, run.report + "\n", "gradcheck.txt")
            status = "FINISHED"
        finally:  # the status is written even if logging is interrupted
            self.client.set_terminated(child, status)

    def failed(self, jobs) -> None:
        """(arm, seed) jobs given up (their worker died twice, runner's `JobsFailed.failed`):
        a FAILED child each, with why, and their count on the parent."""
        for job in jobs:
            name = f"{job.arm}-seed{job.seed}"
            tags = owned({MLFLOW_PARENT_RUN_ID: self.parent, MLFLOW_RUN_NAME: name,
                          "stage": "lesson_arm", "lesson.name": self.lesson,
                          "lesson.arm": job.arm, "lesson.seed": str(job.seed),
                          "failure": job.reason[:5000]})
            child = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
            self.client.set_terminated(child.info.run_id, "FAILED")
        self.client.set_tag(self.parent, "lesson.failed_jobs", str(len(jobs)))

    def _metrics(self, child: str, run) -> None:
        now = int(time.time() * 1000)
        keep = CURVES + (tuple(k for k in run.history if k.startswith("grad_norm_W"))
                         if self.grad_curves else ())
        # every evaluation (CurvePoints(): stride 1; a lesson's claims read whole curves),
        # named as a training run's (curves/, gradients/, final/: records.metric_name)
        points = R.history_metrics({"epoch": run.history.get("epoch", []),
                                    **{k: run.history[k] for k in keep if k in run.history}},
                                   CurvePoints())
        finals = {f"final/{k}": v for k, v in run.metrics.items()}
        finals["seconds"] = run.seconds
        points += [Metric(metric_key(k), float(v), now, 0) for k, v in finals.items()]
        self.client.log_batch(child, metrics=points)


def reproduction_tags(run) -> dict[str, str]:
    """What `reproduce` compares, as a training run records it: the code (git commit, dirty,
    diff digest) and package versions of this process (the workers run the same code), the
    data digests and BLAS thread count where the job ran, the BLAS library, the stop reason.
    Without them `reproduce` of a child matched every number and still said "does NOT
    reproduce" (14 of 27 checks: nothing logged to compare)."""
    from pipeline import threads
    from pipeline.tracking.reproducible import source_tags

    tags = source_tags()
    tags.update({f"data.digest.{split}": d for split, d in run.digests.items()})
    if "name: table" in run.cfg_yaml:  # a table's file digest (generators have none)
        from pipeline.config import config_from_yaml
        from pipeline.tracking.training import file_digest_tags

        tags.update(file_digest_tags(config_from_yaml(run.cfg_yaml)))
    tags.update({"blas.threads": str(run.blas_threads), "blas.library": threads.library()})
    if run.stop_reason:
        tags["stop_reason"] = run.stop_reason
    return tags


def parent_params(lesson, seeds: int, workers: int, overrides: list[str]) -> Mapping[str, str]:
    return {"lesson.name": lesson.name, "lesson.kind": lesson.kind, "lesson.seeds": str(seeds),
            "lesson.workers": str(workers), "lesson.arms": json.dumps(lesson.arm_names()),
            "lesson.overrides": json.dumps(list(overrides))}
