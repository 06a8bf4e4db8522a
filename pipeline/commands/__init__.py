"""One module per sub-command (`add_arguments`, `run`); shared environment reading lives here."""

import os


def project_experiment() -> str | None:
    """Under `mlflow run` the project runner has already created the run (MLFLOW_RUN_ID) in the
    experiment it chose (--experiment-name, else Default): the command logs into that run and
    experiment instead of opening new ones. None outside `mlflow run`."""
    return os.environ.get("MLFLOW_EXPERIMENT_ID") if os.environ.get("MLFLOW_RUN_ID") else None


def take_project_run() -> str | None:
    """Under `mlflow run`: the runner's run id, removed from the environment so that MLflow's
    `start_run` does not resume it. The search logs its parent and trials into the study's own
    experiment and leaves the runner's run as a pointer to them. None outside `mlflow run`."""
    return os.environ.pop("MLFLOW_RUN_ID", None)
