"""One search invocation: create or resume the study, clean stale trials, open the parent run,
run the workers, then log the summary (best params and value, figures, top-trials table).

Order matters (facts file, section 0 items 6-7): the MLflow database, the experiment, the
study and the parent run all exist before any worker process starts, so workers never race
on a fresh SQLite schema or on study creation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from optuna.trial import TrialState

from pipeline.redact import redact
from pipeline.search import storage as S
from pipeline.search.progress import Progress, top_table
from pipeline.search.recovery import StudyRecovery
from pipeline.search.study import Job, best_trial, count, open_study, run_workers, study_name
from pipeline.stop import Stopped

# Sections that do not change what a trial trains; a resumed study may differ in them.
_FREE = ("search.", "evaluate.", "tracking.")


@dataclass(frozen=True)
class SearchResult:
    study: str
    storage: str
    parent_run_id: str | None       # None: nothing to do, no run was created
    experiment_id: str | None
    finished: int                   # finished trials of the study after this invocation
    target: int                     # the total this invocation ran towards
    best_value: float | None
    best_params: dict
    stale: tuple[int, ...]
    table: str
    search_experiment_id: str | None = None  # `<study>-search`: the parent and its trials


def _check_base_config(study, cfg, space) -> None:
    """The study remembers the config it was created with; resuming with a different training
    config would mix incomparable trials, so it is refused with the differing keys."""
    from pipeline.config import config_from_yaml

    stored = study.user_attrs.get("base_config")
    if stored is None:
        study.set_user_attr("base_config", redact(cfg.to_yaml()))  # evaluate takes URLs anew
        return
    old, new = config_from_yaml(stored, "study base_config").flat(), cfg.flat()
    diff = sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k) and not k.startswith(_FREE) and k not in space)
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in diff[:4])
        raise ValueError(f"search.study {study.study_name!r} was created with a different config "
                         f"({shown}); resume with the same config or choose a new search.study")


def run_search(cfg, space, space_text: str, *, workdir: Path = Path("."),
               progress: bool = True, out=None, experiment_id: str | None = None,
               pointer_run_id: str | None = None, stop=None) -> SearchResult:
    """`experiment_id`: the experiment `mlflow run` already chose (else tracking.experiment).
    `stop` (a `pipeline.stop.Stop`): the trials in progress end FAIL (child runs KILLED), the
    parent run KILLED, and `Stopped` is raised saying how to resume.

    The parent and trial runs go to the study's own experiment `<study>-search`; the training
    experiment gets a tag linking to it. `pointer_run_id` (the run `mlflow run -e search`
    created in the training experiment) becomes a pointer to the parent, with the result."""
    from pipeline import tracking
    from pipeline.tracking import notes, records
    from pipeline.tracking import search_runs as T

    from pipeline import stages

    out = out or sys.stdout  # resolved per call: a captured stdout may be gone later
    # Data errors fail here, before a study, a journal file or a run exists.
    prepared = stages.prepare(cfg)
    if stop is not None:
        stop.check()  # stopped while preparing: no study, no run
    name, sc = study_name(cfg), cfg.search
    spec = S.resolve(sc.storage, name, workdir, heartbeat_interval=sc.heartbeat_interval,
                     grace_period=sc.grace_period)
    study = _existing_study(cfg, spec) or open_study(cfg, spec, create=True)
    _check_base_config(study, cfg, space)
    target = target_total(sc, count(study))
    if count(study) >= target:  # only with target_trials: no run, no study change
        return _nothing_to_do(study, spec, target, out)
    experiment_id, search_id = _racing(lambda: _experiments(cfg, experiment_id, name))
    stale = _end_dead_parents(study, spec, out, [search_id, experiment_id])
    before = count(study)
    with tracking.run(f"search-{name}", tags=_parent_tags(cfg, spec, stale, target),
                      experiment_id=search_id, stop=stop) as handle:
        parent = _run_id(handle)
        T.describe_search(parent, notes.search_note(name, target))
        records.log_params(parent, {**cfg.flat(), "search.finished_before": before})
        T.log_text(parent, space_text, "study/space.yaml")
        _announce(study, parent, experiment_id, search_id, space_text, target)
        job = Job(cfg.to_yaml(), dict(space), spec, target, tracking.tracking_uri(),
                  search_id, parent)
        bar = Progress(study, target, sc.objective, enabled=progress)
        resume = f"search study={name} target_trials={target}"
        try:
            lost = run_workers(job, sc.workers, bar, prepared, stop=stop)
        except Stopped as exc:  # one line (cli.main): rerunning with n_trials would add N more
            exc.outcome = (f"the parent run ended KILLED and the trials in progress FAIL; to "
                           f"finish this call's trials: {resume}")
            raise
        except BaseException:  # rerunning with n_trials would add N more, not finish these
            print(f"to finish this call's trials later: {resume}", file=sys.stderr)
            raise
        finally:
            bar.close()
        if lost:  # their trials were failed and redone; the parent says what happened
            T.log_text(parent, "\n".join(lost) + "\n", "study/workers_lost.txt")
            print(f"{len(lost)} worker{'s' if len(lost) > 1 else ''} ended early "
                  f"({'; '.join(lost)}); their trials were failed and replaced", file=out)
        best, table = _summarize(study, sc, parent)
        _describe(study, sc, target, parent, best, pointer_run_id, search_id)
    print(table, file=out)
    ran = count(study) - before
    print(f"study {name} ({spec.label}): {ran} trial{'' if ran == 1 else 's'} finished in this "
          f"run, {count(study)} in total (target {target})", file=out)
    link = tracking.ui_links(cfg.tracking.ui_url, search_id, parent)["run"]
    print(f"parent run {parent}: {link}", file=out)
    return SearchResult(name, spec.label, parent, experiment_id, count(study), target,
                        None if best is None else best.value,
                        {} if best is None else dict(best.params), tuple(stale), table,
                        search_id)


def _experiments(cfg, experiment_id: str | None, name: str) -> tuple[str, str]:
    from pipeline import tracking
    from pipeline.tracking import search_runs as T

    experiment_id = tracking.configure(cfg.tracking, experiment_id=experiment_id)
    return experiment_id, T.search_experiment(experiment_id, name)


def _racing(make):
    """Two searches (or a search and a worker) of one study starting at once both create the
    experiments and set their tags; on a tracking server the slower one got "duplicate key
    value violates unique constraint experiment_tag_pk" and exited 2. Tried again, it finds
    what the other made (MLflow's create-or-update is not atomic across processes)."""
    from pipeline.tracking.store import lost_create_race

    return S.retry_lost_race(make, lost_create_race, pause=0.5)


def _announce(study, parent: str, experiment_id: str, search_id: str, space_text: str,
              target: int) -> None:
    """What a worker joining the study later (`python -m pipeline worker`, any machine) needs
    to find: the ONE current parent run, its experiment, the space and the total to reach.
    Each parent also records its owner process, so a later search on this host can tell a
    parent of a live search (left alone) from one of a search that died (ended FAILED)."""
    from pipeline.owner import owner

    study.set_user_attr("mlflow_parent_runs",
                        list(study.user_attrs.get("mlflow_parent_runs", [])) + [parent])
    study.set_user_attr(f"mlflow_parent_owner.{parent}", owner())
    study.set_user_attr("mlflow_parent_run", parent)
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr("mlflow_search_experiment_id", search_id)
    study.set_user_attr("space", space_text)  # evaluate decodes the best params with it
    study.set_user_attr("target_trials", target)


def _end_dead_parents(study, spec, out, experiment_ids: list[str]) -> tuple[int, ...]:
    """What searches and workers that died (kill -9) left RUNNING, ended before this search
    opens its parent (pipeline/search/recovery.py): their trials FAIL, their parent and trial
    runs FAILED, found by the `pipeline.owner` tag of each run. `experiment_ids`: the study's
    `<study>-search` experiment, where parents and trials go, and the training experiment,
    where parents went before it. Returns the trials failed."""
    failed = StudyRecovery(study, spec, experiment_ids, out=out)().failed
    if failed:
        print(f"resumed study {study.study_name}: trials {list(failed)} were left RUNNING by a "
              "dead worker and are now FAIL", file=out)
    return failed


def _existing_study(cfg, spec):
    """Load without writing: create_study(load_if_exists=True) appends a create record to a
    journal even when the study exists, and a call with nothing to do must leave it as it was."""
    try:
        return open_study(cfg, spec, create=False)
    except ValueError:
        return None


def _nothing_to_do(study, spec, target: int, out) -> SearchResult:
    """A resume whose target is reached says so and leaves no trace: an empty parent run would
    only push real runs down the MLflow table."""
    done, best = count(study), best_trial(study)
    print(f"study {study.study_name} ({spec.label}) already has {done} finished trials, "
          f"target_trials={target}: nothing to run, no MLflow run created "
          "(n_trials=N runs N more)", file=out)
    return SearchResult(study.study_name, spec.label, None, None, done, target,
                        None if best is None else best.value,
                        {} if best is None else dict(best.params), (), "")


def target_total(sc, finished: int) -> int:
    """The total of finished trials to run towards: `target_trials` if set, else `n_trials`
    more than the study holds now (Optuna's meaning of n_trials)."""
    return sc.target_trials if sc.target_trials is not None else finished + sc.n_trials


def _parent_tags(cfg, spec, stale, target: int) -> dict[str, str]:
    sc = cfg.search
    seed = cfg.seed if sc.sampler.seed is None else sc.sampler.seed
    return {"stage": "search", "optuna.study_name": study_name(cfg), "optuna.storage": spec.label,
            "optuna.sampler": f"{sc.sampler.name}(seed={seed})", "optuna.pruner": sc.pruner.name,
            "optuna.objective": sc.objective, "optuna.workers": str(sc.workers),
            "optuna.stale_trials_failed": ",".join(map(str, stale)) or "none",
            "optuna.target_trials": str(target)}


def _summarize(study, sc, parent: str):
    """Best trial, state counts, figures and the top-trials table onto the parent run."""
    from pipeline.search.figures import study_figures
    from pipeline.tracking import search_runs as T

    best = best_trial(study)
    table = top_table(study, sc.top, sc.objective)
    summary = None if best is None else {"params": best.params, "value": best.value,
                                         "number": best.number}
    counts = {s: count(study, (st,)) for s, st in _STATES.items()}
    T.log_study_summary(parent, best=summary, counts=counts,
                        figures=study_figures(study, sc.objective), table=table,
                        best_run_id=None if best is None else best.user_attrs.get("mlflow_run_id"))
    return best, table


def _describe(study, sc, target, parent, best, pointer_run_id, search_id) -> None:
    """The parent's description with the result; the `mlflow run` pointer run links to it."""
    from pipeline.tracking import notes
    from pipeline.tracking import search_runs as T

    summary = None if best is None else {"params": best.params, "value": best.value,
                                         "number": best.number}
    text = notes.search_note(study.study_name, target, count(study), summary,
                             sc.objective, f"python -m pipeline evaluate study={study.study_name}")
    T.describe_search(parent, text)
    if pointer_run_id:
        T.link_pointer(pointer_run_id, study=study.study_name, experiment_id=search_id,
                       parent_run_id=parent, text=text,
                       best_value=None if best is None else best.value)


def _run_id(handle) -> str:
    info = getattr(handle, "info", None)
    return info.run_id if info is not None else str(handle)


_STATES = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}
