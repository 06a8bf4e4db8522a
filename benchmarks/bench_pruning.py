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

    python benchmarks/bench_pruning.py                # 5 repeats of part 2, part 1 once
    python benchmarks/bench_pruning.py --skip-parity  # part 2 only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as every command of the package runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
from optuna.storages import JournalStorage  # noqa: E402
from optuna.storages.journal import JournalFileBackend  # noqa: E402

from pipeline import stages  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.search.journal import open_journal  # noqa: E402

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


def reporting_seconds(storage, completed: int = 6) -> tuple[float, float]:
    """Seconds of `trial.report` and of `trial.should_prune` over one default trial's
    evaluations (median pruner with the default settings, `completed` finished trials already
    in the study, so the pruner reads and compares them)."""
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(0),
                                pruner=optuna.pruners.MedianPruner(5, 100, 1))
    spent = []

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        report = decide = 0.0
        for epoch in EVALUATIONS:
            t0 = time.perf_counter()
            trial.report(x + 1.0 / epoch, epoch)
            t1 = time.perf_counter()
            trial.should_prune()   # decisions are the same either way: only the cost counts
            report, decide = report + t1 - t0, decide + time.perf_counter() - t1
        spent.append((report, decide))
        return x

    study.optimize(objective, n_trials=completed + 1)
    return spent[-1]


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
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, optuna {optuna.__version__}; load average before "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_parity:
            parity(args.trials, tmp)
        rows = {"trial": [], "project journal": [], "Optuna journal (fsync each)": []}
        for r in range(args.repeats):
            rows["trial"].append(default_trial_seconds())
            rows["project journal"].append(reporting_seconds(
                open_journal(str(tmp / f"p{r}.journal"))))
            rows["Optuna journal (fsync each)"].append(reporting_seconds(
                JournalStorage(JournalFileBackend(str(tmp / f"o{r}.journal")))))
    trial = statistics.median(rows.pop("trial"))
    print(f"default trial training: median {trial:.3f} s over {args.repeats} repeats")
    for name, values in rows.items():
        for i, what in enumerate(("trial.report", "trial.should_prune")):
            med = statistics.median(v[i] for v in values)
            print(f"{what} on the {name}: median {med * 1e3:.1f} ms per trial "
                  f"({med / len(EVALUATIONS) * 1e3:.3f} ms per evaluation), "
                  f"{med / trial:.2%} of a default trial")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
