"""A user's own table: CSV or Parquet -> DataFrame -> `Dataset`, with one-line errors.

Checked before pandas reads it whole: what the path is (a directory or a symlink loop is named
as such), its size (at most `max_table_bytes()`: 512 MiB, or $NN_PIPELINE_MAX_TABLE_MB), NUL
bytes at the head of a CSV (binary, not text), and duplicate column names in the raw header
(pandas renames a second `y` to `y.1`, which then becomes a feature that copies the label).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from typing import TYPE_CHECKING

import numpy as np

from pipeline.data.dataset import Dataset
from pipeline.input_files import check_file, printable, sniff_binary

if TYPE_CHECKING:
    import pandas as pd

# pandas costs ~1 s to import and only a user's table needs it: imported in the functions.
READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}
# pandas needs several times a CSV's size in memory (a 2 GB file peaked at 14.8 GB)
MAX_TABLE_MB = 512


def max_table_bytes() -> int:
    """The largest table read, in bytes: $NN_PIPELINE_MAX_TABLE_MB (MiB) or MAX_TABLE_MB."""
    text = os.environ.get("NN_PIPELINE_MAX_TABLE_MB", "").strip()
    try:
        mb = float(text) if text else MAX_TABLE_MB
    except ValueError:
        raise ValueError(f"NN_PIPELINE_MAX_TABLE_MB must be a number of MiB, got {text!r}") from None
    return int(mb * 2**20)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; a missing, empty or unknown-extension file raises ValueError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise ValueError(f"data file {path} has unknown extension {suffix or '(none)'!r}; "
                         f"valid extensions: {', '.join(READERS)}")
    if check_file(path, "data file", max_table_bytes(), " (NN_PIPELINE_MAX_TABLE_MB)") == 0:
        raise ValueError(f"data file {path} is empty (0 bytes)")
    if suffix == ".csv":
        sniff_binary(path, "data file", "CSV text")
    import pandas as pd

    try:
        _refuse_duplicate_columns(path, suffix)
        df = getattr(pd, READERS[suffix])(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"data file {path} is empty (no columns)") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if str(exc).startswith(f"data file {path} "):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"data file {path} could not be read as {suffix[1:]}: "
                         f"{printable(first)}") from None
    if len(df) == 0:
        raise ValueError(f"data file {path} has no data rows (columns: {', '.join(map(str, df.columns))})")
    return df


def _refuse_duplicate_columns(path: Path, suffix: str) -> None:
    """The header as written (pandas mangles a repeated CSV name into `name.1`)."""
    if suffix == ".csv":
        import pandas as pd

        head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        names = [str(v) for v in head.iloc[0]] if len(head) else []
    else:
        import pyarrow.parquet as pq

        names = list(pq.read_schema(path).names)
    _check_unique(names, f"data file {path}")


def _check_unique(names: Sequence[str], name: str) -> None:
    from collections import Counter

    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        raise ValueError(f"{name} has duplicate column names: {', '.join(map(repr, repeated))} "
                         "(rename them so each column is named once)")


def dataset_from_frame(df: pd.DataFrame, *, label: str, features: Sequence[str] | None = None,
                       name: str = "table") -> Dataset:
    """Turn a frame into a `Dataset`: X (m, n) float64 from `features` (default: every column
    but `label`), y (m,) codes of the sorted distinct labels, whose names go to `classes`."""
    columns = [str(c) for c in df.columns]
    _check_unique(columns, name)
    if label not in columns:
        raise ValueError(f"label column {label!r} not found in {name}; columns found: {', '.join(columns)}")
    features = [c for c in columns if c != label] if features is None else [str(f) for f in features]
    missing = [f for f in features if f not in columns]
    if missing:
        raise ValueError(f"feature column(s) {', '.join(map(repr, missing))} not found in {name}; "
                         f"columns found: {', '.join(columns)}")
    if label in features or not features:
        raise ValueError(f"{name}: features must be a non-empty list without the label {label!r}, got {features}")
    if len(df) == 0:
        raise ValueError(f"{name} has no rows")
    import pandas as pd

    for col in features:
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise ValueError(f"feature column {col!r} in {name} is not numeric (dtype {df[col].dtype}); "
                             "encode it as numbers or leave it out of the features")
    X = df[features].to_numpy(dtype=np.float64, na_value=np.nan)  # (m, n); nullable NA -> NaN
    _check_finite(X, features, df[label], label, name)
    y, classes = _encode_labels(df[label])
    if len(classes) < 2:
        raise ValueError(f"label column {label!r} in {name} has a single class ({classes[0]!r}); "
                         "a classifier needs at least 2")
    return Dataset(X, y, classes, tuple(features), name)


def _check_finite(X: np.ndarray, features: list[str], labels: pd.Series, label: str, name: str) -> None:
    bad = ~np.isfinite(X)  # (m, n)
    per_col = {f: int(c) for f, c in zip(features, bad.sum(axis=0)) if c}
    label_missing = labels.isna().to_numpy()
    if label_missing.any():
        per_col[label] = int(label_missing.sum())
    if per_col:
        rows = int((bad.any(axis=1) | label_missing).sum())
        detail = ", ".join(f"{c} ({n} rows)" for c, n in per_col.items())
        raise ValueError(f"{name} has NaN, infinite or missing values in {rows} of {len(X)} rows; "
                         f"columns: {detail}")


def _encode_labels(labels: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes 0..k-1 in sorted order of the distinct labels (numbers sort as numbers)."""
    import pandas as pd

    values = labels.to_numpy()
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        uniq, codes = np.unique(values.astype(np.float64), return_inverse=True)
        names = tuple(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in uniq)
    else:
        uniq, codes = np.unique(values.astype(str), return_inverse=True)
        names = tuple(str(v) for v in uniq)
    return codes.astype(np.int64), names
