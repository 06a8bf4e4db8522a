"""A search's fixed cost against the obvious alternative (issue 20): `python -m pipeline search`
with 16 fixed-length trials, against a plain Optuna + nested-MLflow script and plain Optuna
alone on the same objective (the project's `stages.train`, the default space, TPE with the same
seed, no pruner), in the same run.

    python benchmarks/bench_search_cost.py [--repeats 3] [--trials 16]
        [--code NAME=DIR[|key=value ...] ...]   # project checkouts (and overrides) to compare,
        # e.g. --code main=../base --code new=. --code "new, no figures=.|search.trial_figures=none"

Each cell is a fresh process (as a user runs it) with a fresh journal study and, where tracked,
a fresh SQLite MLflow store, under a temporary directory; the cells are interleaved (every
checkout, plain + MLflow, plain Optuna, then again) so load from other jobs on this shared
machine hits all alike. Per cell: the wall time of the process, the trials' span (first
trial's start to the last one's end, Optuna's timestamps) and the fixed cost = wall - span
(start-up, imports, opening the stores, the end-of-search summary), and the process's CPU
seconds (user + system), which the load from other jobs inflates less than the wall time.
Medians of the repeats; the load average is printed before every cell and at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Fixed-length trials (no pruning, no early stopping): a trial costs the same on every side.
TRAINING = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=400",
            "training.eval_every=10", "training.patience=null"]


def _plain(trials: int, journal: str, tracking: str | None) -> None:
    """The plain script, run in its own process (`--plain`): what a user would write with
    Optuna and, given `tracking`, one MLflow parent run and a nested run per trial holding its
    params, its curves and its final metrics."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from pipeline import stages
    from pipeline.config import load_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config(TRAINING, conf_dir=ROOT / "conf")
    prepared = stages.prepare(cfg)
    key = cfg.search.objective
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(journal)),
                                direction="minimize", pruner=optuna.pruners.NopPruner(),
                                sampler=optuna.samplers.TPESampler(seed=cfg.seed))
    if tracking:
        import mlflow

        mlflow.set_tracking_uri(tracking)
        mlflow.set_experiment("plain-search")

    def objective(trial):
        overrides = {"regularization.l2": trial.suggest_float("regularization.l2", 1e-4, 10.0,
                                                              log=True),
                     "regularization.keep_prob": trial.suggest_float("regularization.keep_prob",
                                                                     0.5, 1.0),
                     "model.init": trial.suggest_categorical("model.init",
                                                             ["he", "xavier", "random"])}
        curve: list[tuple[int, dict]] = []
        trained = stages.train(cfg.with_overrides(overrides), prepared,
                               callbacks=[lambda epoch, m: curve.append((epoch, dict(m)))])
        value = float(trained.metrics[key])
        if tracking:
            from mlflow.entities import Metric

            with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
                mlflow.log_params(overrides)
                now = int(time.time() * 1000)
                mlflow.MlflowClient().log_batch(
                    mlflow.active_run().info.run_id,
                    metrics=[Metric(k, float(v), now, e) for e, m in curve for k, v in m.items()])
                mlflow.log_metrics({k: float(v) for k, v in trained.metrics.items()})
        return value

    if tracking:
        with mlflow.start_run(run_name="search"):
            study.optimize(objective, n_trials=trials)
            mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
            mlflow.log_metric("best_value", study.best_value)
    else:
        study.optimize(objective, n_trials=trials)


def _span(journal: str) -> float:
    """Seconds from the first trial's start to the last one's end."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(journal))
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    return (max(t.datetime_complete for t in trials)
            - min(t.datetime_start for t in trials)).total_seconds()


def _cell(name: str, code: str | None, tmp: Path, trials: int) -> tuple[float, ...]:
    """(wall, span, CPU) of one fresh process; `code` "DIR[|key=value...]", None: plain."""
    cell = tmp / f"cell-{len(list(tmp.iterdir()))}"
    code, *extra = (code or "").split("|")
    code = str(Path(code).resolve()) if code else None
    cell.mkdir()
    journal, tracking = str(cell / "study.journal"), f"sqlite:///{cell / 'mlflow.db'}"
    env = dict(os.environ, PYTHONPATH=code or str(ROOT), MLFLOW_DISABLE_TELEMETRY="true",
               MPLBACKEND="Agg", MLFLOW_TRACKING_URI=tracking)
    if code is not None:
        cmd = [sys.executable, "-m", "pipeline", "search", "--quiet", "study=bench",
               f"storage={journal}", f"tracking.uri={tracking}", f"n_trials={trials}",
               *TRAINING, "search.pruner.name=none", *extra,
               "--conf-dir", str(Path(code) / "conf")]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--plain", journal,
               "--trials", str(trials)] + (["--tracking", tracking] if name == "plain+mlflow"
                                           else [])
    start, before = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, cwd=cell, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}: {done.stderr[-1500:]}")
    return wall, _span(journal), cpu


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--code", action="append", default=[],
                    help="NAME=DIR: a project checkout to run (default: this one, 'project')")
    ap.add_argument("--plain", metavar="JOURNAL", help=argparse.SUPPRESS)
    ap.add_argument("--tracking", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain:
        sys.path.insert(0, str(ROOT))
        return _plain(args.trials, args.plain, args.tracking)
    codes = dict(c.split("=", 1) for c in args.code) or {"project": str(ROOT)}
    cells = {**codes, "plain+mlflow": None, "plain optuna": None}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; {args.trials} trials, {args.repeats} repeats",
          flush=True)
    results: dict[str, list[tuple[float, ...]]] = {name: [] for name in cells}
    with tempfile.TemporaryDirectory() as tmp_name:
        for rep in range(args.repeats):
            for name, code in cells.items():
                load = os.getloadavg()[0]
                wall, span, cpu = _cell(name, code, Path(tmp_name), args.trials)
                results[name].append((wall, span, cpu))
                print(f"  rep {rep} {name:<14} wall {wall:5.1f} s, trials {span:5.1f} s, "
                      f"fixed {wall - span:4.1f} s, CPU {cpu:5.1f} s (load {load:.1f})",
                      flush=True)
    print(f"load after {os.getloadavg()[0]:.1f}")
    print("\n| side | wall s | trials s | fixed s (wall - trials) | CPU s |\n"
          "|---|---:|---:|---:|---:|")
    for name, rs in results.items():
        wall, span, cpu = (statistics.median(r[i] for r in rs) for i in (0, 1, 2))
        fixed = statistics.median(r[0] - r[1] for r in rs)
        print(f"| {name} | {wall:.1f} | {span:.1f} | {fixed:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
