"""Stratified, seeded train/dev/test split; the test part leaves here sealed.

Each class is shuffled with rng and cut into dev, test and train rows, so every split keeps
the class proportions (to within one row per class) and the same rng state gives the same
split bit for bit.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.dataset import Dataset, check_float, check_int, check_rng
from pipeline.data.sealed import SealedSplit, Split, Splits

MIN_PER_CLASS = 3  # one row each in train, dev and test


def split_dataset(ds: Dataset, rng: np.random.Generator, *, train: float = 0.6, dev: float = 0.2,
                  test: float = 0.2, dev_count: int | None = None, test_count: int | None = None) -> Splits:
    """Split `ds` by fractions (train + dev + test == 1) or by absolute `dev_count` and
    `test_count` (the rest trains; the fractions are then ignored)."""
    check_rng(rng)
    counts = _class_counts(ds)
    n_dev, n_test = _sizes(ds.n_samples, len(counts), train, dev, test, dev_count, test_count)
    dev_c, test_c = _allocate(n_dev, n_test, counts)
    _check_allocation(ds, counts, dev_c, test_c, train=True)
    parts: dict[str, list[np.ndarray]] = {"train": [], "dev": [], "test": []}
    for c in range(len(counts)):
        rows = rng.permutation(np.flatnonzero(ds.y == c))
        parts["dev"].append(rows[: dev_c[c]])
        parts["test"].append(rows[dev_c[c]: dev_c[c] + test_c[c]])
        parts["train"].append(rows[dev_c[c] + test_c[c]:])
    # Shuffle across classes so no consumer ever sees rows grouped by label.
    idx = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}
    made = {k: Split.from_arrays(ds.X[i], ds.y[i], k) for k, i in idx.items()}
    return Splits(made["train"], made["dev"], SealedSplit(made["test"]))


def split_with_target(source: Dataset, target: Dataset, rng: np.random.Generator, *, dev: float = 0.5,
                      test: float = 0.5, dev_count: int | None = None, test_count: int | None = None) -> Splits:
    """Train on all of `source`; dev and test both come from `target`, never one from each.

    `target` is cut by fractions dev + test == 1 or by counts (rows of target beyond
    dev_count + test_count are left unused). Both sets must share features and classes.
    """
    check_rng(rng)
    if target.n_features != source.n_features or target.classes != source.classes:
        raise ValueError(f"target data set '{target.name}' ({target.n_features} features, classes {target.classes}) "
                         f"does not match source '{source.name}' ({source.n_features} features, "
                         f"classes {source.classes})")
    _class_counts(source)
    counts = _class_counts(target)
    if dev_count is None and test_count is None:
        f_dev = check_float("split.dev", dev, 0.0, 1.0, lo_open=True, hi_open=True)
        f_test = check_float("split.test", test, 0.0, 1.0, lo_open=True, hi_open=True)
        _check_sum({"dev": f_dev, "test": f_test})
        n_dev = int(round(f_dev * target.n_samples))
        n_test = target.n_samples - n_dev
    else:
        n_dev, n_test = _counts(target.n_samples, len(counts), dev_count, test_count, train_rows=0)
    dev_c, test_c = _allocate(n_dev, n_test, counts)
    _check_allocation(target, counts, dev_c, test_c, train=False)
    dev_rows, test_rows = [], []
    for c in range(len(counts)):
        rows = rng.permutation(np.flatnonzero(target.y == c))
        dev_rows.append(rows[: dev_c[c]])
        test_rows.append(rows[dev_c[c]: dev_c[c] + test_c[c]])
    tr, dv, te = rng.permutation(source.n_samples), rng.permutation(np.concatenate(dev_rows)), \
        rng.permutation(np.concatenate(test_rows))
    return Splits(Split.from_arrays(source.X[tr], source.y[tr], "train"),
                  Split.from_arrays(target.X[dv], target.y[dv], "dev"),
                  SealedSplit(Split.from_arrays(target.X[te], target.y[te], "test")))


def _class_counts(ds: Dataset) -> np.ndarray:
    counts = np.bincount(ds.y, minlength=ds.n_classes)  # (k,)
    present = np.flatnonzero(counts)
    if present.size < 2:
        only = ds.classes[present[0]] if present.size else "none"
        raise ValueError(f"data set '{ds.name}' has a single class ({only!r}); a classifier needs at least 2")
    for c in np.flatnonzero(counts < MIN_PER_CLASS):
        raise ValueError(f"class {ds.classes[c]!r} of data set '{ds.name}' has {counts[c]} rows, too few to "
                         f"stratify: each class needs at least {MIN_PER_CLASS} (one each in train, dev and test)")
    return counts


def _sizes(m, k, train, dev, test, dev_count, test_count) -> tuple[int, int]:
    """Total dev and test rows, from fractions or counts."""
    if dev_count is not None or test_count is not None:
        return _counts(m, k, dev_count, test_count, train_rows=k)
    fractions = {name: check_float(f"split.{name}", value, 0.0, 1.0, lo_open=True, hi_open=True)
                 for name, value in (("train", train), ("dev", dev), ("test", test))}
    _check_sum(fractions)
    n_dev, n_test = int(round(dev * m)), int(round(test * m))
    for key, n in (("dev", n_dev), ("test", n_test)):
        if n < k:
            raise ValueError(f"split.{key} = {fractions[key]} gives {n} of {m} rows, fewer than the {k} classes "
                             f"(each class needs one row in {key})")
    return n_dev, n_test


def _counts(m, k, dev_count, test_count, *, train_rows: int) -> tuple[int, int]:
    if dev_count is None or test_count is None:
        raise ValueError(f"split.dev_count and split.test_count go together, got dev_count={dev_count}, "
                         f"test_count={test_count}")
    n_dev = check_int("split.dev_count", dev_count, k)
    n_test = check_int("split.test_count", test_count, k)
    if n_dev + n_test > m - train_rows:
        raise ValueError(f"split.dev_count + split.test_count = {n_dev} + {n_test} = {n_dev + n_test} is larger "
                         f"than the data allows: {m} rows, at most {m - train_rows} for dev and test")
    return n_dev, n_test


def _check_sum(fractions: dict[str, float]) -> None:
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-9:
        terms = " + ".join(f"{v:g}" for v in fractions.values())
        raise ValueError(f"split fractions {' + '.join(fractions)} must sum to 1, got {terms} = {total:g}")


def _allocate(n_dev: int, n_test: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dev rows per class, then test rows per class out of what dev left: never more than a
    class holds (rounding dev and test independently could both round one class up)."""
    dev_c = _apportion(n_dev, counts)
    return dev_c, _apportion(n_test, counts - dev_c)


def _apportion(total: int, counts: np.ndarray) -> np.ndarray:
    """Split `total` (<= counts.sum()) rows over classes in proportion to `counts` (largest
    remainder), never above a class's count; a class left at zero takes one row from the most
    over-served class, so small classes still appear in dev and test."""
    quotas = total * counts / counts.sum()  # (k,)
    alloc = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - alloc), kind="stable")
    alloc[order[: total - alloc.sum()]] += 1
    for c in np.flatnonzero((alloc == 0) & (counts > 0)):
        donors = np.where(alloc > 1, alloc - quotas, -np.inf)
        if np.isfinite(donors).any():
            alloc[int(np.argmax(donors))] -= 1
            alloc[c] = 1
    return alloc


def _check_allocation(ds: Dataset, counts, dev_c, test_c, *, train: bool) -> None:
    """Every class needs a row in dev, in test and (when this split trains on it) in train."""
    train_c = counts - dev_c - test_c
    for c in range(len(counts)):
        if min(dev_c[c], test_c[c]) < 1 or (train and train_c[c] < 1):
            parts = f"{dev_c[c]} dev, {test_c[c]} test" + (f", {train_c[c]} train" if train else "")
            raise ValueError(f"class {ds.classes[c]!r} of data set '{ds.name}' has {counts[c]} rows, split "
                             f"{parts}; every class needs at least one row in each (change the split "
                             "fractions or counts)")
