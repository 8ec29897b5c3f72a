"""What a target column asks for: classes or a number to predict (``--task``), and the checks of either.

The rule of ``--task auto``: text, boolean and category targets are classes; numbers with a fractional part are a
regression; integers (or integral floats) are classes unless they take many distinct values
(:data:`MANY_VALUES`: more than 20 and more than 5 % of the rows), where the command stops and asks for
``--task``, since a count, an age or a price in whole units is as likely as a class code.
"""

from __future__ import annotations

import numpy as np

from autodnn.errors import DatasetError

TASKS = ("auto", "classification", "regression")

#: An integer target with more distinct values than this many ...
MANY_VALUES = 20
#: ... and than this share of the rows is ambiguous under ``--task auto``.
MANY_VALUES_SHARE = 0.05

#: Quantile bins the validation and test splits of a regression are stratified on, so that each part spans the
#: target's range.
TARGET_BINS = 10


def check_task(task: str) -> str:
    """Returns ``task`` when it is one of :data:`TASKS`.

    Raises:
        DatasetError: It is not.
    """
    if task not in TASKS:
        raise DatasetError(f"--task must be one of {', '.join(TASKS)}, but got {task!r}")
    return task


def resolve_task(values: np.ndarray, task: str, where: str) -> str:
    """The task a target asks for: ``task`` itself, or what ``auto`` makes of the values (module docstring).

    Args:
        values: The target, one value a row (numbers, booleans or text), without missing values.
        task: One of :data:`TASKS`.
        where: What the target is, for messages (``"csv:/data/x.csv: target column 'price'"``).

    Raises:
        DatasetError: ``regression`` on text or boolean values; under ``auto``, an integer target with many
            distinct values.
    """
    numeric = values.dtype.kind in "iuf"
    if task == "regression":
        if not numeric:
            example = str(values[0]) if len(values) else ""
            raise DatasetError(f"{where} holds text or booleans (e.g. {example!r}), which cannot be regressed; "
                               "use --task classification, or give a numeric target")
        return "regression"
    if task == "classification" or not numeric:
        return "classification"
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        return "classification"
    if values.dtype.kind == "f" and (values != np.round(values)).any():
        return "regression"
    distinct = len(np.unique(values))
    if distinct > MANY_VALUES and distinct > MANY_VALUES_SHARE * len(values):
        raise DatasetError(f"{where} holds {distinct} distinct whole numbers in {len(values)} rows: a quantity to "
                           "predict or class codes? Say which with --task regression or --task classification")
    return "classification"


def regression_target(values: np.ndarray, where: str) -> np.ndarray:
    """The target of a regression as float64, checked.

    Raises:
        DatasetError: A value is not finite, or every value is the same.
    """
    y = np.asarray(values, dtype=np.float64)
    if not np.isfinite(y).all():
        raise DatasetError(f"{where} holds NaN or infinite values; drop those rows or fill them")
    if len(y) and np.ptp(y) == 0:
        raise DatasetError(f"{where} holds the same value ({y[0]:g}) in every row: there is nothing to predict; "
                           "choose another target column")
    return y


def target_bins(y: np.ndarray) -> np.ndarray:
    """Each row's quantile bin of a regression target (:data:`TARGET_BINS` bins, fewer for few distinct values)."""
    edges = np.unique(np.quantile(y, np.linspace(0, 1, TARGET_BINS + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right")
