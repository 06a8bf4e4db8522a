"""The descriptions a user reads in the MLflow UI (markdown strings; no mlflow import here).

One short paragraph per object: what it is, the knobs that made it, the result and what to do
next. The full config stays in the params and `config.yaml`; these say what matters.
"""

from __future__ import annotations

from typing import Any, Mapping

MODE = "workflowType=machine_learning"


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _g(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def hidden_text(hidden) -> str:
    return "x".join(str(h) for h in hidden) if hidden else "none"


def run_name(cfg) -> str:
    """A short name that carries the knobs a user compares: visible in every table, chart
    legend and comparison without opening the run."""
    r, t = cfg.regularization, cfg.training
    return (f"{cfg.data.name} {cfg.model.init} l2={_g(r.l2)} kp={_g(r.keep_prob)} "
            f"lr={_g(t.learning_rate)} h={hidden_text(cfg.model.hidden)} s{cfg.seed}")


def trial_name(number: int, overrides: Mapping[str, Any]) -> str:
    """`trial-3 l2=0.17 keep_prob=0.72 init=xavier`: the trial's proposals by their last key."""
    return " ".join([f"trial-{number}"] + [f"{k.rsplit('.', 1)[-1]}={_short(v)}"
                                           for k, v in overrides.items()])


def search_parent_name(study: str, finished_before: int, target: int) -> str:
    """`search-demo trials 21-40`: one search call of a study, by the finished trials it
    brings the study from and to, so the parents of a study's calls differ in the table."""
    return f"search-{study} trials {finished_before + 1}-{target}"


def final_test_name(study: str, number: int, overrides: Mapping[str, Any]) -> str:
    """`final-test-demo trial-0 l2=0.0555 keep_prob=0.858 init=he`."""
    return f"final-test-{study} {trial_name(number, overrides)}"


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def knobs_text(cfg) -> str:
    m, r, t = cfg.model, cfg.regularization, cfg.training
    extra = f", L1 {_g(r.l1)}" if r.l1 else ""
    return (f"**{cfg.data.name}**, hidden {hidden_text(m.hidden)} {m.activation}, "
            f"init {m.init}, L2 {_g(r.l2)}{extra}, keep_prob {_g(r.keep_prob)}, "
            f"{t.optimizer} lr {_g(t.learning_rate)}, seed {cfg.seed}")


def training_note(cfg, prepared, trained) -> str:
    """Train run: data and knobs -> result -> diagnosis, one paragraph."""
    m, fit, d = trained.metrics, trained.fit, trained.diagnosis
    sizes = f"{prepared.raw_train.n} train / {prepared.raw_dev.n} dev examples"
    text = (f"{knobs_text(cfg)} ({sizes}): train accuracy {_pct(m['train_accuracy'])}, "
            f"**dev accuracy {_pct(m['dev_accuracy'])}** (loss {m['train_loss']:.3f} / "
            f"{m['dev_loss']:.3f}; parameters of epoch {fit.best_epoch}, {fit.stop_reason} after "
            f"{fit.epochs_run} epochs).")
    if fit.stop_reason == "non_finite":
        text += f" **Diverged:** {fit.stop_message}."
    if d is not None:
        text += f" Diagnosis: **{d.verdict}**; next: {d.recommendation}."
        if d.mismatch:
            text += " Dev error is below train error: train and dev differ in distribution."
    return text + ("\n\n*Model metrics*: the learning curves (`curves/`), the final values "
                   "(`final/`), then gradient norms (`gradients/`) and hidden-layer activations "
                   "(`hidden/`). Figures under *Artifacts* `plots/`, the full config in "
                   "`config.yaml`.")


def train_experiment_note(name: str) -> str:
    return (f"**{name}**: a neural network written in NumPy, trained with train/dev/test "
            "discipline and tracked here.\n\n"
            "Each run is one training (`python -m pipeline train`, `mlflow run .`) or a study's "
            "one-time test evaluation (`stage = final_test`). The run name carries the knobs "
            "(data, init, L2, keep_prob, learning rate, hidden layers, seed); the columns of the "
            "link the command prints show them with the final (best-dev) accuracies "
            "(else: *Columns* -> Parameters / Metrics). Open a run for its description, its "
            "learning curves (*Model metrics*) and its decision boundaries (*Artifacts* -> "
            "`plots/`).\n\n"
            "Optuna searches log into their own experiments, `<study>-search`, and lessons "
            "(`python -m pipeline experiment <lesson>`) into `<this experiment>-lesson-<lesson>`, "
            "so their trials and arm runs do not bury these runs; tags `search.<study>` and "
            "`lesson.<lesson>` name them.")


def lesson_experiment_note(lesson: str, title: str, claim: str, main_name: str,
                           main_id: str) -> str:
    return (f"Lesson **{lesson}**: {title}.\n\nClaim: {claim.strip()}\n\n"
            f"One parent run per `python -m pipeline experiment {lesson}`: its description "
            "leads with the verdict, then the per-arm table (mean ± std over seeds) and the "
            "comparison figure (*Artifacts* `lesson/comparison.png`). Its child runs, one per "
            "arm and seed, are nested under it: expand the parent.\n\n"
            f"Training runs are in experiment [{main_name}](#/experiments/{main_id}/runs?{MODE}).")


def search_experiment_note(study: str, main_name: str, main_id: str) -> str:
    return (f"Optuna study **{study}** (dev-set search; the test split is never used here).\n\n"
            "One parent run per `search` call (best params, the study's figures, "
            "`study/top_trials.txt`) with one child run per trial nested under it: expand the "
            "parent. Trials that were pruned end KILLED, failed ones FAILED (tag "
            "`optuna.state`).\n\n"
            f"The training runs and the study's one-time test evaluation are in experiment "
            f"[{main_name}](#/experiments/{main_id}/runs?{MODE}).")


def search_note(study: str, target: int, finished: int | None = None,
                best: Mapping[str, Any] | None = None, objective: str = "",
                evaluate: str = "") -> str:
    """Search parent: the plan while it runs, the result once it ended."""
    text = f"Optuna search of study **{study}** towards {target} finished trials"
    if finished is None:
        return text + " (running): one child run per trial below."
    text += f": {finished} finished."
    if best:
        values = ", ".join(f"{k}={_g(v)}" for k, v in best["params"].items())
        text += (f" Best trial **{best['number']}**: {objective} {best['value']:.4f} "
                 f"({values}).")
    return text + (f" Evaluate it once on the test set: `{evaluate}`." if evaluate else "")


def trial_note(study: str, number: int, overrides: Mapping[str, Any], state: str,
               reason: str | None, value: float | None, objective: str,
               metrics: Mapping[str, Any] | None) -> str:
    values = ", ".join(f"{k}={_g(v)}" for k, v in overrides.items())
    text = f"Trial {number} of study {study}: {values}. "
    if state == "COMPLETE" and value is not None:
        text += f"**{objective} {value:.4f}**"
        if metrics and "dev_accuracy" in metrics:
            text += (f" (dev accuracy {_pct(metrics['dev_accuracy'])}, train accuracy "
                     f"{_pct(metrics['train_accuracy'])})")
        return text + "."
    return text + f"{'Pruned' if state == 'PRUNED' else 'Failed'}: {reason or state}."


def evaluation_note(study: str, trial: int, overrides: Mapping[str, Any],
                    test: Mapping[str, float], gate: str, version: str | None,
                    forced: bool) -> str:
    values = ", ".join(f"{k}={_g(v)}" for k, v in overrides.items())
    text = (f"The one-time **test** evaluation of study {study}: best trial {trial} ({values}) "
            f"retrained, then scored once on the sealed test split: **test accuracy "
            f"{_pct(test['test_accuracy'])}** (loss {test['test_loss']:.4f}). Dev gate: {gate}.")
    if version:
        text += f" Registered as version {version}."
    if forced:
        text += " **Forced re-evaluation**: this test set was seen before."
    return text


def registered_model_note(name: str, alias: str, challenger: str, dataset: str) -> str:
    return (f"**{name}**: NumPy MLP classifiers for data set **{dataset}** (the task: its name, "
            "feature names and classes, tags `task.*`) from nn-pipeline's one-time test "
            "evaluations (`python -m pipeline evaluate`). Each version comes from one study's "
            f"best trial and takes alias `{challenger}`; alias `{alias}` moves to it only when "
            f"there is no `{alias}` yet or it has a lower test error on the same sealed test "
            "split (tag `test_digest`) and passed the dev gate. Tags `decision` and `reason` "
            "on each version say what happened. The model takes raw feature columns and "
            "returns class labels (`proba=true` adds probabilities).")
