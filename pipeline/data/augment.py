"""Label-preserving augmentation of the training split (dev and test are never passed here).

A registry of small transforms `fn(X, rng, **params) -> X'` (same shape). Point transforms
(`reflect`, `rotate`) act on 2-D points about the origin of the raw features, which is why
augmentation runs before standardization; image transforms (`shift`, `small_rotate`) act on
rows that are flattened `image_shape` images. There is deliberately no flip for images: a
mirrored digit is another digit (or none).
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import numpy as np

from pipeline.data.dataset import check_choice, check_float, check_int, check_rng
from pipeline.data.images import rotate_images, shift_images

POINT = "point"  # needs X of shape (m, 2) and no image_shape
IMAGE = "image"  # needs image_shape with height * width == n_features
ANY = "any"


def jitter(X, rng, *, sigma: float = 0.1):
    """Add N(0, sigma) to every feature (points or pixels), X (m, n) -> (m, n)."""
    s = check_float("augment.sigma", sigma, 0.0, lo_open=True)
    return X + rng.normal(0.0, s, X.shape)


def reflect(X, rng):
    """Flip the sign of each coordinate independently with probability 1/2 (mirror about the axes)."""
    signs = rng.choice(np.array([-1.0, 1.0]), size=X.shape)  # (m, 2)
    return X * signs


def rotate(X, rng, *, max_degrees: float = 180.0):
    """Rotate each point about the origin by an angle uniform in [-max_degrees, max_degrees]."""
    limit = np.deg2rad(check_float("augment.max_degrees", max_degrees, 0.0, 180.0, lo_open=True))
    theta = rng.uniform(-limit, limit, X.shape[0])  # (m,)
    c, s = np.cos(theta), np.sin(theta)
    return np.column_stack([c * X[:, 0] - s * X[:, 1], s * X[:, 0] + c * X[:, 1]])  # (m, 2)


def shift(X, rng, *, image_shape, max_shift: int = 1):
    """Move each image by whole pixels, dx and dy uniform in [-max_shift, max_shift], zero fill."""
    k = check_int("augment.max_shift", max_shift, 1, min(image_shape) - 1)
    offsets = rng.integers(-k, k + 1, size=(X.shape[0], 2))  # (m, 2) rows then columns
    return shift_images(X, image_shape, offsets)


def small_rotate(X, rng, *, image_shape, max_degrees: float = 10.0, sampling: str = "bilinear"):
    """Rotate each image about its centre by an angle uniform in [-max_degrees, max_degrees]."""
    limit = np.deg2rad(check_float("augment.max_degrees", max_degrees, 0.0, 45.0, lo_open=True))
    check_choice("augment.sampling", sampling, ("nearest", "bilinear"))
    theta = rng.uniform(-limit, limit, X.shape[0])  # (m,)
    return rotate_images(X, image_shape, theta, sampling)


AUGMENTATIONS: dict[str, Callable[..., np.ndarray]] = {
    "jitter": jitter, "reflect": reflect, "rotate": rotate, "shift": shift, "small_rotate": small_rotate,
}
KIND = {"jitter": ANY, "reflect": POINT, "rotate": POINT, "shift": IMAGE, "small_rotate": IMAGE}


def augment(X: np.ndarray, y: np.ndarray, names: str | Sequence[str], *, copies: int,
            rng: np.random.Generator, image_shape: tuple[int, int] | None = None,
            **params) -> tuple[np.ndarray, np.ndarray]:
    """Originals followed by `copies` transformed copies: X (m, n) -> ((copies+1) m, n), labels repeated.

    Each copy applies every transform in `names`, in order, with fresh draws from rng.
    `params` go to the transforms that take them (sigma, max_degrees, max_shift, sampling).
    """
    check_rng(rng)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    names = [names] if isinstance(names, str) else list(names)
    k = check_int("augment.copies", copies, 0)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"augment needs X (m, n) and y (m,), got {X.shape} and {y.shape}")
    fns = _resolve(names, X.shape[1], image_shape, params, copies=k)
    out = [X.copy()]
    for _ in range(k):
        Xc = X
        for fn, kwargs in fns:
            Xc = fn(Xc, rng, **kwargs)
        out.append(Xc)
    return np.vstack(out), np.tile(y, k + 1)  # ((k+1) m, n), ((k+1) m,)


def _resolve(names, n_features, image_shape, params, *, copies):
    if copies > 0 and not names:
        raise ValueError(f"augment.copies is {copies} but no augmentation names were given; "
                         f"valid names: {', '.join(AUGMENTATIONS)}")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; valid names: {', '.join(AUGMENTATIONS)}")
    used: set[str] = set()
    resolved = []
    for name in names:
        _check_kind(name, n_features, image_shape)
        accepted = set(inspect.signature(AUGMENTATIONS[name]).parameters) - {"X", "rng", "image_shape"}
        kwargs = {p: params[p] for p in accepted if p in params}
        if KIND[name] == IMAGE:
            kwargs["image_shape"] = tuple(image_shape)
        used |= accepted
        resolved.append((AUGMENTATIONS[name], kwargs))
    extra = sorted(set(params) - used)
    if extra:
        raise ValueError(f"augmentation parameter {extra[0]!r} is not taken by {', '.join(names) or 'any transform'}; "
                         f"they take: {', '.join(sorted(used)) or 'nothing'}")
    return resolved


def _check_kind(name: str, n_features: int, image_shape) -> None:
    kind = KIND[name]
    if kind == IMAGE:
        if image_shape is None:
            raise ValueError(f"augmentation {name!r} works on images and needs image_shape, got None "
                             f"(the data has {n_features} features and no image shape)")
        h, w = image_shape
        if h * w != n_features:
            raise ValueError(f"augmentation {name!r}: image_shape {tuple(image_shape)} has {h * w} pixels "
                             f"but the data has {n_features} features")
    elif kind == POINT and (n_features != 2 or image_shape is not None):
        raise ValueError(f"augmentation {name!r} rotates or mirrors 2-D points about the origin; "
                         f"the data has {n_features} features" + (" (images)" if image_shape else ""))
