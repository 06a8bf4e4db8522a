"""How fast a config error reaches the user (issue 10): `python -m pipeline train
regularization.keep_prob=1.5`, wall time of the whole process, median of N (default 7).

    python benchmarks/bench_config_error.py [--repeats 7] [--override key=value]
                                            [--root DIR] [--compare DIR]

`--root` runs another checkout's `pipeline`; `--compare DIR` runs a second checkout alternately
with it (before/after on a shared machine: a load spike hits both alike).

It also runs the same command once under `python -X importtime` and lists which of the heavy
libraries (scikit-learn, pandas, mlflow, optuna, scipy) were imported before the error: the
answer must be none, since the config is validated before any data set, store or study is
touched. Exits 1 if one was, or if the command did not exit 2 with one line on stderr.
Nothing is written (the command stops at the config); the machine's load average is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout whose `pipeline` runs (--root)
HEAVY = ("sklearn", "pandas", "mlflow", "optuna", "scipy")


def command(override: str, *flags: str) -> list[str]:
    return [sys.executable, *flags, "-m", "pipeline", "train", override]


def environment(root: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(root), MLFLOW_DISABLE_TELEMETRY="true",
               PYTHONWARNINGS="ignore")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled bytecode, as after an install
    return env


def once(override: str, root: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds user + sys, the process). On a shared machine the wall time
    is mostly the wait for a core; the CPU time is what the process itself cost."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command(override), cwd=root, env=environment(root),
                          capture_output=True, text=True)
    return time.perf_counter() - started, _children_cpu() - cpu, done


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def heavy_imports(override: str, root: Path) -> list[str]:
    """Top-level packages among HEAVY that `-X importtime` saw imported before the exit."""
    done = subprocess.run(command(override, "-X", "importtime"), cwd=root,
                          env=environment(root), capture_output=True, text=True)
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", done.stderr, re.M)
    return sorted({n.split(".")[0] for n in names} & set(HEAVY))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--override", default="regularization.keep_prob=1.5")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="another checkout, run alternately with --root (A B A B ...) so "
                             "that load spikes hit both alike, e.g. --compare /work/main")
    args = parser.parse_args(argv)
    roots = [args.root.resolve()] + ([args.compare.resolve()] if args.compare else [])
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command: python -m pipeline train {args.override}")
    times: dict[Path, list[float]] = {root: [] for root in roots}
    cpus: dict[Path, list[float]] = {root: [] for root in roots}
    last: dict[Path, subprocess.CompletedProcess] = {}
    for root in roots:
        once(args.override, root)  # warm the file cache and bytecode; not counted
    for _ in range(args.repeats):
        for root in roots:
            seconds, cpu, last[root] = once(args.override, root)
            times[root].append(seconds)
            cpus[root].append(cpu)
    ok = True
    for root in roots:
        heavy = heavy_imports(args.override, root)
        done = last[root]
        print(f"\npipeline from {root}")
        print(f"  exit code {done.returncode}; stderr: {done.stderr.strip()}")
        print(f"  wall seconds: {', '.join(f'{t:.3f}' for t in times[root])}")
        print(f"  median {statistics.median(times[root]):.3f} s, fastest {min(times[root]):.3f} s "
              f"(target < 0.5 s)")
        print(f"  CPU seconds (user + sys): median {statistics.median(cpus[root]):.3f}, "
              f"least {min(cpus[root]):.3f}")
        print(f"  heavy libraries imported at the error: {heavy or 'none'}")
        ok = ok and done.returncode == 2 and done.stderr.count("\n") == 1 and not heavy
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
