"""Benchmark: the same network, data and iteration count in this project and its peers.

Peers: a straightforward NumPy loop of the same math (written plainly below), scikit-learn's
MLPClassifier (sgd, no momentum, batch = whole set, alpha = lambda, no early stop, no shuffle),
and PyTorch on the CPU when importable (skipped otherwise). Each (workload, implementation) is
run `--repeats` times; the table shows medians. Workload 3 also measures the float64 matrix-
multiply rates NumPy reaches here (float64 and float32), on the very matmul shapes of that
network and on a square one. "this project" trains as the product does (a dev set, the default
`eval_every: auto` cadence); "this project, bare loop" is `fit` without a dev set and with one
evaluation, the training arithmetic alone.

    python benchmarks/bench_nn.py            # full workloads (a few minutes on 2 cores)
    python benchmarks/bench_nn.py --quick    # smoke run: fewer iterations and repeats
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings


def _blas_threads_from_argv() -> None:
    """--blas-threads N must take effect before NumPy loads OpenBLAS, so it is read here."""
    for i, arg in enumerate(sys.argv):
        value = arg.split("=", 1)[1] if arg.startswith("--blas-threads=") else (
            sys.argv[i + 1] if arg == "--blas-threads" and i + 1 < len(sys.argv) else None)
        if value:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = value


_blas_threads_from_argv()

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pipeline.nn import Architecture, Network, init_network  # noqa: E402
from pipeline.config.sections import eval_cadence  # noqa: E402
from pipeline.train import TrainSettings, fit  # noqa: E402

LR = 0.3
MATMUL_ROW = "NumPy f64 matmuls only"
MATMUL_ROW_F32 = "NumPy f32 matmuls only"
PRODUCT_ROW = "this project"            # as the product trains: a dev set, the default cadence
BARE_ROW = "this project, bare loop"    # no dev set, one evaluation at the end
# the product holds out dev: 0.2 of the data against a train split of 0.6 (conf/base.yaml), so
# its dev set is a third of the rows it trains on; evaluated every eval_cadence("auto") epochs
DEV_PER_TRAIN = 1 / 3


# ---------------------------------------------------------------- data and workloads
def circles(rng, m):
    r = rng.uniform(0, 1, m)
    t = rng.uniform(0, 2 * np.pi, m)
    X = np.c_[r * np.cos(t), r * np.sin(t)] + 0.1 * rng.standard_normal((m, 2))
    return X, (r > 0.5).astype(np.int64)


def teacher(rng, m, n, k):
    X = rng.standard_normal((m, n))
    return X, np.argmax(X @ rng.standard_normal((n, k)), axis=1)


def with_dev(wl, make):
    """A held-out dev set from the same generator, a third of the training rows (as the
    product's 0.6 / 0.2 train / dev split): the product evaluates on it during training."""
    wl["dev"] = make(np.random.default_rng(7), max(1, round(wl["data"][0].shape[0] * DEV_PER_TRAIN)))
    return wl


def workloads(quick: bool, scale: int | None = None):
    rng = np.random.default_rng(0)
    s = scale or (10 if quick else 1)
    wide = lambda r, m: teacher(r, m, 64, 10)  # noqa: E731
    return [with_dev(wl, make) for wl, make in zip([
        dict(name="(1) 300x2 [2,10,5,1]", data=circles(rng, 300), layers=(2, 10, 5, 1),
             lam=0.0, iters=15_000 // s),
        dict(name="(2) 211x2 [2,20,3,1] l2=0.7", data=circles(rng, 211), layers=(2, 20, 3, 1),
             lam=0.7, iters=30_000 // s),
        dict(name="(3) 20000x64 [64,256,128,10]", data=teacher(rng, 20_000 // s, 64, 10),
             layers=(64, 256, 128, 10), lam=0.0, iters=max(1, 50 // (5 if quick else s))),
    ], [circles, circles, wide])]


# ---------------------------------------------------------------- implementations
def run_ours(wl, params, dtype="float64", product=True):
    """`fit` as the product calls it (product=True: a dev set, evaluated every
    eval_cadence("auto") epochs, as `training.eval_every: auto` resolves), or the bare loop
    (no dev set, one evaluation at the end: the training arithmetic alone)."""
    X, y = wl["data"]
    Xd, yd = wl["dev"] if product else (None, None)
    every = eval_cadence("auto", wl["iters"]) if product else wl["iters"]
    arch = Architecture(wl["layers"], "relu")
    s = TrainSettings(learning_rate=LR, epochs=wl["iters"], l2=wl["lam"],
                      eval_every=every, dtype=dtype)
    r = fit(Network.from_params(arch, params), X, y, Xd, yd, s, np.random.default_rng(0))
    return r.history["train_loss"][-1]


def run_bare(wl, params, dtype="float64"):
    return run_ours(wl, params, dtype, product=False)


def run_plain(wl, params):
    """A straightforward NumPy loop of the same math (relu hidden, sigmoid/softmax output, L2)."""
    X, y = wl["data"]
    m, L, lam = X.shape[0], len(wl["layers"]) - 1, wl["lam"]
    Ws = [params[f"W{l}"].copy() for l in range(1, L + 1)]
    bs = [params[f"b{l}"].copy() for l in range(1, L + 1)]
    k = wl["layers"][-1]
    Y = y.reshape(-1, 1).astype(float) if k == 1 else np.eye(k)[y]
    for _ in range(wl["iters"]):
        A = [X]
        for l in range(L - 1):
            A.append(np.maximum(A[-1] @ Ws[l] + bs[l], 0))
        Z = A[-1] @ Ws[-1] + bs[-1]
        if k == 1:
            P = 1 / (1 + np.exp(-Z))
        else:
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            P = E / E.sum(axis=1, keepdims=True)
        dZ = (P - Y) / m
        for l in range(L - 1, -1, -1):
            dW = A[l].T @ dZ + lam / m * Ws[l]
            db = dZ.sum(axis=0)
            if l:
                dZ = (dZ @ Ws[l].T) * (A[l] > 0)
            Ws[l] -= LR * dW
            bs[l] -= LR * db
    return None


def run_sklearn(wl, params):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X, y = wl["data"]
    clf = MLPClassifier(hidden_layer_sizes=wl["layers"][1:-1], activation="relu", solver="sgd",
                        momentum=0.0, nesterovs_momentum=False, batch_size=X.shape[0],
                        learning_rate="constant", learning_rate_init=LR, alpha=wl["lam"],
                        max_iter=wl["iters"], tol=0.0, n_iter_no_change=wl["iters"] + 1,
                        shuffle=False, early_stopping=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == wl["iters"], clf.n_iter_
    return clf.loss_


def run_torch(wl, params):
    import torch
    # tiny tensors: intra-op threads only add synchronization (measured 8x slower with 2
    # threads on the shared 2-core box), so (1) and (2) run single-threaded; (3) uses all cores
    big = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(1 if wl["data"][0].shape[0] < 1000 else big)
    X, y = wl["data"]
    L, k, m = len(wl["layers"]) - 1, wl["layers"][-1], X.shape[0]
    Xt = torch.from_numpy(X)
    Ws = [torch.tensor(params[f"W{l}"], requires_grad=True) for l in range(1, L + 1)]
    bs = [torch.tensor(params[f"b{l}"], requires_grad=True) for l in range(1, L + 1)]
    opt = torch.optim.SGD([{"params": Ws, "weight_decay": wl["lam"] / m},
                           {"params": bs, "weight_decay": 0.0}], lr=LR)
    if k == 1:
        loss_fn, target = torch.nn.BCEWithLogitsLoss(), torch.from_numpy(y.astype(float))[:, None]
    else:
        loss_fn, target = torch.nn.CrossEntropyLoss(), torch.from_numpy(y)
    for _ in range(wl["iters"]):
        opt.zero_grad(set_to_none=True)
        A = Xt
        for l in range(L - 1):
            A = torch.relu(A @ Ws[l] + bs[l])
        loss = loss_fn(A @ Ws[-1] + bs[-1], target)
        loss.backward()
        opt.step()
    return float(loss.detach())


# ---------------------------------------------------------------- measurement
def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def interleaved(rows, wl, params, repeats):
    """Round-robin repeats, so every implementation sees the same (shared, noisy) machine."""
    times = {name: [] for name in rows}
    losses = {}
    for _ in range(repeats):
        for name, fn in rows.items():
            t0 = time.perf_counter()
            losses[name] = fn(wl, params)
            times[name].append(time.perf_counter() - t0)
    return times, losses


def model_flops(layers, m):
    """Multiply-adds x 2 of one training step: forward, dW, and dA for layers above the first."""
    pairs = list(zip(layers[:-1], layers[1:]))
    fwd = sum(2 * m * a * b for a, b in pairs)
    return fwd + fwd + sum(2 * m * a * b for a, b in pairs[1:])


def step_matmuls(layers, m, dtype=np.float64):
    """Random operands for exactly the matrix products of one training step, and their FLOPs."""
    rng = np.random.default_rng(0)
    shapes = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        shapes.append(((m, a), (a, b)))            # forward
        shapes.append(((a, m), (m, b)))            # dW
        if i:
            shapes.append(((m, b), (b, a)))        # dA
    mats = [(rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype),
             np.empty((s1[0], s2[1]), dtype=dtype)) for s1, s2 in shapes]  # preallocated out
    return mats, sum(2 * s1[0] * s1[1] * s2[1] for s1, s2 in shapes)


def make_run_matmuls(wl, dtype=np.float64):
    """A pseudo-implementation: only the step's matmuls in `dtype`, `iters` times (the ceiling
    for the same dtype: float32 is compared with this at float32, not with the f64 rate)."""
    mats, _ = step_matmuls(wl["layers"], wl["data"][0].shape[0], dtype)

    def run(wl, params):
        for _ in range(wl["iters"]):
            for A, B, C in mats:
                np.dot(A, B, out=C)
    return run


def square_rate(n=2048, repeats=3):
    rng = np.random.default_rng(0)
    S1, S2 = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    t, _ = timed(lambda: np.dot(S1, S2), repeats)
    return 2 * n ** 3 / t


def load() -> str:
    """The load average, as `uptime` prints it: the machine is shared, so every result says
    what else was running."""
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"NumPy {np.__version__}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations and repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", default="", help="comma list of workload numbers, e.g. 1,3")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="BLAS (and torch) threads; default: the libraries' own choice")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--scale", type=int, default=None, help=argparse.SUPPRESS)  # tests: tiny
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    peers = {PRODUCT_ROW: run_ours, BARE_ROW: run_bare, "plain NumPy loop": run_plain,
             "sklearn MLP": run_sklearn}
    if not args.no_torch and importlib.util.find_spec("torch") is not None:
        peers["PyTorch CPU"] = run_torch
    else:
        print("PyTorch not installed (or --no-torch): skipped")
    import sklearn.neural_network  # noqa: F401  (imports stay out of the timings)
    if "PyTorch CPU" in peers:
        import torch  # noqa: F401
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"machine: {machine()}; BLAS threads {threads}; repeats {repeats} interleaved, "
          f"medians; {load()}")
    print(f"'{PRODUCT_ROW}' trains as the product does: a dev set (a third of the training "
          f"rows), evaluated every eval_cadence('auto') epochs; '{BARE_ROW}': no dev set, one "
          f"evaluation at the end. Ratios are against '{PRODUCT_ROW}'.")
    print(f"{'workload':<32}{'implementation':<26}{'median s':>10}{'min s':>9}{'us/iter':>12}"
          f"{'ours faster by':>16}  final loss")
    for i, wl in enumerate(workloads(args.quick, args.scale), start=1):
        if args.only and str(i) not in args.only.split(","):
            continue
        params = init_network(Architecture(wl["layers"], "relu"), "he", np.random.default_rng(1)).params
        rows = dict(peers)
        if i == 3:
            rows["this project float32"] = lambda w, p: run_ours(w, p, "float32")
            rows[MATMUL_ROW] = make_run_matmuls(wl)
            rows[MATMUL_ROW_F32] = make_run_matmuls(wl, np.float32)
        times, losses = interleaved(rows, wl, params, repeats)
        base = statistics.median(times[PRODUCT_ROW])
        every = eval_cadence("auto", wl["iters"])
        print(f"{wl['name']}: {wl['iters']} iterations, product row evaluates every {every} "
              f"on {wl['dev'][0].shape[0]} dev rows; {load()}")
        for name, ts in times.items():
            t = statistics.median(ts)
            loss_s = "" if losses[name] is None else f"{losses[name]:.4g}"
            print(f"{wl['name']:<32}{name:<26}{t:>10.3f}{min(ts):>9.3f}"
                  f"{t / wl['iters'] * 1e6:>12.1f}{t / base:>15.2f}x  {loss_s}", flush=True)
            if i == 3:
                rate = model_flops(wl["layers"], wl["data"][0].shape[0]) * wl["iters"] / t
                print(f"{'':<32}{'  -> FLOP rate':<26}{rate / 1e9:>10.1f} GFLOP/s")
        if i == 3:
            med = {name: statistics.median(ts) for name, ts in times.items()}
            for name, ceiling, kind in ((PRODUCT_ROW, MATMUL_ROW, "float64"),
                                        (BARE_ROW, MATMUL_ROW, "float64"),
                                        ("this project float32", MATMUL_ROW_F32, "float32")):
                print(f"{name} reaches {med[ceiling] / med[name]:.0%} of the NumPy {kind} "
                      f"matmul rate on the step's own shapes")
            print(f"float32 / float64: this project {med[PRODUCT_ROW] / med['this project float32']:.2f}x, "
                  f"matmuls alone {med[MATMUL_ROW] / med[MATMUL_ROW_F32]:.2f}x")
            print(f"(reference: NumPy float64 2048x2048 matmul {square_rate() / 1e9:.1f} GFLOP/s; "
                  f"{load()})")
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
