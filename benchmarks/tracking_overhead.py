"""What MLflow tracking costs on the default configuration (numbers go to docs/tracking.md).

    python benchmarks/tracking_overhead.py [--repeats 7] [key=value ...]

In-process, after a warm-up, medians of `repeats`: the training alone; the same training with
the MetricBuffer callback + its flush (the per-evaluation curves); and each fixed part of
log_training (params/tags/inputs, figures, model). Then the whole command, end to end, in
fresh subprocesses: `python -m pipeline train --quiet` against the same training without MLflow.
A throwaway SQLite store in a temp dir is used; nothing in the working tree is written.
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
PLAIN = ("import sys; from pipeline.config import load_config; from pipeline import stages; "
         "cfg = load_config(sys.argv[1:], conf_dir={conf!r}); p = stages.prepare(cfg); "
         "stages.train(cfg, p)")


def median_time(fn, repeats: int) -> float:
    fn()                                                   # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_process(overrides, repeats: int) -> dict[str, float]:
    from pipeline import stages, tracking
    from pipeline.config import load_config
    from pipeline.tracking.model import log_model

    cfg = load_config(overrides, conf_dir=ROOT / "conf")
    prepared = stages.prepare(cfg)
    tracking.configure(cfg.tracking)
    out = {"fit": median_time(lambda: stages.train(cfg, prepared), repeats)}
    with tracking.run("overhead") as active:
        run_id = active.info.run_id

        def buffered():
            buffer = tracking.MetricBuffer(run_id)
            stages.train(cfg, prepared, callbacks=[buffer])
            buffer.flush()
            out["points"] = buffer.n_logged

        out["fit+curves"] = median_time(buffered, repeats)
        trained = stages.train(cfg, prepared)
        out["params+tags+inputs"] = median_time(lambda: tracking.log_training(
            run_id, cfg, prepared, trained, curves=False, figures=False, model=False), repeats)
        out["figures"] = median_time(lambda: [active_log(run_id, f, p) for p, f in
                                              stages.figures(cfg, prepared, trained).items()],
                                     repeats)
        out["model"] = median_time(lambda: log_model(run_id, prepared, trained), repeats)
    out["open+close run"] = median_time(lambda: _empty_run(tracking), repeats)
    return out


def active_log(run_id, fig, path):
    from mlflow.tracking import MlflowClient

    MlflowClient().log_figure(run_id, fig, path)


def _empty_run(tracking):
    with tracking.run("empty"):
        pass


def end_to_end(overrides, repeats: int, env) -> dict[str, float]:
    tracked = [sys.executable, "-m", "pipeline", "train", "--quiet", "--conf-dir", str(ROOT / "conf"),
               *overrides]
    plain = [sys.executable, "-c", PLAIN.format(conf=str(ROOT / "conf")), *overrides]

    def wall(cmd):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=env["WORKDIR"], env=env, check=True, capture_output=True)
        return time.perf_counter() - t

    return {"command with tracking": median_time(lambda: wall(tracked), repeats),
            "same training without MLflow": median_time(lambda: wall(plain), repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        os.environ.update(MLFLOW_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true")
        os.chdir(tmp)                                      # artifacts (./mlruns) go to tmp
        parts = in_process(args.overrides, args.repeats)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_EXPERIMENT_ID"}
        env.update(PYTHONPATH=str(ROOT), WORKDIR=tmp)     # set_experiment exported the id
        e2e = end_to_end(args.overrides, max(3, args.repeats // 2), env)
    curves = parts["fit+curves"] - parts["fit"]
    wall = e2e["command with tracking"]
    print(f"machine: {os.cpu_count()} cores (shared, noisy); medians of {args.repeats} "
          f"(end to end: {max(3, args.repeats // 2)})")
    for key, value in {**parts, **e2e}.items():
        print(f"  {key:<30} {value:8.3f}" + (" points" if key == "points" else " s"))
    print(f"curves ({parts['points']:.0f} metric points, batched): {curves:.3f} s = "
          f"{curves / wall:.1%} of the command's wall time ({curves / parts['fit']:.0%} of the "
          f"bare training)")
    print(f"all tracking (command minus the same training without MLflow): "
          f"{wall - e2e['same training without MLflow']:.2f} s = "
          f"{(wall - e2e['same training without MLflow']) / wall:.0%} of the command")


if __name__ == "__main__":
    main()
