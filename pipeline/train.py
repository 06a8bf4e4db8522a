"""The training loop: mini-batches, L2/L1, inverted dropout, early stopping, callbacks (numpy only).

Speed: parameters and gradients live in two flat vectors (theta, grad) whose blocks are views,
so the penalty terms and the optimizer update are one array operation each, and every buffer
of the forward/backward pass is allocated once per batch size. Per step the loop runs only the
forward pass, the backward pass, the penalty, a finiteness check and the update; losses,
accuracies and statistics are computed only at evaluations (every `eval_every` epochs).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.nn.dropout import normalize_keep_prob
from pipeline.nn.losses import cross_entropy_from_logits, penalty, targets
from pipeline.nn.kernels import Workspace, augment_rows, backward_into, forward_into
from pipeline.nn.model import Architecture, Params, ParamLayout, labels_from_probs
from pipeline.nn.optim import make_optimizer
from pipeline.fit_io import (DTYPES, FitResult, TrainSettings, check_features, check_labels,
                             require)

__all__ = ["TrainSettings", "FitResult", "fit", "activation_stats", "grad_norms"]


def activation_stats(ws: Workspace) -> dict[str, float]:
    """Mean and std of each hidden layer's activations (evaluation mode, no dropout)."""
    out = {}
    for l, H in enumerate(ws.H, start=1):
        # = H.mean(), H.std() (same two-pass formula) at 2x less per call: an evaluation's
        # statistics cost as much as a training step on the default network.
        mean = H.sum() / H.size
        d = np.subtract(H, mean).ravel()
        out[f"act_mean_{l}"] = float(mean)
        out[f"act_std_{l}"] = float(np.sqrt(np.dot(d, d) / H.size))
    return out


def grad_norms(grad_views: Params) -> dict[str, float]:
    """Frobenius norm of every block of the last step's gradient (penalty included)."""
    return {f"grad_norm_{k}": float(np.linalg.norm(v)) for k, v in grad_views.items()}


def _scores(ws: Workspace, Was, XA, y) -> tuple[float, float]:
    P = forward_into(ws, Was, XA)                     # (n_out, m)
    loss = cross_entropy_from_logits(ws.logits, y, ws.output)
    return loss, float(np.mean(labels_from_probs(P.T) == y))


class _Loop:
    """Flat theta/grad vectors, their block views and the per-batch-size workspaces."""

    def __init__(self, params, arch, X, y, settings: TrainSettings, rng):
        dtype = DTYPES[settings.dtype]
        self.arch, self.L, self.m = arch, arch.n_layers, X.shape[0]
        self.layout = layout = ParamLayout(arch)
        for k, shape in layout.shapes.items():
            require(k in params and np.shape(params[k]) == shape, f"params[{k!r}] shape",
                     str(shape), np.shape(params.get(k)))
        self.theta = layout.flatten(params, dtype=dtype)
        self.grad = np.zeros_like(self.theta)
        self.grad_views = layout.views(self.grad)
        self.Was, self.gWas = layout.blocks(self.theta), layout.blocks(self.grad)
        self.Ws = [Wa[:-1] for Wa in self.Was]                       # weights without b row
        self.tmp = np.empty_like(self.theta)
        self.c2, self.c1 = settings.l2 / self.m, settings.l1 / self.m  # penalty uses m_train
        mask = layout.weight_mask.astype(dtype)                       # biases unpenalized
        self.l2_vec, self.l1_vec = mask * self.c2, mask * self.c1
        # L1 with plain gd takes a proximal step (soft-thresholding by lr * l1/m after the
        # smooth update): same objective, but weights land on exactly 0 instead of oscillating
        # around it as the subgradient makes them. Momentum/Adam use the subgradient.
        self.prox = bool(self.c1) and settings.optimizer == "gd"
        self.l1_step = self.l1_vec * settings.learning_rate
        keep = normalize_keep_prob(settings.keep_prob, arch.n_hidden)
        self.XT = augment_rows(X.T)                                   # [X.T; 1], (n0 + 1, m)
        self.TT = np.ascontiguousarray(targets(y, arch.output, arch.layer_sizes[-1], dtype).T)
        self._make_batches(settings.batch_size, keep, dtype)
        opt_kw = {"gd": {}, "momentum": {"beta": settings.beta1},
                  "adam": {"beta1": settings.beta1, "beta2": settings.beta2,
                           "epsilon": settings.epsilon}}[settings.optimizer]
        self.opt = make_optimizer(settings.optimizer, settings.learning_rate, **opt_kw)
        self.opt_step = self.opt.step_array
        self.rng = rng
        has_dropout = min(keep, default=1.0) < 1.0
        full = self.batches[0][2] if not self.shuffle and not has_dropout else None
        self.eval_train = full or Workspace(arch, self.m, dtype, keep_z=False)
        self._eval_ws: dict[int, Workspace] = {self.m: self.eval_train}

    def _make_batches(self, batch_size, keep, dtype):
        m, arch = self.m, self.arch
        bsz = m if batch_size is None else min(batch_size, m)
        self.shuffle = bsz < m  # a full batch is the same sum in any order: no draw needed
        if not self.shuffle:
            self.batches = [(self.XT, self.TT, Workspace(arch, m, dtype, keep, keep_z=False))]
            return
        self.Xs, self.Ts = np.empty_like(self.XT), np.empty_like(self.TT)
        wss = {}
        self.batches = []
        for s in range(0, m, bsz):
            n = min(bsz, m - s)
            ws = wss.get(n) or wss.setdefault(n, Workspace(arch, n, dtype, keep, keep_z=False))
            self.batches.append((self.Xs[:, s:s + n], self.Ts[:, s:s + n], ws))

    def epoch(self) -> bool:
        """One pass over the training set; False (update not applied) on a non-finite gradient."""
        Was, Ws, gWas, rng = self.Was, self.Ws, self.gWas, self.rng
        theta, grad, tmp = self.theta, self.grad, self.tmp
        if self.shuffle:
            perm = rng.permutation(self.m)
            np.take(self.XT, perm, axis=1, out=self.Xs)
            np.take(self.TT, perm, axis=1, out=self.Ts)
        for Xb, Tb, ws in self.batches:
            forward_into(ws, Was, Xb, rng)
            backward_into(ws, Ws, Tb, gWas)
            if self.c2:
                np.multiply(theta, self.l2_vec, out=tmp)
                np.add(grad, tmp, out=grad)                     # + l2/m W
            if self.c1 and not self.prox:
                np.sign(theta, out=tmp)
                np.multiply(tmp, self.l1_vec, out=tmp)
                np.add(grad, tmp, out=grad)                     # + l1/m sign(W)
            if not math.isfinite(grad.sum()):
                return False
            self.opt_step(theta, grad)
            if self.prox:                                       # w <- sign(w) max(|w| - t, 0)
                np.abs(theta, out=tmp)
                np.subtract(tmp, self.l1_step, out=tmp)
                np.maximum(tmp, 0.0, out=tmp)
                np.copysign(tmp, theta, out=theta)
        return True

    def workspace(self, m: int) -> Workspace:
        ws = self._eval_ws.get(m)
        if ws is None:
            ws = self._eval_ws[m] = Workspace(self.arch, m, self.theta.dtype, keep_z=False)
        return ws

    def evaluate(self, y, XT_dev, y_dev) -> dict[str, float]:
        ws = self.eval_train
        train_loss, train_acc = _scores(ws, self.Was, self.XT, y)
        metrics = {"train_loss": train_loss, "train_accuracy": train_acc}
        metrics.update(activation_stats(ws))
        if XT_dev is not None:
            dev_ws = self.workspace(XT_dev.shape[1])
            dev_loss, dev_acc = _scores(dev_ws, self.Was, XT_dev, y_dev)
            metrics.update(dev_loss=dev_loss, dev_accuracy=dev_acc, dev_error=1.0 - dev_acc)
        pen = penalty(self.Ws, self.m, l2=self.c2 * self.m, l1=self.c1 * self.m)
        metrics["train_objective"] = train_loss + pen
        metrics.update(grad_norms(self.grad_views))
        return metrics

    def params(self, theta=None) -> Params:
        return {k: v.copy() for k, v in self.layout.views(
            self.theta if theta is None else theta).items()}


class _EarlyStopping:
    """Best monitored dev value, its epoch, and (when patience is set) a copy of its params."""

    def __init__(self, settings: TrainSettings, theta: np.ndarray):
        self.patience, self.min_delta = settings.patience, settings.min_delta
        self.best, self.best_epoch, self.wait = math.inf, 0, 0
        self.best_theta = theta.copy() if self.patience else None

    def update(self, epoch: int, value: float, theta: np.ndarray) -> bool:
        """Record one evaluation; True when patience is exhausted."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.best_theta is not None:
                np.copyto(self.best_theta, theta)
        else:
            self.wait += 1
        return self.patience is not None and self.wait >= self.patience


def fit(params: Params, arch: Architecture, X_train, y_train, X_dev, y_dev,
        settings: TrainSettings, rng: np.random.Generator, callbacks=(), stop=None) -> FitResult:
    """Train a copy of `params` (never modified) on (X_train (m, n0), y_train (m,)).

    Every `eval_every` epochs and at the last one: train/dev loss and accuracy (evaluation
    mode), per-block norms of the last step's gradient, per-hidden-layer activation mean/std;
    then `callback(epoch, metrics)` for each callback (exceptions propagate). X_dev may be None
    (no dev metrics; early stopping then refused). `rng` shuffles mini-batches and draws masks.
    `stop` (a `pipeline.stop.Stop`, or None) is checked after every epoch: `stop.check()` raises
    `Stopped` once a stop was requested, so even sparse evaluations stop within one epoch.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    dtype = DTYPES[settings.dtype]
    normalize_keep_prob(settings.keep_prob, arch.n_hidden)
    X = check_features(X_train, arch, dtype, "X_train")
    y = check_labels(y_train, arch, X.shape[0], "y_train")
    if X_dev is not None:
        X_dev = check_features(X_dev, arch, dtype, "X_dev")
        y_dev = check_labels(y_dev, arch, X_dev.shape[0], "y_dev")
    elif settings.patience is not None:
        raise ValueError("patience (early stopping) needs a dev set, got X_dev=None")
    XT_dev = None if X_dev is None else augment_rows(X_dev.T)   # (n0 + 1, m_dev)
    loop = _Loop(params, arch, X, y, settings, rng)
    stopper = _EarlyStopping(settings, loop.theta)
    # Overflow is detected explicitly (finiteness checks below), so numpy's warnings are noise.
    with np.errstate(over="ignore", invalid="ignore"):
        return _run(loop, stopper, settings, y, XT_dev, y_dev, callbacks, stop)


def _run(loop: _Loop, stopper: _EarlyStopping, settings: TrainSettings, y, XT_dev, y_dev,
         callbacks, stop=None) -> FitResult:
    last_good = loop.theta.copy()
    history: dict[str, list[float]] = {"epoch": []}
    reason, message, epochs_run = "completed", f"completed {settings.epochs} epochs", 0
    rolled_back = False
    for epoch in range(1, settings.epochs + 1):
        if not loop.epoch():
            reason = "non_finite"
            message = (f"gradient became non-finite (nan/inf) at epoch {epoch}; the update was "
                       f"not applied. Lower learning_rate ({settings.learning_rate}) or check "
                       f"the input scale")
            break
        epochs_run = epoch
        if stop is not None and stop.requested:  # one attribute read per epoch
            stop.check()
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        metrics = loop.evaluate(y, XT_dev, y_dev)
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if not np.isfinite(loop.theta).all():
            bad.insert(0, "weights")
        if bad:  # exploded: keep the history and the params finite, say what overflowed
            np.copyto(loop.theta, last_good)
            reason, rolled_back = "non_finite", True
            shown = metrics.get(bad[0], "non-finite")
            message = (f"{bad[0]} became non-finite ({shown}) at epoch {epoch} (exploding "
                       f"values); parameters rolled back to the previous evaluation. Lower "
                       f"learning_rate ({settings.learning_rate}) or check the input scale")
            break
        np.copyto(last_good, loop.theta)
        history["epoch"].append(epoch)
        for key, value in metrics.items():
            history.setdefault(key, []).append(value)
        for callback in callbacks:
            callback(epoch, metrics)
        if XT_dev is not None and stopper.update(epoch, metrics[settings.monitor], loop.theta):
            reason = "early_stopping"
            message = (f"{settings.monitor} did not improve by more than {settings.min_delta} "
                       f"for {settings.patience} evaluations; best {stopper.best:.6g} at epoch "
                       f"{stopper.best_epoch}, stopped at epoch {epoch}")
            break
    # One rule: `best_epoch` is the epoch whose parameters are returned, so the final metrics
    # and the step they are logged at describe the same network. With early stopping that is
    # the best monitored dev evaluation (restored); without it, the last epoch trained, or the
    # evaluation the parameters were rolled back to after an overflow.
    if stopper.best_theta is not None and stopper.best_epoch:
        final, returned = loop.params(stopper.best_theta), stopper.best_epoch
        if reason == "non_finite":
            message += f"; returning the best-dev parameters of epoch {stopper.best_epoch}"
    else:
        final, returned = loop.params(), epochs_run
        if rolled_back:
            returned = history["epoch"][-1] if history["epoch"] else 0
    return FitResult(final, history, returned, reason, message, epochs_run)
