"""Pruning equal to Optuna's, and what reporting every evaluation costs (issue 20).

1. Pruned sets: the same seeded study (default config and space, 16 trials) through the
   project's objective and through a plain Optuna loop (`tests/test_pruning_parity.py`'s
   `plain_study`: report + should_prune at every evaluation, Optuna's own journal backend).
   Run it on an older checkout (PYTHONPATH) to see the old schedule's pruned set.
2. Reporting cost per default trial: 200 evaluations (epochs 10..2000, the default cadence),
   each `trial.report` + `trial.should_prune`, in a study that already holds completed trials
   (so the median pruner reads them), on the project's journal backend and on Optuna's
   (an fsync per report), interleaved per repeat; against the median wall time of one default
   trial's training (`stages.train`, default config).

   The same on the RDB storages (`search.storage=sqlite:///...`, `postgresql://...`): the
   project's storage as `search` opens it (reports held, one transaction per trial at its end:
   that flush is timed and counted as reporting) against Optuna's RDBStorage with the
   arguments the project gave it before (heartbeat 60 s, SQLite lock timeout 30 s; each report
   its own transaction). PostgreSQL: a fresh database on --postgres, dropped at the end
   (skipped with a line if the server is unreachable).

    python benchmarks/bench_pruning.py                # 5 repeats of part 2, part 1 once
    python benchmarks/bench_pruning.py --skip-parity  # part 2 only
    python benchmarks/bench_pruning.py --skip-parity --only rdb  # part 2, RDB storages only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as every command of the package runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
from optuna.storages import JournalStorage, RDBStorage  # noqa: E402
from optuna.storages.journal import JournalFileBackend  # noqa: E402

from pipeline import stages  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.search.journal import open_journal  # noqa: E402
from pipeline.search.storage import open_storage, resolve  # noqa: E402
from pipeline.store_urls import postgres_driver  # noqa: E402

EVALUATIONS = range(10, 2001, 10)  # the default trial's: epochs 2000, eval_every auto (10)


def parity(n_trials: int, tmp: Path) -> None:
    from tests.test_pruning_parity import plain_study, project_study

    cfg = load_config([], conf_dir=ROOT / "conf")
    prepared = stages.prepare(cfg)
    for name, run in (("project", project_study), ("plain Optuna", plain_study)):
        started = time.perf_counter()
        study = run(cfg, prepared, tmp / f"{name.split()[0]}.journal", n_trials)
        pruned = [t.number for t in study.get_trials() if t.state.name == "PRUNED"]
        epochs = sum(max(t.intermediate_values, default=0) for t in study.get_trials())
        print(f"{name:>13}: pruned {len(pruned)} of {n_trials} {pruned}, {epochs} epochs "
              f"trained, {time.perf_counter() - started:.1f} s", flush=True)


def reporting_seconds(storage, completed: int = 6) -> tuple[float, float, float]:
    """Seconds of `trial.report` and of `trial.should_prune` over one default trial's
    evaluations (median pruner with the default settings, `completed` finished trials already
    in the study, so the pruner reads and compares them), and of the end-of-trial flush: a
    storage that holds the reports (rdb_reports.py) writes them at the trial's next write; that
    flush is included in `report` and also returned apart (0 for the other storages)."""
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(0),
                                pruner=optuna.pruners.MedianPruner(5, 100, 1))
    flush = getattr(getattr(study._storage, "_backend", None), "flush", None)
    spent = []

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        report = decide = flushed = 0.0
        for epoch in EVALUATIONS:
            t0 = time.perf_counter()
            trial.report(x + 1.0 / epoch, epoch)
            t1 = time.perf_counter()
            trial.should_prune()   # decisions are the same either way: only the cost counts
            report, decide = report + t1 - t0, decide + time.perf_counter() - t1
        if flush is not None:
            t0 = time.perf_counter()
            flush(trial._trial_id)
            flushed = time.perf_counter() - t0
        spent.append((report + flushed, decide, flushed))
        return x

    study.optimize(objective, n_trials=completed + 1)
    return spent[-1]


def plain_rdb(url: str) -> RDBStorage:
    """Optuna's RDBStorage as the project opened it before (search/storage.py at d82f7cc)."""
    kwargs = {"engine_kwargs": {"connect_args": {"timeout": 30}}} if url.startswith("sqlite") \
        else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(postgres_driver(url), heartbeat_interval=60, grace_period=120,
                          **kwargs)


@contextmanager
def postgres_server(server: str):
    """A fresh database on `server` (postgresql://user@host:port), dropped at the end; None if
    the server cannot be reached."""
    try:
        import psycopg2

        admin = psycopg2.connect(server + "/postgres", connect_timeout=3)
    except Exception as exc:
        print(f"PostgreSQL at {server} unreachable, its rows skipped: "
              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
        yield None
        return
    admin.autocommit = True
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def default_trial_seconds() -> float:
    cfg = load_config([], conf_dir=ROOT / "conf")
    prepared = stages.prepare(cfg)
    started = time.perf_counter()
    stages.train(cfg, prepared)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--skip-parity", action="store_true")
    ap.add_argument("--only", choices=["journal", "rdb"], help="part 2 on these storages only")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432",
                    help="a PostgreSQL server (a fresh database is made and dropped)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, optuna {optuna.__version__}; load average before "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, postgres_server(args.postgres) as pg:
        tmp = Path(tmp)
        if not args.skip_parity:
            parity(args.trials, tmp)
        sides = {}  # name -> a storage for repeat r, each on a study of its own
        if args.only != "rdb":
            sides["project journal"] = lambda r: open_journal(str(tmp / f"p{r}.journal"))
            sides["Optuna journal (fsync each)"] = lambda r: JournalStorage(
                JournalFileBackend(str(tmp / f"o{r}.journal")))
        if args.only != "journal":
            sides["project SQLite (held, one transaction)"] = lambda r: open_storage(
                resolve(f"sqlite:///{tmp / f'p{r}.db'}", "s", tmp))
            sides["Optuna SQLite (a transaction each)"] = lambda r: plain_rdb(
                f"sqlite:///{tmp / f'o{r}.db'}")
            if pg:
                sides["project PostgreSQL (held, one transaction)"] = lambda r: open_storage(
                    resolve(pg, "s", tmp))
                sides["Optuna PostgreSQL (a transaction each)"] = lambda r: plain_rdb(pg)
        rows = {"trial": []} | {name: [] for name in sides}
        for r in range(args.repeats):
            rows["trial"].append(default_trial_seconds())
            for name, make in sides.items():
                storage = make(r)
                rows[name].append(reporting_seconds(storage))
                if hasattr(storage, "engine"):  # an RDB storage: its connections back now
                    storage.engine.dispose()
            print(f"repeat {r + 1}: load average {os.getloadavg()[0]:.2f}", flush=True)
    trial = statistics.median(rows.pop("trial"))
    print(f"default trial training: median {trial:.3f} s over {args.repeats} repeats")
    for name, values in rows.items():
        for i, what in enumerate(("trial.report", "trial.should_prune")):
            med = statistics.median(v[i] for v in values)
            print(f"{what} on the {name}: median {med * 1e3:.1f} ms per trial "
                  f"({med / len(EVALUATIONS) * 1e3:.3f} ms per evaluation), "
                  f"{med / trial:.2%} of a default trial")
        flushed = statistics.median(v[2] for v in values)
        if flushed:
            print(f"  of which the one end-of-trial flush on the {name}: median "
                  f"{flushed * 1e3:.1f} ms")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
