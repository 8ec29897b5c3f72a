"""Tabular datasets: scikit-learn's bundled sets, CSV and Parquet tables, and NumPy ``.npz`` files.

Tables are turned into numbers here: numeric columns stay as they are, text, category and boolean columns are
one-hot encoded with :func:`pandas.get_dummies` (so the categories are those of the whole file, test rows
included; a missing value in such a column is a row of zeros), and the target's distinct values, sorted,
become the classes.
"""

from __future__ import annotations

import difflib
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autodnn.datasets._dataset import RawData, encode_labels, one_line
from autodnn.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

SKLEARN_LOADERS = {
    "digits": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
}

#: More distinct values than this in a text column is an identifier or a typo in a numeric column, not a category.
MAX_CATEGORIES = 1000

_NPZ_KEYS = {
    "x_train": ("x_train", "X_train"),
    "y_train": ("y_train", "Y_train"),
    "x_test": ("x_test", "X_test"),
    "y_test": ("y_test", "Y_test"),
    "x": ("x", "X"),
    "y": ("y", "Y"),
}


def load_sklearn(name: str) -> RawData:
    """Reads one of scikit-learn's bundled datasets (no network needed)."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, SKLEARN_LOADERS[name])()
    return RawData(
        x_train=np.asarray(bunch.data, dtype=np.float64),
        y_train=np.asarray(bunch.target, dtype=np.int64),
        x_test=None,
        y_test=None,
        class_names=tuple(str(c) for c in bunch.target_names),
        source=f"scikit-learn bundled ({SKLEARN_LOADERS[name]})",
    )


def load_csv(path: Path, target: str | None) -> RawData:
    """Reads a CSV table whose ``target`` column holds the classes.

    Raises:
        DatasetError: The file cannot be parsed, is empty, or its columns cannot be used (see :func:`table_to_raw`).
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"csv:{path} is empty; give a header line and at least one row per class") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DatasetError(f"csv:{path} cannot be parsed ({one_line(exc)}); save it as comma-separated UTF-8 "
                           "text with a header line") from None
    return table_to_raw(frame, target, f"csv:{path}")


def load_parquet(path: Path, target: str | None) -> RawData:
    """Reads a Parquet table whose ``target`` column holds the classes.

    Raises:
        DatasetError: No Parquet engine is installed, the file cannot be read, or its columns cannot be used.
    """
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DatasetError(f"parquet:{path} needs a Parquet engine ({one_line(exc)}); pip install pyarrow, "
                           "or save the table as csv") from None
    except (ValueError, OSError, TypeError) as exc:
        raise DatasetError(f"parquet:{path} cannot be read ({one_line(exc)}); "
                           "check that it is a Parquet file") from None
    return table_to_raw(frame, target, f"parquet:{path}")


def table_to_raw(frame: pd.DataFrame, target: str | None, label: str) -> RawData:
    """Encodes a table: one-hot categorical features, numeric features as they are, the target as classes.

    Args:
        frame: The table as read.
        target: Name of the column that holds the classes.
        label: The dataset spec, for messages (``"csv:/data/x.csv"``).

    Returns:
        float64 features and class indices; no test part (one is carved later).

    Raises:
        DatasetError: The table is empty, ``target`` is missing or not a column, the target has missing values,
            a numeric feature has missing values, or a feature cannot be encoded.
    """
    columns = [str(c) for c in frame.columns]
    if target is None or target not in columns:
        raise DatasetError(_target_message(label, target, columns))
    if len(frame) == 0:
        raise DatasetError(f"{label} has a header but no rows; give at least a few rows per class")
    frame.columns = columns
    labels = frame[target]
    missing = int(labels.isna().sum())
    if missing:
        rows = ", ".join(str(i) for i in np.flatnonzero(labels.isna().to_numpy())[:5])
        raise DatasetError(f"{label}: {missing} of {len(frame)} rows have no value in target column '{target}' "
                           f"(first rows, counting from 0: {rows}); drop or label them")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DatasetError(f"{label} has no feature columns besides the target '{target}'")
    x = _encode_features(features, label)
    y, _, class_names = encode_labels(_label_array(labels), None, f"{label}: target column '{target}'")
    return RawData(x, y, None, None, class_names, source=f"{label.split(':', 1)[1]} (target '{target}')")


def _target_message(label: str, target: str | None, columns: list[str]) -> str:
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns) - 30} more)" if len(columns) > 30 else "")
    if target is None:
        return f"{label} needs --target COLUMN; columns are: {shown}"
    close = difflib.get_close_matches(target, columns, n=1) or [c for c in columns if c.lower() == target.lower()]
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{label} has no column '{target}' for --target.{hint} Columns are: {shown}"


def _label_array(labels: pd.Series) -> np.ndarray:
    import pandas as pd

    dtype = labels.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return labels.to_numpy(dtype=np.bool_)
    if pd.api.types.is_integer_dtype(dtype):
        return labels.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        return labels.to_numpy(dtype=np.float64)
    return np.array([str(v) for v in labels.tolist()])


def _encode_features(features: pd.DataFrame, label: str) -> np.ndarray:
    import pandas as pd

    categorical, holes = [], []
    for name in features.columns:
        column = features[name]
        dtype = column.dtype
        if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            categorical.append(name)
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
            n_missing = int(column.isna().sum())
            if n_missing:
                holes.append(f"'{name}' ({n_missing} rows)")
            elif not np.isfinite(column.to_numpy(dtype=np.float64)).all():
                raise DatasetError(f"{label}: feature column '{name}' holds infinite values; replace or drop them")
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            _check_text_column(column, name, label)
            categorical.append(name)
        else:
            raise DatasetError(f"{label}: feature column '{name}' is {dtype}, which cannot be encoded as numbers; "
                               "convert it (e.g. dates to days) or drop it")
    if holes:
        raise DatasetError(f"{label}: numeric feature columns have missing values: {', '.join(holes)}; "
                           "impute them (e.g. with the column median) or drop those rows or columns first")
    encoded = pd.get_dummies(features, columns=categorical, dtype=np.float64) if categorical else features
    return encoded.to_numpy(dtype=np.float64)


def _check_text_column(column: pd.Series, name: str, label: str) -> None:
    for value in column.dropna().tolist():
        if not isinstance(value, (str, bool)):
            raise DatasetError(f"{label}: feature column '{name}' holds {type(value).__name__} values "
                               f"(e.g. {value!r:.40}); only numbers, booleans and text can be encoded, so "
                               "convert or drop that column")
    distinct = column.nunique(dropna=True)
    if distinct > MAX_CATEGORIES:
        examples = ", ".join(repr(v) for v in column.dropna().unique()[:3].tolist())
        raise DatasetError(f"{label}: text column '{name}' has {distinct} distinct values (e.g. {examples}), too "
                           f"many to one-hot encode (at most {MAX_CATEGORIES}); drop it if it is an identifier, "
                           "or fix its non-numeric entries if it should be numeric")


def load_npz(path: Path) -> RawData:
    """Reads ``x_train``/``y_train`` (or ``x``/``y``) and optionally ``x_test``/``y_test`` from an ``.npz`` file.

    Raises:
        DatasetError: The file cannot be read, lacks the arrays, holds pickled objects, or the labels are unusable.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = list(stored.files)
            keys = {role: next((k for k in names if k in found), None) for role, names in _NPZ_KEYS.items()}
            train = ("x_train", "y_train") if keys["x_train"] and keys["y_train"] else ("x", "y")
            if not (keys[train[0]] and keys[train[1]]):
                raise DatasetError(f"npz:{path} needs arrays x_train and y_train (or x and y), but holds: "
                                   f"{', '.join(found) or 'nothing'}; save it with np.savez(file, x_train=..., "
                                   "y_train=..., x_test=..., y_test=...)")
            if bool(keys["x_test"]) != bool(keys["y_test"]):
                raise DatasetError(f"npz:{path} holds only one of x_test and y_test (keys: {', '.join(found)}); "
                                   "save both or neither")
            x_train, y_train = stored[keys[train[0]]], stored[keys[train[1]]]
            x_test = stored[keys["x_test"]] if keys["x_test"] else None
            y_test = stored[keys["y_test"]] if keys["y_test"] else None
    except DatasetError:
        raise
    except ValueError as exc:
        raise DatasetError(f"npz:{path} cannot be read without unpickling ({one_line(exc)}); save numeric or "
                           "text arrays, not Python objects") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"npz:{path} cannot be read ({one_line(exc)}); save it with np.savez") from None
    y_train = _npz_labels(y_train, x_train, f"npz:{path}: {keys[train[1]]}")
    if y_test is not None and x_test is not None:
        y_test = _npz_labels(y_test, x_test, f"npz:{path}: {keys['y_test']}")
    y_train, y_test, class_names = encode_labels(y_train, y_test, f"npz:{path}")
    return RawData(x_train, y_train, x_test, y_test, class_names, source=str(path))


def _npz_labels(y: np.ndarray, x: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{where} has shape {y.shape}; give one class label per example, shape (n,) "
                           "(for one-hot labels, save y.argmax(axis=1))")
    if x.ndim == 0 or len(x) != len(y):
        raise DatasetError(f"{where} has {len(y)} labels but its features have shape {x.shape}; "
                           "give one label per example")
    return y
