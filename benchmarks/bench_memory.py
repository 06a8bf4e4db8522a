"""Peak memory and time per epoch of `python -m pipeline train` on a large table (issue 20).

A CSV of `--rows` rows x 10 float features + a 0/1 label (a noisy linear rule; generated once,
seeded, into --data-dir) is trained by the train command with the default config otherwise
(network [80, 50, 30], Adam, batch_size null) for --epochs epochs, each repeat in a fresh
SQLite store, under `/usr/bin/time -v`:

- peak RSS: "Maximum resident set size" of the whole command (reading the CSV, preparing,
  training, the figures, the model and the MLflow writes);
- seconds per epoch: the median gap between the timestamps of consecutive curves/dev_loss points
  (one evaluation per epoch below 200 epochs), so reading and logging are left out;
- the batch size the run logged (`training.batch_size_chosen`).

`--code DIR` runs another checkout (e.g. `git archive <commit> | tar -x -C DIR`) for a before
row. `--batch-speed` instead times one epoch per batch size in-process on the same table
(interleaved repeats): the evidence for the 512 MiB buffer cap of pipeline/batch_choice.py.

    python benchmarks/bench_memory.py --rows 1000000 --epochs 5 --repeats 3
    python benchmarks/bench_memory.py --rows 10000000 --epochs 3 --repeats 1
    python benchmarks/bench_memory.py --rows 1000000 --batch-speed
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


def table(rows: int, data_dir: Path) -> Path:
    path = data_dir / f"table-{rows}.csv"
    if not path.exists():
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(0)
        X = rng.standard_normal((rows, 10)).astype(np.float32)
        noise = 0.3 * rng.standard_normal(rows)
        y = (X @ np.linspace(-1, 1, 10) + 0.5 * np.sin(3 * X[:, 0]) + noise > 0).astype(np.int8)
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
        frame["label"] = y
        frame.to_csv(path.with_suffix(".tmp"), index=False, float_format="%.5f")
        path.with_suffix(".tmp").rename(path)
    return path


def one_run(code: Path, csv: Path, epochs: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as store:
        uri = f"sqlite:///{store}/m.db"
        env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_DISABLE_TELEMETRY": "true",
               "NN_PIPELINE_MAX_TABLE_MB": "8192"}
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "pipeline", "train", "--quiet",
               "--no-cache", "--conf-dir", str(code / "conf"), "data.name=table",
               f"data.path={csv}", "data.label=label", f"training.epochs={epochs}",
               f"tracking.uri={uri}", *extra]
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=store, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"train failed ({done.returncode}):\n{done.stderr[-3000:]}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        run = client.search_runs(["1"])[0]
        stamps = sorted((m.step, m.timestamp) for m in
                        client.get_metric_history(run.info.run_id, "curves/dev_loss"))
        gaps = [(b[1] - a[1]) / 1000 / (b[0] - a[0]) for a, b in zip(stamps, stamps[1:])]
        return {"rss_gb": rss * 1024 / 1e9, "wall": wall,
                "epoch_s": statistics.median(gaps) if gaps else float("nan"),
                "batch": run.data.params.get("training.batch_size_chosen", "(not logged)")}


def batch_speed(csv: Path, sizes: list[int], repeats: int) -> None:
    sys.path.insert(0, str(ROOT))
    from pipeline import stages
    from pipeline.config import load_config
    from pipeline.train import fit

    cfg = load_config(["data.name=table", f"data.path={csv}", "data.label=label"],
                      conf_dir=ROOT / "conf")
    prepared = stages.prepare(cfg)
    m = prepared.train.X.shape[0]
    times: dict[int, list[float]] = {b: [] for b in sizes + [m]}
    for _ in range(repeats):
        for b in times:
            settings = stages.settings(cfg.with_overrides({"training.batch_size": b,
                                                           "training.epochs": 2,
                                                           "training.eval_every": 2}))
            net = stages.initial_network(cfg, prepared)
            started = time.perf_counter()
            fit(net, prepared.train.X, prepared.train.y, None, None, settings,
                stages.streams(0)["train"])
            times[b].append((time.perf_counter() - started) / 2)
    for b, t in times.items():
        print(f"batch {b:>8} ({'full' if b == m else f'{-(-m // b)} batches'}): median "
              f"{statistics.median(t):.2f} s per epoch, {statistics.median(t) / m * 1e6:.2f} "
              f"us per row")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--code", type=Path, default=ROOT)
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--batch-speed", action="store_true")
    ap.add_argument("extra", nargs="*", help="more config overrides")
    args = ap.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, "
          f"Python {platform.python_version()}; load average before {os.getloadavg()[0]:.2f}",
          flush=True)
    csv = table(args.rows, args.data_dir)
    if args.batch_speed:
        batch_speed(csv, [25_000, 50_000, 100_000, 200_000], args.repeats)
    else:
        runs = [one_run(args.code.resolve(), csv, args.epochs, args.extra)
                for _ in range(args.repeats)]
        for r in runs:
            print(f"  peak RSS {r['rss_gb']:.2f} GB, wall {r['wall']:.1f} s, "
                  f"{r['epoch_s']:.2f} s per epoch, batch {r['batch']}", flush=True)
        med = {k: statistics.median(r[k] for r in runs) for k in ("rss_gb", "wall", "epoch_s")}
        print(f"{args.rows} rows, {args.epochs} epochs, code {args.code}: median peak RSS "
              f"{med['rss_gb']:.2f} GB, wall {med['wall']:.1f} s, {med['epoch_s']:.2f} s per "
              f"epoch over {args.repeats} repeats; batch {runs[0]['batch']}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
