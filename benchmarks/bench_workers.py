"""Workers 1 vs 2 (issue 20): `search` with the default config (16 trials, pruner off) and a
lesson (`experiment <lesson>`), each with one and two workers, plus the lesson with the worker
count the command chooses itself (no `workers=`).

    python benchmarks/bench_workers.py [--repeats 3] [--trials 16] [--lesson initialization]
        [--code NAME=DIR ...]   # checkouts to compare, e.g. --code before=../base --code after=.

Each cell is a fresh process (as a user runs it) in a fresh directory with a fresh journal
study and a fresh SQLite MLflow store; the cells are interleaved (every checkout and worker
count, then again) so load from other jobs hits all alike. Per cell: the wall time, the CPU
seconds of the command and its workers (user + system, RUSAGE_CHILDREN: the load inflates
them less than the wall time), the load average before it. For a search, the timeline from
Optuna's timestamps, in seconds from the command's start: when each worker's first trial
started, how many trials each ran, when the last trial ended, and the end (wall - last trial's
end: the summary and the process' exit). For a lesson, the seconds its jobs took as the command
prints them ("N runs in X s"). Medians of the repeats; the load average is printed before
every cell and at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{name}, {len(os.sched_getaffinity(0))} usable cores, "
            f"python {platform.python_version()}")


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], cell: Path, code: str) -> tuple[float, float, float, str]:
    """(started at, wall, CPU, stdout) of one fresh process."""
    env = dict(os.environ, PYTHONPATH=code, MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    env.pop("MLFLOW_TRACKING_URI", None)
    t0, before, start = time.time(), _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=cell, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr[-1500:]}")
    return t0, wall, cpu, done.stdout + done.stderr


def search_cell(code: str, workers: int, trials: int, cell: Path) -> dict:
    journal, tracking = cell / "study.journal", f"sqlite:///{cell / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "pipeline", "search", "--quiet", "study=bench",
           f"search.storage={journal}", f"tracking.uri={tracking}", f"search.n_trials={trials}",
           "search.pruner.name=none", f"search.workers={workers}",
           "--conf-dir", str(Path(code) / "conf")]
    t0, wall, cpu, _ = _run(cmd, cell, code)
    return {"wall": wall, "cpu": cpu, **_timeline(journal, t0, wall)}


def _timeline(journal: Path, t0: float, wall: float) -> dict:
    """First trial start per worker, trials per worker, last trial end, from Optuna."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = [t for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials
              if t.datetime_complete is not None]
    workers = sorted({t.user_attrs.get("worker", 0) for t in trials})
    first = {w: min(t.datetime_start.timestamp() for t in trials
                    if t.user_attrs.get("worker", 0) == w) - t0 for w in workers}
    count = {w: sum(t.user_attrs.get("worker", 0) == w for t in trials) for w in workers}
    last = max(t.datetime_complete.timestamp() for t in trials) - t0
    return {"first": first, "count": count, "last": last, "end": wall - last}


def lesson_cell(code: str, lesson: str, workers: int | None, cell: Path) -> dict:
    tracking = f"sqlite:///{cell / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "pipeline", "experiment", lesson, f"tracking.uri={tracking}",
           "--quiet", "--no-cache", "--conf-dir", str(Path(code) / "conf")]
    if workers is not None:
        cmd.insert(5, f"workers={workers}")  # after the lesson's name
    _, wall, cpu, out = _run(cmd, cell, code)
    jobs = re.search(r"runs in ([0-9.]+) s with (\d+) worker", out)
    return {"wall": wall, "cpu": cpu, "jobs_s": float(jobs.group(1)) if jobs else float("nan"),
            "workers": int(jobs.group(2)) if jobs else 0}


def _line(kind: str, r: dict) -> str:
    text = f"wall {r['wall']:5.1f} s, CPU {r['cpu']:5.1f} s"
    if kind == "search":
        firsts = ", ".join(f"w{w} {s:.1f}" for w, s in r["first"].items())
        counts = "/".join(str(c) for c in r["count"].values())
        text += (f"; first trial at {firsts} s; trials {counts}; last ends {r['last']:.1f} s; "
                 f"end {r['end']:.1f} s")
    else:
        text += f"; jobs {r['jobs_s']:.1f} s with {r['workers']} worker(s)"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--lesson", default="initialization")
    ap.add_argument("--code", action="append", default=[],
                    help="NAME=DIR: a project checkout to run (default: this one)")
    ap.add_argument("--skip", action="append", default=[], choices=["search", "lesson"])
    args = ap.parse_args()
    codes = {k: str(Path(v).resolve()) for k, v in (c.split("=", 1) for c in args.code)} or {
        "this": str(ROOT)}
    cells = [(name, kind, w) for name in codes for kind, ws in
             (("search", (1, 2)), ("lesson", (1, 2, None))) if kind not in args.skip
             for w in ws]
    print(f"{_machine()}; search: default config, {args.trials} trials, pruner off; lesson: "
          f"{args.lesson}; {args.repeats} repeats; load {os.getloadavg()[0]:.2f} at the start",
          flush=True)
    results: dict[tuple, list[dict]] = {c: [] for c in cells}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name, kind, w in cells:
                cell = Path(tmp) / f"cell-{rep}-{len(list(Path(tmp).iterdir()))}"
                cell.mkdir()
                load = os.getloadavg()[0]
                r = (search_cell(codes[name], w, args.trials, cell) if kind == "search" else
                     lesson_cell(codes[name], args.lesson, w, cell))
                r["load"] = (load, os.getloadavg()[0])
                results[(name, kind, w)].append(r)
                print(f"  rep {rep} {name} {kind} workers={w or 'auto'}: {_line(kind, r)} "
                      f"(load {load:.2f} -> {r['load'][1]:.2f})", flush=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    _table(results)


def _table(results: dict) -> None:
    med = statistics.median
    print("\n| checkout | command | workers | wall s | CPU s | ratio to 1 worker (wall) | "
          "load before-after |\n|---|---|---|---:|---:|---:|---|")
    for (name, kind, w), rs in results.items():
        one = results.get((name, kind, 1))
        ratio = med(r["wall"] for r in one) / med(r["wall"] for r in rs) if one else float("nan")
        loads = [x for r in rs for x in r["load"]]
        chosen = "" if w else f" (chose {'/'.join(str(r['workers']) for r in rs)})"
        print(f"| {name} | {kind} | {w or 'auto'}{chosen} | {med(r['wall'] for r in rs):.1f} | "
              f"{med(r['cpu'] for r in rs):.1f} | {ratio:.2f}x | "
              f"{min(loads):.1f}-{max(loads):.1f} |")
    print("\nsearch timeline (medians, s from the command's start): first trial per worker, "
          "last trial's end, end = summary + exit")
    for (name, kind, w), rs in results.items():
        if kind != "search":
            continue
        workers = sorted({k for r in rs for k in r["first"]})
        firsts = ", ".join(f"w{k} {med(r['first'][k] for r in rs if k in r['first']):.1f}"
                           for k in workers)
        print(f"  {name} workers={w}: first trial {firsts}; last ends "
              f"{med(r['last'] for r in rs):.1f}; end {med(r['end'] for r in rs):.1f}")


if __name__ == "__main__":
    main()
