"""Tabular datasets: scikit-learn's bundled sets, CSV and Parquet tables, and NumPy ``.npz`` files.

A table's target column is read here (its distinct values, sorted, become the classes); its feature columns
are kept as read and encoded after the split, fitted on the training rows only (:mod:`autodnn.datasets._columns`).
"""

from __future__ import annotations

import difflib
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autodnn.datasets._columns import check_drop, check_kinds
from autodnn.datasets._dataset import RawData, encode_labels, one_line
from autodnn.datasets._targets import regression_target, resolve_task
from autodnn.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

SKLEARN_LOADERS = {
    "digits": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
}

#: Built-in datasets whose target is a number to predict.
SKLEARN_REGRESSIONS = ("diabetes",)

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
    source = f"scikit-learn bundled ({SKLEARN_LOADERS[name]})"
    if name in SKLEARN_REGRESSIONS:
        return RawData(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64), None,
                       None, (), source=source, task="regression", target_name="target")
    return RawData(
        x_train=np.asarray(bunch.data, dtype=np.float64),
        y_train=np.asarray(bunch.target, dtype=np.int64),
        x_test=None,
        y_test=None,
        class_names=tuple(str(c) for c in bunch.target_names),
        source=source,
    )


def load_csv(path: Path, target: str | None, drop: tuple[str, ...] = (), task: str = "auto") -> RawData:
    """Reads a CSV table whose ``target`` column holds the classes or the number to predict.

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
    return table_to_raw(frame, target, f"csv:{path}", drop, task)


def load_parquet(path: Path, target: str | None, drop: tuple[str, ...] = (), task: str = "auto") -> RawData:
    """Reads a Parquet table whose ``target`` column holds the classes or the number to predict.

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
    return table_to_raw(frame, target, f"parquet:{path}", drop, task)


def table_to_raw(frame: pd.DataFrame, target: str | None, label: str, drop: tuple[str, ...] = (),
                 task: str = "auto") -> RawData:
    """Reads a table's target and keeps its feature columns to be encoded after the split.

    Args:
        frame: The table as read.
        target: Name of the column that holds the classes.
        label: The dataset spec, for messages (``"csv:/data/x.csv"``).
        drop: Feature columns to leave out (``--drop``).
        task: ``auto``, ``classification`` or ``regression`` (:func:`autodnn.datasets._targets.resolve_task`).

    Returns:
        Class indices (or a regression's numbers) and the feature columns (``table``); no test part (one is
        carved later).

    Raises:
        DatasetError: The table is empty, ``target`` is missing or not a column, the target has missing values or
            does not fit ``task``,
            ``drop`` names a column the table lacks (or the target), or no feature column is left.
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
    check_drop(columns, drop, label)
    if target in drop:
        raise DatasetError(f"{label}: --drop names the target column '{target}'; leave it out of --drop")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DatasetError(f"{label} has no feature columns besides the target '{target}'")
    check_kinds(features, tuple(drop), label)
    where = f"{label}: target column '{target}'"
    values = _label_array(labels)
    resolved = resolve_task(values, task, where)
    if resolved == "regression":
        y, class_names = regression_target(values, where), ()
    else:
        y, _, class_names = encode_labels(values, None, where)
    placeholder = np.empty((len(frame), 0), dtype=np.float64)
    return RawData(placeholder, y, None, None, class_names, source=f"{label.split(':', 1)[1]} (target '{target}')",
                   table=features.reset_index(drop=True), drop=tuple(drop), task=resolved, target_name=target)


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


def load_npz(path: Path, task: str = "auto") -> RawData:
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
    if resolve_task(y_train, task, f"npz:{path}: {keys[train[1]]}") == "regression":
        y_train = regression_target(y_train, f"npz:{path}: {keys[train[1]]}")
        if y_test is not None:
            y_test = regression_target(y_test, f"npz:{path}: {keys['y_test']}")
        return RawData(x_train, y_train, x_test, y_test, (), source=str(path), task="regression", target_name="y")
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
