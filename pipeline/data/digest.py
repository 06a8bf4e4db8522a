"""Content digests: which exact arrays a run saw, so `reproduce` can tell when data changed."""

from __future__ import annotations

import hashlib

import numpy as np

DIGEST_CHARS = 16  # 64 bits of sha256: collisions are not a concern at the scale of a run log


def short_digest(data: bytes | str) -> str:
    """The project's one content digest: the first 16 hex characters of sha256 (str as UTF-8)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:DIGEST_CHARS]


def array_digest(X: np.ndarray, y: np.ndarray) -> str:
    """First 16 hex characters of sha256 over, for X then y: shape, dtype and C-order bytes.

    Shape and dtype are hashed too, so (100, 2) float64 and (200,) float64 holding the same
    bytes, or the same values stored as float32, get different digests. Row order matters:
    a shuffled copy is different data for the purpose of reproducing a run.
    """
    h = hashlib.sha256()
    for arr in (np.asarray(X), np.asarray(y)):
        h.update(f"{arr.shape}|{arr.dtype.str}|".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:DIGEST_CHARS]


def file_digest(path) -> str:
    """The short digest of a file's bytes (read in 1 MiB chunks): which exact table a run read,
    logged beside its path so `reproduce` can tell an edited file from the same one."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()[:DIGEST_CHARS]
