"""One (arm, seed) of a lesson: `stages.prepare` -> `stages.train` -> the numbers the claim needs.

No second training path: every kind trains through `stages.train` with the job's config, so a
child run's numbers are those of `python -m pipeline train <job.overrides>`. What differs by
kind is only what is read off the result (gradient norms at the first step, a gradient check).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from pipeline import stages, threads
from pipeline.config import config_from_yaml
from pipeline.lessons.plan import Job
from pipeline.nn import symmetric_units


@dataclass(frozen=True)
class Model:
    """What a decision-boundary figure needs (raw training points; the model standardizes)."""
    trained: object           # pipeline.nn.Model: standardizes and predicts raw features
    X: np.ndarray             # (m, n_features) raw training split, un-augmented
    y: np.ndarray             # (m,)
    classes: tuple[str, ...]
    data_name: str

    @property
    def params(self) -> dict:
        return self.trained.network.params

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        return self.trained.predict(X_raw)


@dataclass(frozen=True)
class ArmRun:
    arm: str
    seed: int
    metrics: dict[str, float]           # final values and the kind's extras (spec.METRICS)
    history: dict[str, list[float]]     # every evaluation of `fit` ("epoch" + metrics)
    overrides: tuple[str, ...]
    cfg_yaml: str
    seconds: float
    stop_message: str = ""
    diagnosis: str = ""
    model: Model | None = None
    report: str = ""                    # gradcheck: the per-block report
    blocks: dict[str, float] = field(default_factory=dict)  # gradcheck: relative error per block
    blas_threads: int = 0               # in effect where the job ran (pipeline/threads.py)
    reused_from: str = ""               # the run cache's source run, when not trained here


def execute(job: Job, stop=None) -> ArmRun:
    """`stop` (a `pipeline.stop.Stop`): checked by the training every epoch."""
    started = time.perf_counter()
    cfg = config_from_yaml(job.cfg_yaml, f"lesson {job.lesson.name} arm {job.arm}")
    prepared = stages.prepare(cfg)
    trained = stages.train(cfg, prepared, stop=stop)
    fit, hist = trained.fit, trained.fit.history
    metrics = {k: float(v) for k, v in trained.metrics.items()}
    metrics.update(_first(hist), non_finite=float(fit.stop_reason == "non_finite"))
    metrics["symmetric_units"] = symmetric_units(fit.params)
    if job.lesson.threshold is not None:
        metrics.update(_to_threshold(hist, job.lesson.threshold, fit.epochs_run))
    report, blocks = "", {}
    if job.lesson.kind == "gradient_flow":
        metrics.update(grad_flow(hist, trained.model.arch.n_layers))
    elif job.lesson.kind == "gradcheck":
        report, blocks, extra = _gradcheck(job, cfg, prepared, trained)
        metrics.update(extra)
    model = Model(trained.model, prepared.raw_train.X,
                  prepared.raw_train.y, prepared.classes, prepared.name)
    return ArmRun(job.arm, job.seed, metrics, {k: list(v) for k, v in hist.items()},
                  job.overrides, job.cfg_yaml, time.perf_counter() - started, fit.stop_message,
                  trained.diagnosis.verdict if trained.diagnosis else "", model, report, blocks,
                  threads.in_effect())


def _first(hist) -> dict[str, float]:
    """The first evaluation's losses (the starting point: large random init starts far off)."""
    return {f"first_{k}": float(hist[k][0]) if hist.get(k) else math.nan
            for k in ("train_loss", "dev_loss")}


def _to_threshold(hist, threshold, epochs_run: int) -> dict[str, float]:
    """First evaluated epoch with metric <= value; the epochs run (a lower bound) if never."""
    for epoch, value in zip(hist["epoch"], hist.get(threshold.metric, [])):
        if value <= threshold.value:
            return {"epochs_to_threshold": float(epoch), "reached_threshold": 1.0}
    return {"epochs_to_threshold": float(epochs_run), "reached_threshold": 0.0}


def grad_flow(hist, n_layers: int) -> dict[str, float]:
    """||dJ/dW_l|| at the first evaluation (the first step's gradient, at the initial weights)
    for every layer, and the first-to-last ratio and max/min spread in log10 (nan when a
    layer's gradient is exactly 0, as with zero initialization)."""
    norms = np.array([hist[f"grad_norm_W{l}"][0] if hist.get(f"grad_norm_W{l}") else np.nan
                      for l in range(1, n_layers + 1)])
    out = {f"grad_W{l}": float(v) for l, v in enumerate(norms, start=1)}
    zero = bool(np.any(norms == 0) or np.any(~np.isfinite(norms)))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(norms)
    out.update(grad_norm_first=float(norms[0]), grad_norm_last=float(norms[-1]),
               zero_gradient=float(zero),
               log10_grad_ratio=math.nan if zero else float(logs[0] - logs[-1]),
               log10_grad_spread=math.nan if zero else float(logs.max() - logs.min()))
    return out


def _gradcheck(job: Job, cfg, prepared, trained):
    """Gradient check of the trained network on a few training points; the `corrupt` arm's
    gradient is wrapped to scale one block (the real gradient is never edited)."""
    from pipeline.nn import Network, gradient_check

    corrupt = job.lesson.corrupt
    gradient_fn = None
    if corrupt is not None and corrupt.arm == job.arm:
        gradient_fn = corrupted(Network.gradient, corrupt.block, corrupt.factor)
    k = job.lesson.gradcheck_samples
    rep = gradient_check(trained.model.network, prepared.train.X[:k], prepared.train.y[:k],
                         l2=cfg.regularization.l2, l1=cfg.regularization.l1,
                         gradient_fn=gradient_fn)
    from pipeline.nn.gradcheck import PASSING
    failed = [b.name for b in rep.blocks if b.verdict not in PASSING]
    blocks = {b.name: b.relative_error for b in rep.blocks}
    extra = {f"relerr_{b}": v for b, v in blocks.items()}
    extra.update(n_failed=float(len(failed)), relative_error=rep.relative_error,
                 target_failed=float(corrupt is not None and corrupt.block in failed))
    text = rep.format() + f"\nfailed blocks: {', '.join(failed) or 'none'}"
    return text, blocks, extra


def corrupted(gradient_fn, block: str, factor: float):
    """A gradient whose `block` is multiplied by `factor` (a planted bug)."""
    def broken(net, buffers, y, **kw):
        grads = gradient_fn(net, buffers, y, **kw)
        if block not in grads:
            raise ValueError(f"corrupt.block must be one of {sorted(grads)}, got {block!r}")
        return {**grads, block: grads[block] * factor}
    return broken
