"""Built-in 2-D point sets, each drawn from an explicit `numpy.random.Generator`.

Every generator is `fn(rng, **params) -> Dataset` with keyword parameters that have defaults;
`pipeline.data.registry.make_dataset` looks them up by name and refuses unknown parameters.
Rows are returned class by class; the split shuffles them.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.dataset import Dataset, check_choice, check_float, check_int, check_rng

_XY = ("x1", "x2")


def _per_class(n_samples: int, n_classes: int) -> np.ndarray:
    """Class sizes that differ by at most one and sum to n_samples."""
    sizes = np.full(n_classes, n_samples // n_classes)
    sizes[: n_samples % n_classes] += 1
    return sizes


def _labels(sizes: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes)  # (m,)


def _codes(k: int) -> tuple[str, ...]:
    return tuple(str(c) for c in range(k))


def _sklearn_seed(rng: np.random.Generator) -> int:
    # sklearn wants an int or a RandomState; drawing the int from rng keeps rng the only seed.
    return int(rng.integers(0, 2**31 - 1))


def rings(rng, *, n_samples: int = 400, noise: float = 0.0) -> Dataset:
    """Inner ring radius U[5, 6] -> 0, outer ring U[6, 7] -> 1, uniform angles; noise = N(0, noise) per coordinate."""
    check_rng(rng)
    n = check_int("rings.n_samples", n_samples, 4)
    sd = check_float("rings.noise", noise, 0.0, 5.0)
    sizes = _per_class(n, 2)
    radius = np.concatenate([rng.uniform(5.0, 6.0, sizes[0]), rng.uniform(6.0, 7.0, sizes[1])])  # (m,)
    angle = rng.uniform(0.0, 2 * np.pi, n)  # (m,)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])  # (m, 2)
    if sd > 0:
        X = X + rng.normal(0.0, sd, X.shape)
    return Dataset(X, _labels(sizes), ("inner", "outer"), _XY, "rings")


def noisy_diagonal(rng, *, n_samples: int = 320, noise: float = 0.125, band: float = 0.5,
                   variant: str = "noisy") -> Dataset:
    """The regularization classic: a diagonal rule plus a region of coin-flip labels.

    n_samples uniform points of the unit square labelled 1 where x1 > x2 (the rule), plus
    round(noise * n_samples) noise points with x1 ~ U(0, band), x2 = x1 + U(0, band), all
    labelled 1. The noise region (a parallelogram of area band**2 above the diagonal) also
    holds about band**2 * n_samples uniform points that the rule labels 0. With the defaults
    (320 points, 40 noise points, band 0.5: ~80 rule points) a third of the region's labels
    are flipped: the rule is still the best boundary, and a network that bends around the 40
    points overfits (the regularization lesson). noise = band**2 (0.25) makes the region a
    50/50 coin flip, the classic construction: then nothing in the training data prefers the
    rule there, a smooth fit puts its boundary mid-region and no regularizer recovers the rule
    (docs/datasets.md has the measurements). variant="clean" draws the same number of rows
    uniformly and labels them by the rule alone (what dev and test should measure).
    Returns n_samples + round(noise * n_samples) rows, X (m, 2), with the Bayes error of the
    distribution they come from (`diagonal_bayes_error`; 0 for the clean variant).
    """
    check_rng(rng)
    n = check_int("noisy_diagonal.n_samples", n_samples, 4)
    frac = check_float("noisy_diagonal.noise", noise, 0.0, 1.0)
    width = check_float("noisy_diagonal.band", band, 0.0, 1.0, lo_open=True)
    check_choice("noisy_diagonal.variant", variant, ("noisy", "clean"))
    n_noise = int(round(frac * n))
    if variant == "clean":
        X = rng.uniform(0.0, 1.0, (n + n_noise, 2))  # (m, 2)
        return Dataset(X, (X[:, 0] > X[:, 1]).astype(np.int64), _codes(2), _XY, "noisy_diagonal",
                       bayes_error=0.0)
    base = rng.uniform(0.0, 1.0, (n, 2))  # (n, 2)
    x1 = rng.uniform(0.0, width, n_noise)  # (b,)
    x2 = x1 + rng.uniform(0.0, width, n_noise)  # (b,) above the diagonal, inside the square
    X = np.vstack([base, np.column_stack([x1, x2])])  # (n + b, 2)
    y = (X[:, 0] > X[:, 1]).astype(np.int64)  # (m,) the rule
    y[n:] = 1  # the noise: the rule says 0 for every one of them
    return Dataset(X, y, _codes(2), _XY, "noisy_diagonal",
                   bayes_error=diagonal_bayes_error(n, n_noise, width))


def diagonal_bayes_error(n: int, n_noise: int, band: float) -> float:
    """The Bayes error of noisy_diagonal's training distribution, per drawn row.

    Outside the noise region the rule is exact. Inside it (the part of the parallelogram in
    the unit square, area band**2 less the corner cut off above x2 = 1 when band > 0.5) two
    uniform densities overlap: the rule's label 0 at n per unit area and the noise's label 1
    at n_noise / band**2. The best classifier labels the region by the denser one and errs on
    the other: min(n, n_noise / band**2) * area / (n + n_noise). Defaults: 40 / 360 = 0.111
    (the region's majority is the rule); noise 0.25: 80 / 400 = 0.2 (a coin flip)."""
    inside = band ** 2 - max(0.0, 2 * band - 1) ** 2 / 2
    return float(min(n, n_noise / band ** 2) * inside / (n + n_noise))


def circles(rng, *, n_samples: int = 400, noise: float = 0.05, factor: float = 0.5) -> Dataset:
    """scikit-learn's two concentric circles: outer radius 1 -> 0, inner radius `factor` -> 1."""
    check_rng(rng)
    n = check_int("circles.n_samples", n_samples, 4)
    sd = check_float("circles.noise", noise, 0.0, 1.0)
    f = check_float("circles.factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
    from sklearn.datasets import make_circles  # sklearn costs ~2 s to import: only when used

    X, y = make_circles(n_samples=n, noise=sd or None, factor=f, random_state=_sklearn_seed(rng))
    return Dataset(X, y, _codes(2), _XY, "circles")


def moons(rng, *, n_samples: int = 400, noise: float = 0.1) -> Dataset:
    """scikit-learn's two interleaving half circles."""
    check_rng(rng)
    n = check_int("moons.n_samples", n_samples, 4)
    sd = check_float("moons.noise", noise, 0.0, 1.0)
    from sklearn.datasets import make_moons  # only when used (see circles)

    X, y = make_moons(n_samples=n, noise=sd or None, random_state=_sklearn_seed(rng))
    return Dataset(X, y, _codes(2), _XY, "moons")


def flower(rng, *, n_samples: int = 400, noise: float = 0.2, petals: int = 4, radius: float = 4.0) -> Dataset:
    """Two classes on the petals of r = radius * sin(petals * t), with noise in angle and radius."""
    check_rng(rng)
    n = check_int("flower.n_samples", n_samples, 4)
    sd = check_float("flower.noise", noise, 0.0, 2.0)
    p = check_int("flower.petals", petals, 1, 12)
    a = check_float("flower.radius", radius, 0.0, 100.0, lo_open=True)
    sizes = _per_class(n, 2)
    parts = []
    for j, size in enumerate(sizes):
        t = np.linspace(j * np.pi, (j + 1) * np.pi, size) + rng.normal(0.0, sd, size)  # (size,)
        r = a * np.sin(p * t) + rng.normal(0.0, sd, size)  # (size,)
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    return Dataset(np.vstack(parts), _labels(sizes), _codes(2), _XY, "flower")


def spirals(rng, *, n_samples: int = 300, n_classes: int = 3, noise: float = 0.2, turns: float = 0.65) -> Dataset:
    """k interleaved spiral arms (the CS231n set): radius 0..1, angle noise N(0, noise).
    The arms overlap near the centre by an amount no closed form gives, so the Bayes error is
    left unknown (None), as for every generator with Gaussian noise."""
    check_rng(rng)
    k = check_int("spirals.n_classes", n_classes, 2, 10)
    n = check_int("spirals.n_samples", n_samples, 2 * k)
    sd = check_float("spirals.noise", noise, 0.0, 2.0)
    span = 2 * np.pi * check_float("spirals.turns", turns, 0.0, 5.0, lo_open=True)
    sizes = _per_class(n, k)
    parts = []
    for j, size in enumerate(sizes):
        r = np.linspace(0.0, 1.0, size)  # (size,)
        start = j * 2 * np.pi / k  # arms evenly spaced around the origin
        t = np.linspace(start, start + span, size) + rng.normal(0.0, sd, size)
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    return Dataset(np.vstack(parts), _labels(sizes), _codes(k), _XY, "spirals")


def spirals_bayes_error(n_classes: int = 3, noise: float = 0.2, turns: float = 0.65,
                        grid: int = 100) -> float:
    """The Bayes error of `spirals`' distribution, integrated numerically (not declared by the
    generator: its radii are a linspace, and the number is an integral on a grid, so it is a
    reference for a lesson's `diagnosis.bayes_error`, not an exact property of a draw).

    A point's radius r and angle t (mod 2 pi) are its polar coordinates; r is uniform on
    [0, 1] for every arm, so the posterior of arm j is proportional to the wrapped normal
    density of t around start_j + span * r. Bayes error = 1 - E_r[integral of the largest
    arm density over t] / k. noise 0.2: < 1e-4; 0.4: 0.009; 0.6: 0.081 (3 arms, 0.65 turns)."""
    span = 2 * np.pi * turns
    r = (np.arange(grid) + 0.5) / grid                              # (R,)
    t = (np.arange(4 * grid) + 0.5) / (4 * grid) * 2 * np.pi        # (T,)
    wraps = 2 * np.pi * np.arange(-3, 4)                            # (W,) enough for 5 turns
    best = np.zeros((grid, t.size))                                 # (R, T)
    for j in range(n_classes):
        mu = j * 2 * np.pi / n_classes + span * r                   # (R,)
        d = t[None, :, None] + wraps - mu[:, None, None]            # (R, T, W)
        dens = np.exp(-0.5 * (d / noise) ** 2).sum(-1) / (noise * np.sqrt(2 * np.pi))
        best = np.maximum(best, dens)
    return float(1.0 - best.mean() * 2 * np.pi / n_classes)


def blobs(rng, *, n_samples: int = 300, n_classes: int = 3, noise: float = 1.0, spread: float = 5.0) -> Dataset:
    """k Gaussian blobs (std `noise`) centred evenly on a circle of radius `spread`."""
    check_rng(rng)
    k = check_int("blobs.n_classes", n_classes, 2, 10)
    n = check_int("blobs.n_samples", n_samples, 2 * k)
    sd = check_float("blobs.noise", noise, 0.0, 100.0)
    s = check_float("blobs.spread", spread, 0.0, 1000.0, lo_open=True)
    sizes = _per_class(n, k)
    angle = 2 * np.pi * np.arange(k) / k
    centres = s * np.column_stack([np.cos(angle), np.sin(angle)])  # (k, 2)
    y = _labels(sizes)
    X = centres[y] + rng.normal(0.0, sd, (n, 2))  # (m, 2)
    return Dataset(X, y, _codes(k), _XY, "blobs")
