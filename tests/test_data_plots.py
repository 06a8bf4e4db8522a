"""plot_dataset returns a Figure value: one scatter per class for points, a grid for images."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from pipeline.data import make_dataset, split_dataset
from pipeline.plots.data import plot_dataset


def test_scatter_has_one_collection_per_class_with_all_points():
    ds = make_dataset("spirals", np.random.default_rng(0), n_samples=150, n_classes=3)
    fig = plot_dataset(ds, title="three arms")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes == [50, 50, 50]
    np.testing.assert_array_equal(ax.collections[1].get_offsets(), ds.X[ds.y == 1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0 (50)", "1 (50)", "2 (50)"]
    assert ax.get_title() == "three arms: 150 rows"


def test_an_open_split_can_be_drawn_with_class_names():
    ds = make_dataset("rings", np.random.default_rng(0))
    train = split_dataset(ds, np.random.default_rng(0)).train
    fig = plot_dataset(train, classes=ds.classes)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["inner (120)", "outer (120)"] and fig.axes[0].get_title() == "train: 240 rows"


def test_digits_draw_as_an_image_grid():
    ds = make_dataset("digits", np.random.default_rng(0))
    fig = plot_dataset(ds, per_class=4)
    assert len(fig.axes) == 40
    first = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_array_equal(first, ds.X[ds.y == 0][0].reshape(8, 8))


def test_sealed_test_split_and_wide_data_are_refused():
    splits = split_dataset(make_dataset("moons", np.random.default_rng(0)), np.random.default_rng(0))
    with pytest.raises(AttributeError):
        plot_dataset(splits.test)
    wide = make_dataset("digits", np.random.default_rng(0))
    with pytest.raises(ValueError, match="plot_dataset draws 2-D points or images; this data has 64 features"):
        plot_dataset(split_dataset(wide, np.random.default_rng(0)).dev)
