"""The MLflow side of the one-time test evaluation (no optuna here).

The evaluation is recorded as experiment tags (the once-only record that a second `evaluate`
reads) and its test metrics go on the final-test run and the study's parent run (never on trial
children). Registering the model and the champion/challenger rules: tracking/registry.py.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient

from pipeline.tracking import records


def experiment_tags(experiment_id: str) -> dict[str, str]:
    return dict(MlflowClient().get_experiment(experiment_id).tags)


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
        records.log_metrics(run_id, metrics, client=client)
        client.log_batch(run_id, tags=[RunTag("test_digest", str(record["test_digest"])),
                                       RunTag("test_evaluation.run_id", str(record["run_id"])),
                                       RunTag("test_evaluation.time", str(record["time"])),
                                       RunTag("test_evaluation.forced",
                                              str(record["forced"]).lower())])
