"""Run every lesson through the real command and keep its figures and table for the docs.

    python docs/make_lesson_figures.py [lesson ...] [--workers N]

Each lesson runs as `python -m pipeline experiment --output <tmp> <lesson> workers=N` against a
throw-away SQLite store, timed from the outside (wall time, the MLflow logging included).
Writes docs/img/lessons/<lesson>.png (the comparison figure; a second figure of curves, cost
contours or a grid's figure.cells heatmaps, when the lesson has one, as <lesson>_curves.png,
<lesson>_contours.png, <lesson>_cells.png) and docs/img/lessons/<lesson>.md (table, verdict,
wall time), and
appends a line to docs/img/lessons/timings.tsv: lesson, workers, wall seconds of the whole
command (imports and a fresh SQLite store included), seconds of the runs loop (as printed).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "lessons"


def run(lesson: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
               "MLFLOW_DISABLE_TELEMETRY": "true", "MPLBACKEND": "Agg",
               "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "pipeline", "experiment", "--quiet", "--conf-dir",
               str(ROOT / "conf"), "--output", f"{tmp}/out", lesson, f"workers={workers}"]
        started = time.perf_counter()
        done = subprocess.run(cmd, check=True, cwd=tmp, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        loop = re.search(r"runs in ([0-9.]+) s", done.stdout).group(1)
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{tmp}/out/comparison.png", OUT / f"{lesson}.png")
        for extra in ("curves", "contours", "cells"):   # a lesson's further figures
            if Path(f"{tmp}/out/{extra}.png").exists():
                shutil.copy(f"{tmp}/out/{extra}.png", OUT / f"{lesson}_{extra}.png")
        table = Path(f"{tmp}/out/table.md").read_text()
        (OUT / f"{lesson}.md").write_text(
            table + f"\nwall time: {seconds:.0f} s with {workers} worker(s) "
            f"(`python -m pipeline experiment {lesson} workers={workers}`; the runs "
            f"themselves {loop} s)\n")
        with open(OUT / "timings.tsv", "a") as f:
            f.write(f"{lesson}\t{workers}\t{seconds:.1f}\t{loop}\n")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pipeline.lessons import available

    for lesson in args.lessons or available(ROOT / "conf"):
        print(f"{lesson}: {run(lesson, args.workers):.1f} s with {args.workers} worker(s)",
              flush=True)


if __name__ == "__main__":
    main()
