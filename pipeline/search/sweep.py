"""One search invocation: create or resume the study, clean stale trials, open the parent run,
run the workers, then log the summary (best params and value, figures, top-trials table).

Order matters: the MLflow database, the experiment, the study and the parent run all exist
before any worker process starts, so workers never race on a fresh SQLite schema (processes
migrating one new SQLite file at once fail) or on study creation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from optuna.trial import TrialState

from pipeline import stages
from pipeline.redact import redact
from pipeline.search import storage as S
from pipeline.search.figures import study_figures
from pipeline.search.home_store import check_home_store
from pipeline.search.progress import Progress, top_table
from pipeline.search.recovery import StudyRecovery
from pipeline.search.record import StudyRecord, add_parent, write_base_config
from pipeline.search.study import best_trial, count, open_study, sampler_seed, study_name
from pipeline.search.workers import WorkerJob, run_workers
from pipeline.stop import Stopped
from pipeline.store_fault import later  # a store fault's one line carries the resume hint

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
    record = StudyRecord.load(study)
    if record.base_config is None:
        write_base_config(study, redact(cfg.to_yaml()))  # evaluate takes URLs anew
        return
    old, new = record.config(study.study_name).flat(), cfg.flat()
    diff = sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k) and not k.startswith(_FREE) and k not in space)
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in diff[:4])
        raise ValueError(f"search.study {study.study_name!r} was created with a different config "
                         f"({shown}); resume with the same config or choose a new search.study")


def run_search(cfg, space, space_text: str, *, workdir: Path = Path("."),
               progress: bool = True, out=None, experiment_id: str | None = None,
               pointer_run_id: str | None = None, stop=None, prepared=None,
               spawned=None) -> SearchResult:
    """`experiment_id`: the experiment `mlflow run` already chose (else tracking.experiment).
    `stop` (a `pipeline.stop.Stop`): the trials in progress end FAIL (child runs KILLED), the
    parent run KILLED, and `Stopped` is raised saying how to resume.

    The parent and trial runs go to the study's own experiment `<study>-search`; the training
    experiment gets a tag linking to it. `pointer_run_id` (the run `mlflow run -e search`
    created in the training experiment) becomes a pointer to the parent, with the result.
    `prepared`: the data the command prepared (and checked against the free memory), else
    prepared here. `spawned`: the spawned workers (pipeline/search/spawned.py) the command
    started before its own start-up, waiting for their job; else spawned when the trials
    start."""
    from pipeline import tracking  # mlflow: imported by a search that runs, not by its import
    from pipeline.tracking import notes

    out = out or sys.stdout  # resolved per call: a captured stdout may be gone later
    if prepared is None:  # data errors fail here, before a study, a file or a run
        prepared = stages.prepare(cfg)
    if stop is not None:
        stop.check()  # stopped while preparing: no study, no run
    study, spec = _open_study(cfg, space, workdir)
    target = target_total(cfg.search, count(study))
    if count(study) >= target:  # only with target_trials: no run, no study change
        return _nothing_to_do(study, spec, target, out)
    check_home_store(study, spec.label, cfg.tracking.uri)  # before any write or training
    experiment_id, search_id = _racing(lambda: _experiments(cfg, experiment_id, study.study_name))
    stale = _end_abandoned_runs(study, spec, [search_id, experiment_id], out)
    before = count(study)
    with tracking.run(notes.search_parent_name(study.study_name, before, target),
                      experiment_id=search_id, stop=stop,
                      tags=_parent_tags(cfg, spec, stale, target)) as handle:
        parent = _run_id(handle)
        _open_parent(cfg, study, parent, search_id, space_text, target, before)
        job = WorkerJob(cfg.to_yaml(), dict(space), spec, target, tracking.tracking_uri(),
                        search_id, parent)
        _run_trials(cfg, study, job, prepared, progress, stop, out, spawned)
        best, table = _summarize(study, cfg.search, parent)
        _describe(study, cfg.search, target, parent, best, pointer_run_id, search_id)
    _print_done(cfg, study, spec, target, before, table, search_id, parent, out)
    return SearchResult(study.study_name, spec.label, parent, experiment_id, count(study),
                        target, None if best is None else best.value,
                        {} if best is None else dict(best.params), tuple(stale), table,
                        search_id)


def _open_study(cfg, space, workdir: Path):
    """(study, storage spec): the study resumed, else created; resumed with the config it was
    created with (the search space's keys and the sections in `_FREE` may differ)."""
    sc = cfg.search
    spec = S.resolve(sc.storage, study_name(cfg), workdir,
                     heartbeat_interval=sc.heartbeat_interval, grace_period=sc.grace_period)
    study = _existing_study(cfg, spec) or open_study(cfg, spec, create=True)
    _check_base_config(study, cfg, space)
    return study, spec


def _end_abandoned_runs(study, spec, experiment_ids: list[str], out) -> tuple[int, ...]:
    """What searches and workers that died (kill -9) left RUNNING, ended before this search
    opens its parent (pipeline/search/recovery.py): their trials FAIL, their parent and trial
    runs FAILED, found by the `pipeline.owner` tag of each run. `experiment_ids`: the study's
    `<study>-search` experiment, where parents and trials go, and the training experiment,
    where parents went before it. Returns the trials failed."""
    failed = StudyRecovery(study, spec, experiment_ids, out=out, recorded_parents=True)().failed
    if failed:
        print(f"resumed study {study.study_name}: trials {list(failed)} were left RUNNING by a "
              "dead worker and are now FAIL", file=out)
    return failed


def _open_parent(cfg, study, parent: str, search_id: str, space_text: str, target: int,
                 before: int) -> None:
    """The parent run's note, params and space; then the study's record names it the current
    parent, with what a worker joining later (`python -m pipeline worker`, any machine) needs:
    its experiment, the space and the total to reach (its owner process is the run's own
    `pipeline.owner` tag, which the recovery reads: pipeline/tracking/recovery.py)."""
    from pipeline.tracking import notes, records
    from pipeline.tracking import search_runs as T

    T.describe_search(parent, notes.search_note(study.study_name, target))
    records.log_params(parent, {**cfg.flat(), "search.finished_before": before})
    T.log_text(parent, space_text, "study/space.yaml")
    add_parent(study, parent, search_id, space_text, target)


def _run_trials(cfg, study, job: WorkerJob, prepared, progress: bool, stop, out,
                spawned) -> None:
    """The workers until the target, with the progress bar; a failure or stop says how to
    finish this call's trials (rerunning with n_trials would add N more, not finish these)."""
    from pipeline.tracking import search_runs as T

    sc = cfg.search
    bar = Progress(study, job.target, sc.objective, enabled=progress)
    resume = f"search study={study.study_name} target_trials={job.target}"
    try:
        lost = run_workers(job, sc.workers, bar, prepared, stop=stop, spawned=spawned)
    except Stopped as exc:  # one line (cli.main)
        exc.outcome = (f"the parent run ended KILLED and the trials in progress FAIL; to "
                       f"finish this call's trials: {resume}")
        raise
    except BaseException as exc:
        if not later(exc, f"to finish this call's trials later: {resume}"):
            print(f"to finish this call's trials later: {resume}", file=sys.stderr)
        raise
    finally:
        bar.close()
    if lost:  # their trials were failed and redone; the parent says what happened
        T.log_text(job.parent_run_id, "\n".join(lost) + "\n", "study/workers_lost.txt")
        print(f"{len(lost)} worker{'s' if len(lost) > 1 else ''} ended early "
              f"({'; '.join(lost)}); their trials were failed and replaced", file=out)


def _print_done(cfg, study, spec, target: int, before: int, table: str, search_id: str,
                parent: str, out) -> None:
    from pipeline import tracking

    print(table, file=out)
    done = count(study)
    ran = done - before
    print(f"study {study.study_name} ({spec.label}): {ran} trial{'' if ran == 1 else 's'} "
          f"finished in this run, {done} in total (target {target})", file=out)
    link = tracking.ui_links(cfg.tracking.ui_url, search_id, parent)["run"]
    print(f"parent run {parent}: {link}", file=out)


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
    return {"stage": "search", "optuna.study_name": study_name(cfg), "optuna.storage": spec.label,
            "optuna.sampler": f"{sc.sampler.name}(seed={sampler_seed(cfg)})",
            "optuna.pruner": sc.pruner.name,
            "optuna.objective": sc.objective, "optuna.workers": str(sc.workers),
            "optuna.stale_trials_failed": ",".join(map(str, stale)) or "none",
            "optuna.target_trials": str(target)}


def _summarize(study, sc, parent: str):
    """Best trial, state counts, figures and the top-trials table onto the parent run."""
    from pipeline.tracking import search_runs as T

    best = best_trial(study)
    table = top_table(study, sc.top, sc.objective)
    summary = None if best is None else {"params": best.params, "value": best.value,
                                         "number": best.number}
    counts = {s: count(study, (st,)) for s, st in _STATES.items()}
    T.log_study_summary(parent, best=summary, counts=counts,
                        figures=study_figures(study, sc.objective, sc.importances),
                        table=table,
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
