"""The search without MLflow: seeding, the sealed test split, pruning, divergence, resume."""

import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pipeline import stages
from pipeline.data.sealed import SealedSplit
from pipeline.search import recovery as R
from pipeline.search import storage as S
from pipeline.search.objective import make_objective
from pipeline.search.space import check_space, decode, load_space
from pipeline.search.study import count, open_study
from pipeline.search.workers import WorkerJob, run_worker

CONF = Path(__file__).resolve().parents[1] / "conf"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(cfg, target=None):
    """Create the study (as the search command does) and run one in-process worker until the
    study holds `target` finished trials (default: search.n_trials, a fresh study's total)."""
    space, _ = load_space(cfg.search.space, CONF)
    spec = S.resolve(cfg.search.storage, cfg.search.study, Path("."))
    study = open_study(cfg, spec, create=True)
    R.fail_stale_trials(study, spec)
    run_worker(WorkerJob(cfg.to_yaml(), space, spec, target or cfg.search.n_trials))
    return open_study(cfg, spec, create=False)


def test_same_seed_gives_the_same_params_sequence(search_cfg):
    runs = [_search(search_cfg("search.n_trials=4", f"search.study=s{i}", "search.pruner.name=none"))
            for i in range(2)]
    other = _search(search_cfg("search.n_trials=4", "search.study=s2", "search.sampler.seed=7",
                               "search.pruner.name=none"))
    params = [[t.params for t in study.trials] for study in runs]
    assert len(params[0]) == 4 and params[0] == params[1]
    assert [t.value for t in runs[0].trials] == [t.value for t in runs[1].trials]
    assert [t.params for t in other.trials] != params[0]


def test_objective_holds_no_test_split_and_never_unseals(search_cfg, monkeypatch):
    cfg = search_cfg("search.n_trials=3")
    space, _ = load_space("default", CONF)
    prepared = stages.prepare(cfg)
    assert isinstance(prepared.test, SealedSplit)
    objective = make_objective(cfg, space, prepared)
    assert objective.prepared.test is None
    assert all(not isinstance(v, SealedSplit) for v in vars(objective.prepared).values())

    def refuse(self, purpose):
        raise AssertionError(f"the search unsealed the test split for {purpose!r}")

    monkeypatch.setattr(SealedSplit, "unseal", refuse)
    study = _search(cfg)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3


def test_median_pruner_prunes_hopeless_trials(search_cfg):
    # zeros init cannot break symmetry: its dev error stays high, the median pruner stops it.
    space = "model.init: {type: categorical, choices: [he, zeros]}\n"
    cfg = search_cfg("search.n_trials=8", "search.sampler.name=random",
                     "search.pruner.name=median", "search.pruner.n_startup_trials=1",
                     "search.pruner.n_warmup_steps=0",
                     "training.patience=null", space=space)
    study = _search(cfg)
    # Trial 0 is the startup trial (never pruned); afterwards exactly the zeros trials stop at
    # the first report (epoch 5), at the median of the completed curves.
    later = study.trials[1:]
    assert {t.params["model.init"] for t in later} == {"he", "zeros"}
    for t in later:
        pruned = t.state == TrialState.PRUNED
        assert pruned == (t.params["model.init"] == "zeros")
        if pruned:
            assert re.match(r"pruned at epoch 5: dev_error=0\.(4[5-9]|5)", t.user_attrs["prune_reason"])
            assert t.user_attrs["epochs_run"] == 5 and list(t.intermediate_values) == [5]


def test_hyperband_pruner_uses_epochs_as_its_resource(search_cfg):
    from pipeline.search.study import make_pruner

    cfg = search_cfg("search.pruner.name=hyperband", "search.pruner.min_resource=5",
                     "search.n_trials=6", "training.patience=null")
    pruner = make_pruner(cfg)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource) == (5, 60)
    study = _search(cfg)
    assert count(study) == 6
    for t in study.get_trials(states=(TrialState.PRUNED,)):
        assert max(t.intermediate_values) < 60 and "pruned at epoch" in t.user_attrs["prune_reason"]


def test_a_diverging_trial_is_pruned_with_its_reason_and_the_study_goes_on(search_cfg):
    space = "training.learning_rate: {type: float, low: 1.0e+6, high: 1.0e+7, log: true}\n"
    # leaky ReLU: with plain ReLU a huge step can kill every unit, and a dead network is finite
    cfg = search_cfg("search.n_trials=2", "search.pruner.name=none", "training.optimizer=gd",
                     "model.init=random", "model.activation=leaky_relu", space=space)
    study = _search(cfg)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all(t.user_attrs["prune_reason"].startswith("non_finite") for t in study.trials)


def test_resume_fails_the_abandoned_trial_and_stops_at_the_target(search_cfg, gone_owner):
    cfg = search_cfg("search.n_trials=3", "search.pruner.name=none")
    study = _search(cfg)
    assert count(study) == 3
    abandoned = study.ask()  # a worker that died mid-trial
    abandoned.set_user_attr("owner", gone_owner)
    study = _search(cfg, target=5)
    states = {t.number: t.state for t in study.trials}
    assert states[abandoned.number] == TrialState.FAIL
    assert count(study) == 5 and len(states) == 6
    assert "stale" in study.trials[abandoned.number].user_attrs["fail_reason"]
    again = _search(cfg, target=5)  # already there: no new trial
    assert len(again.trials) == 6


def test_list_choices_are_stored_as_json_and_decoded_back(search_cfg):
    space = "model.hidden: {type: categorical, choices: [[8], [6, 3]]}\n"
    cfg = search_cfg("search.n_trials=3", "search.pruner.name=none", "regularization.keep_prob=1.0",
                     space=space)
    study = _search(cfg)
    parsed, _ = load_space(cfg.search.space, CONF)
    for t in study.trials:
        assert t.params["model.hidden"] in ("[8]", "[6, 3]")
        hidden = decode(t.params, parsed)["model.hidden"]
        assert cfg.with_overrides({"model.hidden": hidden}).model.hidden == tuple(hidden)


def test_a_space_key_the_config_refuses_fails_before_any_trial(search_cfg):
    cfg = search_cfg(space="regularization.l3: {type: float, low: 0.1, high: 1.0}\n")
    space, _ = load_space(cfg.search.space, CONF)
    with pytest.raises(ValueError, match=r"search space regularization.l3=0.1 is not a valid config"):
        check_space(cfg, space)
    bad = search_cfg(space="regularization.keep_prob: {type: float, low: 0.5, high: 1.5}\n")
    with pytest.raises(ValueError, match=r"keep_prob.*1.5"):
        check_space(bad, load_space(bad.search.space, CONF)[0])


def test_unknown_space_name_lists_the_files(tmp_path):
    with pytest.raises(ValueError, match=r"search.space must name a file .*'default'.*got 'nope'"):
        load_space("nope", CONF)


@pytest.mark.parametrize("value, expected", [
    (None, "journal:"), ("x.journal", "journal:"), ("sqlite:///s.db", "sqlite:///s.db"),
    ("postgresql://u@h/db", "postgresql://u@h/db")])
def test_storage_forms(tmp_path, value, expected):
    assert S.resolve(value, "st", tmp_path).label.startswith(expected)


def test_bad_storage_is_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match=r"search.storage must be .* got 'redis://x'"):
        S.resolve("redis://x", "st", tmp_path)


def _heavy_after_import(*groups: tuple[str, ...]) -> list[set[str]]:
    """In ONE fresh interpreter, import each group of modules in turn; after each group, the
    heavy libraries loaded so far. A group that loads none leaves the next group's set its own,
    as in a fresh interpreter (one interpreter fewer: each is ~1 s of the fast suite)."""
    import subprocess
    import sys
    code = ("import importlib, sys\n"
            f"for group in {[list(g) for g in groups]!r}:\n"
            "    for m in group: importlib.import_module(m)\n"
            "    print(','.join(m for m in ('mlflow', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout.splitlines()
    return [set(filter(None, line.split(","))) for line in out]


def test_import_boundaries_of_the_search():
    # tracking/search_runs.py is MLflow-only; the search package is Optuna-only; commands import
    # neither at module level (the parser imports every command). The commands go first: they
    # load neither, so what search_runs loads after them is what it loads alone.
    assert _heavy_after_import(("pipeline.commands.search", "pipeline.commands.evaluate"),
                               ("pipeline.tracking.search_runs",)) == [set(), {"mlflow"}]
    assert _heavy_after_import(("pipeline.search.sweep", "pipeline.search.evaluate",
                                "pipeline.search.figures")) == [{"optuna"}]
