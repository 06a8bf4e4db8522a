"""`python -m pipeline experiment <lesson> [seeds=N] [workers=N] [key=value ...]`: a lesson run
over seeds as one MLflow parent run with a child run per (arm, seed), in the lesson's own
experiment `<tracking.experiment>-lesson-<lesson>` (pipeline/tracking/lesson_parent.py). Under
`mlflow run -e experiment` the runner's run stays in the experiment the runner chose and points
at the parent.

`seeds=`, `first_seed=` (default 0) and `workers=` belong to the experiment; every other
key=value is a config override applied to every arm; an override of a key an arm sets is
refused in one line naming the key and the arms (they are the comparison: lessons/plan.py). Order for honest records: the lesson file, every arm's config and each arm's
data are validated BEFORE a run exists, so bad input exits 2 with one line and creates nothing.
`--output DIR` also writes the table, the verdict and the figures as files
(docs/make_lesson_figures.py uses it). A worker that dies (kill -9, OOM) is named on stderr
and its job retried once (pipeline/lessons/pool.py); a job whose retry dies too gets a FAILED
child, the parent ends FAILED with no verdict (tag lesson.failed_jobs) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands import (add_cache_argument, conf_dir, project_experiment, stop_of,
                               take_project_run)
from pipeline.commands.available_memory import prepare_in_memory

OWN = ("seeds", "workers", "first_seed")
LONG_PLAN = 200  # jobs: from here planning takes a second or more, so it is announced


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", help="a lesson under conf/lessons (e.g. initialization) or a "
                                       "path to a lesson .yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="seeds=5 workers=2, or config overrides for every arm")
    parser.add_argument("--conf-dir", type=Path, default=None, metavar="DIR",
                        help="config directory (default: ./conf if it holds base.yaml, else "
                             "the config shipped with the package); lessons are DIR/lessons/*.yaml")
    parser.add_argument("--output", type=Path, default=None,
                        help="also write table.md/.csv, verdict.txt and the figures here")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    add_cache_argument(parser)


def split_own(items: list[str]) -> tuple[dict[str, int], list[str]]:
    """seeds=/workers= (integers; MLflow may pass "5.0") and the config overrides."""
    from pipeline.config.safe_yaml import load_yaml

    own, rest = {}, []
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key in OWN:
            v = load_yaml(value, f"override {key}")
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            low = 0 if key == "first_seed" else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
            own[key] = v
        else:
            rest.append(item)
    return own, rest


@dataclass(frozen=True)
class LessonPlan:
    """Everything validated before a run exists: the lesson, its jobs and how to run them."""

    lesson: object              # pipeline.lessons.Lesson
    jobs: list                  # pipeline.lessons.plan.Job per (arm, seed), arm-major
    seeds: int
    workers: int
    overrides: list[str]        # config overrides applied to every arm
    cfg: object                 # the first job's config: its tracking section is the lesson's
    lesson_yaml: str            # the lesson file's text, logged with the summary
    why: str = ""               # how the worker count was chosen when workers= was not given


def run(args: argparse.Namespace) -> int:
    from pipeline.lessons.pool import LessonPool

    stop = stop_of(args)
    lp = plan_lesson(args, stop)                  # bad input exits 2 here: no run exists
    # the workers start now: their start-up overlaps this process's (MLflow, the store)
    pool = (LessonPool(min(lp.workers, len(lp.jobs)), stop).prestart() if lp.workers > 1
            else None)
    try:
        return run_planned(args, lp, pool, stop)
    finally:
        if pool is not None:
            pool.terminate()  # on a refusal or a stop before the jobs; idle ones exit anyway
            pool.close()


def run_planned(args: argparse.Namespace, lp: LessonPlan, pool, stop) -> int:
    """The lesson's parent run and its jobs (on `pool` when there is one), then the verdict."""
    from pipeline.lessons.runner import JobsFailed
    from pipeline.stop import Stopped
    from pipeline import tracking                 # mlflow costs seconds to import: only now
    from pipeline.tracking import lesson_parent as LP

    pointer, experiment_id = open_lesson_experiment(lp.cfg, lp.lesson)
    print(f"lesson {lp.lesson.name}: {len(lp.lesson.arm_names())} arms x {lp.seeds} seeds = "
          f"{len(lp.jobs)} runs, {lp.workers} worker(s)" + (f" ({lp.why})" if lp.why else ""),
          flush=True)
    started, parent = time.perf_counter(), None
    try:
        with tracking.run(lp.cfg.tracking.run_name or f"lesson-{lp.lesson.name}",
                          tags=_parent_tags(lp.lesson), experiment_id=experiment_id,
                          stop=stop) as active:
            parent = active.info.run_id
            if pointer:
                _link(pointer, lp, experiment_id, parent)
            result, cache = run_under_parent(lp, parent, experiment_id, stop, args, pool)
            seconds = time.perf_counter() - started
            LP.log_summary(parent, result, lesson_yaml=lp.lesson_yaml, seconds=seconds)
    except Stopped as exc:  # cli.main prints it and exits 143/130
        exc.outcome = (f"the lesson's parent run {parent} ended KILLED (the (arm, seed) runs "
                       "already logged stay FINISHED)" if parent else "no run was created")
        raise
    except JobsFailed as exc:
        return say_jobs_failed(exc, parent, reuse=reads_cache(lp.cfg, args))
    if args.output is not None:
        write_output(result, args.output)
    print(result.texts["lesson/table.md"])
    print(f"{len(lp.jobs)} runs in {seconds:.1f} s with {lp.workers} worker(s)")
    if pointer:
        _link(pointer, lp, experiment_id, parent, result.verdict)
    print(cache.summary(len(lp.jobs)))
    print_where(lp, experiment_id, parent)
    return 0


def plan_lesson(args: argparse.Namespace, stop) -> LessonPlan:
    """The lesson, its jobs (every arm's config validated) and each arm's data prepared once,
    before any run: a bad value or data set exits 2 with one line and creates nothing."""
    from pipeline.config import config_from_yaml
    from pipeline.lessons import load_lesson, plan
    from pipeline.lessons.plan import MAX_SEEDS
    from pipeline.stop import Stopped

    own, overrides = split_own(args.overrides)
    conf = conf_dir(args)
    lesson = load_lesson(args.lesson, conf)
    seeds = own.get("seeds", lesson.seeds)
    n_jobs = len(lesson.arm_names()) * seeds
    if LONG_PLAN <= n_jobs and seeds <= MAX_SEEDS and not args.quiet:  # (plan refuses more)
        print(f"planning {n_jobs} runs...", file=sys.stderr, flush=True)  # ms each: say so
    try:                                   # planning and data take seconds: stoppable
        jobs = plan(lesson, seeds=seeds, overrides=overrides, conf_dir=conf,
                    first_seed=own.get("first_seed", 0), stop=stop)
        for job in jobs:                   # each arm's data (the config is valid), before any run
            if job.seed == jobs[0].seed:
                stop.check()
                prepare_in_memory(config_from_yaml(job.cfg_yaml))  # one job of this arm
    except Stopped as exc:                 # cli.main prints it and exits 143/130
        exc.outcome = "stopped while planning the lesson; no run was created"
        raise
    workers, why = _workers(own, len(jobs))
    return LessonPlan(lesson, jobs, seeds, workers, overrides,
                      config_from_yaml(jobs[0].cfg_yaml), _lesson_text(args.lesson, conf), why)


def _workers(own: dict, jobs: int) -> tuple[int, str]:
    """workers= as given, else one per free core (free_cores.py), with what to print."""
    if "workers" in own:
        return own["workers"], ""
    from pipeline.commands.free_cores import choose_workers

    return choose_workers(jobs)


def open_lesson_experiment(cfg, lesson) -> tuple[str | None, str]:
    """(the `mlflow run` runner's run, to become a pointer to the parent, or None; the lesson's
    experiment id), after ending the runs a killed lesson left RUNNING there."""
    from pipeline import tracking
    from pipeline.tracking import lesson_parent as LP
    from pipeline.tracking.recovery import end_abandoned_runs

    runner_experiment = project_experiment()      # before take_project_run clears it
    pointer = take_project_run()                  # `mlflow run`: becomes a pointer to the parent
    main_id = tracking.configure(cfg.tracking, experiment_id=runner_experiment)
    experiment_id = LP.lesson_experiment(main_id, cfg.tracking.experiment, lesson)
    end_abandoned_runs([experiment_id], out=sys.stderr)  # a killed lesson's parent, children
    return pointer, experiment_id


def _parent_tags(lesson) -> dict[str, str]:
    return {"stage": "experiment", "lesson.name": lesson.name, "lesson.claim": lesson.claim.text}


def run_under_parent(lp: LessonPlan, parent: str, experiment_id: str, stop, args, pool=None):
    """The parent's params, then every (arm, seed) job as a child run (or a cached one's
    reuse); returns (the assembled result, the run cache). A job whose worker died twice is
    recorded FAILED and `JobsFailed` raised."""
    from pipeline.lessons.runner import JobsFailed, assemble, run_jobs
    from pipeline.tracking import lessons as TL
    from pipeline.tracking import records

    records.log_params(parent, TL.parent_params(lp.lesson, lp.seeds, lp.workers, lp.overrides))
    records.log_source(parent)
    logger = TL.LessonLogger(experiment_id, parent, lp.lesson.name,
                             grad_curves=lp.lesson.kind == "gradient_flow")
    on_result = _progress(logger, len(lp.jobs), quiet=args.quiet)
    cache = arm_cache(logger, read=reads_cache(lp.cfg, args))
    try:
        runs = run_jobs(lp.jobs, lp.workers, on_result, stop, cache, pool)
    except JobsFailed as exc:  # a worker died twice on these: recorded, then FAILED
        logger.failed(exc.failed)
        raise
    return assemble(lp.lesson, lp.jobs, runs), cache


def reads_cache(cfg, args) -> bool:
    """Reuse a finished identical (arm, seed) run unless `--no-cache` or `tracking.cache: false`."""
    return cfg.tracking.cache and not args.no_cache


def say_jobs_failed(exc, parent: str, reuse: bool) -> int:
    """The parent ended FAILED without a verdict: say so and what was kept; exit code 1."""
    kept = "; the same command again reuses them (run cache)" if reuse else ""
    print(f"error: {exc}; the lesson's parent run {parent} ended FAILED, no verdict (the "
          f"{len(exc.runs)} finished (arm, seed) runs are logged{kept})",
          file=sys.stderr, flush=True)
    return 1


def _link(pointer: str, lp: LessonPlan, experiment_id: str, parent: str, verdict=None) -> None:
    """The `mlflow run` runner's run points at the parent (with the verdict once there is one)."""
    from pipeline.tracking import lesson_parent as LP

    held = {} if verdict is None else {"verdict": verdict.line, "held": verdict.held}
    LP.link_pointer(pointer, lesson=lp.lesson.name, experiment_id=experiment_id,
                    parent_run_id=parent, **held)


def print_where(lp: LessonPlan, experiment_id: str, parent: str) -> None:
    """Where to look: the lesson's experiment, the parent run, and how to open the UI."""
    from pipeline import tracking
    from pipeline.commands import print_open_hint
    from pipeline.tracking import lesson_parent as LP

    links = tracking.ui_links(lp.cfg.tracking.ui_url, experiment_id, parent)
    print(f"lesson experiment {LP.experiment_name(lp.cfg.tracking.experiment, lp.lesson.name)}: "
          f"{links['runs']}")
    print(f"parent run {parent}: {links['run']}")
    print_open_hint(lp.cfg.tracking.ui_url, experiment_id=experiment_id)


def _progress(logger, total: int, quiet: bool):
    count = [0]

    def on_result(run) -> None:
        logger(run)
        count[0] += 1
        if not quiet:
            print(f"  [{count[0]}/{total}] {run.arm} seed {run.seed}: dev_accuracy "
                  f"{run.metrics.get('dev_accuracy', float('nan')):.3f} "
                  + (f"(reused run {run.reused_from})" if run.reused_from
                     else f"({run.seconds:.1f} s)"),
                  file=sys.stderr, flush=True)
    return on_result


def arm_cache(logger, read: bool):
    """The run cache of the lesson's (arm, seed) runs: each result is stored on (or a reuse
    recorded on) the child run the logger made for it (pipeline/tracking/cache.py)."""
    from pipeline.tracking.cache import LessonCache

    return LessonCache(read=read, child_of=lambda run: logger.children.get((run.arm, run.seed)))


def _lesson_text(name: str, conf_dir: Path) -> str:
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = Path(conf_dir) / "lessons" / f"{name}.yaml"
    return path.read_text(encoding="utf-8")


def write_output(result, out: Path) -> None:
    """Table, verdict and figures as files under `out` (prefix lesson/ dropped)."""
    out.mkdir(parents=True, exist_ok=True)
    for path, text in result.texts.items():
        target = out / path.removeprefix("lesson/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for path, fig in result.figures.items():
        fig.savefig(out / path.removeprefix("lesson/"), dpi=90)
