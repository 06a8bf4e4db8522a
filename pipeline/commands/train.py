"""`python -m pipeline train [--preset NAME] [key=value ...]`: one tracked training run.

Order matters for honest records: the config is validated and the data prepared BEFORE any
MLflow run exists, so a bad value or a bad data parameter exits 2 with one line and leaves no
run behind. Only then is the run opened (FINISHED / FAILED / KILLED, never left RUNNING).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from pipeline.commands import (add_cache_argument, add_config_arguments, conf_dir, preflight,
                               project_experiment, stop_of, unsent)
from pipeline.commands.available_memory import available_memory, prepare_in_memory
from pipeline.curve_points import CurvePoints
from pipeline.redact import redact


def add_arguments(parser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. regularization.l2=0.7 model.hidden=[20,3]")
    add_config_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cache_argument(parser)


class EpochProgress:
    """A fit callback driving a tqdm bar on stderr (epochs); a no-op when quiet."""

    def __init__(self, epochs: int, enabled: bool):
        self.bar, self.last = None, 0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, mininterval=0.5,
                            leave=False, desc="train")

    def __call__(self, epoch: int, metrics) -> None:
        if self.bar is not None:
            self.bar.update(epoch - self.last)
            self.last = epoch
            self.bar.set_postfix(dev_loss=f"{metrics.get('dev_loss', float('nan')):.4f}",
                                 dev_acc=f"{metrics.get('dev_accuracy', float('nan')):.3f}",
                                 refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def status_printer(enabled: bool):
    """One line on stderr per post-training step: after the bar closes, writing curves, figures
    and the model takes seconds, and a silent terminal looks hung. Nothing when --quiet."""
    def say(line: str) -> None:
        if enabled:
            print(line, file=sys.stderr, flush=True)
    return say


@dataclass
class RunSoFar:
    """What the run has made so far: what a stop or a lost tracking server reports or keeps."""

    run_id: str | None = None
    buffer: object = None       # the curve buffer (tracking.MetricBuffer) once training starts
    trained: object = None      # the stages.Trained once training (or a cache reuse) is done


def run(args) -> int:
    from pipeline import stages
    from pipeline.stop import Stopped

    stop = stop_of(args)
    cfg, prepared, free = validated_inputs(args, stop)  # bad input exits 2 here: no run exists
    from pipeline import tracking                    # mlflow costs seconds to import: only now
    from pipeline.tracking.cache import TrainCache

    experiment_id, uri = open_store(cfg)
    name = cfg.tracking.run_name or tracking.run_name(cfg)  # the knobs, in short
    tags = {"stage": "train", "config.preset": args.preset or "none"}
    started = time.perf_counter()
    batch = stages.batch_choice(cfg, prepared, free)  # a null batch_size: chosen by free memory
    cache = TrainCache(cfg, prepared, read=use_cache(cfg, args),  # an identical finished run?
                       batch_chosen=batch and batch.rows)
    made = RunSoFar()
    try:
        with tracking.run(name, tags=tags, experiment_id=experiment_id, stop=stop) as active:
            made.run_id = active.info.run_id
            if cache.hit is not None:
                made.trained = reuse_cached(cache, made.run_id)
            else:
                train_and_log(cfg, prepared, batch, free, cache, made, stop, args.quiet)
    except Stopped as exc:  # cli.main prints it and exits 143/130
        exc.outcome = f"run {made.run_id} ended KILLED" if made.run_id else "no run was created"
        raise
    except Exception as exc:
        if not uri.startswith(("http://", "https://")) or _answers(uri):
            raise
        return _server_gone(cfg, uri, made.run_id, made.buffer, made.trained, exc)
    report(cfg, made.run_id, experiment_id, made.trained, time.perf_counter() - started)
    return 0


def validated_inputs(args, stop):
    """(config, prepared data, free memory), each checked before a run exists: a bad value, bad
    data, a training too large for the memory or an unusable tracking store exits 2."""
    from pipeline.config import load_config

    cfg = load_config(args.overrides, conf_dir=conf_dir(args), preset=args.preset)
    free = available_memory()                        # a null batch_size: full batch if it fits
    prepared = prepare_in_memory(cfg, free)          # bad data (or too large) fails before a run
    preflight.check(cfg)                             # tracking store usable, before a run
    stop.check()                                     # stopped while preparing: nothing made
    return cfg, prepared, free


def open_store(cfg) -> tuple[str, str]:
    """(experiment id, tracking URI), after sending what a lost server kept and ending the runs
    killed commands left RUNNING: then ours is created."""
    from pipeline import tracking
    from pipeline.tracking.recovery import end_abandoned_runs

    experiment_id = tracking.configure(cfg.tracking, experiment_id=project_experiment())
    uri = tracking.tracking_uri()
    unsent.replay_pending(uri)                       # runs a lost server left RUNNING
    end_abandoned_runs([experiment_id], out=sys.stderr)  # runs of killed commands, then ours
    return experiment_id, uri


def reuse_cached(cache, run_id: str):
    """The cached identical run's numbers recorded on `run_id`, said in one line."""
    source, trained, link = cache.record_reuse(run_id)
    print(f"reused run {source} ({link}): same config, data, code, numpy/BLAS and "
          "threads, so its numbers, without training (--no-cache trains afresh)", flush=True)
    return trained


def train_and_log(cfg, prepared, batch, free, cache, made: RunSoFar, stop, quiet: bool) -> None:
    """Train under the open run `made.run_id`, its curves buffered (flushed even when
    interrupted), then log the rest and store the result in the run cache."""
    from pipeline import stages, tracking

    run_id = made.run_id
    # at most ~1000 points per curve, ~100 per diagnostic series
    made.buffer = buffer = tracking.MetricBuffer(
        run_id, CurvePoints.of_training(stages.settings(cfg)))
    if batch is not None and batch.rows is not None:
        print(batch.describe(), file=sys.stderr, flush=True)
    progress = EpochProgress(cfg.training.epochs, enabled=not quiet)
    say = status_printer(enabled=not quiet)
    try:
        made.trained = trained = stages.train(cfg, prepared, callbacks=[buffer, progress],
                                              stop=stop, free_memory=free)
    finally:
        progress.close()
        if buffer.points:
            say(f"writing {len(buffer.points)} curve points...")
        buffer.flush()                   # curves so far, even when interrupted
    buffer.finish(trained.fit.history, trained.fit.best_epoch)  # + last and best
    tracking.log_training(run_id, cfg, prepared, trained, curves=False, status=say)
    cache.store(run_id, trained)


def use_cache(cfg, args) -> bool:
    """Reuse an identical finished run unless `--no-cache` or `tracking.cache: false`."""
    return cfg.tracking.cache and not getattr(args, "no_cache", False)


def report(cfg, run_id: str, experiment_id: str, trained, seconds: float, out=None) -> None:
    from pipeline import tracking

    from pipeline.tracking.ui import open_hint

    m, fit = trained.metrics, trained.fit
    # "completed" says no more than the epoch count; the other reasons' messages explain
    why = "" if fit.stop_reason == "completed" else f" ({fit.stop_message})"
    lines = [
        f"run {run_id} finished in {seconds:.1f} s (experiment id {experiment_id})",
        f"  train: loss {m['train_loss']:.4f}  accuracy {m['train_accuracy']:.2%}",
        f"  dev:   loss {m['dev_loss']:.4f}  accuracy {m['dev_accuracy']:.2%}",
        f"  stop:  {fit.stop_reason} after {fit.epochs_run} epochs{why}",
        f"  model: the parameters of epoch {fit.best_epoch} ({_which(cfg, fit)})",
        *([f"  {trained.batch.describe()}"] if trained.batch and trained.batch.rows else []),
        *("  " + line for line in trained.diagnosis.format().splitlines()),
        *open_hint(cfg.tracking.ui_url, experiment_id, run_id, tracking.tracking_uri()),
    ]
    if fit.stop_reason == "non_finite":
        lines.insert(1, f"  WARNING: training diverged: {fit.stop_message}")
    print("\n".join(lines), file=out or sys.stdout)


def _answers(uri: str) -> bool:
    try:
        preflight.check_tracking(uri)
        return True
    except ValueError:
        return False


def _server_gone(cfg, uri, run_id, buffer, trained, exc) -> int:
    """The tracking server stopped answering mid-run (MLflow gave up after its bounded
    retries): keep what was not sent locally, say where, exit 2. The run cannot be ended on a
    dead server; the next command against it replays the copy and ends the run FAILED."""
    from pipeline.tracking import final_metrics
    from pipeline.tracking.unsent import points

    shown = redact(uri)
    if run_id is None:
        print(f"error: tracking server {shown} went away before the run was created "
              f"({type(exc).__name__}); nothing was recorded", file=sys.stderr)
        return 2
    path = unsent.save(run_id, uri, type(exc).__name__, cfg.to_yaml(), points(buffer),
                       None if trained is None else final_metrics(trained),
                       0 if trained is None else int(trained.fit.best_epoch))
    print(f"error: tracking server {shown} went away during run {run_id} "
          f"({type(exc).__name__}); unsent curves and metrics kept in {path}; the next command "
          "against this server sends them and ends the run FAILED", file=sys.stderr)
    return 2


def _which(cfg, fit) -> str:
    """Why those parameters: the metrics above and the logged final/* are of this epoch."""
    if cfg.training.patience is not None:
        return f"best {cfg.training.monitor} on dev, restored by early stopping"
    if fit.best_epoch == fit.epochs_run:
        return "the last epoch trained: early stopping is off"
    return "the last finite evaluation"
