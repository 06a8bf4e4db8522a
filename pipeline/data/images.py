"""Vectorized geometry on flattened images: rows of X (m, h * w) are (h, w) images."""

from __future__ import annotations

import numpy as np


def shift_images(X: np.ndarray, image_shape, offsets: np.ndarray) -> np.ndarray:
    """Move image i by offsets[i] = (rows down, columns right), filling with 0. (m, h*w) -> (m, h*w)."""
    h, w = image_shape
    m = X.shape[0]
    s = int(np.abs(offsets).max()) if offsets.size else 0
    padded = np.pad(X.reshape(m, h, w), ((0, 0), (s, s), (s, s)))  # (m, h+2s, w+2s)
    rows = (s - offsets[:, 0])[:, None] + np.arange(h)  # (m, h) source row of each output row
    cols = (s - offsets[:, 1])[:, None] + np.arange(w)  # (m, w)
    out = padded[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (m, h, w)
    return out.reshape(m, h * w)


def rotate_images(X: np.ndarray, image_shape, theta: np.ndarray, sampling: str) -> np.ndarray:
    """Rotate image i by theta[i] radians about its centre, zero outside. (m, h*w) -> (m, h*w).

    Each output pixel looks up where it came from (inverse mapping), so no holes appear.
    """
    h, w = image_shape
    m = X.shape[0]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r, c = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")  # (h, w) each
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]  # (m, 1, 1)
    src_r = cos * r + sin * c + cy  # (m, h, w): rotation by -theta of the output grid
    src_c = -sin * r + cos * c + cx
    # One ring of zeros around each image: out-of-range lookups land on it and read 0.
    padded = np.pad(X.reshape(m, h, w), ((0, 0), (1, 1), (1, 1)))  # (m, h+2, w+2)
    src_r, src_c = np.clip(src_r + 1, 0, h + 1), np.clip(src_c + 1, 0, w + 1)
    i = np.arange(m)[:, None, None]
    if sampling == "nearest":
        out = padded[i, np.rint(src_r).astype(int), np.rint(src_c).astype(int)]
    else:
        r0, c0 = np.floor(src_r).astype(int), np.floor(src_c).astype(int)
        r1, c1 = np.minimum(r0 + 1, h + 1), np.minimum(c0 + 1, w + 1)
        fr, fc = src_r - r0, src_c - c0
        out = ((1 - fr) * (1 - fc) * padded[i, r0, c0] + (1 - fr) * fc * padded[i, r0, c1]
               + fr * (1 - fc) * padded[i, r1, c0] + fr * fc * padded[i, r1, c1])
    return out.reshape(m, h * w)
