"""The fixed costs of runs and trials (issue 12): one sub-benchmark per row of its target table.

    python benchmarks/bench_overhead.py [--repeats 5] [--only train,post,fit,startup,search,prune]

Every sub-benchmark interleaves what it compares (A B A B ...), so a load spike from the other
jobs on this shared machine hits both sides alike, and prints medians and the load average
before and after. Everything writes under a temporary directory (MLflow store, journals).

train    `python -m pipeline train --quiet` (fresh store, and an existing one) / the same
         config's prepare + train in a fresh process without MLflow
post     a 20,000-epoch run (no early stopping), as the train command does it, each in a
         fresh process: time after training (flush, log_training, end of run) / training
fit      `stages.train` with the config's evaluation cadence / the same epochs with one
         evaluation at the end (the bare loop)
startup  `--help` of every command, and a config error (`regularization.keep_prob=1.5`)
search   trials per minute with 1 and 2 workers on the default space (whole command wall
         time, and the steady rate between the first trial's start and the last one's end)
prune    total epochs and best dev error of the same seeded TPE study with and without the
         pruner, over 3 seeds (no MLflow: only training counts)
floor    MLflow's own fixed costs, each in a fresh process: `import mlflow`, + its SQL store
         module, + a bare `pyfunc.log_model` of a trivial model (what no code of ours can cut)
steps    one default `train` sequence in-process, each step's wall time (where a run's time goes)

Every process here runs with one BLAS thread, as `python -m pipeline` sets it (pipeline/cli.py):
the bare-training side of `train` must not pay a spinning second OpenBLAS thread that the
tracked command does not (measured: 18 s instead of 1.0 s for the default training, load 2).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import overhead_parts  # benchmarks/ is on sys.path when this script runs
from overhead_parts import train_buffer

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
PLAIN = ("import sys; from pipeline.config import load_config; from pipeline import stages; "
         "cfg = load_config(sys.argv[1:], conf_dir={conf!r}); p = stages.prepare(cfg); "
         "stages.train(cfg, p)")


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def med(xs) -> float:
    return statistics.median(xs)


def env_for(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    env.update({k: os.environ.get(k, "1") for k in BLAS_THREADS})
    return env


CPU: list[float] = []  # CPU seconds (user + sys) of the last `wall` call's process


def wall(cmd, cwd, env, ok=(0,)) -> float:
    """Wall seconds of a fresh process; its CPU seconds go to CPU[-1]. On a machine shared
    with other jobs the wall time mostly measures the queue for a core; CPU time less so."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode not in ok:
        raise RuntimeError(f"{cmd} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed


def bench_train(repeats: int, overrides) -> None:
    tracked = [sys.executable, "-m", "pipeline", "train", "--quiet", "--conf-dir", CONF, *overrides]
    plain = [sys.executable, "-c", PLAIN.format(conf=CONF), *overrides]
    fresh, existing, bare = [], [], []
    cpu = {"fresh": [], "existing": [], "bare": []}
    with tempfile.TemporaryDirectory() as keep:
        keep = Path(keep)
        wall(tracked, keep, env_for(keep))                    # the existing store's first run
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:        # a new store every time
                fresh.append(wall(tracked, tmp, env_for(Path(tmp))))
                cpu["fresh"].append(CPU[-1])
            existing.append(wall(tracked, keep, env_for(keep)))
            cpu["existing"].append(CPU[-1])
            bare.append(wall(plain, keep, env_for(keep)))
            cpu["bare"].append(CPU[-1])
    f, e, b = med(fresh), med(existing), med(bare)
    cf, ce, cb = (med(cpu[k]) for k in ("fresh", "existing", "bare"))
    print(f"train: `python -m pipeline train --quiet {' '.join(overrides)}`, medians of {repeats}")
    print(f"  {'':<26}{'wall s':>8}{'ratio':>8}{'CPU s':>8}{'ratio':>8}")
    print(f"  {'fresh store':<26}{f:8.2f}{f / b:7.2f}x{cf:8.2f}{cf / cb:7.2f}x")
    print(f"  {'existing store':<26}{e:8.2f}{e / b:7.2f}x{ce:8.2f}{ce / cb:7.2f}x")
    print(f"  {'same training, no MLflow':<26}{b:8.2f}{'':>8}{cb:8.2f}")
    print(f"  raw fresh {fmt(fresh)}\n  raw existing {fmt(existing)}\n  raw bare {fmt(bare)}")


def fmt(xs) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


def bench_post(repeats: int, epochs: int = 20000) -> None:
    """The train command's own sequence, timed around the training, each repeat in a fresh
    process: a command pays MLflow's per-process first calls (log_model's requirement check
    scans every installed distribution once per process), so a warm second run in the same
    process would understate it."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rows = [subprocess.run([sys.executable, __file__, "--post-once", str(epochs)], env=env,
                           capture_output=True, text=True, check=True).stdout.split()[-3:]
            for _ in range(repeats)]
    train_t, post_t = [float(r[0]) for r in rows], [float(r[1]) for r in rows]
    tr, po = med(train_t), med(post_t)
    print(f"post: {epochs}-epoch run (training.patience=null), {rows[0][2]} metric points, "
          f"medians of {repeats} fresh processes")
    print(f"  training {tr:.2f} s, after training {po:.2f} s: {po / tr:.3f}x")
    print(f"  raw training {fmt(train_t)}\n  raw after {fmt(post_t)}")


def post_once(epochs: int) -> None:
    """One run as commands/train.py makes it; prints training s, after-training s, points."""
    from pipeline import stages, tracking
    from pipeline.config import load_config

    cfg = load_config([f"training.epochs={epochs}", "training.patience=null"], conf_dir=CONF)
    prepared = stages.prepare(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        os.chdir(tmp)
        tracking.configure(cfg.tracking)
        with tracking.run("post") as active:
            run_id = active.info.run_id
            settings = stages.settings(cfg)
            buffer = train_buffer(tracking, run_id, settings)  # as commands/train.py does
            t0 = time.perf_counter()
            trained = stages.train(cfg, prepared, callbacks=[buffer])
            t1 = time.perf_counter()
            points = buffer.n_logged + len(buffer.points)
            buffer.flush()
            tracking.log_training(run_id, cfg, prepared, trained, curves=False)
        t2 = time.perf_counter()
    print(f"{t1 - t0:.4f} {t2 - t1:.4f} {points}")


def bench_fit(repeats: int, overrides) -> None:
    from pipeline import stages
    from pipeline.config import load_config

    cfg = load_config(list(overrides), conf_dir=CONF)
    prepared = stages.prepare(cfg)
    epochs = stages.train(cfg, prepared).fit.epochs_run
    bare = cfg.with_overrides({"training.epochs": epochs, "training.eval_every": epochs,
                               "training.patience": None})
    a, b = [], []
    for _ in range(repeats):
        for c, out in ((cfg, a), (bare, b)):
            t = time.perf_counter()
            for _ in range(5):
                stages.train(c, prepared)
            out.append((time.perf_counter() - t) / 5)
    print(f"fit: default cadence (eval_every={cfg.training.eval_every}, {epochs} epochs run) vs "
          f"the same {epochs} epochs with one evaluation, medians of {repeats} x 5")
    print(f"  default {med(a) * 1e3:.1f} ms, bare {med(b) * 1e3:.1f} ms: {med(a) / med(b):.2f}x")


def bench_search(repeats: int, n_trials: int) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    rates = {1: [], 2: []}
    steady = {1: [], 2: []}
    for r in range(repeats):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                journal = Path(tmp) / "s.journal"
                cmd = [sys.executable, "-m", "pipeline", "search", "--quiet", "--conf-dir", CONF,
                       f"n_trials={n_trials}", f"workers={workers}", "study=bench",
                       f"storage={journal}"]
                t = wall(cmd, tmp, env_for(Path(tmp)))
                study = optuna.load_study(study_name="bench", storage=JournalStorage(
                    JournalFileBackend(str(journal))))
                done = [x for x in study.trials if x.datetime_complete is not None
                        and x.state.name in ("COMPLETE", "PRUNED")]
                span = (max(x.datetime_complete for x in done)
                        - min(x.datetime_start for x in done)).total_seconds()
                rates[workers].append(len(done) / t * 60)
                steady[workers].append(len(done) / span * 60)
    print(f"search: {n_trials} trials, default space, medians of {repeats} ({load()})")
    for w in (1, 2):
        print(f"  {w} worker(s): {med(rates[w]):6.1f} trials/min (whole command), "
              f"{med(steady[w]):6.1f} trials/min (first trial start to last trial end)")
        print(f"    raw command {fmt(rates[w])}  raw steady {fmt(steady[w])}")
    print(f"  2 workers / 1 worker: {med(rates[2]) / med(rates[1]):.2f}x (command), "
          f"{med(steady[2]) / med(steady[1]):.2f}x (steady)")


def bench_prune(n_trials: int, seeds, pruners) -> None:
    """Same seeded TPE study without and with each pruner setting; no MLflow."""
    import optuna

    from pipeline import stages
    from pipeline.config import load_config
    from pipeline.search.objective import make_objective
    from pipeline.search.space import load_space
    from pipeline.search.study import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = "random (the same params in every study)" if SAMPLER else "TPE"
    print(f"prune: {n_trials} trials, {sampler}, default config and space, no MLflow ({load()})")
    print(f"  {'seed':>4}  {'pruner':<44} {'pruned':>6} {'epochs':>7} {'saved':>6} "
          f"{'best dev_error':>14} {'seconds':>7}")
    for seed in seeds:
        base = None
        for label, overrides in pruners:
            cfg = load_config([f"seed={seed}", *SAMPLER, *overrides], conf_dir=CONF)
            space, _ = load_space(cfg.search.space, Path(CONF))
            study = optuna.create_study(direction="minimize", sampler=make_sampler(cfg),
                                        pruner=make_pruner(cfg))
            objective = make_objective(cfg, space, stages.prepare(cfg))
            t = time.perf_counter()
            study.optimize(objective, n_trials=n_trials)
            seconds = time.perf_counter() - t
            epochs = sum(x.user_attrs.get("epochs_run", 0) for x in study.trials)
            pruned = sum(x.state.name == "PRUNED" for x in study.trials)
            base = base or epochs
            print(f"  {seed:>4}  {label:<44} {pruned:>6} {epochs:>7} {1 - epochs / base:>6.0%} "
                  f"{study.best_value:>14.4f} {seconds:>7.1f}", flush=True)


PRUNERS = [("none", ["search.pruner.name=none"]),
           ("default (config)", [])]
SAMPLER: list[str] = []  # --sampler random: the same params in every study (isolates pruning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="startup,fit,post,train,search,prune")
    parser.add_argument("--trials", type=int, default=60, help="search: trials per study")
    parser.add_argument("--prune-trials", type=int, default=40)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--pruner", action="append", default=[], metavar="LABEL:k=v,k=v",
                        help="extra pruner settings to compare, e.g. "
                             "'warmup50:search.pruner.n_warmup_steps=50'")
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe",
                        help="prune: random gives every study the same trial parameters")
    parser.add_argument("--post-once", type=int, metavar="EPOCHS", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="config overrides for train and fit")
    args = parser.parse_args()
    for key in BLAS_THREADS:  # before numpy is imported, as pipeline/cli.py main does
        os.environ.setdefault(key, "1")
    if args.sampler == "random":
        SAMPLER.append("search.sampler.name=random")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # log_model's bars
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.post_once:  # one repeat of `post`, in the fresh process bench_post started
        return post_once(args.post_once)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {os.cpu_count()} cores "
          f"(shared with other jobs: noisy); {load()}", flush=True)
    pruners = PRUNERS + [(s.split(":", 1)[0], s.split(":", 1)[1].split(","))
                         for s in args.pruner]
    runs = {"startup": lambda: overhead_parts.bench_startup(args.repeats, CONF, env_for, wall),
            "fit": lambda: bench_fit(args.repeats, args.overrides),
            "post": lambda: bench_post(max(1, args.repeats // 2)),
            "train": lambda: bench_train(args.repeats, args.overrides),
            "search": lambda: bench_search(max(1, args.repeats // 2), args.trials),
            "prune": lambda: bench_prune(args.prune_trials, [int(s) for s in args.seeds.split(",")],
                                         pruners),
            "floor": lambda: overhead_parts.bench_floor(args.repeats, env_for, load),
            "steps": lambda: overhead_parts.bench_steps(CONF, args.overrides),
            "trial": lambda: overhead_parts.bench_trial(max(1, args.repeats // 2), 12, CONF,
                                                        env_for, load)}
    for name in args.only.split(","):
        runs[name]()
        print(f"  ({load()})", flush=True)


if __name__ == "__main__":
    main()
