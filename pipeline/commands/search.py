"""`python -m pipeline search [key=value ...]`: Optuna search on the dev set.

Bare `study=`, `n_trials=`, `target_trials=`, `workers=`, `storage=`, `space=`, `objective=` are
shorthands for `search.<key>=` (the MLproject entry point passes them that way). `n_trials=N`
runs N more trials, as in Optuna; `target_trials=T` runs until the study has T finished trials
(resume after a crash), and runs nothing, creating no MLflow run, when it already has them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import (add_config_arguments, conf_dir, project_experiment, stop_of,
                               take_project_run)

SHORTHANDS = ("study", "n_trials", "target_trials", "workers", "storage", "space", "objective")


def expand(overrides: list[str], shorthands=SHORTHANDS, section: str = "search") -> list[str]:
    """`n_trials=50` -> `search.n_trials=50`; everything else passes through."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        out.append(f"{section}.{key}={value}" if sep and key in shorthands else item)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. n_trials=50 (50 more trials), target_trials=80 "
                             "(until 80 finished), workers=2, regularization.l1=0")
    add_config_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.search.space import check_space, load_space

    conf = conf_dir(args)
    cfg = load_config(expand(args.overrides), conf_dir=conf, preset=args.preset)
    space, text = load_space(cfg.search.space, conf)
    check_space(cfg, space)  # a bad space fails here, before any study or run exists
    # the spawned workers first: their imports overlap this process's start-up (spawned.py)
    with _spawned_workers(cfg) as spawned:
        return _run(args, cfg, space, text, spawned)


def _spawned_workers(cfg):
    """Workers 1..N-1 of `search.workers`, started now and given their job once the parent run
    exists; a null context for one worker."""
    from contextlib import nullcontext

    if cfg.search.workers == 1:
        return nullcontext()
    from pipeline.commands.preflight import tracking_uri
    from pipeline.search.spawned import SpawnedWorkers, preload_for

    return SpawnedWorkers(cfg.search.workers - 1, preload_for(cfg, tracking_uri(cfg)))


def _run(args, cfg, space, text: str, spawned) -> int:
    from pipeline.commands import preflight, unsent

    preflight.check(cfg, storage=True)  # tracking store and storage path usable, before a study
    unsent.replay_pending(preflight.tracking_uri(cfg))

    from pipeline.search import quiet_optuna
    from pipeline.search.sweep import run_search

    quiet_optuna()
    from pipeline.commands.available_memory import prepare_in_memory

    # the base network too large for memory: one line before a study or a run exists (a
    # sampled model.hidden larger than the base one is not checked here)
    prepared = prepare_in_memory(cfg)
    experiment = project_experiment()                # before take_project_run clears it
    pointer = take_project_run()
    # a stop (SIGTERM/Ctrl-C) comes back as `Stopped` saying what it ended (run_search sets
    # its outcome); cli.main prints it and exits 143/130
    from pipeline.store_fault import one_line_faults

    with one_line_faults(lambda: _stores(cfg), "during the search"):  # not 1,900 lines
        result = run_search(cfg, space, text, workdir=Path.cwd(), progress=not args.quiet,
                            experiment_id=experiment, pointer_run_id=pointer,
                            stop=stop_of(args), prepared=prepared, spawned=spawned)
    if result.parent_run_id is None and pointer is not None:
        _describe_empty_project_run(pointer, result)
    if result.parent_run_id is not None:
        from pipeline.commands import print_open_hint

        print_open_hint(cfg.tracking.ui_url, experiment_id=result.search_experiment_id,
                        run_id=result.parent_run_id)
    return 0


def _stores(cfg) -> dict[str, str]:
    """The two stores a search writes, as its one line on a store fault names them."""
    from pipeline.commands.preflight import tracking_uri
    from pipeline.search.storage import resolve
    from pipeline.search.study import study_name

    return {"tracking": tracking_uri(cfg),
            "storage": resolve(cfg.search.storage, study_name(cfg), Path.cwd()).label}


def _describe_empty_project_run(run_id: str, result) -> None:
    """Nothing to run, but `mlflow run` already opened a run: say in it why it is empty."""
    from pipeline.tracking.project_run import describe_project_run

    print(f"(mlflow run had already opened run {run_id}: it stays empty, "
          "named and described as 'nothing to run')")
    describe_project_run(
        run_id, name=f"search-{result.study} (nothing to run)",
        note=f"Nothing to run: study {result.study} ({result.storage}) already had "
             f"{result.finished} finished trials, target_trials={result.target}. No trial ran "
             "and the study is unchanged; n_trials=N runs N more.",
        tags={"stage": "search", "optuna.study_name": result.study,
              "optuna.target_trials": str(result.target), "search.nothing_to_do": "true"})
