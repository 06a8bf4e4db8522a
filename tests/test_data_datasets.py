"""Built-in data sets: shapes, classes, geometry and the effect of every noise parameter."""

import numpy as np
import pytest

from pipeline.data import DATASETS, Dataset, array_digest, dataset_params, make_dataset

TWO_D = ["rings", "noisy_diagonal", "circles", "moons", "flower", "spirals", "blobs"]


def test_registry_lists_every_built_in_set():
    assert sorted(DATASETS) == sorted(TWO_D + ["digits"])


@pytest.mark.parametrize("name", TWO_D)
def test_two_d_sets_have_their_shape_and_balanced_classes(name):
    ds = make_dataset(name, np.random.default_rng(0), n_samples=200)
    extra = 25 if name == "noisy_diagonal" else 0  # 12.5% noise points on top of n_samples
    assert ds.X.shape == (200 + extra, 2) and ds.X.dtype == np.float64
    assert ds.y.dtype == np.int64 and ds.feature_names == ("x1", "x2") and ds.name == name
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    assert ds.n_classes == len(counts) and counts.min() > 0
    if name != "noisy_diagonal":
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("name", TWO_D + ["digits"])
def test_same_seed_same_bits_other_seed_other_data(name):
    a = make_dataset(name, np.random.default_rng(5))
    b = make_dataset(name, np.random.default_rng(5))
    assert array_digest(a.X, a.y) == array_digest(b.X, b.y)
    if name != "digits":  # all of digits is the same file whatever the seed
        c = make_dataset(name, np.random.default_rng(6))
        assert array_digest(a.X, a.y) != array_digest(c.X, c.y)


def test_rings_radii_follow_the_labels():
    ds = make_dataset("rings", np.random.default_rng(0), n_samples=1000)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    assert r[ds.y == 0].min() >= 5.0 and r[ds.y == 0].max() <= 6.0
    assert r[ds.y == 1].min() >= 6.0 and r[ds.y == 1].max() <= 7.0
    assert ds.classes == ("inner", "outer")
    noisy = make_dataset("rings", np.random.default_rng(0), n_samples=1000, noise=0.5)
    assert np.hypot(*noisy.X.T).max() > 7.3  # the noise parameter really blurs the rings


def test_noisy_diagonal_noise_region_and_variants():
    noisy = make_dataset("noisy_diagonal", np.random.default_rng(1), n_samples=500, noise=0.2, band=0.3)
    base, region = noisy.X[:500], noisy.X[500:]
    assert region.shape == (100, 2)
    gap = region[:, 1] - region[:, 0]
    assert gap.min() > 0 and gap.max() < 0.3 and region[:, 0].max() < 0.3 and region.max() < 0.6
    np.testing.assert_array_equal(noisy.y[:500], (base[:, 0] > base[:, 1]).astype(int))
    assert noisy.y[500:].tolist() == [1] * 100  # the noise: above the diagonal yet labelled 1
    clean = make_dataset("noisy_diagonal", np.random.default_rng(1), n_samples=500, noise=0.2, band=0.3,
                         variant="clean")
    assert clean.X.shape == (600, 2)  # as many rows, uniform, labelled by the rule alone
    np.testing.assert_array_equal(clean.y, (clean.X[:, 0] > clean.X[:, 1]).astype(int))
    assert make_dataset("noisy_diagonal", np.random.default_rng(1), n_samples=500, noise=0.0).n_samples == 500


@pytest.mark.parametrize("noise, rows, share", [(0.125, 360, 1 / 3), (0.25, 400, 0.5)])
def test_noisy_diagonal_noise_region_share_of_flipped_labels(noise, rows, share):
    # the region x1 < 0.5, x1 < x2 < x1 + 0.5 holds ~80 of the 320 rule points (labelled 0) and
    # all the noise points (labelled 1): 40 of them flip a third; 80 make it a coin flip
    shares = []
    for seed in range(20):
        ds = make_dataset("noisy_diagonal", np.random.default_rng(seed), noise=noise)
        x1, x2 = ds.X.T
        inside = (x1 < 0.5) & (x2 > x1) & (x2 < x1 + 0.5)
        shares.append(ds.y[inside].mean())
    assert ds.X.shape == (rows, 2)
    assert abs(np.mean(shares) - share) < 0.03


def test_circles_factor_and_noise():
    ds = make_dataset("circles", np.random.default_rng(0), n_samples=200, noise=0.0, factor=0.3)
    r = np.hypot(*ds.X.T)
    np.testing.assert_allclose(r[ds.y == 0], 1.0)
    np.testing.assert_allclose(r[ds.y == 1], 0.3)
    noisy = make_dataset("circles", np.random.default_rng(0), n_samples=2000, noise=0.1, factor=0.3)
    assert 0.07 < np.std(np.hypot(*noisy.X[noisy.y == 0].T)) < 0.13


def test_moons_noise_zero_lies_on_the_half_circles():
    ds = make_dataset("moons", np.random.default_rng(0), n_samples=100, noise=0.0)
    np.testing.assert_allclose(np.hypot(*ds.X[ds.y == 0].T), 1.0)
    np.testing.assert_allclose(np.hypot(ds.X[ds.y == 1, 0] - 1, ds.X[ds.y == 1, 1] - 0.5), 1.0)


def test_spirals_and_blobs_take_k_classes():
    sp = make_dataset("spirals", np.random.default_rng(0), n_samples=500, n_classes=5)
    assert sp.n_classes == 5 and np.bincount(sp.y).tolist() == [100] * 5
    assert np.hypot(*sp.X.T).max() <= 1.0 + 1e-12  # radius runs 0..1 whatever the angle noise
    bl = make_dataset("blobs", np.random.default_rng(0), n_samples=4000, n_classes=4, noise=0.5, spread=5.0)
    for c in range(4):
        centre = bl.X[bl.y == c].mean(axis=0)
        expected = 5.0 * np.array([np.cos(c * np.pi / 2), np.sin(c * np.pi / 2)])
        assert np.linalg.norm(centre - expected) < 0.1
        assert 0.45 < bl.X[bl.y == c].std(axis=0).mean() < 0.55


def test_flower_noise_zero_lies_on_the_rose_curve():
    ds = make_dataset("flower", np.random.default_rng(0), n_samples=100, noise=0.0, radius=4.0, petals=4)
    t = np.arctan2(ds.X[:, 0], ds.X[:, 1])  # x = r sin t, y = r cos t
    np.testing.assert_allclose(np.abs(np.hypot(*ds.X.T)), np.abs(4.0 * np.sin(4 * t)), atol=1e-9)


def test_digits_is_the_bundled_8x8_set_and_subsamples():
    ds = make_dataset("digits", np.random.default_rng(0))
    assert ds.X.shape == (1797, 64) and ds.image_shape == (8, 8) and ds.classes == tuple("0123456789")
    assert ds.X.min() == 0.0 and ds.X.max() == 16.0
    sub = make_dataset("digits", np.random.default_rng(0), n_samples=500)
    assert sub.X.shape == (500, 64) and set(sub.y.tolist()) == set(range(10))


def test_dataset_arrays_are_read_only():
    ds = make_dataset("moons", np.random.default_rng(0))
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0, 0] = 1.0
    assert isinstance(ds, Dataset) and "moons" in repr(ds)


def test_dataset_params_lists_defaults():
    assert dataset_params("noisy_diagonal") == {"n_samples": 320, "noise": 0.125, "band": 0.5, "variant": "noisy"}
    assert set(dataset_params("spirals")) >= {"n_samples", "n_classes", "noise"}


def test_unknown_data_set_lists_valid_names(rng):
    with pytest.raises(ValueError, match=r"unknown data set 'ringz'; valid names: blobs, circles, digits, "
                                         r"flower, moons, noisy_diagonal, rings, spirals"):
        make_dataset("ringz", rng)


def test_unknown_parameter_lists_valid_parameters(rng):
    with pytest.raises(ValueError, match=r"data set 'rings' has no parameter 'n_classes'; "
                                         r"valid parameters: n_samples, noise"):
        make_dataset("rings", rng, n_classes=3)


@pytest.mark.parametrize("name, params, message", [
    ("rings", {"n_samples": 2}, "rings.n_samples must be an integer >= 4, got 2"),
    ("rings", {"n_samples": 10.5}, "rings.n_samples must be an integer >= 4, got 10.5"),
    ("moons", {"noise": -0.1}, r"moons.noise must be in \[0.0, 1.0\], got -0.1"),
    ("circles", {"factor": 1.0}, r"circles.factor must be in \(0.0, 1.0\), got 1.0"),
    ("spirals", {"n_classes": 1}, r"spirals.n_classes must be an integer in \[2, 10\], got 1"),
    ("blobs", {"noise": float("nan")}, r"blobs.noise must be a number in \[0.0, 100.0\], got nan"),
    ("noisy_diagonal", {"variant": "tidy"}, r"noisy_diagonal.variant must be one of \['noisy', 'clean'\], got 'tidy'"),
    ("digits", {"n_samples": 5000}, r"digits.n_samples must be an integer in \[30, 1797\], got 5000"),
])
def test_bad_parameter_values_name_key_bound_and_value(rng, name, params, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(name, rng, **params)


def test_a_seed_instead_of_a_generator_is_refused():
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator, got int"):
        make_dataset("rings", 0)
