"""The Optuna objective: one trial = the tracked run's own `stages.train` on the dev split.

The data are prepared ONCE per worker and held without the test split: the `Objective`
holds `prepared` with `test=None`, so no trial can reach the sealed split even by accident
(`tests/test_search_study.py` checks both what it holds and that `unseal` is never called).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import optuna

from pipeline import stages
from pipeline.config.search import ParamSpec
from pipeline.redact import redact
from pipeline.search.space import suggest


class Diverged(Exception):
    """Training produced a non-finite loss; the trial ends PRUNED with this reason."""


def without_test(prepared):
    """A copy of the prepared data whose test split is gone (the search never needs it)."""
    if dataclasses.is_dataclass(prepared) and hasattr(prepared, "test"):
        return dataclasses.replace(prepared, test=None)
    raise TypeError(f"stages.prepare returned {type(prepared).__name__}, expected a dataclass "
                    "with a test field")


class Interrupted(KeyboardInterrupt):
    """A BaseException other than Exception/KeyboardInterrupt inside a trial, passed to Optuna
    as an interrupt so the trial is recorded FAIL; `__cause__` holds the original."""


class PruningCallback:
    """A `fit` callback: report the dev objective (step = epoch) at EVERY evaluation and stop the
    run by raising `optuna.TrialPruned` when the pruner says so, exactly as a plain Optuna loop
    does (tests/test_pruning_parity.py). Thinning the reports to the pruner's decision steps
    changed decisions: the median pruner compares the trial's best value over ALL its reports,
    so dropping the warmup reports pruned 7 of 16 trials where Optuna prunes 4. A report is
    cheap on a journal (search/journal.py appends it without an fsync). A non-finite value is
    caught at every evaluation."""

    def __init__(self, trial: optuna.Trial, key: str):
        self.trial, self.key = trial, key
        self.last_epoch = 0

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.last_epoch = int(epoch)
        value = float(metrics[self.key])
        if not math.isfinite(value):
            raise Diverged(f"{self.key} became {value} at epoch {epoch}")
        self.trial.report(value, step=int(epoch))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: {self.key}={value:.4g} "
                                     "was worse than the pruner's bar")


def make_objective(cfg, space: Mapping[str, ParamSpec], prepared, logger=None,
                   figures: str = "improving", stop=None) -> Objective:
    """`objective(trial) -> dev_loss | dev_error` (config `search.objective`), minimized.
    `stop` (a `pipeline.stop.Stop`) is checked by the training every epoch: the trial ends
    FAIL and its child run KILLED.

    `logger` is a `pipeline.tracking.search_runs.StudyLogger` (or None in tests of the pure search):
    one child run per trial with params, curves, figures and the trial's final state."""
    return Objective(cfg, space, prepared, logger, figures, stop)


class Objective:
    """What a trial does: its config from the space, the tracked training on the dev split,
    and how it ends (COMPLETE, PRUNED, or FAIL with its child run ended first: `_end`).

    `prepared` is the worker's data without the test split (what the sealed-test check reads);
    `finish()` draws the figures of this worker's best trial once (search.trial_figures=best)."""

    def __init__(self, cfg, space: Mapping[str, ParamSpec], prepared, logger, figures: str,
                 stop):
        self.cfg, self.space, self.logger, self.figures, self.stop = (cfg, space, logger,
                                                                      figures, stop)
        self.key = cfg.search.objective
        self.prepared = without_test(prepared)
        if logger is not None:
            logger.prepared = self.prepared  # each trial records its data digests (reproduce)
        self._best: list = []  # (run_id, cfg, trained) of the last trial that beat the best

    def __call__(self, trial: optuna.Trial) -> float:
        overrides = suggest(trial, self.space)
        trial_cfg = self.cfg.with_overrides(overrides)
        logger, pruning, run_id = self.logger, PruningCallback(trial, self.key), None
        try:
            if logger:
                run_id = logger.start_trial(trial.number, trial_cfg, overrides)
                trial.set_user_attr("mlflow_run_id", run_id)
            # The curve buffer first: the evaluation that triggers pruning is still logged.
            callbacks = ([logger.metric_callback(run_id)] if logger else []) + [pruning]
            trained = stages.train(trial_cfg, self.prepared, callbacks=callbacks, stop=self.stop)
            value = float(trained.metrics[self.key])
            if trained.fit.stop_reason == "non_finite" or not math.isfinite(value):
                raise Diverged(trained.fit.stop_message or f"{self.key} is {value}")
            self._complete(trial, run_id, trial_cfg, trained, value)
            return value
        except (Diverged, optuna.TrialPruned) as exc:
            reason = f"non_finite: {exc}" if isinstance(exc, Diverged) else str(exc)
            _end(trial, logger, run_id, "PRUNED", reason, {"epochs_run": pruning.last_epoch})
            raise optuna.TrialPruned(reason) from None
        except BaseException as exc:  # a bug (child FAILED) or a stop (Stopped, Ctrl-C: KILLED)
            killed = isinstance(exc, KeyboardInterrupt)
            _end(trial, logger, run_id, "FAIL", f"{type(exc).__name__}: {exc}", {},
                 status="KILLED" if killed else None)
            if isinstance(exc, (Exception, KeyboardInterrupt)):
                raise
            # Optuna marks a trial FAIL only for Exception/KeyboardInterrupt; anything else
            # (SystemExit, say) would leave it RUNNING in the storage.
            raise Interrupted(str(exc)) from exc

    def _complete(self, trial, run_id, trial_cfg, trained, value: float) -> None:
        """The figures search.trial_figures asks for (`improving`: of a trial that beats every
        earlier one; `best`: kept for `finish`), then the child run and the trial ended."""
        logger, figures = self.logger, self.figures
        improves = logger is not None and figures in ("improving", "best") and _improves(
            trial, value)
        draw = logger is not None and (figures == "all" or (figures == "improving" and improves))
        figs = stages.figures(trial_cfg, self.prepared, trained) if draw else {}
        if figures == "best" and improves:  # drawn once, in `finish`
            self._best[:] = [(run_id, trial_cfg, trained)]
        _end(trial, logger, run_id, "COMPLETE", None, _summary(trained), value=value,
             metrics=trained.metrics, figures=figs)

    def finish(self) -> None:
        """search.trial_figures=best: the figures of this worker's best trial, drawn once."""
        if self._best:
            run_id, trial_cfg, trained = self._best.pop()
            self.logger.log_figures(run_id, stages.figures(trial_cfg, self.prepared, trained))


def _improves(trial: optuna.Trial, value: float) -> bool:
    """Strictly better than every COMPLETE trial so far (ties keep the earlier best, as Optuna)."""
    try:
        return value < trial.study.best_value
    except ValueError:  # no COMPLETE trial yet
        return True


def _summary(trained) -> dict[str, Any]:
    fit = trained.fit
    out = {"epochs_run": int(fit.epochs_run), "best_epoch": int(fit.best_epoch),
           "stop_reason": fit.stop_reason}
    for k in ("train_error", "dev_error", "train_loss", "dev_loss"):
        if k in trained.metrics:
            out[k] = float(trained.metrics[k])
    return out


def _end(trial, logger, run_id, state: str, reason: str | None, attrs: dict, **logged) -> None:
    """The child run ended first, then the trial's attributes: a study storage that fails on
    the second (a full disk under the journal) left the run RUNNING although the tracking store
    could still end it. A COMPLETE trial whose attributes then fail comes back here as FAIL."""
    if reason:
        reason = redact(reason)  # an exception's text: MLflow's name the URL they requested
    if logger and run_id:
        logger.finish_trial(run_id, state, reason=reason, attrs=attrs, **logged)
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    if reason:
        trial.set_user_attr("fail_reason" if state == "FAIL" else "prune_reason", reason)
