"""The MLflow side of the one-time test evaluation (no optuna here).

The once-only record of the evaluation is the study's (search/record.py); here its test metrics
and digest go on the final-test run and the study's parent run (never on trial children).
Registering the model and the champion/challenger rules: tracking/registry.py.
"""

from __future__ import annotations

from typing import Any, Mapping

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient

from pipeline.tracking import records


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
