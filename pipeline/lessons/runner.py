"""Run a lesson: every (arm, seed) job, in this process or in spawned workers, then the table,
the verdict and the figures. No MLflow here: `on_result` lets the tracking edge log each child
run as it finishes (in this process, so workers never write to the store).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import pandas as pd

from pipeline import threads
from pipeline.lessons.claim import Verdict, judge, paired_column
from pipeline.lessons.execute import ArmRun, execute
from pipeline.lessons.plan import Job, plan
from pipeline.lessons.pool import JobsFailed, LessonPool
from pipeline.lessons.spec import Lesson, load_lesson
from pipeline.lessons.table import summarize


@dataclass(frozen=True)
class LessonResult:
    lesson: Lesson
    runs: tuple[ArmRun, ...]        # arm-major, seeds ascending
    table: pd.DataFrame             # one row per arm: <metric>_mean/_std/_min/_max, n_seeds, optimistic
    verdict: Verdict
    figures: dict = field(default_factory=dict)     # {"lesson/comparison.png": Figure, ...}
    texts: dict = field(default_factory=dict)       # {"lesson/table.md": str, ...}
    diagnoses: dict = field(default_factory=dict)   # grid: {cell: Diagnosis of the mean errors}

    @property
    def arms(self) -> list[str]:
        return list(self.table.index)


def optimistic_arms(jobs: Sequence[Job]) -> list[str]:
    """Arms whose training stops early on dev: their dev numbers chose their epoch."""
    from pipeline.config import config_from_yaml
    return sorted({j.arm for j in jobs if config_from_yaml(j.cfg_yaml).training.patience})


def run_lesson(lesson: Lesson | str, *, seeds: int | None = None, workers: int = 1,
               overrides: Sequence[str] = (), conf_dir: Path | str = Path("conf"),
               on_result: Callable[[ArmRun], None] | None = None, figures: bool = True,
               jobs: Sequence[Job] | None = None,
               arms: Sequence[str] | None = None, first_seed: int = 0,
               stop=None, cache: "ArmCache | None" = None) -> LessonResult:
    """Run every arm over `seeds` seeds (default: the lesson's) and judge the claim.

    `lesson`: a Lesson or a name under conf/lessons. `workers` > 1 runs jobs in spawned
    processes; every job uses the BLAS thread count of `pipeline.threads` (one unless the user
    chose). `on_result(run)` is called in this process as each
    job finishes. `jobs`: an already validated plan (the command builds it before any run).
    `arms`: only these arms (the claim's checks that name another arm then fail).
    `stop` (a `pipeline.stop.Stop`), `cache` (e.g. `pipeline.tracking.cache.lesson_cache()`):
    see `run_jobs`.
    """
    if isinstance(lesson, str):
        lesson = load_lesson(lesson, conf_dir)
    jobs = list(jobs) if jobs is not None else plan(lesson, seeds=seeds, overrides=overrides,
                                                    conf_dir=conf_dir, arms=arms,
                                                    first_seed=first_seed)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    runs = run_jobs(jobs, workers, on_result, stop, cache)
    return assemble(lesson, jobs, runs, figures=figures)


class ArmCache(Protocol):
    """The run cache as the runner sees it (no MLflow here: pipeline/tracking/cache.py
    implements it). `get`: the job's result from an earlier identical run, or None (train it).
    `put`: called with every result, fresh or reused, after `on_result` (store it, or record
    the reuse)."""

    def get(self, job: Job) -> ArmRun | None: ...

    def put(self, job: Job, run: ArmRun) -> None: ...


def run_jobs(jobs: Sequence[Job], workers: int, on_result=None, stop=None,
             cache: ArmCache | None = None, pool: LessonPool | None = None) -> list[ArmRun]:
    """Every job, in order of completion to `on_result`. `stop` (a `pipeline.stop.Stop`) is
    checked by the training of an in-process job every epoch, between jobs, and every
    `pool.POLL` seconds while spawned workers run; on a stop the workers are terminated (they
    write nothing: `on_result` runs here) and `Stopped` propagates. `cache`: jobs it has a
    result for are not trained (they come first); each result is then `put` into it.
    A spawned worker that dies is named on stderr and its job retried once (pool.py); a job
    whose retry dies too is skipped, and once every other job is done `JobsFailed` is
    raised (its `runs`: those that finished). `pool`: workers the caller started early
    (`LessonPool.prestart`); closed here either way."""
    from pipeline.stop import Stop

    stop = stop if stop is not None else Stop()
    order = {(j.arm, j.seed): i for i, j in enumerate(jobs)}
    reused = [] if cache is None else _reused(jobs, cache, stop)
    seen = {(r.arm, r.seed) for r in reused}
    todo = [j for j in jobs if (j.arm, j.seed) not in seen]
    done: list[ArmRun] = []
    if workers == 1 or len(todo) <= 1:
        if pool is not None:           # started early, nothing left for it (the cache)
            pool.close()
            pool = None
        limit = threads.limit()        # this process too: pipeline/threads.py
        fresh = (execute(job, stop) for job in todo)
    else:
        pool = pool or LessonPool(min(workers, len(todo)), stop)
        fresh = pool.results(todo)
    try:
        for run in itertools.chain(reused, fresh):
            stop.check()
            done.append(run)
            if on_result is not None:
                on_result(run)
            if cache is not None:
                cache.put(jobs[order[(run.arm, run.seed)]], run)
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.close()
        else:
            limit.restore()
    if pool is not None and pool.failed:
        raise JobsFailed(pool.failed, sorted(done, key=lambda r: order[(r.arm, r.seed)]),
                         len(jobs))
    return sorted(done, key=lambda r: order[(r.arm, r.seed)])


def _reused(jobs: Sequence[Job], cache: ArmCache, stop) -> list[ArmRun]:
    out = []
    for job in jobs:
        stop.check()
        run = cache.get(job)
        if run is not None:
            out.append(run)
    return out


def assemble(lesson: Lesson, jobs: Sequence[Job], runs: Sequence[ArmRun], *,
             figures: bool = True) -> LessonResult:
    from pipeline.lessons import table as T

    ran = {j.arm for j in jobs}
    arms = [a for a in lesson.arm_names() if a in ran]
    table = summarize(runs, arms, optimistic_arms(jobs))
    cells = _diagnoses(lesson, table, jobs, runs)
    verdict = judge(lesson, table, {a: d.verdict for a, d in cells.items()}, runs=runs)
    extra = {"diagnosis": {a: d.verdict for a, d in cells.items()},
             "next step": {a: d.recommendation for a, d in cells.items()}} if cells else {}
    if lesson.kind in ("arms", "grid"):  # what the recipe says of each seed's run, counted
        extra["diagnosis per seed"] = {a: seed_diagnoses(runs, a) for a in arms}
    extra.update(paired_column(lesson, runs))
    md = T.markdown(table, display_metrics(lesson), extra=extra)
    texts = {"lesson/table.md": f"# {lesson.title}\n\n{md}\n\n{verdict.format()}\n",
             "lesson/table.csv": table.to_csv(), "lesson/verdict.txt": verdict.format() + "\n"}
    for run in runs:
        if run.report:
            texts[f"lesson/gradcheck/{run.arm}-seed{run.seed}.txt"] = run.report + "\n"
    figs = make_figures(lesson, runs, arms, table, cells) if figures else {}
    return LessonResult(lesson, tuple(runs), table, verdict, figs, texts, cells)


def seed_diagnoses(runs: Sequence[ArmRun], arm: str) -> str:
    """"high variance x4, fine x1": each seed's diagnosis of one arm, most frequent first."""
    verdicts = [r.diagnosis for r in runs if r.arm == arm and r.diagnosis]
    counts = sorted({v: verdicts.count(v) for v in verdicts}.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{v} x{n}" for v, n in counts) or "n/a"


def display_metrics(lesson: Lesson) -> list[str]:
    """The table's columns: the claim's metrics first, then the usual ones of the kind."""
    usual = {"arms": ["train_accuracy", "dev_accuracy", "dev_loss"],
             "grid": ["train_error", "dev_error"],
             "gradient_flow": ["grad_norm_first", "grad_norm_last", "log10_grad_ratio",
                               "log10_grad_slope", "log10_grad_spread", "act_norm_first",
                               "act_norm_last", "log10_act_ratio", "first_train_loss",
                               "train_loss"],
             "gradcheck": ["n_failed", "relative_error"]}[lesson.kind]
    if lesson.threshold is not None:
        usual += ["epochs_to_threshold", "reached_threshold"]
    out: list[str] = []
    for m in [c.metric for c in lesson.claim.checks] + usual:
        if m not in out:
            out.append(m)
    return out


def _diagnoses(lesson: Lesson, table: pd.DataFrame, jobs: Sequence[Job], runs=()) -> dict:
    """Grid lessons: each cell diagnosed from its MEAN train and dev errors, against the
    Bayes error its runs used (`diagnosis.bayes_error: auto` is resolved by each run's data),
    with the recommendation reading the cell's regularization."""
    if lesson.kind != "grid":
        return {}
    from pipeline.config import config_from_yaml
    from pipeline.diagnosis import diagnose, regularizers, resolve_bayes_error

    first = {j.arm: config_from_yaml(j.cfg_yaml) for j in jobs}
    out = {}
    for a in table.index:
        cfg, reg = first[a], first[a].regularization
        bayes, source = resolve_bayes_error(cfg.diagnosis.bayes_error, None)
        used = [r for r in runs if r.arm == a]
        if used and "bayes_error_mean" in table:
            bayes, source = float(table.loc[a, "bayes_error_mean"]), used[0].bayes_source
        out[a] = diagnose(table.loc[a, "train_error_mean"], table.loc[a, "dev_error_mean"],
                          bayes_error=bayes, threshold=cfg.diagnosis.threshold,
                          regularization=regularizers(reg.l2, reg.l1, reg.keep_prob),
                          bayes_source=source)
    return out


def make_figures(lesson: Lesson, runs, arms, table, cells) -> dict:
    from pipeline.lessons import figures as F

    figs = {}
    if lesson.kind == "arms":
        figs["lesson/comparison.png"] = F.comparison(lesson, runs, arms)
    if lesson.kind == "grid":  # the cells on the diagnoses; their curves, one panel each
        figs["lesson/comparison.png"] = F.diagnoses(lesson.grid, table, cells)
        if lesson.figure.curve_arms:   # a few cells' curves overlaid (e.g. the longest budgets)
            shown = [a for a in arms if a in lesson.figure.curve_arms] or arms
            figs["lesson/curves.png"] = F.comparison(lesson, [r for r in runs if r.arm in shown],
                                                     shown)
        else:                          # every cell's curves, one panel each
            figs["lesson/curves.png"] = F.cell_curves(lesson, runs, cells)
        if lesson.figure.cells:
            figs["lesson/cells.png"] = F.cells(lesson.grid, table, lesson.figure.cells)
    if lesson.kind == "gradient_flow":
        figs["lesson/comparison.png"] = F.grad_flow(runs, arms)
        figs["lesson/curves.png"] = F.comparison(lesson.model_copy(
            update={"figure": lesson.figure.model_copy(update={"boundary": False})}), runs, arms)
    if lesson.kind == "gradcheck":
        figs["lesson/comparison.png"] = F.gradcheck(runs, arms)
    if lesson.figure.contours and runs and runs[0].model is not None:
        figs["lesson/contours.png"] = F.contours(runs)
    return figs
