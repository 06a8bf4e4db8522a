"""The Optuna study of a search: its name, sampler, pruner and report schedule, opening it, and
counting its trials. The worker processes that run the trials are in workers.py.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from pipeline.search.storage import StorageSpec, open_storage

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name(cfg) -> str:
    return cfg.search.study or f"{cfg.tracking.experiment}-{cfg.data.name}"


def sampler_seed(cfg) -> int:
    """`search.sampler.seed`, by default the config's seed."""
    return cfg.seed if cfg.search.sampler.seed is None else cfg.search.sampler.seed


def make_sampler(cfg, worker: int = 0) -> optuna.samplers.BaseSampler:
    """Seeded with `sampler_seed`; worker k adds k, so parallel workers do not propose the
    same startup points. One worker is reproducible."""
    s = cfg.search.sampler
    seed = sampler_seed(cfg) + worker
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg) -> optuna.pruners.BasePruner:
    p = cfg.search.pruner
    if p.name == "none":
        return optuna.pruners.NopPruner()
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=p.min_resource,
                                              max_resource=cfg.training.epochs,
                                              reduction_factor=p.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials,
                                       n_warmup_steps=p.n_warmup_steps,
                                       interval_steps=p.interval_steps)


def open_study(cfg, spec: StorageSpec, *, create: bool, worker: int = 0) -> optuna.Study:
    name, storage = study_name(cfg), open_storage(spec)
    kw = dict(study_name=name, storage=storage, sampler=make_sampler(cfg, worker),
              pruner=make_pruner(cfg))
    if create:
        return optuna.create_study(direction="minimize", load_if_exists=True, **kw)
    try:
        return optuna.load_study(**kw)
    except KeyError:
        raise ValueError(f"search.study {name!r} does not exist in {spec.label}") from None


def count(study: optuna.Study, states=FINISHED) -> int:
    """Trials of the study in `states` (default: finished, COMPLETE + PRUNED)."""
    return count_in(study.get_trials(deepcopy=False, states=states), states)


def count_in(trials: list[optuna.trial.FrozenTrial], states=FINISHED) -> int:
    """`count` of a snapshot already read (`study.get_trials(deepcopy=False)`): each read of a
    journal study is a file read, so one decision step reads once and counts many times."""
    return sum(t.state in states for t in trials)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The study's best trial (None before the first COMPLETE one), by `best_in`'s rule."""
    return best_in(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def best_in(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The best of a snapshot: the first COMPLETE trial of least value, as Optuna's
    `study.best_trial` picks it for a minimized study without constraints (every study of
    open_study); a step that already read the trials reads no more."""
    return min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value,
               default=None)
