"""The BLAS thread count: chosen in one place, set for every entry point, read back for the record.

Why it matters: a matrix product split over a different number of BLAS threads can add its
partial sums in a different order, so the same config can differ in the last digits (issue 11:
a 1-thread rerun of a 2-thread digits run differed in the 17th digit; whether it does depends
on the sizes and the machine). Reproducing a run bit for bit therefore needs the count it ran
with, and every run records it (`blas.threads`).

Why one thread by default: the default networks' matrices are small, and on a machine whose cores
are busy OpenBLAS's second thread spins for one. Measured (2 cores, load ~12): the default
2000-epoch training took 72 s with 2 threads and 2.9 s with one; 2 search workers did ~10% more
trials per minute with one thread each; 2 arms x 2 seeds of the regularization lesson took
50-74 s with the default threads and 3-4 s with one (load ~9).

The user's choice wins: OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else MKL_NUM_THREADS.
Three ways to apply it, one per situation (all with the same count, `chosen()`):
- `export()`: before numpy is imported (the command line), the BLAS reads the variables once;
- `for_spawned()`: around starting spawned processes, which import numpy afresh;
- `limit(n)`: in a process where numpy is already loaded (notebooks, `reproduce` rerunning
  with a logged count), through threadpoolctl.
Core module: no mlflow, no numpy at import time.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator, MutableMapping

ENV_KEYS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT = 1


def chosen(environ: MutableMapping[str, str] | None = None) -> int:
    """The count to use: the first of ENV_KEYS set to an integer >= 1, else DEFAULT."""
    env = os.environ if environ is None else environ
    for key in ENV_KEYS:
        value = (env.get(key) or "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return DEFAULT


def export(environ: MutableMapping[str, str] | None = None) -> int:
    """Set every unset ENV_KEYS to `chosen()` (so OMP_NUM_THREADS=2 alone also sets OpenBLAS,
    which reads its own variable first); returns the count. Call before numpy is imported."""
    env = os.environ if environ is None else environ
    count = chosen(env)
    for key in ENV_KEYS:
        env.setdefault(key, str(count))
    return count


@contextmanager
def for_spawned() -> Iterator[int]:
    """`export()` while spawned processes start (they read the variables at numpy import);
    the variables this added are removed afterwards, the user's are left alone."""
    added = [k for k in ENV_KEYS if k not in os.environ]
    count = export()
    try:
        yield count
    finally:
        for key in added:
            os.environ.pop(key, None)


class limit:
    """Use `count` BLAS threads in this process (threadpoolctl) until `restore()` or the end of
    a `with` block. Works after numpy is loaded; `count=None` means `chosen()`."""

    def __init__(self, count: int | None = None):
        from threadpoolctl import threadpool_limits

        self.count = chosen() if count is None else int(count)
        self._limits = threadpool_limits(self.count, user_api="blas")

    def restore(self) -> None:
        self._limits.restore_original_limits()

    def __enter__(self) -> "limit":
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


@lru_cache(maxsize=1)
def _controller():
    """The BLAS libraries loaded in this process, found once (0.4 ms a scan); asking each for
    its current thread count afterwards costs microseconds, so every trial can record it."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl finds
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas() -> list[dict]:
    return [i for i in _controller().info() if i.get("user_api") == "blas"]


def in_effect() -> int:
    """The BLAS thread count numpy's BLAS uses now in this process (the largest, if several
    BLAS libraries are loaded); 0 when none is."""
    return max((int(i.get("num_threads") or 0) for i in _blas()), default=0)


def _own() -> list[dict]:
    """numpy's own BLAS, which computes the network; scipy's (loaded by scikit-learn in the
    same process, or not, depending on what ran before) would make the records differ for
    nothing."""
    blas = _blas()
    return [i for i in blas if "numpy" in str(i.get("filepath", ""))] or blas


def library() -> str:
    """Which BLAS computes: `openblas 0.3.31 pthreads` (a different library or version can
    change the last digits as a different thread count does)."""
    found = [" ".join(str(i[k]) for k in ("internal_api", "version", "threading_layer")
                      if i.get(k)) for i in _own()]
    return "; ".join(found) or "none"


def kernel() -> str:
    """The CPU kernel numpy's BLAS picked (OpenBLAS: `SkylakeX`, `Haswell`...): the same
    library on another CPU runs other kernels, whose sums can differ in the last digits."""
    return "; ".join(str(i.get("architecture") or "?") for i in _own()) or "none"


def tags() -> dict[str, str]:
    """What every run records: `blas.threads` (in effect now) and `blas.library`."""
    return {"blas.threads": str(in_effect()), "blas.library": library()}
