"""The end-of-search summary pays only for what was asked (issue 20): the parameter-importance
plot, about 1.5 s of a search's fixed cost, only with `search.importances=true`."""

import io
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from pipeline.search.figures import study_figures
from pipeline.search.space import load_space
from pipeline.search.sweep import run_search

CONF = Path(__file__).resolve().parents[1] / "conf"


def _study(n_complete: int) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("regularization.l2", 1e-3, 1.0, log=True)
                              + t.suggest_float("regularization.keep_prob", 0.5, 1.0) ** 2),
                   n_trials=n_complete)
    return study


def test_importances_are_drawn_only_when_asked():
    study = _study(4)
    assert "study/param_importances.png" not in study_figures(study, "dev_error")
    asked = study_figures(study, "dev_error", importances=True)
    assert "study/param_importances.png" in asked
    # what was there before is still drawn either way
    assert {"study/optimization_history.png", "study/contour_l2_keep_prob.png"} <= set(asked)


def test_importances_need_two_complete_trials_even_when_asked():
    assert "study/param_importances.png" not in study_figures(_study(1), "dev_error",
                                                              importances=True)


def test_importances_key_is_validated(search_cfg):
    assert search_cfg().search.importances is False
    assert search_cfg("search.importances=true").search.importances is True
    with pytest.raises(ValueError, match="search.importances"):
        search_cfg("search.importances=sometimes")


@pytest.mark.slow
def test_the_parent_run_has_the_importance_plot_only_with_the_key(search_cfg, tracking_uri):
    client, logged = MlflowClient(), {}
    for asked in (False, True):
        cfg = search_cfg("search.n_trials=3", "search.pruner.name=none",
                         "search.trial_figures=none", f"search.importances={str(asked).lower()}",
                         f"search.study=cost-{asked}")
        space, text = load_space(cfg.search.space, CONF)
        result = run_search(cfg, space, text, workdir=Path("."), progress=False,
                            out=io.StringIO())
        logged[asked] = {a.path for a in client.list_artifacts(result.parent_run_id, "study")}
    assert "study/param_importances.png" in logged[True]
    assert logged[False] == logged[True] - {"study/param_importances.png"}
