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
from pipeline.nn.layers import Buffers, buffer_rows, eval_chunk_rows, with_ones
from pipeline.nn.losses import cross_entropy_from_logits, labels_from_probs, targets
from pipeline.nn.network import Network, Params
from pipeline.nn.optim import make_optimizer
from pipeline.train_types import FitResult, TrainSettings, check_features, check_labels

__all__ = ["TrainSettings", "FitResult", "fit", "activation_stats", "grad_norms"]


def activation_stats(buf: Buffers) -> dict[str, float]:
    """Mean and std of each hidden layer's activations (evaluation mode, no dropout)."""
    return _stats_of([_moments(buf)])


def _moments(buf: Buffers) -> list[tuple[int, float, float]]:
    """(count, mean, sum of squared deviations) of each hidden layer's activations in `buf`."""
    out = []
    for H in buf.H:
        # = H.mean(), H.std() (same two-pass formula) at 2x less per call: an evaluation's
        # statistics cost as much as a training step on the default network.
        mean = H.sum() / H.size
        d = np.subtract(H, mean).ravel()
        out.append((H.size, mean, np.dot(d, d)))
    return out


def _stats_of(chunks: list[list[tuple[int, float, float]]]) -> dict[str, float]:
    """Mean and std per layer over evaluation chunks (Chan et al.'s pairwise combination of
    the chunks' moments; one chunk gives exactly the two-pass formula's numbers)."""
    out = {}
    for l, parts in enumerate(zip(*chunks), start=1):
        n, mean, m2 = parts[0]
        for n_b, mean_b, m2_b in parts[1:]:
            delta, total = mean_b - mean, n + n_b
            mean, m2 = mean + delta * n_b / total, m2 + m2_b + delta * delta * n * n_b / total
            n = total
        out[f"act_mean_{l}"] = float(mean)
        out[f"act_std_{l}"] = float(np.sqrt(m2 / n))
    return out


def grad_norms(grad_views: Params) -> dict[str, float]:
    """Frobenius norm of every block of the last step's gradient (penalty included)."""
    return {f"grad_norm_{k}": float(np.linalg.norm(v)) for k, v in grad_views.items()}


class _Loop:
    """The network being trained (a copy), its flat gradient, and its buffers: each step is
    `layers.forward`, `layers.backward`, `Penalty.add_gradient`, the optimizer's step -- the
    same functions `Network.gradient` and the gradient check use.

    Memory: ONE buffer arena for the batch size. A shorter last batch and every evaluation
    chunk are carved from it (evaluation runs over chunks of the batch size, or of
    `eval_chunk_rows` when the batches are smaller), so evaluating the train and dev splits
    allocates nothing when the batch is at least a chunk; `_use` rewrites the ones rows a
    buffer shares with the others before it is used after another."""

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
        self._live = None                                             # the buffer used last
        self._make_batches(settings.batch_size, keep)
        self.opt = make_optimizer(settings.optimizer, settings.learning_rate,
                                  **settings.optimizer_options())
        self.rng = rng
        self._eval_bufs: dict[int, Buffers] = {}
        self._eval_arena = None

    def _make_batches(self, batch_size, keep):
        m, arch, dtype = self.m, self.net.arch, self.net.theta.dtype
        self.bsz = bsz = m if batch_size is None else min(batch_size, m)
        self.shuffle = bsz < m  # a full batch is the same sum in any order: no draw needed
        main = Buffers(arch, bsz, dtype, keep)
        if not self.shuffle:
            self.batches = [(self.XT, self.TT, main)]
            return
        self.Xs, self.Ts = np.empty_like(self.XT), np.empty_like(self.TT)
        bufs: dict[int, Buffers] = {bsz: main}
        self.batches = []
        for s in range(0, m, bsz):
            n = min(bsz, m - s)
            buf = bufs.get(n) or bufs.setdefault(n, Buffers(arch, n, dtype, keep, main.arena))
            self.batches.append((self.Xs[:, s:s + n], self.Ts[:, s:s + n], buf))

    def _use(self, buf: Buffers) -> Buffers:
        if buf is not self._live:
            self._live = buf.ones()
        return buf

    def epoch(self) -> bool:
        """One pass over the training set; False (update not applied) on a non-finite gradient."""
        net, grad, gWas, rng, pen = self.net, self.grad, self.gWas, self.rng, self.penalty
        theta, Was, Ws = net.theta, net.Was, net.Ws
        if self.shuffle:
            perm = rng.permutation(self.m)
            np.take(self.XT, perm, axis=1, out=self.Xs)
            np.take(self.TT, perm, axis=1, out=self.Ts)
        for Xb, Tb, buf in self.batches:
            if buf is not self._live:
                self._use(buf)
            layers.forward(buf, Was, Xb, rng)
            layers.backward(buf, Ws, Tb, gWas)
            pen.add_gradient(theta, grad)
            if not math.isfinite(grad.sum()):
                return False
            self.opt.step(theta, grad)
            pen.prox(theta, self.lr)
        return True

    def _chunks(self, XT, y):
        """(buffers, [XT; 1] columns, labels) per evaluation chunk of XT (n0 + 1, m)."""
        arch, dtype = self.net.arch, self.net.theta.dtype
        if self._eval_arena is None:
            rows = max(self.bsz, min(max(self.m, XT.shape[1]), eval_chunk_rows(arch, dtype)))
            main = self.batches[0][2]
            self._chunk = rows
            self._eval_arena = (main.arena if rows <= self.bsz else
                                np.empty(buffer_rows(arch) * rows, dtype=dtype))
        for s in range(0, XT.shape[1], self._chunk):
            n = min(self._chunk, XT.shape[1] - s)
            buf = self._eval_bufs.get(n)
            if buf is None:
                buf = self._eval_bufs[n] = Buffers(arch, n, dtype, arena=self._eval_arena)
            yield self._use(buf), XT[:, s:s + n], y[s:s + n]

    def _scores(self, XT, y, moments=None) -> tuple[float, float]:
        """Mean cross-entropy and accuracy over XT's chunks (each chunk's hidden-activation
        moments appended to `moments` when given)."""
        parts = []
        for buf, XA, yc in self._chunks(XT, y):
            P = layers.forward(buf, self.net.Was, XA)          # (n_out, n)
            loss = cross_entropy_from_logits(buf.Z[-1].T, yc, buf.output)
            parts.append((buf.m, loss, np.mean(labels_from_probs(P.T) == yc)))
            if moments is not None:
                moments.append(_moments(buf))
        if len(parts) == 1:  # the whole split in one chunk: exactly the unchunked numbers
            return parts[0][1], float(parts[0][2])
        m = sum(n for n, _, _ in parts)
        return (sum(n * loss for n, loss, _ in parts) / m,
                float(sum(n * acc for n, _, acc in parts) / m))

    def evaluate(self, y, XT_dev, y_dev) -> dict[str, float]:
        moments: list = []
        train_loss, train_acc = self._scores(self.XT, y, moments)
        metrics = {"train_loss": train_loss, "train_accuracy": train_acc}
        metrics.update(_stats_of(moments))
        if XT_dev is not None:
            dev_loss, dev_acc = self._scores(XT_dev, y_dev)
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
        overflow = _overflow(metrics, theta, epoch, settings)
        if overflow:  # exploded: keep the history and the params finite, say what overflowed
            np.copyto(theta, last_good)
            reason, message, rolled_back = "non_finite", overflow, True
            break
        np.copyto(last_good, theta)
        _record(history, epoch, metrics, callbacks)
        if XT_dev is not None and stopper.update(epoch, metrics[settings.monitor], theta):
            reason = "early_stopping"
            message = (f"{settings.monitor} did not improve by more than {settings.min_delta} "
                       f"for {settings.patience} evaluations; best {stopper.best:.6g} at epoch "
                       f"{stopper.best_epoch}, stopped at epoch {epoch}")
            break
    return _result(loop, stopper, history, reason, message, epochs_run, rolled_back)


def _overflow(metrics: dict[str, float], theta: np.ndarray, epoch: int,
              settings: TrainSettings) -> str | None:
    """What became non-finite at this evaluation (the weights first, else the first metric),
    said with what to do; None when everything is finite."""
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if not np.isfinite(theta).all():
        bad.insert(0, "weights")
    if not bad:
        return None
    shown = metrics.get(bad[0], "non-finite")
    return (f"{bad[0]} became non-finite ({shown}) at epoch {epoch} (exploding "
            f"values); parameters rolled back to the previous evaluation. Lower "
            f"learning_rate ({settings.learning_rate}) or check the input scale")


def _record(history: dict[str, list[float]], epoch: int, metrics: dict[str, float],
            callbacks) -> None:
    """One finite evaluation: appended to the history, then passed to every callback."""
    history["epoch"].append(epoch)
    for key, value in metrics.items():
        history.setdefault(key, []).append(value)
    for callback in callbacks:
        callback(epoch, metrics)


def _result(loop: _Loop, stopper: _EarlyStopping, history, reason: str, message: str,
            epochs_run: int, rolled_back: bool) -> FitResult:
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
