"""Optuna search on the dev set (the only package importing optuna).

`run.run_search` is one invocation (study, stale-trial cleanup, parent run, workers, summary);
`study` holds the study/sampler/pruner factories and the workers; `objective` the trial;
`space` the search space; `storage` where studies live. The MLflow side is
`pipeline/tracking/study.py`.
"""


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the commands print their own progress and table."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
