"""A table's feature columns as a network takes them: roles decided and encoders fitted on training rows only.

- Numeric columns: missing values imputed with the training median, with a missing-indicator column where
  training rows miss values (scikit-learn's ``SimpleImputer(add_indicator=True)``).
- Text, category and boolean columns: a missing value is a category of its own, categories with fewer than
  :func:`rare_count` training rows are grouped into one "infrequent" column, at most :data:`MAX_ONE_HOT`
  columns a feature, and a category never seen in training goes to the infrequent column (or to none),
  never an error (``OneHotEncoder(handle_unknown="infrequent_if_exist")``).
- Dropped, each with a note the search prints: identifiers (a text column with one distinct value a row, or an
  integer column that numbers the rows: n distinct consecutive integers such as 0..n-1, 1..n or 1001..1000+n,
  in any order; an integer feature such as a price may well be distinct in a small table, so distinct integers
  with gaps are kept), constant columns (one value in the training rows), and the columns the user names with
  ``--drop``.
- Refused: date or time columns (a network takes numbers: the user converts them, or drops them), and
  infinite numbers.

The fitted ``ColumnTransformer`` is kept with the dataset (``Dataset.preprocessor``): it turns raw rows of the
table into the network's inputs (before scaling) wherever the model is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autodnn.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

#: Most one-hot columns one categorical feature becomes (the rarest categories share the last).
MAX_ONE_HOT = 50
#: A category is rare below this share of the training rows, or below :data:`RARE_MIN_ROWS` rows.
RARE_SHARE = 0.005
RARE_MIN_ROWS = 5
#: Text that reads as a date or a time: ``2012-01-31``, ``2012/01/31``, ``31/01/2012``, ``31.01.2012``,
#: ``2012-01-31T10:00:00Z``, ``10:30:00``. A pattern rather than ``pd.to_datetime``, whose parser also takes
#: words ("may", "march") and plain numbers for dates.
_DATE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
                   r"([ T]\d{1,2}:\d{2}(:\d{2})?\S*)?\s*$|^\s*\d{1,2}:\d{2}:\d{2}\s*$")
#: Non-missing values of a text column looked at to tell dates.
_DATE_SAMPLE = 50


@dataclass(frozen=True)
class ColumnPlan:
    """What becomes of each feature column of a table.

    Attributes:
        numeric: Columns kept as numbers.
        categorical: Columns one-hot encoded.
        notes: One line for each column left out, and why.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    notes: tuple[str, ...]


def rare_count(n_train: int) -> int:
    """Training rows under which a category is rare and grouped with the other rare ones."""
    return max(RARE_MIN_ROWS, int(np.ceil(RARE_SHARE * n_train)))


def check_drop(columns: list[str], drop: tuple[str, ...], label: str) -> None:
    """Refuses ``--drop`` names that are not columns of the table.

    Raises:
        DatasetError: A name is not a column.
    """
    unknown = [name for name in drop if name not in columns]
    if unknown:
        shown = ", ".join(columns[:30]) + (f", ... ({len(columns) - 30} more)" if len(columns) > 30 else "")
        raise DatasetError(f"{label}: --drop names no column {', '.join(repr(n) for n in unknown)}; "
                           f"columns are: {shown}")


def check_kinds(features: pd.DataFrame, drop: tuple[str, ...], label: str) -> None:
    """Refuses, as the table is read, columns no encoder can take (dates, infinite numbers, other objects).

    Raises:
        DatasetError: Which column, and how to fix it.
    """
    for name in features.columns:
        if name not in drop:
            _kind(features[name], name, label)


def plan_columns(features: pd.DataFrame, train: np.ndarray, drop: tuple[str, ...], label: str) -> ColumnPlan:
    """Decides each feature column's role, from the training rows (identifiers from the whole column).

    Raises:
        DatasetError: A column holds dates, infinite numbers or values that are neither numbers, booleans nor
            text; or no feature column is left.
    """
    numeric, categorical, notes = [], [], []
    for name in features.columns:
        column = features[name]
        if name in drop:
            notes.append(f"left out column '{name}' (--drop)")
            continue
        kind = _kind(column, name, label)
        training = column.iloc[train]
        if _identifier(column, kind):
            what = "one distinct value a row" if kind == "text" else "an integer numbering the rows"
            notes.append(f"left out column '{name}': an identifier ({what}); a network cannot learn from it")
        elif training.nunique(dropna=False) <= 1:
            notes.append(f"left out column '{name}': constant in the training rows")
        elif kind == "numeric":
            numeric.append(name)
        else:
            categorical.append(name)
    if not numeric and not categorical:
        raise DatasetError(f"{label}: no feature column is left ({'; '.join(notes)}); keep at least one column")
    return ColumnPlan(tuple(numeric), tuple(categorical), tuple(notes))


def fit_encoder(features: pd.DataFrame, train: np.ndarray, plan: ColumnPlan) -> Any:
    """The ``ColumnTransformer`` of ``plan``, fitted on the training rows only."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    parts = []
    if plan.numeric:
        parts.append(("numeric", SimpleImputer(strategy="median", add_indicator=True), list(plan.numeric)))
    if plan.categorical:
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=rare_count(len(train)),
                                max_categories=MAX_ONE_HOT, sparse_output=False)
        text = FunctionTransformer(as_text, feature_names_out="one-to-one")
        parts.append(("categorical", make_pipeline(text, SimpleImputer(strategy="constant", fill_value="(missing)"),
                                                   encoder), list(plan.categorical)))
    transformer = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)
    transformer.fit(features.iloc[train])
    return transformer


def as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categorical columns as Python strings, missing values as ``np.nan`` (what ``SimpleImputer`` fills)."""
    import pandas as pd

    values = frame.astype(object).to_numpy()
    out = np.empty(values.shape, dtype=object)
    for index, value in np.ndenumerate(values):
        out[index] = np.nan if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
    return out


def encode(transformer: Any, features: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The network's inputs (before scaling) of ``rows`` of the table, float64."""
    return np.asarray(transformer.transform(features.iloc[rows]), dtype=np.float64)


def _kind(column: pd.Series, name: str, label: str) -> str:
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        raise DatasetError(_date_message(label, name, column.dropna().astype(str).head(1).tolist()))
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "text"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise DatasetError(f"{label}: feature column '{name}' holds infinite values; replace or drop them")
        return "numeric"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        present = column.dropna()
        for value in present.head(1000).tolist():
            if not isinstance(value, (str, bool)):
                raise DatasetError(f"{label}: feature column '{name}' holds {type(value).__name__} values "
                                   f"(e.g. {value!r:.40}); only numbers, booleans and text can be encoded, so "
                                   "convert or drop that column")
        sample = [str(v) for v in present.head(_DATE_SAMPLE).tolist()]
        if sample and sum(bool(_DATE.match(v)) for v in sample) >= 0.9 * len(sample):
            raise DatasetError(_date_message(label, name, sample[:1]))
        return "text"
    raise DatasetError(f"{label}: feature column '{name}' is {dtype}, which cannot be encoded as numbers; "
                       f"convert it or leave it out with --drop {name}")


def _date_message(label: str, name: str, example: list[str]) -> str:
    shown = f" (e.g. {example[0]!r})" if example else ""
    return (f"{label}: column '{name}' holds dates or times{shown}, which a network does not take as they are; "
            f"convert it to numbers (e.g. day of year, weekday) or leave it out with --drop {name}")


def _identifier(column: pd.Series, kind: str) -> bool:
    """A text column with one distinct value a row, or n distinct consecutive integers (a row number)."""
    import pandas as pd

    n = len(column)
    if n < 3 or column.isna().any() or column.nunique() != n:
        return False
    if kind == "text":
        return not pd.api.types.is_bool_dtype(column.dtype)
    if not pd.api.types.is_integer_dtype(column.dtype):
        return False
    return int(column.max()) - int(column.min()) == n - 1
