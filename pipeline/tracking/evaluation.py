"""The MLflow side of the one-time test evaluation and the model registry (no optuna here).

The once-only record of the evaluation is the study's (search/record.py); here its test metrics
and digest go on the final-test run and the study's parent run (never on trial children), and
the final-test run's model is registered with the dev gate deciding the alias.
"""

from __future__ import annotations

from typing import Any, Mapping

import mlflow
from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient

from pipeline.tracking import notes, records


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


def register(run_id: str, name: str, alias: str, gate_passed: bool, gate_text: str,
             note: str = "") -> str | None:
    """Register the run's logged model; point `alias` at it only when the dev gate passed.
    A failed gate still registers the version (tagged gate=failed) and leaves the alias where
    it was, so `models:/<name>@<alias>` keeps serving the last model that passed."""
    client = MlflowClient()
    outputs = getattr(client.get_run(run_id), "outputs", None)
    models = [m.model_id for m in (outputs.model_outputs if outputs else [])]
    if not models:  # tracking.log_model=false: nothing to register
        client.set_tag(run_id, "registry.version", "none (no model logged)")
        return None
    version = mlflow.register_model(f"models:/{models[-1]}", name).version
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, notes.registered_model_note(name, alias))
    client.update_model_version(name, version, description=note)
    client.set_model_version_tag(name, version, "gate", "passed" if gate_passed else "failed")
    client.set_model_version_tag(name, version, "gate.detail", gate_text)
    client.set_model_version_tag(name, version, "stage", "final_test")
    if gate_passed:
        client.set_registered_model_alias(name, alias, version)
    client.set_tag(run_id, "registry.version", f"{name}/{version}")
    client.set_tag(run_id, "registry.alias", alias if gate_passed else "none (gate failed)")
    return str(version)
