"""Issue 20: the project prunes exactly the trials a plain Optuna script prunes.

The same seeded 16-trial study runs twice over the same training (`stages.train`, so the same
per-epoch dev values): once through the project's objective (`make_objective`, its sampler and
pruner factories, its journal storage), once through the plain loop of optuna-examples'
`basic/pruning.py` (`trial.report` + `trial.should_prune` at every evaluation, Optuna's own
journal backend). The pruned sets, the values and the epochs each trial reached must agree.
Before the fix the project reported only at the pruner's decision steps, which left the warmup
reports out of the trial's "best value over its steps" and pruned more.
"""

import math

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from pipeline import stages
from pipeline.config import load_config
from pipeline.config.search import parse_space
from pipeline.search.journal import open_journal
from pipeline.search.objective import make_objective
from pipeline.search.study import make_pruner, make_sampler

from tests.test_overhead import CONF

N_TRIALS = 16
# Small budgets keep this fast (about 0.05 s a trial: 200 points, a [20, 3] network; the
# default 320 points through [80, 50, 30] took 5x longer); the warmup spans 10 of the 30
# evaluations, the reports the old schedule dropped.
OVERRIDES = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=300", "training.eval_every=10", "search.pruner.name=median",
             "search.pruner.n_startup_trials=4", "search.pruner.n_warmup_steps=100",
             "search.pruner.interval_steps=1", "search.sampler.name=tpe"]
L2 = (1.0e-4, 10.0)
KEEP = (0.5, 1.0)
INITS = ["he", "xavier", "random"]
SPACE = {"regularization.l2": {"type": "float", "low": L2[0], "high": L2[1], "log": True},
         "regularization.keep_prob": {"type": "float", "low": KEEP[0], "high": KEEP[1]},
         "model.init": {"type": "categorical", "choices": INITS}}


def plain_study(cfg, prepared, path, n_trials: int = N_TRIALS) -> optuna.Study:
    """What a user would write with Optuna alone: same seed, space, pruner and training
    (benchmarks/bench_pruning.py runs it on the default config), on Optuna's journal."""
    return plain_study_on(JournalStorage(JournalFileBackend(str(path))), cfg, prepared,
                          n_trials)


def plain_study_on(storage, cfg, prepared, n_trials: int = N_TRIALS,
                   study_name: str | None = None) -> optuna.Study:
    """The plain Optuna loop (optuna-examples' basic/pruning.py) on any Optuna storage."""
    key, p = cfg.search.objective, cfg.search.pruner
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials,
                                           n_warmup_steps=p.n_warmup_steps,
                                           interval_steps=p.interval_steps))

    def objective(trial):
        overrides = {"regularization.l2": trial.suggest_float("regularization.l2", *L2, log=True),
                     "regularization.keep_prob": trial.suggest_float("regularization.keep_prob",
                                                                     *KEEP),
                     "model.init": trial.suggest_categorical("model.init", INITS)}

        def report(epoch, metrics):
            trial.set_user_attr("epochs_run", epoch)
            trial.report(metrics[key], step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        trained = stages.train(cfg.with_overrides(overrides), prepared, callbacks=[report])
        return trained.metrics[key]

    study.optimize(objective, n_trials=n_trials)
    return study


def _outcomes(study: optuna.Study):
    return [(t.number, t.state, t.params, t.user_attrs.get("epochs_run"), t.value,
             dict(t.intermediate_values)) for t in study.get_trials()]


def project_study(cfg, prepared, path, n_trials: int = N_TRIALS) -> optuna.Study:
    """The same study through the project: its objective, factories and journal backend."""
    study = optuna.create_study(storage=open_journal(str(path)), direction="minimize",
                                sampler=make_sampler(cfg), pruner=make_pruner(cfg))
    study.optimize(make_objective(cfg, parse_space(SPACE), prepared), n_trials=n_trials)
    return study


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    cfg = load_config(OVERRIDES, conf_dir=CONF)
    prepared = stages.prepare(cfg)
    return (project_study(cfg, prepared, tmp / "ours.journal"),
            plain_study(cfg, prepared, tmp / "plain.journal"))


def test_the_project_prunes_the_trials_plain_optuna_prunes(studies):
    ours, plain = studies
    pruned = [[t.number for t in s.get_trials() if t.state == TrialState.PRUNED]
              for s in (ours, plain)]
    assert pruned[0] == pruned[1]
    # the comparison means something: some trials were pruned and some completed
    assert 0 < len(pruned[0]) < N_TRIALS


def test_every_trial_saw_the_same_params_reports_and_result(studies):
    ours, plain = studies
    for a, b in zip(_outcomes(ours), _outcomes(plain), strict=True):
        assert a[:4] == b[:4]                       # number, state, params, last epoch
        assert a[4] == b[4] or (a[4] is None and b[4] is None)
        assert a[5] == b[5]                         # every evaluation reported, same values
        assert all(math.isfinite(v) for v in a[5].values())
    first = ours.get_trials()[0]
    assert sorted(first.intermediate_values) == list(range(10, 301, 10))  # warmup included
