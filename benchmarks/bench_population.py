"""Population training, measured before it is built (issue 12, optional part).

Would training K trials of one batch in a single vectorized loop (stacked weights, one batched
matmul per layer, one elementwise op over all K members) give >= 4x trials per minute on the
default search space? This script answers with a prototype of that loop, written plainly here
(it is not part of the package):

- the default trial's math: the default config's network ([2, 80, 50, 30, 1], ReLU, sigmoid
  output, cross-entropy), full batch, Adam, L2 and inverted dropout with each member's own
  lambda and keep_prob, a dev evaluation every `eval_every` epochs (the default cadence);
- checked first: with keep_prob 1 and the same initial weights, every member's parameters
  after the run equal `pipeline.train.fit`'s for that member's lambda (max abs difference
  printed; the issue's bar is 1e-12), so the timing is of the same computation;
- timed, interleaved per repeat, one BLAS thread: `pipeline.stages.train` of K trials one after
  another (the real serial cost, the trial's evaluations and statistics included) against the
  stacked loop for K members; the ratio is the trials-per-minute gain from stacking alone.

    python benchmarks/bench_population.py                 # K = 1, 4, 8, 16; 3 repeats
    python benchmarks/bench_population.py --k 8 --epochs 500 --repeats 1
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as every command of the package runs

import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from pipeline import stages  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.nn import init_network  # noqa: E402
from pipeline.train import fit  # noqa: E402


class Population:
    """K same-shape networks trained together. Weights (K, n_out, n_in) and biases (K, n_out, 1)
    are views into one flat (K, P) array, so Adam and L2 are a few array operations over all
    members; each layer's forward and backward is one batched matmul."""

    def __init__(self, sizes, Ws, bs, l2, keep, lr, m, beta1=0.9, beta2=0.999, eps=1e-8):
        self.K, self.L, self.m = Ws[0].shape[0], len(sizes) - 1, m
        shapes = [(n_out, n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        total = sum(a * b + a for a, b in shapes)
        self.theta, self.grad = np.zeros((self.K, total)), np.zeros((self.K, total))
        self.W, self.b, self.gW, self.gb = [], [], [], []
        decay = np.zeros((self.K, total))  # l2/m on weights, 0 on biases, per member
        at = 0
        for (n_out, n_in), W, b in zip(shapes, Ws, bs):
            for flat, dest in ((self.theta, self.W), (self.grad, self.gW)):
                dest.append(flat[:, at:at + n_out * n_in].reshape(self.K, n_out, n_in))
            decay[:, at:at + n_out * n_in] = (np.asarray(l2) / m)[:, None]
            at += n_out * n_in
            for flat, dest in ((self.theta, self.b), (self.grad, self.gb)):
                dest.append(flat[:, at:at + n_out].reshape(self.K, n_out, 1))
            at += n_out
            self.W[-1][...], self.b[-1][...] = W, b
        self.decay = decay
        self.keep = np.asarray(keep, dtype=float).reshape(self.K, 1, 1)
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.mom, self.sq, self.tmp = (np.zeros_like(self.theta) for _ in range(3))

    def forward(self, X, rng=None):
        """X (n0, m) shared by all members -> probabilities (K, 1, m); with `rng`, dropout."""
        A, self.As, self.masks = X, [X], []
        for l in range(self.L):
            Z = np.matmul(self.W[l], A)
            Z += self.b[l]
            if l == self.L - 1:
                return 1.0 / (1.0 + np.exp(-Z))
            A = np.maximum(Z, 0.0)
            if rng is not None:
                M = (rng.random(A.shape) < self.keep) / self.keep
                A *= M
                self.masks.append(M)
            else:
                self.masks.append(None)
            self.As.append(A)

    def step(self, X, Y, rng):
        P = self.forward(X, rng)
        D = (P - Y) / self.m                                  # dJ/dZ of the output layer
        for l in range(self.L - 1, -1, -1):
            A = self.As[l]
            if A.ndim == 2:                                   # the shared input
                np.matmul(D, A.T, out=self.gW[l])
            else:
                np.matmul(D, A.transpose(0, 2, 1), out=self.gW[l])
            D.sum(axis=2, keepdims=True, out=self.gb[l])
            if l == 0:
                break
            D = np.matmul(self.W[l].transpose(0, 2, 1), D)
            if self.masks[l - 1] is not None:
                D *= self.masks[l - 1]
            D *= A > 0                                        # ReLU'
        np.multiply(self.theta, self.decay, out=self.tmp)
        self.grad += self.tmp                                 # + l2/m W
        self._adam()

    def _adam(self):  # the same operations as pipeline.nn.optim.Adam, over (K, P)
        g, m, s, tmp = self.grad, self.mom, self.sq, self.tmp
        self.t += 1
        m *= self.b1
        np.multiply(g, 1.0 - self.b1, out=tmp)
        m += tmp
        s *= self.b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.b2
        s += tmp
        lr_t = self.lr * np.sqrt(1.0 - self.b2 ** self.t) / (1.0 - self.b1 ** self.t)
        np.sqrt(s, out=tmp)
        tmp += self.eps * np.sqrt(1.0 - self.b2 ** self.t)
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        self.theta -= tmp

    def scores(self, X, y):
        """Per member: mean cross-entropy and error on (X, y), no dropout."""
        P = np.clip(self.forward(X)[:, 0, :], 1e-12, 1 - 1e-12)
        loss = -(y * np.log(P) + (1 - y) * np.log(1 - P)).mean(axis=1)
        return loss, ((P > 0.5) != y).mean(axis=1)


def members(cfg, prepared, K):
    """K initial networks (the config's init, one seed each) and their (lambda, keep_prob)."""
    arch = stages.architecture(cfg, prepared)
    nets = [init_network(arch, cfg.model.init, np.random.default_rng(k)) for k in range(K)]
    l2 = np.geomspace(1e-3, 3.0, K) if K > 1 else np.array([0.1])
    keep = np.linspace(0.5, 1.0, K) if K > 1 else np.array([0.8])
    return arch, nets, l2, keep


def stacked(arch, nets, l2, keep, prepared, settings, seed=0):
    X, y = prepared.train.X.T.copy(), prepared.train.y.astype(float)
    Xd, yd = prepared.dev.X.T.copy(), prepared.dev.y.astype(float)
    Ws = [np.stack([n.Was[l][:-1].T for n in nets]) for l in range(len(nets[0].Was))]
    bs = [np.stack([n.Was[l][-1][:, None] for n in nets]) for l in range(len(nets[0].Was))]
    pop = Population(arch.layer_sizes, Ws, bs, l2, keep, settings.learning_rate, X.shape[1],
                     settings.beta1, settings.beta2, settings.epsilon)
    rng, Y = np.random.default_rng(seed), y[None, None, :]
    dropout = rng if min(keep) < 1.0 else None
    for epoch in range(1, settings.epochs + 1):
        pop.step(X, Y, dropout)
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            pop.scores(X, y)
            pop.scores(Xd, yd)
    return pop


def check_equal(cfg, prepared, K, epochs):
    """keep_prob 1: each member's final parameters against pipeline.train.fit's."""
    arch, nets, l2, _ = members(cfg, prepared, K)
    base = dataclasses.replace(stages.settings(cfg), epochs=epochs, keep_prob=1.0)
    pop = stacked(arch, nets, l2, np.ones(K), prepared, base)
    worst = 0.0
    for k, net in enumerate(nets):
        s = dataclasses.replace(base, l2=float(l2[k]))
        out = fit(net, prepared.train.X, prepared.train.y, prepared.dev.X, prepared.dev.y, s,
                  np.random.default_rng(0)).network
        for l in range(len(out.Was)):
            worst = max(worst, np.abs(pop.W[l][k] - out.Was[l][:-1].T).max(),
                        np.abs(pop.b[l][k, :, 0] - out.Was[l][-1]).max())
    return worst


def per_epoch_floor(cfg, prepared, m=8, epochs=2000):
    """Seconds per epoch of `fit` on `m` samples, same network, dropout and cadence: the cost
    of the calls themselves (Python, ufunc and BLAS dispatch), nearly free of arithmetic.
    This is all that stacking members can amortize; the arithmetic grows with K."""
    arch, nets, _, _ = members(cfg, prepared, 1)
    s = dataclasses.replace(stages.settings(cfg), epochs=epochs, keep_prob=0.8, l2=0.1)
    X, y = prepared.train.X[:m], prepared.train.y[:m]
    t = time.perf_counter()
    fit(nets[0], X, y, prepared.dev.X[:m], prepared.dev.y[:m], s, np.random.default_rng(0))
    return (time.perf_counter() - t) / epochs


def serial(cfg, l2, keep, prepared):
    for lam, kp in zip(l2, keep):
        stages.train(cfg.with_overrides({"regularization.l2": float(lam),
                                         "regularization.keep_prob": float(kp)}), prepared)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's (2000)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    over = [f"training.epochs={args.epochs}"] if args.epochs else []
    cfg = load_config(over, conf_dir=os.path.join(ROOT, "conf"))
    prepared = stages.prepare(cfg)
    settings = stages.settings(cfg)
    print(f"load average {os.getloadavg()[0]:.2f}; network {list(stages.architecture(cfg, prepared).layer_sizes)},"
          f" m = {prepared.train.X.shape[0]}, {settings.epochs} epochs, {settings.optimizer},"
          f" eval_every {settings.eval_every}; one BLAS thread")
    print(f"equal to fit (keep_prob 1, 4 members, 200 epochs): max |diff| = "
          f"{check_equal(cfg, prepared, 4, 200):.2e}")
    floor = statistics.median(per_epoch_floor(cfg, prepared) for _ in range(3))
    full = statistics.median(per_epoch_floor(cfg, prepared, m=prepared.train.X.shape[0])
                             for _ in range(3))
    print(f"fit per epoch: {full * 1e3:.3f} ms on m = {prepared.train.X.shape[0]}, "
          f"{floor * 1e3:.3f} ms on m = 8 (the per-call floor: {floor / full:.0%} of an epoch;"
          f" stacking can at best remove it, a gain of {1 / (1 - floor / full):.2f}x)")
    print("| K | serial stages.train, s (median) | stacked loop, s (median) | gain |")
    print("|---:|---:|---:|---:|")
    for K in args.k:
        arch, nets, l2, keep = members(cfg, prepared, K)
        times = {"serial": [], "stacked": []}
        for _ in range(args.repeats):  # interleaved: a load spike hits both alike
            t = time.perf_counter()
            serial(cfg, l2, keep, prepared)
            times["serial"].append(time.perf_counter() - t)
            t = time.perf_counter()
            stacked(arch, nets, l2, keep, prepared, settings)
            times["stacked"].append(time.perf_counter() - t)
        s, p = statistics.median(times["serial"]), statistics.median(times["stacked"])
        print(f"| {K} | {s:.2f} | {p:.2f} | {s / p:.2f}x |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
