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

from pipeline.nn import layers
from pipeline.nn.layers import Buffers, with_ones
from pipeline.nn.losses import cross_entropy_from_logits, labels_from_probs, targets
from pipeline.nn.network import Network, Params
from pipeline.nn.optim import make_optimizer
from pipeline.train_types import FitResult, TrainSettings, check_features, check_labels

__all__ = ["TrainSettings", "FitResult", "fit", "activation_stats", "grad_norms"]


def activation_stats(buf: Buffers) -> dict[str, float]:
    """Mean and std of each hidden layer's activations (evaluation mode, no dropout)."""
    out = {}
    for l, H in enumerate(buf.H, start=1):
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


def _scores(buf: Buffers, net: Network, XA, y) -> tuple[float, float]:
    P = layers.forward(buf, net.Was, XA)              # (n_out, m)
    loss = cross_entropy_from_logits(buf.Z[-1].T, y, buf.output)
    return loss, float(np.mean(labels_from_probs(P.T) == y))


class _Loop:
    """The network being trained (a copy), its flat gradient, and one `Buffers` per batch size:
    each step is `layers.forward`, `layers.backward`, `Penalty.add_gradient`, the optimizer's
    step -- the same functions `Network.gradient` and the gradient check use."""

    def __init__(self, net: Network, X, y, settings: TrainSettings, rng):
        self.net = net = net.copy(np.dtype(settings.dtype))
        self.m = X.shape[0]
        self.grad = np.zeros_like(net.theta)
        self.grad_views = net.layout.views(self.grad)
        self.gWas = net.layout.blocks(self.grad)
        # L1 with plain gd takes a proximal step (soft-thresholding after the smooth update):
        # same objective, but weights land on exactly 0 instead of oscillating around it as
        # the subgradient makes them. Momentum/Adam use the subgradient.
        self.penalty = net.penalty(self.m, l2=settings.l2, l1=settings.l1,
                                   prox_l1=settings.optimizer == "gd")
        self.lr = settings.learning_rate
        keep = layers.keep_per_layer(settings.keep_prob, net.arch.n_hidden)
        self.XT = with_ones(X.T)                                      # [X.T; 1], (n0 + 1, m)
        self.TT = np.ascontiguousarray(
            targets(y, net.arch.output, net.arch.layer_sizes[-1], net.theta.dtype).T)
        self._make_batches(settings.batch_size, keep)
        self.opt = make_optimizer(settings.optimizer, settings.learning_rate,
                                  **settings.optimizer_options())
        self.rng = rng
        has_dropout = min(keep, default=1.0) < 1.0
        full = self.batches[0][2] if not self.shuffle and not has_dropout else None
        self.eval_train = full or Buffers(net.arch, self.m, net.theta.dtype)
        self._eval_bufs: dict[int, Buffers] = {self.m: self.eval_train}

    def _make_batches(self, batch_size, keep):
        m, arch, dtype = self.m, self.net.arch, self.net.theta.dtype
        bsz = m if batch_size is None else min(batch_size, m)
        self.shuffle = bsz < m  # a full batch is the same sum in any order: no draw needed
        if not self.shuffle:
            self.batches = [(self.XT, self.TT, Buffers(arch, m, dtype, keep))]
            return
        self.Xs, self.Ts = np.empty_like(self.XT), np.empty_like(self.TT)
        bufs: dict[int, Buffers] = {}
        self.batches = []
        for s in range(0, m, bsz):
            n = min(bsz, m - s)
            buf = bufs.get(n) or bufs.setdefault(n, Buffers(arch, n, dtype, keep))
            self.batches.append((self.Xs[:, s:s + n], self.Ts[:, s:s + n], buf))

    def epoch(self) -> bool:
        """One pass over the training set; False (update not applied) on a non-finite gradient."""
        net, grad, gWas, rng, pen = self.net, self.grad, self.gWas, self.rng, self.penalty
        theta, Was, Ws = net.theta, net.Was, net.Ws
        if self.shuffle:
            perm = rng.permutation(self.m)
            np.take(self.XT, perm, axis=1, out=self.Xs)
            np.take(self.TT, perm, axis=1, out=self.Ts)
        for Xb, Tb, buf in self.batches:
            layers.forward(buf, Was, Xb, rng)
            layers.backward(buf, Ws, Tb, gWas)
            pen.add_gradient(theta, grad)
            if not math.isfinite(grad.sum()):
                return False
            self.opt.step(theta, grad)
            pen.prox(theta, self.lr)
        return True

    def buffers(self, m: int) -> Buffers:
        buf = self._eval_bufs.get(m)
        if buf is None:
            buf = self._eval_bufs[m] = Buffers(self.net.arch, m, self.net.theta.dtype)
        return buf

    def evaluate(self, y, XT_dev, y_dev) -> dict[str, float]:
        buf = self.eval_train
        train_loss, train_acc = _scores(buf, self.net, self.XT, y)
        metrics = {"train_loss": train_loss, "train_accuracy": train_acc}
        metrics.update(activation_stats(buf))
        if XT_dev is not None:
            dev_loss, dev_acc = _scores(self.buffers(XT_dev.shape[1]), self.net, XT_dev, y_dev)
            metrics.update(dev_loss=dev_loss, dev_accuracy=dev_acc, dev_error=1.0 - dev_acc)
        metrics["train_objective"] = train_loss + self.penalty.value(self.net.Ws)
        metrics.update(grad_norms(self.grad_views))
        return metrics

    def network(self, theta=None) -> Network:
        return Network(self.net.arch, (self.net.theta if theta is None else theta).copy())


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


def fit(net: Network, X_train, y_train, X_dev, y_dev, settings: TrainSettings,
        rng: np.random.Generator, callbacks=(), stop=None) -> FitResult:
    """Train a copy of `net` (never modified) on (X_train (m, n0), y_train (m,)).

    Every `eval_every` epochs and at the last one: train/dev loss and accuracy (evaluation
    mode), per-block norms of the last step's gradient, per-hidden-layer activation mean/std;
    then `callback(epoch, metrics)` for each callback (exceptions propagate). X_dev may be None
    (no dev metrics; early stopping then refused). `rng` shuffles mini-batches and draws masks.
    `stop` (a `pipeline.stop.Stop`, or None) is checked after every epoch: `stop.check()` raises
    `Stopped` once a stop was requested, so even sparse evaluations stop within one epoch.
    """
    arch, dtype = net.arch, np.dtype(settings.dtype)
    X = check_features(X_train, arch, dtype, "X_train")
    y = check_labels(y_train, arch, X.shape[0], "y_train")
    if X_dev is not None:
        X_dev = check_features(X_dev, arch, dtype, "X_dev")
        y_dev = check_labels(y_dev, arch, X_dev.shape[0], "y_dev")
    elif settings.patience is not None:
        raise ValueError("patience (early stopping) needs a dev set, got X_dev=None")
    XT_dev = None if X_dev is None else with_ones(X_dev.T)      # (n0 + 1, m_dev)
    loop = _Loop(net, X, y, settings, rng)
    stopper = _EarlyStopping(settings, loop.net.theta)
    # Overflow is detected explicitly (finiteness checks below), so numpy's warnings are noise.
    with np.errstate(over="ignore", invalid="ignore"):
        return _run(loop, stopper, settings, y, XT_dev, y_dev, callbacks, stop)


def _run(loop: _Loop, stopper: _EarlyStopping, settings: TrainSettings, y, XT_dev, y_dev,
         callbacks, stop=None) -> FitResult:
    theta = loop.net.theta
    last_good = theta.copy()
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
        if not np.isfinite(theta).all():
            bad.insert(0, "weights")
        if bad:  # exploded: keep the history and the params finite, say what overflowed
            np.copyto(theta, last_good)
            reason, rolled_back = "non_finite", True
            shown = metrics.get(bad[0], "non-finite")
            message = (f"{bad[0]} became non-finite ({shown}) at epoch {epoch} (exploding "
                       f"values); parameters rolled back to the previous evaluation. Lower "
                       f"learning_rate ({settings.learning_rate}) or check the input scale")
            break
        np.copyto(last_good, theta)
        history["epoch"].append(epoch)
        for key, value in metrics.items():
            history.setdefault(key, []).append(value)
        for callback in callbacks:
            callback(epoch, metrics)
        if XT_dev is not None and stopper.update(epoch, metrics[settings.monitor], theta):
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
        final, returned = loop.network(stopper.best_theta), stopper.best_epoch
        if reason == "non_finite":
            message += f"; returning the best-dev parameters of epoch {stopper.best_epoch}"
    else:
        final, returned = loop.network(), epochs_run
        if rolled_back:
            returned = history["epoch"][-1] if history["epoch"] else 0
    return FitResult(final, history, returned, reason, message, epochs_run)
