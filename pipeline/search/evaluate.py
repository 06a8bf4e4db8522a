"""The one-time test evaluation of a study's best trial.

Rebuild the best trial's config (the study's stored base config + the trial's params), retrain
it with the study's seed, open the test split ONCE, and record that it happened in the study's
record (record.py: `test_evaluations`, the one once-only record). A second evaluation on the
same test data (same test digest) is refused unless `evaluate.force=true`, which is itself
recorded.
"""

from __future__ import annotations

import dataclasses
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline import stages
from pipeline.data import Split
from pipeline.promotion import task_of
from pipeline.search import storage as S
from pipeline.search.evaluate_lock import evaluation_claim
from pipeline.search.record import StudyRecord, add_test_evaluation
from pipeline.search.space import decode
from pipeline.search.study import best_trial, open_study, study_name
from pipeline.stop import Stop


@dataclass(frozen=True)
class Evaluation:
    study: str
    trial: int
    run_id: str
    parent_run_id: str | None
    test_metrics: dict
    dev_value: float
    gate_passed: bool
    model_version: str | None
    forced: bool
    registered_model: str | None = None  # the task's registered model
    decision: str | None = None          # promoted | not promoted | no alias


def load_best(cfg, workdir: Path):
    """(study, best trial, the trial's config, the overrides applied, the storage label)."""
    name = study_name(cfg)
    sc = cfg.search
    spec = S.resolve(sc.storage, name, workdir, heartbeat_interval=sc.heartbeat_interval,
                     grace_period=sc.grace_period)
    if spec.is_journal and not Path(spec.path).is_file():
        raise ValueError(f"study {name!r} not found: no journal file {spec.path} (run "
                         f"`python -m pipeline search search.study={name}` first)")
    study = open_study(cfg, spec, create=False)
    record = StudyRecord.load(study)
    missing = record.missing("base_config", "space")
    if missing:
        raise ValueError(f"study {name!r} in {spec.label} was not created by `python -m pipeline "
                         f"search` (no {', '.join(missing)} user attribute): cannot rebuild its "
                         "configuration")
    best = best_trial(study)
    if best is None:
        raise ValueError(f"study {name!r} has no COMPLETE trial to evaluate")
    overrides = decode(best.params, record.search_space(name))
    base = record.config(name)
    # Training knobs come from the study; how to evaluate and where to log from this command.
    trial_cfg = base.with_overrides({**overrides, "evaluate": cfg.evaluate.model_dump(),
                                     "tracking": cfg.tracking.model_dump()})
    return study, best, trial_cfg, overrides, spec.label


def refusal(name: str, prior: dict) -> str:
    return (f"study {name!r} was already evaluated on this test set (test digest "
            f"{prior['test_digest']}) at {prior['time']} in run {prior['run_id']}; a second "
            "look would turn the test set into a dev set. Pass evaluate.force=true (or --force) "
            "to override; the override is recorded")


def retrain_data(cfg, prepared, best):
    """(config, prepared) to retrain on: the training split as searched, or train+dev for the
    trial's best epoch count with early stopping off (dev is inside the training data then)."""
    if cfg.evaluate.retrain_on == "train":
        return cfg, prepared
    X = np.concatenate([prepared.train.X, prepared.dev.X])  # (m_train + m_dev, n)
    y = np.concatenate([prepared.train.y, prepared.dev.y])  # (m_train + m_dev,)
    epochs = max(1, int(best.user_attrs.get("best_epoch") or cfg.training.epochs))
    cfg = cfg.with_overrides({"training.patience": None, "training.epochs": epochs})
    return cfg, dataclasses.replace(prepared, train=Split.from_arrays(X, y, "train"))


def run_evaluate(cfg, *, workdir: Path = Path("."), out=None,
                 experiment_id: str | None = None, stop=None) -> Evaluation:
    """`stop` (a `pipeline.stop.Stop`): a stop before the test split is opened ends the
    final-test run KILLED and records nothing (the look is not spent); once it is opened the
    stop waits until the evaluation is recorded, registered and printed, then `Stopped` is
    raised with `held=True`."""
    from pipeline import tracking  # mlflow: lazy (test_import_boundaries_of_the_search)
    from pipeline.tracking.recovery import end_abandoned_runs

    out = out or sys.stdout  # resolved per call: a captured stdout may be gone later
    stop = stop if stop is not None else Stop()

    study, best, trial_cfg, overrides, label = load_best(cfg, workdir)
    name = study.study_name
    prepared = stages.prepare(trial_cfg)
    stop.check()  # stopped while preparing: nothing created
    experiment_id = tracking.configure(trial_cfg.tracking, experiment_id=experiment_id)
    end_abandoned_runs([experiment_id], out=sys.stderr)  # a killed evaluate's run, and others
    sc = cfg.search
    spec = S.resolve(sc.storage, name, workdir)
    # The once-only check and the record of the look happen under one claim (see evaluate_lock.py):
    # a second evaluate at the same instant is refused instead of unsealing the test split too.
    with evaluation_claim(spec, name, workdir):
        return _evaluate_claimed(cfg, study, best, trial_cfg, overrides, prepared,
                                 experiment_id, out, stop)


def _evaluate_claimed(cfg, study, best, trial_cfg, overrides, prepared, experiment_id,
                      out, stop) -> Evaluation:
    from pipeline import tracking  # mlflow: lazy, as in run_evaluate
    from pipeline.tracking.notes import final_test_name

    name, force, digest = study.study_name, cfg.evaluate.force, prepared.test.digest
    study_record = StudyRecord.load(study)  # read under the claim: no evaluate writes meanwhile
    prior = study_record.evaluations_on(digest)
    if prior and not force:
        raise ValueError(refusal(name, prior[-1]))
    fit_cfg, fit_data = retrain_data(trial_cfg, prepared, best)
    parent, forced = study_record.parent_run_id, bool(prior and force)
    with ExitStack() as held, \
            tracking.run(final_test_name(name, best.number, overrides), experiment_id=experiment_id,
                         tags=_final_test_tags(cfg, name, best, forced, digest),
                         stop=stop) as handle:
        run_id = handle.info.run_id if hasattr(handle, "info") else str(handle)
        # fit checks the stop every epoch: a stop before the unsealing ends the run KILLED
        # and spends nothing (no record; the next evaluate is allowed).
        trained = stages.train(fit_cfg, fit_data, stop=stop)
        # From here a stop waits until the report is printed (the hold ends with `held`);
        # one already requested is raised on entering, before the test split is opened.
        held.enter_context(stop.hold())
        test = stages.open_test_split(prepared, f"one-time test evaluation of study {name}")
        test_metrics = stages.split_metrics(trained, test)
        record = _look(run_id, digest, best, forced, prepared, test_metrics)
        try:
            add_test_evaluation(study, record)  # before anything else can fail
            dev_value, passed, registered = _log_look(
                cfg, name, study_record, run_id, fit_cfg, fit_data, trained, best, overrides,
                record, task_of(prepared))
        except Exception:  # a store went away after the unsealing: the numbers are not lost
            print(_test_line(test_metrics, record) + "  (recording failed, see the error)",
                  file=out, flush=True)
            raise
        # A held stop does not end the run KILLED (the look is spent and recorded): the run
        # ends FINISHED (its end check is held too), then the hold raises `Stopped`.
        _report(out, name, best, overrides, test_metrics, record, dev_value, passed, registered,
                cfg, tracking.ui_links(cfg.tracking.ui_url, experiment_id, run_id)["run"])
    return Evaluation(name, best.number, run_id, parent, test_metrics, dev_value, passed,
                      registered and registered.version, forced,
                      registered and registered.name, registered and registered.decision.word)


def _look(run_id: str, digest: str, best, forced: bool, prepared, test_metrics) -> dict:
    """The once-only record of this look at the test set (the study's `test_evaluations`)."""
    return {"run_id": run_id, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "test_digest": digest, "trial": best.number, "forced": forced,
            "data_digests": prepared.digests, "test_metrics": test_metrics}


def _final_test_tags(cfg, name: str, best, forced: bool, digest: str) -> dict[str, str]:
    return {"stage": "final_test", "optuna.study_name": name,
            "optuna.trial_number": str(best.number), "forced": str(forced).lower(),
            "evaluate.retrain_on": cfg.evaluate.retrain_on, "test_digest": digest,
            "evaluate.config_source": f"study {name} base_config + trial {best.number} params"}


def _log_look(cfg, name: str, study_record, run_id: str, fit_cfg, fit_data, trained, best,
              overrides, record: dict, task):
    """The final-test run's training record, the test metrics on it and on the study's
    parent, its links, then the gate and the registry: (dev value, passed, registration)."""
    from pipeline import tracking
    from pipeline.tracking import evaluation as T
    from pipeline.tracking import records

    test_metrics = record["test_metrics"]
    tracking.log_training(run_id, fit_cfg, fit_data, trained)
    T.log_test_metrics([run_id, study_record.parent_run_id], test_metrics, record)
    records.set_tags(run_id, {"evaluate.dev_reproduced": _reproduced(fit_cfg, trained, best),
                              **_links(study_record)})
    about = (name, best.number, overrides, test_metrics)
    return _gate_and_register(cfg, run_id, trained, best, about, record["forced"], task,
                              record["test_digest"])


def _gate_and_register(cfg, run_id: str, trained, best, about, forced: bool, task, digest):
    """(dev value, gate passed, `registry.Registration` or None): the version is registered
    under its task's model and the champion/challenger rules (pipeline/promotion.py) decide
    its aliases. `about` = (study, trial, overrides, test metrics) for the descriptions of the
    version and the run."""
    from pipeline.tracking import notes
    from pipeline.tracking import registry
    from pipeline.tracking.ui import set_run_note

    gate = cfg.evaluate.gate
    dev_value = _gate_value(cfg, trained, best)
    passed = gate.passes(dev_value)
    gate_text = f"{gate.metric}={dev_value:.4g} vs threshold {gate.threshold}"
    verdict = f"{'passed' if passed else 'failed'} ({gate_text})"
    registered = registry.register(
        run_id, task, cfg.evaluate, test_error=about[3]["test_error"], test_digest=digest,
        gate=None if passed else gate_text,
        note=notes.evaluation_note(*about, verdict, None, forced))
    set_run_note(run_id, notes.evaluation_note(*about, verdict, registered and
                                               f"{registered.name}/{registered.version}",
                                               forced))
    return dev_value, passed, registered


def _links(record: StudyRecord) -> dict[str, str]:
    """Tags naming the study's search experiment and last parent run (they hold the trials)."""
    tags = {"search.experiment_id": record.search_experiment_id,
            "search.parent_run_id": record.parent_run_id}
    return {k: str(v) for k, v in tags.items() if v}


def _reproduced(cfg, trained, best) -> str:
    """Did the retrain give the trial's dev objective again? (expected bit for bit on train)"""
    if cfg.evaluate.retrain_on != "train":
        return "n/a (retrained on train+dev)"
    again = float(trained.metrics[cfg.search.objective])
    return "true" if again == best.value else f"false (trial {best.value!r}, retrain {again!r})"


def _gate_value(cfg, trained, best) -> float:
    """The dev metric of the gate: the retrained model's when it did not see dev, else the
    best trial's (measured on dev before dev was folded into training)."""
    metric = cfg.evaluate.gate.metric
    if cfg.evaluate.retrain_on == "train":
        return float(trained.metrics[metric])
    if metric == "dev_accuracy":
        return 1.0 - float(best.user_attrs["dev_error"])
    return float(best.user_attrs[metric])


def _report(out, name, best, overrides, test_metrics, record, dev_value, passed, registered,
            cfg, link) -> None:
    g = cfg.evaluate.gate
    values = ", ".join(f"{k}={v}" for k, v in overrides.items())
    print(f"study {name}: best trial {best.number} ({values})", file=out)
    print(_test_line(test_metrics, record), file=out)
    print(f"dev gate {g.metric}={dev_value:.4f} (threshold {g.threshold}) "
          f"{'passed' if passed else 'failed'}", file=out)
    for line in _registry_lines(registered, cfg.evaluate):
        print(line, file=out)
    print(f"run {record['run_id']}: {link}", file=out)


def _registry_lines(registered, settings) -> list[str]:
    """What the registry did with this version, and what `@champion` serves now."""
    if registered is None:
        return ["registry: no model logged (tracking.log_model=false), nothing registered"]
    r, champion = registered, settings.alias
    taken = ("" if not r.decision.take_aliases else
             f", takes aliases {settings.challenger_alias!r} and {champion!r}"
             if r.decision.promote else f", takes alias {settings.challenger_alias!r}")
    serves = (f"models:/{r.name}@{champion} is version {r.champion}" if r.champion else
              f"models:/{r.name}@{champion} is not set yet")
    return [f"registry {r.name} version {r.version}: {r.decision.word}{taken} "
            f"({r.decision.reason})", f"serve: {serves}"]


def _test_line(test_metrics, record) -> str:
    return ("test: " + "  ".join(f"{k}={v:.4f}" for k, v in test_metrics.items())
            + f"  (digest {record['test_digest']}"
            + (", FORCED re-evaluation)" if record["forced"] else ")"))
