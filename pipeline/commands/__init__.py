"""One module per sub-command (`add_arguments`, `run`); shared environment reading lives here."""

import os


def project_experiment() -> str | None:
    """Under `mlflow run` the project runner has already created the run (MLFLOW_RUN_ID) in the
    experiment it chose (--experiment-name, else Default): the command logs into that run and
    experiment instead of opening new ones. None outside `mlflow run`."""
    return os.environ.get("MLFLOW_EXPERIMENT_ID") if os.environ.get("MLFLOW_RUN_ID") else None
