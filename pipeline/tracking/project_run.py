"""The run that `mlflow run` opens before our command starts (MLFLOW_RUN_ID in the environment).

`train` and `search` log into it. `reproduce` and a `search` with nothing to do create no run of
their own; MLflow's runner has made one anyway and marks it FINISHED (or FAILED on a non-zero
exit) when the command ends. Deleting it is not an option: the runner's final status update
then raises "must be in the 'active' state" and `mlflow run` fails (measured with MLflow 3.17,
also when the run was ended before the delete). So it is described instead: a name, tags, a
note (the run's description in the UI) and text artifacts.
"""

from __future__ import annotations

from typing import Mapping

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient

from pipeline.tracking.ui import NOTE  # the tag the MLflow UI shows as a run's description


def describe_project_run(run_id: str, *, name: str | None, note: str,
                         tags: Mapping[str, str] = (), texts: Mapping[str, str] = ()) -> None:
    """`name`: the run's new name (None keeps the runner's)."""
    client = MlflowClient()
    if name is not None:
        client.update_run(run_id, name=name)
    client.log_batch(run_id, tags=[RunTag(NOTE, note)] +
                     [RunTag(k, str(v)) for k, v in dict(tags).items()])
    for path, text in dict(texts).items():
        client.log_text(run_id, text, path)
