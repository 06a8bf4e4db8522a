"""The study's figures as matplotlib Figure values (the tracking side logs them; no mlflow here).

`optuna.visualization.matplotlib` is still experimental in Optuna 5 and draws through pyplot, so
warnings are silenced and each figure is detached from pyplot's registry once drawn.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState


def study_figures(study: optuna.Study, objective: str, importances: bool = False) -> dict:
    """{"study/<name>.png": Figure}: optimization history, the contour of l2 x keep_prob (a
    slice plot when the space lacks either) and, with `importances` (search.importances), the
    parameter importances (Optuna's default evaluator, PED-ANOVA). Figures that Optuna cannot
    draw yet (e.g. importances with fewer than two complete trials) are skipped."""
    import matplotlib.pyplot as plt  # lazy: pyplot and Optuna's plots only when drawing
    from optuna.visualization import matplotlib as ov

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return {}
    names = set(complete[0].params)
    pair = ["regularization.l2", "regularization.keep_prob"]
    plots = {"study/optimization_history.png": lambda: ov.plot_optimization_history(
        study, target_name=objective)}
    if importances and len(complete) >= 2 and len(names) >= 2:
        plots["study/param_importances.png"] = lambda: ov.plot_param_importances(study)
    if set(pair) <= names and len(complete) >= 2:
        plots["study/contour_l2_keep_prob.png"] = lambda: ov.plot_contour(study, params=pair)
    else:
        plots["study/slice.png"] = lambda: ov.plot_slice(study)
    figs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, draw in plots.items():
            try:
                result = draw()
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue
            ax = result.flat[0] if hasattr(result, "flat") else result
            figs[path] = ax.figure
            plt.close(ax.figure)  # keep the Figure value, free pyplot's reference
    return figs
