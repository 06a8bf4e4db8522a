"""An independent reference network in plain, samples-first NumPy: no pipeline code at all.

Written the textbook way (one function per formula, activations from exp, no buffers, no
augmented blocks, no flat vector) so that the core's gradient, its gradient check, its training
step and the served model are all compared against the same oracle.
"""

import numpy as np


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _tanh(z):
    return (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))


ACT = {  # name -> (g, g')
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: np.where(z > 0, 1.0, 0.0)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "tanh": (_tanh, lambda z: 1.0 - _tanh(z) ** 2),
    "sigmoid": (_sig, lambda z: _sig(z) * (1.0 - _sig(z))),
}


def masks_from(rng, keep, sizes, m):
    """The core's draw order: per hidden layer one (n_l, m) block of uniforms; kept where
    u < keep, scaled by 1/keep. Returned samples-first, (m, n_l)."""
    return [(rng.random((n, m)) < keep).T / keep for n in sizes[1:-1]]


def forward(params, X, act, masks=None):
    """(probabilities (m, n_out), per layer (Z, A_in))."""
    L = len(params) // 2
    A, cache = X, []
    for l in range(1, L + 1):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]
        cache.append((Z, A))
        if l < L:
            A = ACT[act][0](Z)
            if masks is not None and masks[l - 1] is not None:
                A = A * masks[l - 1]
    P = _sig(Z) if Z.shape[1] == 1 else np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    return P, cache


def targets(y, n_out):
    return y.reshape(-1, 1).astype(float) if n_out == 1 else np.eye(n_out)[y]


def loss(params, X, y, act, *, l2=0.0, l1=0.0, masks=None):
    P, _ = forward(params, X, act, masks)
    T, m = targets(y, P.shape[1]), X.shape[0]
    if P.shape[1] == 1:
        data = -np.mean(T * np.log(P) + (1 - T) * np.log(1 - P))
    else:
        data = -np.mean(np.sum(T * np.log(P), axis=1))
    Ws = [v for k, v in params.items() if k[0] == "W"]
    return data + l2 / (2 * m) * sum((W ** 2).sum() for W in Ws) + l1 / m * sum(
        np.abs(W).sum() for W in Ws)


def gradient(params, X, y, act, *, l2=0.0, l1=0.0, masks=None):
    P, cache = forward(params, X, act, masks)
    m, L = X.shape[0], len(params) // 2
    dZ = (P - targets(y, P.shape[1])) / m
    grads = {}
    for l in range(L, 0, -1):
        Z, A_in = cache[l - 1]
        W = params[f"W{l}"]
        grads[f"W{l}"] = A_in.T @ dZ + l2 / m * W + l1 / m * np.sign(W)
        grads[f"b{l}"] = dZ.sum(axis=0)
        if l > 1:
            dA = dZ @ W.T
            if masks is not None and masks[l - 2] is not None:
                dA = dA * masks[l - 2]
            dZ = dA * ACT[act][1](cache[l - 2][0])
    return grads
