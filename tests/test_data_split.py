"""Split: determinism, disjointness, stratification, digests, the sealed test part, bad input."""

import pickle

import numpy as np
import pytest

from pipeline.data import (Dataset, SealedSplit, Split, array_digest, make_dataset, split_dataset,
                           split_with_target)


def _indexed(n_per_class=(60, 30, 10)) -> Dataset:
    """Each row's first feature is its own row number, so splits can be traced back to rows."""
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    X = np.column_stack([np.arange(len(y), dtype=float), np.zeros(len(y))])
    return Dataset(X, y, tuple("abc"[: len(n_per_class)]), ("row", "zero"), "indexed")


def _rows(split) -> set[int]:
    return set(split.X[:, 0].astype(int).tolist())


def test_same_seed_gives_the_same_split_bit_for_bit():
    ds = make_dataset("spirals", np.random.default_rng(0))
    a, b = split_dataset(ds, np.random.default_rng(7)), split_dataset(ds, np.random.default_rng(7))
    for name in ("train", "dev"):
        assert getattr(a, name).X.tobytes() == getattr(b, name).X.tobytes()
    assert a.digests == b.digests
    assert split_dataset(ds, np.random.default_rng(8)).digests["train"] != a.digests["train"]


def test_splits_are_disjoint_and_cover_every_row():
    ds = _indexed()
    s = split_dataset(ds, np.random.default_rng(0))
    test = s.test.unseal("test of the test")
    train, dev, tst = _rows(s.train), _rows(s.dev), _rows(test)
    assert not (train & dev) and not (train & tst) and not (dev & tst)
    assert train | dev | tst == set(range(100))
    assert (s.train.n, s.dev.n, s.test.n) == (60, 20, 20)


def test_split_is_stratified_per_class():
    s = split_dataset(_indexed(), np.random.default_rng(0))
    assert np.bincount(s.train.y).tolist() == [36, 18, 6]
    assert np.bincount(s.dev.y).tolist() == [12, 6, 2]
    assert np.bincount(s.test.unseal("check").y).tolist() == [12, 6, 2]


def test_rows_of_each_split_are_shuffled_across_classes():
    s = split_dataset(_indexed(), np.random.default_rng(0))
    assert not np.all(np.diff(s.train.y) >= 0)  # not grouped by label


def test_absolute_counts_keep_the_rest_for_training():
    ds = make_dataset("digits", np.random.default_rng(0))
    s = split_dataset(ds, np.random.default_rng(0), dev_count=200, test_count=150)
    assert (s.train.n, s.dev.n, s.test.n) == (1447, 200, 150)
    # every class keeps its share to within one row (digits classes hold 174..183 rows)
    for part, n in ((s.dev, 200), (s.test.unseal("check"), 150)):
        share = np.bincount(ds.y) / ds.n_samples * n
        assert np.abs(np.bincount(part.y) - share).max() < 1


def test_every_class_reaches_dev_and_test_even_when_tiny():
    s = split_dataset(_indexed((94, 3, 3)), np.random.default_rng(0), train=0.8, dev=0.1, test=0.1)
    assert np.bincount(s.dev.y).tolist() == [8, 1, 1] and s.dev.n == 10


def test_digest_is_sha256_of_shape_dtype_and_bytes():
    X, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    d = array_digest(X, y)
    assert len(d) == 16 and int(d, 16) >= 0
    assert array_digest(X.copy(), y.copy()) == d
    assert array_digest(np.asfortranarray(X), y) == d  # layout does not matter, content does
    assert array_digest(X.astype(np.float32), y) != d
    assert array_digest(X.reshape(2, 3), y) != d
    X2 = X.copy(); X2[2, 1] += 1e-12
    assert array_digest(X2, y) != d
    s = split_dataset(_indexed(), np.random.default_rng(0))
    assert s.train.digest == array_digest(s.train.X, s.train.y)


def test_split_arrays_are_read_only():
    s = split_dataset(_indexed(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="read-only"):
        s.train.X[0, 0] = 99.0


def test_sealed_test_split_reveals_only_name_n_and_digest():
    s = split_dataset(_indexed(), np.random.default_rng(0))
    sealed = s.test
    assert isinstance(sealed, SealedSplit) and not isinstance(sealed, (Split, np.ndarray))
    assert repr(sealed) == f"SealedSplit(name='test', n=20, digest='{sealed.digest}')"
    public = [a for a in dir(sealed) if not a.startswith("_")]
    assert public == ["digest", "n", "name", "unseal", "unsealed_for"]
    for attr in ("X", "y", "data"):
        assert not hasattr(sealed, attr)
    with pytest.raises(TypeError, match="not an array"):
        np.asarray(sealed)
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(sealed)
    with pytest.raises(TypeError):
        len(sealed)
    with pytest.raises(TypeError):
        sealed[0]
    with pytest.raises(AttributeError):
        sealed.X = np.zeros((2, 2))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(sealed)


def test_unseal_returns_the_test_split_and_records_the_purpose():
    s = split_dataset(_indexed(), np.random.default_rng(0))
    assert s.test.unsealed_for == ()
    opened = s.test.unseal("final evaluation of study s1")
    assert isinstance(opened, Split) and opened.digest == s.test.digest == array_digest(opened.X, opened.y)
    assert s.test.unsealed_for == ("final evaluation of study s1",)
    with pytest.raises(ValueError, match="non-empty purpose"):
        s.test.unseal("  ")


def test_split_with_target_draws_dev_and_test_from_the_target_only():
    source = make_dataset("noisy_diagonal", np.random.default_rng(1), n_samples=400)
    target = make_dataset("noisy_diagonal", np.random.default_rng(2), n_samples=200, variant="clean")
    s = split_with_target(source, target, np.random.default_rng(3))
    assert s.train.n == source.n_samples and s.dev.n + s.test.n == target.n_samples
    assert sorted(map(tuple, s.train.X)) == sorted(map(tuple, source.X))
    target_rows = set(map(tuple, target.X))
    test = s.test.unseal("check")
    assert set(map(tuple, s.dev.X)) <= target_rows and set(map(tuple, test.X)) <= target_rows
    for part in (s.dev, test):  # clean labels: the rule alone
        np.testing.assert_array_equal(part.y, (part.X[:, 0] > part.X[:, 1]).astype(int))
    counted = split_with_target(source, target, np.random.default_rng(3), dev_count=50, test_count=60)
    assert (counted.dev.n, counted.test.n) == (50, 60)


def test_split_with_target_fractions_use_every_target_row_even_with_odd_classes():
    # 5 + 7 + 9 rows at 0.5/0.5: rounding dev and test separately per class would ask for
    # 3 + 3 rows of a 5-row class; dev is allocated first and test takes from what is left.
    y = np.repeat([0, 1, 2], [5, 7, 9])
    target = Dataset(np.column_stack([np.arange(21.0), np.zeros(21)]), y, ("a", "b", "c"), ("r", "z"), "odd")
    s = split_with_target(_indexed(), target, np.random.default_rng(0))
    test = s.test.unseal("check")
    assert s.dev.n + test.n == 21 and set(s.dev.X[:, 0]) | set(test.X[:, 0]) == set(range(21))
    assert (np.bincount(s.dev.y) + np.bincount(test.y)).tolist() == [5, 7, 9]
    assert min(np.bincount(s.dev.y).min(), np.bincount(test.y).min()) >= 2


def test_split_with_target_refuses_mismatched_sets():
    with pytest.raises(ValueError, match=r"target data set 'digits' \(64 features.*does not match source 'moons'"):
        split_with_target(make_dataset("moons", np.random.default_rng(0)),
                          make_dataset("digits", np.random.default_rng(0)), np.random.default_rng(0))


def test_single_class_is_refused():
    ds = Dataset(np.zeros((10, 2)), np.zeros(10, int), ("only", "never"), ("a", "b"), "mono")
    with pytest.raises(ValueError, match=r"data set 'mono' has a single class \('only'\)"):
        split_dataset(ds, np.random.default_rng(0))


def test_class_too_small_to_stratify_names_class_count_and_minimum():
    with pytest.raises(ValueError, match=r"class 'c' of data set 'indexed' has 2 rows, too few to stratify: "
                                         r"each class needs at least 3"):
        split_dataset(_indexed((50, 48, 2)), np.random.default_rng(0))


@pytest.mark.parametrize("fractions, message", [
    ({"train": 0.6, "dev": 0.2, "test": 0.3}, r"split fractions train \+ dev \+ test must sum to 1, "
                                              r"got 0.6 \+ 0.2 \+ 0.3 = 1.1"),
    ({"train": 1.0, "dev": 0.2, "test": 0.2}, r"split.train must be in \(0.0, 1.0\), got 1.0"),
    ({"train": 0.6, "dev": -0.2, "test": 0.6}, r"split.dev must be in \(0.0, 1.0\), got -0.2"),
    ({"train": 0.98, "dev": 0.01, "test": 0.01}, r"split.dev = 0.01 gives 1 of 100 rows, fewer than the 3 classes"),
])
def test_bad_fractions(fractions, message):
    with pytest.raises(ValueError, match=message):
        split_dataset(_indexed(), np.random.default_rng(0), **fractions)


@pytest.mark.parametrize("counts, message", [
    ({"dev_count": 60, "test_count": 40}, r"split.dev_count \+ split.test_count = 60 \+ 40 = 100 is larger than "
                                          r"the data allows: 100 rows, at most 97 for dev and test"),
    ({"dev_count": 10}, r"split.dev_count and split.test_count go together, got dev_count=10, test_count=None"),
    ({"dev_count": 2, "test_count": 10}, r"split.dev_count must be an integer >= 3, got 2"),
])
def test_bad_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        split_dataset(_indexed(), np.random.default_rng(0), **counts)


def test_large_dev_and_test_can_leave_a_class_without_training_rows():
    with pytest.raises(ValueError, match=r"class 'b' of data set 'indexed' has 17 rows, split 8 dev, 9 test, 0 train; "
                                         r"every class needs at least one row in each"):
        split_dataset(_indexed((80, 17, 3)), np.random.default_rng(0), train=0.02, dev=0.49, test=0.49)
