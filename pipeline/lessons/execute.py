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
from pipeline.lessons.flow import activation_flow, log10_trend
from pipeline.nn import hidden_signal, symmetric_units
from pipeline.nn.gradcheck import PASSING


@dataclass(frozen=True)
class BoundaryModel:
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
    model: BoundaryModel | None = None
    report: str = ""                    # gradcheck: the per-block report
    blocks: dict[str, float] = field(default_factory=dict)  # gradcheck: relative error per block
    blas_threads: int = 0               # in effect where the job ran (pipeline/threads.py)
    blocks_init: dict[str, float] = field(default_factory=dict)  # gradcheck: at initialization
    bayes_source: str = ""              # where the diagnosis' Bayes error came from
    reused_from: str = ""               # the run cache's source run, when not trained here
    stop_reason: str = ""               # fit's ("completed", "early_stopping", ...)
    digests: dict[str, str] = field(default_factory=dict)  # the data's (stages.Prepared)


def execute(job: Job, stop=None) -> ArmRun:
    """`stop` (a `pipeline.stop.Stop`): checked by the training every epoch."""
    started = time.perf_counter()
    cfg = config_from_yaml(job.cfg_yaml, f"lesson {job.lesson.name} arm {job.arm}")
    prepared = stages.prepare(cfg)
    trained = stages.train(cfg, prepared, stop=stop)
    fit, hist = trained.fit, trained.fit.history
    metrics = {k: float(v) for k, v in trained.metrics.items()}
    metrics.update(_first(hist), non_finite=float(fit.stop_reason == "non_finite"),
                   train_objective=_at_returned(hist, "train_objective", fit.best_epoch))
    metrics["symmetric_units"] = symmetric_units(fit.params)
    metrics["learning_rate"] = float(cfg.training.learning_rate)  # best_of ... chosen_by
    d = trained.diagnosis
    metrics.update(avoidable_bias=d.avoidable_bias, variance=d.variance,
                   bayes_error=d.bayes_error)
    if job.lesson.threshold is not None:
        metrics.update(_to_threshold(hist, job.lesson.threshold, fit.epochs_run))
    if job.lesson.holdout is not None:
        held = stages.draw_holdout(cfg, prepared, job.lesson.holdout.n_samples)
        metrics.update(stages.split_metrics(trained, held))
    report, blocks, blocks_init = "", {}, {}
    if job.lesson.kind == "gradient_flow":
        metrics.update(grad_flow(hist, trained.model.arch.n_layers))
        # the forward signal of the same initial network, on the same training set
        metrics.update(activation_flow(hidden_signal(stages.initial_network(cfg, prepared),
                                                     prepared.train.X)))
    elif job.lesson.kind == "gradcheck":
        report, blocks, blocks_init, extra = _gradcheck(job, cfg, prepared, trained)
        metrics.update(extra)
    model = BoundaryModel(trained.model, prepared.raw_train.X,
                          prepared.raw_train.y, prepared.classes, prepared.name)
    return ArmRun(job.arm, job.seed, metrics, {k: list(v) for k, v in hist.items()},
                  job.overrides, job.cfg_yaml, time.perf_counter() - started, fit.stop_message,
                  trained.diagnosis.verdict if trained.diagnosis else "", model, report, blocks,
                  threads.in_effect(), blocks_init, d.bayes_source,
                  stop_reason=fit.stop_reason, digests=prepared.digests)


def _first(hist) -> dict[str, float]:
    """The first evaluation's losses (the starting point: large random init starts far off)."""
    return {f"first_{k}": float(hist[k][0]) if hist.get(k) else math.nan
            for k in ("train_loss", "dev_loss")}


def _at_returned(hist, key: str, epoch: int) -> float:
    """`key` at the evaluation of the returned parameters (early stopping: the restored epoch,
    not the last one run); nan if that epoch was not evaluated."""
    epochs = hist.get("epoch", [])
    return float(hist[key][epochs.index(epoch)]) if epoch in epochs and key in hist else math.nan


def _to_threshold(hist, threshold, epochs_run: int) -> dict[str, float]:
    """First evaluated epoch with metric <= value; the epochs run (a lower bound) if never."""
    for epoch, value in zip(hist["epoch"], hist.get(threshold.metric, [])):
        if value <= threshold.value:
            return {"epochs_to_threshold": float(epoch), "reached_threshold": 1.0}
    return {"epochs_to_threshold": float(epochs_run), "reached_threshold": 0.0}


def grad_flow(hist, n_layers: int) -> dict[str, float]:
    """||dJ/dW_l|| at the first evaluation (the first step's gradient, at the initial weights)
    for every layer; its trend on the way back to the input (`flow.log10_trend` of the norms
    from the last layer to the first: log10 first/last and the slope per layer, negative when
    it vanishes toward the input) and its max/min spread in log10 (nan when a layer's gradient
    is exactly 0, as with zero initialization)."""
    norms = np.array([hist[f"grad_norm_W{l}"][0] if hist.get(f"grad_norm_W{l}") else np.nan
                      for l in range(1, n_layers + 1)])
    out = {f"grad_W{l}": float(v) for l, v in enumerate(norms, start=1)}
    zero = bool(np.any(norms == 0) or np.any(~np.isfinite(norms)))
    ratio, slope = log10_trend(norms[::-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(norms)
    out.update(grad_norm_first=float(norms[0]), grad_norm_last=float(norms[-1]),
               zero_gradient=float(zero), log10_grad_ratio=ratio, log10_grad_slope=slope,
               log10_grad_spread=math.nan if zero else float(logs.max() - logs.min()))
    return out


def _gradcheck(job: Job, cfg, prepared, trained):
    """Gradient check of the network at initialization and after training, on a few training
    points (dropout: one fixed mask, unless the arm's cost bug draws a fresh one). Bugs are
    wrappers: the `corrupt` arm's gradient scales one block, a `cost_bugs` arm's J is wrong;
    the real backward pass is never edited. Metrics: per block, and `init_` for the start."""
    corrupt = job.lesson.corrupt
    target = corrupt.block if corrupt is not None and corrupt.arm == job.arm else None
    texts, extra, blocks = [], {}, {}
    for moment, net in (("init", stages.initial_network(cfg, prepared)),
                        ("trained", trained.model.network)):
        rep = _check_one(job, cfg, prepared, net, target)
        failed = [b.name for b in rep.blocks if b.verdict not in PASSING]
        blocks[moment] = {b.name: b.relative_error for b in rep.blocks}
        ws = [b.name for b in rep.blocks if b.name.startswith("W")]
        bs = [b.name for b in rep.blocks if b.name.startswith("b")]
        m = {f"relerr_{b}": v for b, v in blocks[moment].items()}
        m.update(n_failed=float(len(failed)), relative_error=rep.relative_error,
                 target_failed=float(target is not None and target in failed),
                 failed_W=sum(b in failed for b in ws) / len(ws),
                 failed_b=sum(b in failed for b in bs) / len(bs))
        extra.update({("init_" if moment == "init" else "") + k: v for k, v in m.items()})
        texts.append(f"{moment}:\n{rep.format()}\nfailed blocks: {', '.join(failed) or 'none'}")
    return "\n\n".join(texts), blocks["trained"], blocks["init"], extra


def _check_one(job: Job, cfg, prepared, net, target):
    from pipeline.nn import Network, gradient_check

    bug = job.lesson.cost_bugs.get(job.arm)
    keep = cfg.regularization.keep_prob
    # the check's own mask stream (seeded by the config): the training's stream is not touched
    rng = np.random.default_rng([cfg.seed, 16])
    k = job.lesson.gradcheck_samples
    return gradient_check(
        net, prepared.train.X[:k], prepared.train.y[:k], l2=cfg.regularization.l2,
        l1=cfg.regularization.l1, keep_prob=keep, rng=rng,
        gradient_fn=None if target is None else corrupted(Network.gradient, target,
                                                          job.lesson.corrupt.factor),
        loss_fn={None: None, "no_l2": cost_without_l2,
                 "fresh_mask": fresh_mask_cost(keep, rng)}[bug])


def cost_without_l2(net, X, y, masks, *, l2, l1):
    """J as if the regularization term were forgotten (backprop still adds lambda / m W)."""
    buf = net.forward(X, masks=masks, training=masks is not None)[1]
    return net.loss(buf, y, l2=0.0, l1=l1)


def fresh_mask_cost(keep_prob, rng):
    """J that draws a NEW dropout mask at every evaluation: J(theta + eps) and J(theta - eps)
    then differ by the masks, not by eps, and the two-sided difference is noise."""
    def J(net, X, y, masks, *, l2, l1):
        buf = net.forward(X, keep_prob=keep_prob, rng=rng, training=True)[1]
        return net.loss(buf, y, l2=l2, l1=l1)
    return J


def corrupted(gradient_fn, block: str, factor: float):
    """A gradient whose `block` is multiplied by `factor` (a planted bug)."""
    def broken(net, buffers, y, **kw):
        grads = gradient_fn(net, buffers, y, **kw)
        if block not in grads:
            raise ValueError(f"corrupt.block must be one of {sorted(grads)}, got {block!r}")
        return {**grads, block: grads[block] * factor}
    return broken
