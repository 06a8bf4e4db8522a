"""A user's table: CSV/Parquet reading, label encoding, and one clear line for each bad input."""

import numpy as np
import pandas as pd
import pytest

from pipeline.data import dataset_from_frame, read_table


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], "b": [1, 0, 1, 0, 1, 0],
                         "species": ["setosa", "virginica", "setosa", "versicolor", "virginica", "versicolor"]})


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_round_trip_through_a_file_encodes_string_labels_in_sorted_order(tmp_path, frame, ext):
    path = tmp_path / f"flowers.{ext}"
    frame.to_csv(path, index=False) if ext == "csv" else frame.to_parquet(path)
    ds = dataset_from_frame(read_table(path), label="species", name="flowers")
    assert ds.classes == ("setosa", "versicolor", "virginica")
    assert ds.y.tolist() == [0, 2, 0, 1, 2, 1]
    assert ds.feature_names == ("a", "b") and ds.X.shape == (6, 2)
    np.testing.assert_array_equal(ds.X[:, 0], frame["a"].to_numpy())


def test_named_features_keep_their_order_and_drop_the_rest(frame):
    ds = dataset_from_frame(frame, label="species", features=["b", "a"])
    assert ds.feature_names == ("b", "a")
    np.testing.assert_array_equal(ds.X[:, 0], frame["b"].to_numpy())


def test_numeric_labels_sort_as_numbers_not_text():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": [10, 2, 10, 2]})
    ds = dataset_from_frame(df, label="label")
    assert ds.classes == ("2", "10") and ds.y.tolist() == [1, 0, 1, 0]


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"data file .*nope.csv does not exist"):
        read_table(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"data file .*empty.csv is empty \(0 bytes\)"):
        read_table(tmp_path / "empty.csv")


def test_header_only_file_has_no_rows(tmp_path):
    (tmp_path / "head.csv").write_text("a,b,label\n")
    with pytest.raises(ValueError, match=r"head.csv has no data rows \(columns: a, b, label\)"):
        read_table(tmp_path / "head.csv")


def test_unknown_extension(tmp_path):
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"unknown extension '.xlsx'; valid extensions: .csv, .parquet, .pq"):
        read_table(tmp_path / "data.xlsx")


def test_missing_label_column_lists_the_columns_found(frame):
    with pytest.raises(ValueError, match=r"label column 'label' not found in table; columns found: a, b, species"):
        dataset_from_frame(frame, label="label")


def test_missing_feature_column(frame):
    with pytest.raises(ValueError, match=r"feature column\(s\) 'c' not found in table; columns found: a, b, species"):
        dataset_from_frame(frame, label="species", features=["a", "c"])


def test_non_numeric_feature_column_is_named(frame):
    df = frame.assign(colour=["red", "blue"] * 3)
    with pytest.raises(ValueError, match=r"feature column 'colour' in table is not numeric"):
        dataset_from_frame(df, label="species")


def test_nan_and_inf_name_columns_and_row_counts(frame):
    df = frame.assign(a=[np.nan, 1.0, np.inf, 2.0, 3.0, 4.0], b=[1.0, np.nan, 0.0, 1.0, -np.inf, 1.0])
    with pytest.raises(ValueError, match=r"table has NaN, infinite or missing values in 4 of 6 rows; "
                                         r"columns: a \(2 rows\), b \(2 rows\)"):
        dataset_from_frame(df, label="species")


def test_missing_labels_are_reported_too(frame):
    df = frame.assign(species=["setosa", None, "setosa", "versicolor", "virginica", "versicolor"])
    with pytest.raises(ValueError, match=r"in 1 of 6 rows; columns: species \(1 rows\)"):
        dataset_from_frame(df, label="species")


def test_single_class_table(frame):
    with pytest.raises(ValueError, match=r"label column 'species' in table has a single class \('setosa'\)"):
        dataset_from_frame(frame.assign(species="setosa"), label="species")


def test_nullable_integer_missing_values_are_reported_not_crashed_on():
    df = pd.DataFrame({"a": pd.array([1, None, 3, 4], dtype="Int64"), "y": ["u", "v", "u", "v"]})
    with pytest.raises(ValueError, match=r"in 1 of 4 rows; columns: a \(1 rows\)"):
        dataset_from_frame(df, label="y")


def test_building_a_dataset_leaves_the_callers_arrays_writable(frame):
    X = frame[["a", "b"]].to_numpy(dtype=float)
    from pipeline.data import Dataset

    ds = Dataset(X, np.array([0, 1, 0, 1, 0, 1]), ("p", "q"), ("a", "b"), "t")
    X[0, 0] = 99.0  # still ours to change, and the Dataset does not see it
    assert ds.X[0, 0] == 0.5 and not ds.X.flags.writeable
