"""From raw arrays to a :class:`Dataset`: the fingerprint, the stratified splits and the scaling."""

from __future__ import annotations

import hashlib
import json
import math
from numbers import Integral, Real

import numpy as np
import numpy.typing as npt

from autodnn.datasets import _columns
from autodnn.datasets._dataset import Dataset, RawData
from autodnn.datasets._targets import target_bins
from autodnn.errors import DatasetError

SCALINGS = ("standard", "unit", "none")

#: Fraction of the examples kept for testing when a source has no test part of its own.
TEST_FRACTION = 0.2
#: ``valid_fraction="auto"``: the validation part takes :data:`AUTO_VALID_ROWS` rows where a tenth would hold fewer,
#: up to :data:`AUTO_VALID_MAX` of the training part. On a 150-row table a tenth is 12 rows, where one row moves
#: accuracy by 8 points and the search's choice among its trials is mostly luck; 30 rows cut that to 3.
AUTO_VALID_ROWS = 100
AUTO_VALID_MIN = 0.1
AUTO_VALID_MAX = 0.25


def auto_valid_fraction(n_pool: int) -> float:
    """The validation share ``valid_fraction="auto"`` gives a training part of ``n_pool`` rows (see above)."""
    return min(AUTO_VALID_MAX, max(AUTO_VALID_MIN, AUTO_VALID_ROWS / max(n_pool, 1)))

_FINGERPRINT_VERSION = 1
_STATS_CHUNK_ROWS = 2048


def check_options(valid_fraction: float | str, seed: int, scaling: str) -> None:
    """Checks the split and scaling options before any file is read.

    Raises:
        DatasetError: An option is out of range or of the wrong type.
    """
    if valid_fraction != "auto" and (isinstance(valid_fraction, bool) or not isinstance(valid_fraction, Real)
                                     or not 0 < float(valid_fraction) <= 0.5):
        raise DatasetError(f"valid_fraction must be 'auto' or in (0, 0.5], but got {valid_fraction!r}; "
                           "pass e.g. --valid-fraction 0.1")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise DatasetError(f"seed must be an integer >= 0, but got {seed!r}; pass e.g. --seed 0")
    if scaling not in SCALINGS:
        raise DatasetError(f"scaling must be one of {', '.join(SCALINGS)}, but got {scaling!r}")


def build_dataset(name: str, raw: RawData, *, valid_fraction: float | str, seed: int, scaling: str) -> Dataset:
    """Splits, shuffles and scales what a loader read.

    Without a test part of its own, a stratified :data:`TEST_FRACTION` of the examples becomes the test part.
    ``valid_fraction`` of the remaining training part becomes the validation part, stratified too, so that
    every class is in every part. Every part comes out in a shuffled order, so that files sorted by class
    cannot end up as a one-class split. A table's feature columns are then encoded by a transformer fitted on
    the training rows only (:mod:`autodnn.datasets._columns`).

    Args:
        name: Canonical spec of the dataset.
        raw: What the loader read.
        valid_fraction: Fraction of the training part held out for validation, in ``(0, 0.5]``, or ``auto``
            (:func:`auto_valid_fraction`).
        seed: Seed of every shuffle and split.
        scaling: One of :data:`SCALINGS`.

    Returns:
        The dataset.

    Raises:
        DatasetError: The data cannot be used for classification or is too small to split.
    """
    _check_raw(name, raw)
    regression = raw.task == "regression"
    if not regression:
        _check_class_sizes(name, raw)
    if valid_fraction == "auto":
        n_pool = len(raw.y_train) if raw.y_test is not None else round(len(raw.y_train) * (1 - TEST_FRACTION))
        valid_fraction = auto_valid_fraction(n_pool)
    digest = fingerprint(name, raw, valid_fraction=valid_fraction, seed=seed, scaling=scaling)
    rng = np.random.default_rng(seed)
    strata = target_bins(raw.y_train) if regression else raw.y_train
    if raw.x_test is None or raw.y_test is None:
        pool, test = stratified_split(strata, TEST_FRACTION, rng)
        x_test, y_test = raw.x_train[test], raw.y_train[test]
    else:
        pool = np.arange(len(raw.y_train))
        test = rng.permutation(len(raw.y_test))
        x_test, y_test = raw.x_test[test], raw.y_test[test]
    fit, valid = stratified_split(strata[pool], valid_fraction, rng)
    train, valid = pool[fit], pool[valid]
    sizes = {"train": len(train), "valid": len(valid), "test": len(test)}
    if min(sizes.values()) == 0:
        raise DatasetError(f"dataset {name} has too few examples to split into train, valid and test parts "
                           f"(got {sizes} with valid_fraction {valid_fraction}); give more "
                           f"{'rows' if regression else 'examples per class'}")
    notes: tuple[str, ...] = ()
    preprocessor = None
    if raw.table is not None:
        plan = _columns.plan_columns(raw.table, train, raw.drop, name)
        preprocessor = _columns.fit_encoder(raw.table, train, plan)
        notes = plan.notes
        parts = [_columns.encode(preprocessor, raw.table, rows) for rows in (train, valid, test)]
    else:
        parts = [raw.x_train[train], raw.x_train[valid], x_test]
    xs, feature_mean, feature_scale = _scale(parts, scaling, raw.is_image)
    ys = [raw.y_train[train], raw.y_train[valid], y_test]
    target_mean, target_std = 0.0, 1.0
    if regression:
        target_mean, target_std = float(np.mean(ys[0])), float(np.std(ys[0]))
        if target_std == 0:
            raise DatasetError(f"dataset {name}: the regression target takes one value ({target_mean:g}) in every "
                               "training row; there is nothing to learn, so choose another target")
        ys = [((y - target_mean) / target_std).astype(np.float32) for y in ys]
    else:
        ys = [y.astype(np.int32) for y in ys]
    return Dataset(
        name=name,
        x_train=xs[0],
        y_train=ys[0],
        x_valid=xs[1],
        y_valid=ys[1],
        x_test=xs[2],
        y_test=ys[2],
        class_names=raw.class_names,
        fingerprint=digest,
        source=raw.source,
        scaling=scaling,
        valid_fraction=float(valid_fraction),
        seed=int(seed),
        image_shape=tuple(int(d) for d in raw.x_train.shape[1:]) if raw.is_image else None,
        notes=notes,
        preprocessor=preprocessor,
        task=raw.task,
        target_name=raw.target_name,
        target_mean=target_mean,
        target_std=target_std,
        feature_mean=feature_mean,
        feature_scale=feature_scale,
        test_rows=test if raw.table is not None else None,
    )


def fingerprint(name: str, raw: RawData, *, valid_fraction: float, seed: int, scaling: str) -> str:
    """Returns the first 16 hex digits of a SHA-256 over the raw arrays, the class names and the settings."""
    h = hashlib.sha256()
    header = {"version": _FINGERPRINT_VERSION, "name": name, "valid_fraction": float(valid_fraction),
              "seed": int(seed), "scaling": scaling, "class_names": list(raw.class_names)}
    if raw.task != "classification":
        header["task"] = raw.task
    h.update(json.dumps(header, sort_keys=True).encode())
    if raw.table is not None:
        import pandas as pd

        columns = {"columns": [str(c) for c in raw.table.columns], "drop": sorted(raw.drop)}
        h.update(json.dumps(columns).encode())
        kept = raw.table.drop(columns=list(raw.drop))
        h.update(pd.util.hash_pandas_object(kept, index=False).to_numpy().view(np.uint8).data)
    for label in ("x_train", "y_train", "x_test", "y_test"):
        array = getattr(raw, label)
        if array is None:
            h.update(f"|{label}:none".encode())
            continue
        array = np.ascontiguousarray(array)
        h.update(f"|{label}:{array.dtype.str}:{array.shape}".encode())
        h.update(array.reshape(-1).view(np.uint8).data)
    return h.hexdigest()[:16]


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices of ``y`` in two, keeping the class proportions, both parts in a shuffled order.

    The second part gets ``ceil(fraction * len(y))`` indices, spread over the classes in proportion to their
    sizes. Every class keeps at least one example in the first part, and every class with at least two
    examples gives at least one to the second part (taken from the largest classes' shares, so the sizes stay
    as asked unless there are more small classes than the second part has room for).

    Args:
        y: Class labels, shape ``(n,)``.
        fraction: Share of the indices that go to the second part.
        rng: Source of the shuffles.

    Returns:
        ``(kept, taken)`` index arrays.
    """
    n = len(y)
    _, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    y_idx = y_idx.reshape(-1)
    n_take = min(math.ceil(fraction * n - 1e-9), n)
    ideal = counts * (n_take / n)
    take = np.minimum(np.floor(ideal).astype(np.int64), counts - 1)
    take = np.maximum(take, (counts >= 2).astype(np.int64))
    short = n_take - int(take.sum())
    while short < 0 and (take > 1).any():
        spare = np.flatnonzero(take > 1)
        take[spare[np.argmax((take - ideal)[spare])]] -= 1
        short += 1
    if short > 0:
        eligible = np.flatnonzero(take < counts - 1)
        priority = (ideal - take)[eligible]
        order = eligible[np.lexsort((rng.random(len(eligible)), -priority))]
        take[order[:short]] += 1
    perm = rng.permutation(n)
    grouped = perm[np.argsort(y_idx[perm], kind="stable")]
    group = y_idx[grouped]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = (np.arange(n) - starts[group]) < take[group]
    return rng.permutation(grouped[~chosen]), rng.permutation(grouped[chosen])


def _check_raw(name: str, raw: RawData) -> None:
    parts = [("train", raw.x_train, raw.y_train)]
    if raw.x_test is not None and raw.y_test is not None:
        parts.append(("test", raw.x_test, raw.y_test))
    for part, x, y in parts:
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"dataset {name}: x_{part} holds {x.dtype} values; features must be numbers")
        if x.ndim < 1 or y.shape != (len(x),):
            raise DatasetError(f"dataset {name}: x_{part} has shape {x.shape} but y_{part} has shape {y.shape}; "
                               "give one label per example")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DatasetError(f"dataset {name}: x_{part} contains NaN or infinite values; impute or drop them")
    if raw.x_test is not None and raw.x_test.shape[1:] != raw.x_train.shape[1:]:
        raise DatasetError(f"dataset {name}: examples of x_train have shape {raw.x_train.shape[1:]} but "
                           f"those of x_test have shape {raw.x_test.shape[1:]}; give both the same shape")
    present = np.unique(raw.y_train)
    if raw.task != "regression" and len(present) < 2:
        only = raw.class_names[int(present[0])] if len(present) else "none"
        raise DatasetError(f"dataset {name} has examples of one class only ({only}); "
                           "a classifier needs at least two classes")


def _check_class_sizes(name: str, raw: RawData) -> None:
    """Refuses a class too small to appear in the training, validation and (carved) test parts alike."""
    carve_test = raw.x_test is None or raw.y_test is None
    needed = 3 if carve_test else 2
    parts = "training, validation and test parts" if carve_test else "training and validation parts"
    counts = np.bincount(raw.y_train, minlength=len(raw.class_names))
    for index in np.flatnonzero((counts > 0) & (counts < needed)):
        count = int(counts[index])
        raise DatasetError(f"dataset {name}: class '{raw.class_names[index]}' has {count} example"
                           f"{'' if count == 1 else 's'}, too few to appear in the {parts} (at least {needed} "
                           "needed); add examples of it, or drop or merge that class")


def _scale(parts: list[np.ndarray], scaling: str, is_image: bool
           ) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray | None]:
    """The parts scaled with statistics of the first, and those statistics: ``(x - mean) / scale``."""
    work = np.float32 if is_image else np.float64
    xs: list[npt.NDArray[np.floating]] = [p.reshape(len(p), -1).astype(work) for p in parts]
    mean = scale = None
    if scaling == "unit" and is_image:
        scale = np.full(xs[0].shape[1], 255.0)
        for x in xs:
            x /= 255.0
    elif scaling == "unit":
        mean = xs[0].min(axis=0)
        scale = xs[0].max(axis=0) - mean
        scale[scale == 0] = 1.0
        for x in xs:
            x -= mean
            x /= scale
    elif scaling == "standard":
        mean = xs[0].sum(axis=0, dtype=np.float64) / len(xs[0])
        for x in xs:
            x -= mean.astype(work)
        scale = _root_mean_square(xs[0])
        scale[scale == 0] = 1.0
        for x in xs:
            x /= scale.astype(work)
    return [x.astype(np.float32, copy=False) for x in xs], mean, scale


def _root_mean_square(x: np.ndarray) -> np.ndarray:
    """Per-column root mean square, accumulated in float64 a block of rows at a time (no full-size copy)."""
    squares = np.zeros(x.shape[1])
    block = np.empty((min(_STATS_CHUNK_ROWS, len(x)), x.shape[1]), dtype=x.dtype)
    for start in range(0, len(x), _STATS_CHUNK_ROWS):
        rows = x[start:start + _STATS_CHUNK_ROWS]
        np.square(rows, out=block[:len(rows)])
        squares += block[:len(rows)].sum(axis=0, dtype=np.float64)
    return np.sqrt(squares / len(x))
