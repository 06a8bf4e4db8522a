"""Augmentation: labels preserved, shapes, determinism, geometry, and misuse refused."""


import numpy as np
import pytest

from pipeline.data import AUGMENTATIONS, augment, make_dataset, split_dataset


def test_registry_names():
    assert sorted(AUGMENTATIONS) == ["jitter", "reflect", "rotate", "shift", "small_rotate"]


def test_originals_first_then_copies_with_labels_repeated(rng):
    X = rng.normal(size=(50, 2))
    y = rng.integers(0, 3, 50)
    Xa, ya = augment(X, y, ["jitter"], copies=3, rng=np.random.default_rng(1), sigma=0.05)
    assert Xa.shape == (200, 2) and ya.shape == (200,)
    np.testing.assert_array_equal(Xa[:50], X)
    np.testing.assert_array_equal(ya, np.tile(y, 4))
    noise = Xa[50:] - np.tile(X, (3, 1))
    assert 0.04 < noise.std() < 0.06 and abs(noise.mean()) < 0.01


def test_zero_copies_returns_a_copy_of_the_originals(rng):
    X = rng.normal(size=(5, 2))
    Xa, ya = augment(X, np.zeros(5, int), [], copies=0, rng=rng)
    np.testing.assert_array_equal(Xa, X)
    assert not np.shares_memory(Xa, X) and ya.tolist() == [0] * 5


def test_same_seed_same_augmentation_bit_for_bit():
    ds = make_dataset("rings", np.random.default_rng(0))
    a = augment(ds.X, ds.y, ["rotate", "jitter"], copies=2, rng=np.random.default_rng(9))
    b = augment(ds.X, ds.y, ["rotate", "jitter"], copies=2, rng=np.random.default_rng(9))
    assert a[0].tobytes() == b[0].tobytes()
    c = augment(ds.X, ds.y, ["rotate", "jitter"], copies=2, rng=np.random.default_rng(10))
    assert c[0].tobytes() != a[0].tobytes()


def test_rotation_preserves_radius_so_ring_labels_stay_correct():
    ds = make_dataset("rings", np.random.default_rng(0))
    Xa, ya = augment(ds.X, ds.y, ["rotate", "reflect"], copies=2, rng=np.random.default_rng(1))
    r = np.hypot(Xa[:, 0], Xa[:, 1])
    np.testing.assert_allclose(r, np.tile(np.hypot(*ds.X.T), 3), rtol=1e-12)
    assert np.array_equal(ya, (r > 6.0).astype(int))  # the labelling rule still holds
    angle_moved = np.abs(np.angle(np.exp(1j * (np.arctan2(Xa[400:800, 1], Xa[400:800, 0])
                                                - np.arctan2(ds.X[:, 1], ds.X[:, 0])))))
    assert angle_moved.mean() > 1.0  # full-circle rotations really move points


def test_reflect_only_flips_signs(rng):
    X = rng.normal(size=(100, 2))
    Xa, _ = augment(X, np.zeros(100, int), "reflect", copies=1, rng=rng)
    np.testing.assert_array_equal(np.abs(Xa[100:]), np.abs(X))
    flipped = np.sign(Xa[100:]) != np.sign(X)
    assert 0.3 < flipped.mean() < 0.7


def test_rotate_respects_max_degrees(rng):
    X = np.tile([[1.0, 0.0]], (500, 1))
    Xa, _ = augment(X, np.zeros(500, int), "rotate", copies=1, rng=rng, max_degrees=10)
    angles = np.degrees(np.arctan2(Xa[500:, 1], Xa[500:, 0]))
    assert np.abs(angles).max() <= 10.0 and np.abs(angles).max() > 9.0


def test_shift_moves_an_image_by_whole_pixels(rng):
    img = np.zeros((1, 64))
    img[0, 3 * 8 + 4] = 16.0  # pixel (3, 4)
    Xa, _ = augment(np.repeat(img, 200, axis=0), np.zeros(200, int), "shift", copies=1, rng=rng,
                    image_shape=(8, 8))
    moved = Xa[200:].reshape(200, 8, 8)
    assert np.all(moved.sum(axis=(1, 2)) == 16.0)  # the lit pixel stays inside, nothing else lights
    where = np.array([np.unravel_index(im.argmax(), (8, 8)) for im in moved])
    assert set(map(tuple, where - [3, 4])) == {(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}


def test_small_rotate_keeps_digit_pixels_in_range_and_changes_them():
    ds = make_dataset("digits", np.random.default_rng(0))
    for sampling in ("bilinear", "nearest"):
        Xa, ya = augment(ds.X[:100], ds.y[:100], "small_rotate", copies=1, rng=np.random.default_rng(0),
                         image_shape=ds.image_shape, max_degrees=15, sampling=sampling)
        new = Xa[100:]
        assert new.min() >= 0.0 and new.max() <= 16.0 + 1e-12
        assert np.abs(new - ds.X[:100]).mean() > 0.5
        # a small rotation keeps most of the ink: total intensity within 25%
        ratio = new.sum(axis=1) / ds.X[:100].sum(axis=1)
        assert 0.75 < np.median(ratio) < 1.1


def test_augmentation_sees_only_train_dev_and_test_stay_untouched():
    ds = make_dataset("digits", np.random.default_rng(0))
    splits = split_dataset(ds, np.random.default_rng(0))
    dev_before, test_digest = splits.dev.X.copy(), splits.test.digest
    Xa, ya = augment(splits.train.X, splits.train.y, ["shift", "small_rotate"], copies=2,
                     rng=np.random.default_rng(0), image_shape=ds.image_shape)
    assert Xa.shape == (3 * splits.train.n, 64)
    np.testing.assert_array_equal(splits.dev.X, dev_before)
    assert splits.test.unseal("check").digest == test_digest == splits.test.digest


def test_digits_split_and_three_augmented_copies_keep_labels_and_pixel_range():
    # (was a wall-time assertion: speed is measured in benchmarks/, not in unit tests)
    ds = make_dataset("digits", np.random.default_rng(0))
    splits = split_dataset(ds, np.random.default_rng(0))
    X, y = augment(splits.train.X, splits.train.y, ["shift", "small_rotate", "jitter"], copies=3,
                   rng=np.random.default_rng(0), image_shape=(8, 8))
    n = splits.train.n
    assert X.shape == (4 * n, 64) and np.array_equal(y, np.tile(splits.train.y, 4))
    np.testing.assert_array_equal(X[:n], splits.train.X)     # the originals come first, as they were
    assert not np.array_equal(X[n:2 * n], splits.train.X)


def test_unknown_augmentation_lists_valid_names(rng):
    with pytest.raises(ValueError, match=r"unknown augmentation 'flip'; valid names: jitter, reflect, rotate, "
                                         r"shift, small_rotate"):
        augment(np.zeros((3, 2)), np.zeros(3, int), ["jitter", "flip"], copies=1, rng=rng)


def test_image_transform_needs_image_shape(rng):
    with pytest.raises(ValueError, match=r"augmentation 'shift' works on images and needs image_shape, got None"):
        augment(np.zeros((3, 64)), np.zeros(3, int), "shift", copies=1, rng=rng)
    with pytest.raises(ValueError, match=r"image_shape \(8, 7\) has 56 pixels but the data has 64 features"):
        augment(np.zeros((3, 64)), np.zeros(3, int), "shift", copies=1, rng=rng, image_shape=(8, 7))


def test_point_transform_refuses_non_2d_data(rng):
    with pytest.raises(ValueError, match=r"augmentation 'rotate' rotates or mirrors 2-D points about the origin; "
                                         r"the data has 64 features \(images\)"):
        augment(np.zeros((3, 64)), np.zeros(3, int), "rotate", copies=1, rng=rng, image_shape=(8, 8))
    with pytest.raises(ValueError, match=r"'reflect' .* the data has 3 features"):
        augment(np.zeros((3, 3)), np.zeros(3, int), "reflect", copies=1, rng=rng)


@pytest.mark.parametrize("kwargs, message", [
    ({"names": "jitter", "copies": -1}, r"augment.copies must be an integer >= 0, got -1"),
    ({"names": [], "copies": 2}, r"augment.copies is 2 but no augmentation names were given"),
    ({"names": "jitter", "copies": 1, "sigma": 0}, r"augment.sigma must be > 0.0, got 0"),
    ({"names": "jitter", "copies": 1, "max_shift": 2}, r"augmentation parameter 'max_shift' is not taken by "
                                                       r"jitter; they take: sigma"),
    ({"names": "rotate", "copies": 1, "max_degrees": 270}, r"augment.max_degrees must be in \(0.0, 180.0\], got 270"),
])
def test_bad_augmentation_settings(rng, kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment(np.zeros((3, 2)), np.zeros(3, int), rng=rng, **kwargs)
