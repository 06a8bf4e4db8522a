"""`Split` (train, dev) and `SealedSplit` (test): the test arrays cannot be used by accident."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.digest import array_digest


@dataclass(frozen=True, eq=False)
class Split:
    """One open split. X: (m, n_features) float64, y: (m,) int64; digest = array_digest(X, y)."""

    X: np.ndarray
    y: np.ndarray
    digest: str
    name: str

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray, name: str) -> "Split":
        """A split whose digest is computed from the arrays it holds (use this, not the constructor)."""
        # Own C-ordered copies, made read-only so the digest stays true (the caller's arrays
        # are left as they were); a stage that changes the data makes a new Split.
        X = np.array(X, dtype=np.float64, order="C", copy=True)
        y = np.array(y, dtype=np.int64, order="C", copy=True)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(f"split '{name}': X must be (m, n) and y (m,), got {X.shape} and {y.shape}")
        X.flags.writeable = False
        y.flags.writeable = False
        return cls(X, y, array_digest(X, y), name)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"Split(name={self.name!r}, n={self.n}, n_features={self.X.shape[1]}, digest={self.digest!r})"


class SealedSplit:
    """The test split, closed: only `name`, `n` and `digest` can be read without `unseal`.

    No `X`/`y` attributes, no iteration, no len(), no indexing, and numpy refuses to turn it
    into an array, so passing it where training or search expects arrays fails loudly. The
    evaluation stage (and nothing else) calls `unseal(purpose)`; each purpose is remembered.
    """

    __slots__ = ("_name", "_digest", "_n", "__X", "__y", "__purposes")

    def __init__(self, split: Split):
        self._name = split.name
        self._digest = split.digest
        self._n = split.n
        self.__X = split.X
        self.__y = split.y
        self.__purposes: list[str] = []

    name = property(lambda self: self._name)
    digest = property(lambda self: self._digest)
    n = property(lambda self: self._n)

    @property
    def unsealed_for(self) -> tuple[str, ...]:
        """Every purpose this split was opened for, in order (empty until the evaluation)."""
        return tuple(self.__purposes)

    def unseal(self, purpose: str) -> Split:
        """Open the split for `purpose` (a short reason, e.g. "final evaluation of study s1")."""
        if not isinstance(purpose, str) or not purpose.strip():
            raise ValueError(f"unseal needs a non-empty purpose string, got {purpose!r}")
        self.__purposes.append(purpose.strip())
        return Split(self.__X, self.__y, self._digest, self._name)

    def __repr__(self) -> str:
        return f"SealedSplit(name={self._name!r}, n={self._n}, digest={self._digest!r})"

    def __array__(self, *args, **kwargs):
        raise TypeError("SealedSplit is not an array; only the evaluation stage may call unseal(purpose)")

    def __iter__(self):
        raise TypeError("SealedSplit cannot be iterated; only the evaluation stage may call unseal(purpose)")

    def __getstate__(self):
        # A pickled copy would be an unsealed copy in a worker; the test split stays in-process.
        raise TypeError("SealedSplit cannot be pickled")


@dataclass(frozen=True)
class Splits:
    train: Split
    dev: Split
    test: SealedSplit

    @property
    def digests(self) -> dict[str, str]:
        return {"train": self.train.digest, "dev": self.dev.digest, "test": self.test.digest}
