"""Trials per minute with 1, 2 and 4 workers: the embedded default (journal file + SQLite
MLflow store) against the scale-out stores (PostgreSQL Optuna storage + an `mlflow server`
with a PostgreSQL backend store), issue 11.

    python benchmarks/bench_scaleout.py [--repeats 3] [--trials 16] [--workers 1,2,4]

Each cell is a fresh study run by `python -m pipeline search` (a real subprocess, as a user
runs it) on a tiny problem with fixed-length trials (no pruning, no early stopping, no figures),
so a trial costs about the same everywhere and the stores' overhead shows. Cells are
interleaved (embedded, server, embedded, ...) so a load spike from the other jobs on this
shared machine hits both alike. Printed per cell: the median over repeats of the steady rate
(finished trials per minute between the first trial's start and the last one's end, from
Optuna's timestamps) and of the whole command's wall time; the load average before and after.
Needs PostgreSQL at 127.0.0.1:5432 (trust auth); everything is created under a temporary
directory and in fresh databases, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the real-server helpers the tests use

TRIAL = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=400",
         "training.eval_every=10", "training.patience=null", "search.pruner.name=none",
         "search.trial_figures=none"]


def one(tmp: Path, tag: str, workers: int, trials: int, tracking: str,
        storage: str) -> tuple[float, float]:
    """(steady trials per minute, wall seconds) of one fresh study."""
    import optuna

    from pipeline.search import storage as S

    study = f"bench-{tag}-w{workers}-{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=tracking,
               MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", "search", "--quiet",
                           f"study={study}", f"storage={storage}", f"workers={workers}",
                           f"target_trials={trials}", *TRIAL, "--conf-dir", str(ROOT / "conf")],
                          cwd=tmp, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tag} workers={workers}: {done.stderr[-800:]}")
    spec = S.resolve(storage, study, tmp)
    finished = [t for t in optuna.load_study(study_name=study,
                                             storage=S.open_storage(spec)).trials
                if t.state.name == "COMPLETE"]
    first = min(t.datetime_start for t in finished)
    last = max(t.datetime_complete for t in finished)
    return len(finished) / ((last - first).total_seconds() / 60), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    import servers

    counts = [int(w) for w in args.workers.split(",")]
    print(f"cores {os.cpu_count()}, load before {os.getloadavg()}", flush=True)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name, servers.postgres_database() as optuna_db, \
            servers.postgres_database() as backend:
        tmp = Path(tmp_name)
        with servers.mlflow_server(backend, tmp / "server") as url:
            cells = {"embedded": (f"sqlite:///{tmp / 'mlflow.db'}", None),
                     "server": (url, optuna_db)}
            for rep in range(args.repeats):
                for workers in counts:
                    for tag, (tracking, storage) in cells.items():
                        st = storage or str(tmp / f"{tag}-{workers}-{rep}.journal")
                        r = one(tmp, tag, workers, args.trials, tracking, st)
                        results.setdefault((tag, workers), []).append(r)
                        print(f"  rep {rep} {tag:<8} workers={workers}: {r[0]:6.1f} trials/min "
                              f"steady, {r[1]:5.1f} s wall", flush=True)
    print(f"load after {os.getloadavg()}")
    print(f"\n| stores | workers | trials/min (steady, median) | wall s (median, "
          f"{args.trials} trials) |\n|---|---|---|---|")
    for (tag, workers), rs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        name = ("journal + SQLite MLflow" if tag == "embedded"
                else "PostgreSQL + mlflow server")
        print(f"| {name} | {workers} | {statistics.median(r[0] for r in rs):.1f} | "
              f"{statistics.median(r[1] for r in rs):.1f} |")


if __name__ == "__main__":
    main()
