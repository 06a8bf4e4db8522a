"""Optuna search on the dev set (the only package importing optuna).

`sweep.run_search` is one invocation (study, stale-trial cleanup, parent run, workers, summary);
`study` holds the study/sampler/pruner factories and the workers; `objective` the trial;
`space` the search space; `storage` where studies live. The MLflow side is
`pipeline/tracking/search_runs.py`.
"""

import logging
from contextlib import contextmanager

from pipeline.redact import redact_logs
from pipeline.store_fault import drop_store_faults


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the commands print their own progress and table.
    A failed trial stays one warning line without its traceback: with a tracking server gone,
    every worker's trial printed ~100 traceback lines (620 lines for one fault). The reason is
    recorded on the trial (`fail_reason`) and an exception we do not foresee is re-raised with
    its traceback anyway."""
    import optuna  # lazy: the commands import this package's light modules without optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    redact_logs("optuna")  # "Trial N failed ...: <error>" quotes a store URL it could not reach
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback())
    drop_store_faults("optuna.study._optimize")  # the trial a broken store ended: said once


@contextmanager
def quiet_when_stopped(stop):
    """Once `stop` (a `pipeline.stop.Stop`) is requested, Optuna's "Trial N failed ...
    Stopped" warnings are dropped: the command says it in one line, and each trial keeps its
    `fail_reason`."""
    def keep(record) -> bool:  # a callable is a logging filter
        return not stop.requested

    handlers = logging.getLogger("optuna").handlers
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


class _NoTraceback:
    """A logging filter (duck-typed: `filter(record)`) that drops the record's traceback."""

    def filter(self, record) -> bool:
        record.exc_info, record.exc_text = None, None
        return True
