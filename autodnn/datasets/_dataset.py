"""The :class:`Dataset` every loader ends in, and the raw arrays the loaders hand over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autodnn.errors import DatasetError


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train, validation and test arrays ready for a dense network, with what identifies them.

    A classification's targets are class indices; a regression's are the target standardized with the training
    rows' mean and standard deviation (``target_mean``, ``target_std``): :meth:`in_target_units` turns a
    prediction back.

    Attributes:
        name: Canonical spec: ``"digits"``, ``"cifar10"``, ``"csv:/abs/path.csv"``, ...
        x_train: Training features, float32, shape ``(n, n_features)``: flattened and scaled with statistics of
            ``x_train`` only.
        y_train: Class indices ``0 .. n_classes - 1``, int32, shape ``(n,)``; for a regression the standardized
            target, float32.
        x_valid: Validation features, scaled like ``x_train``.
        y_valid: Validation targets, like ``y_train``.
        x_test: Test features, scaled like ``x_train``.
        y_test: Test targets, like ``y_train``.
        class_names: Name of each class index (none for a regression).
        fingerprint: Hex digest of the raw arrays and of the split settings; equal fingerprints mean equal arrays.
        source: Where the data came from, for people (a file path, ``"scikit-learn bundled"``, ...).
        scaling: ``"standard"``, ``"unit"`` or ``"none"`` (see :func:`autodnn.datasets.load_dataset`).
        valid_fraction: Fraction of the training part that became ``x_valid``.
        seed: Seed of the shuffles and splits.
        image_shape: ``(height, width, channels)`` of image datasets before flattening, else ``None``.
        notes: What was done to a table's columns, one line each (columns left out, and why).
        preprocessor: For a table, the fitted ``ColumnTransformer`` that turns its raw rows into the features
            before scaling (:mod:`autodnn.datasets._columns`); else ``None``.
        task: ``"classification"`` or ``"regression"``.
        target_name: The target column of a table, for people (``""`` elsewhere).
        target_mean: A regression target's training mean (0 for a classification).
        target_std: A regression target's training standard deviation (1 for a classification).
        feature_mean: Per-feature mean subtracted by the scaling (``None`` where nothing was subtracted).
        feature_scale: Per-feature divisor of the scaling (``None`` where nothing was divided).
        test_rows: For a table, the rows of the file (counting from 0, header excluded) that make the test split,
            in ``x_test``'s order; else ``None``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    fingerprint: str
    source: str
    scaling: str = "standard"
    valid_fraction: float = 0.1
    seed: int = 0
    image_shape: tuple[int, ...] | None = None
    notes: tuple[str, ...] = ()
    preprocessor: Any = field(default=None, compare=False)
    task: str = "classification"
    target_name: str = ""
    target_mean: float = 0.0
    target_std: float = 1.0
    feature_mean: np.ndarray | None = field(default=None, compare=False)
    feature_scale: np.ndarray | None = field(default=None, compare=False)
    test_rows: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n_features = None
        for part in ("train", "valid", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.float32 or x.ndim != 2:
                raise DatasetError(f"dataset {self.name}: x_{part} is {x.dtype} with shape {x.shape}, "
                                   "expected a float32 array of shape (n, n_features)")
            expected = np.float32 if self.is_regression else np.int32
            if y.dtype != expected or y.shape != (len(x),):
                what = "float32 targets" if self.is_regression else "int32 class indices"
                raise DatasetError(f"dataset {self.name}: y_{part} is {y.dtype} with shape {y.shape}, "
                                   f"expected {what} of shape ({len(x)},)")
            if n_features is not None and x.shape[1] != n_features:
                raise DatasetError(f"dataset {self.name}: x_{part} has {x.shape[1]} features, "
                                   f"x_train has {n_features}; every part needs the same features")
            n_features = x.shape[1]
            if not self.is_regression and len(y) and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise DatasetError(f"dataset {self.name}: y_{part} holds labels outside "
                                   f"0..{len(self.class_names) - 1}; there are {len(self.class_names)} class names")

    @property
    def is_regression(self) -> bool:
        """Whether the target is a number to predict rather than a class."""
        return self.task == "regression"

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for a regression)."""
        return len(self.class_names)

    @property
    def n_outputs(self) -> int:
        """Units of the network's output layer: one a class, or one for a regression."""
        return 1 if self.is_regression else self.n_classes

    def in_target_units(self, values: Any) -> np.ndarray:
        """A regression's standardized targets or predictions in the target's own units, float64."""
        return np.asarray(values, dtype=np.float64).reshape(-1) * self.target_std + self.target_mean

    @property
    def n_features(self) -> int:
        """Number of input features of each example (after flattening and one-hot encoding)."""
        return int(self.x_train.shape[1])

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples in each part: ``{"train": ..., "valid": ..., "test": ...}``."""
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}

    def describe(self) -> dict[str, Any]:
        """Returns a JSON-able summary, without the arrays, for studies and reports."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "sizes": self.sizes,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "task": self.task,
            "target_name": self.target_name,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "source": self.source,
            "scaling": self.scaling,
            "valid_fraction": self.valid_fraction,
            "seed": self.seed,
            "image_shape": list(self.image_shape) if self.image_shape is not None else None,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        target = "regression" if self.is_regression else f"n_classes={self.n_classes}"
        return (f"Dataset(name={self.name!r}, sizes={self.sizes}, n_features={self.n_features}, "
                f"{target}, fingerprint={self.fingerprint!r})")


@dataclass(frozen=True, eq=False)
class RawData:
    """What a loader read, before splitting and scaling.

    Attributes:
        x_train: Examples of the training part, shape ``(n, ...)``: uint8 pixels ``(n, height, width, channels)``
            for images, numbers for tabular data.
        y_train: Class indices into ``class_names``, shape ``(n,)``; a regression's targets as float64.
        x_test: The official test examples, or ``None`` when the source has no test part.
        y_test: Class indices of ``x_test``, or ``None``.
        class_names: Name of each class index.
        source: Where the data came from, for people.
        table: A table's feature columns as read (every row; ``x_train`` is then an empty placeholder): they are
            encoded after the split, fitted on the training rows only.
        drop: Columns of ``table`` the user left out (``--drop``).
        task: ``"classification"`` or ``"regression"``.
        target_name: The target column of a table.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]
    source: str
    table: Any = None
    drop: tuple[str, ...] = ()
    task: str = "classification"
    target_name: str = ""

    @property
    def is_image(self) -> bool:
        """Whether the examples are uint8 pixels (so that ``scaling="unit"`` divides by 255)."""
        return self.x_train.dtype == np.uint8 and self.x_train.ndim >= 3


def one_line(exc: BaseException) -> str:
    """Returns the message of ``exc`` on one line, for embedding in a :class:`DatasetError`."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def encode_labels(
    y_train: np.ndarray, y_test: np.ndarray | None, where: str
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Turns labels (integers, integral floats, booleans or strings) into class indices.

    Classes are the sorted distinct labels of the training part; their names are the labels as text.

    Args:
        y_train: Labels of the training part, shape ``(n,)``.
        y_test: Labels of the test part, or ``None``.
        where: What the labels are, for messages (``"npz:/data/x.npz: y_train"``).

    Returns:
        ``(train indices, test indices or None, class names)``, indices as int64.

    Raises:
        DatasetError: The labels are continuous numbers, of an unusable type, or the test part has labels the
            training part lacks.
    """
    parts = [y_train] if y_test is None else [y_train, y_test]
    cleaned = [_label_values(y, where) for y in parts]
    classes = np.unique(cleaned[0])
    if len(classes) == 0:
        raise DatasetError(f"{where}: there are no examples; give at least one example of each class")
    codes = []
    for y in cleaned:
        idx = np.searchsorted(classes, y)
        idx = np.clip(idx, 0, len(classes) - 1)
        unknown = classes[idx] != y
        if unknown.any():
            extra = ", ".join(map(str, np.unique(y[unknown])[:5]))
            raise DatasetError(f"{where}: the test part has labels that the training part lacks ({extra}); "
                               "a model cannot learn classes it never sees, so add them to the training part")
        codes.append(idx.astype(np.int64))
    names = tuple(_label_name(v) for v in classes.tolist())
    return codes[0], (codes[1] if y_test is not None else None), names


def _label_values(y: np.ndarray, where: str) -> np.ndarray:
    if y.dtype == np.bool_ or np.issubdtype(y.dtype, np.integer):
        return y
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise DatasetError(f"{where}: labels contain NaN or infinite values; drop those rows or fill them")
        if (y != np.round(y)).any():
            example = y[y != np.round(y)][0]
            raise DatasetError(f"{where}: labels are continuous numbers (e.g. {example}), not classes; to predict "
                               "the number, use --task regression")
        return y.astype(np.int64)
    if y.dtype.kind in "US":
        return y
    if y.dtype == object:
        bad = [v for v in y.tolist() if not isinstance(v, (str, bool, int))]
        if bad:
            raise DatasetError(f"{where}: labels must be integers or text, but one is {type(bad[0]).__name__} "
                               f"({bad[0]!r}); convert the labels first")
        return np.array([str(v) for v in y.tolist()])
    raise DatasetError(f"{where}: labels of type {y.dtype} cannot be classes; give integers or text")


def _label_name(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
