"""The non-neural reference on tables: scikit-learn's gradient-boosted trees, as a user would run them.

``HistGradientBoostingClassifier`` (``HistGradientBoostingRegressor`` for a regression) with its defaults, but for early stopping on the same validation split the
networks use (passed as ``X_val`` / ``y_val``, so the number of trees is chosen on validation, never on the
test split), trained on the same scaled arrays with the same seeds as the final evaluation's networks, and
tested once. Trees need no scaling; the networks' standardization changes no split they can make.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from autodnn.datasets import Dataset

NAME = "trees"
TITLE = "gradient-boosted trees (not a neural net)"
#: ``HistGradientBoostingClassifier``'s default number of boosting iterations, the most early stopping keeps.
MAX_ITER = 100
#: Seconds of one tree over one training cell (a row's feature) in :func:`estimated_seconds`; fits on two
#: shared CPU cores took from 30 to 250 ns, and early stopping mostly keeps fewer than ``MAX_ITER`` iterations.
SECONDS_PER_CELL_TREE = 1e-7
#: Seconds of each seed besides growing trees: binning the features, testing, importing scikit-learn.
FIXED_SECONDS = 2.0


def applies(dataset: Dataset) -> bool:
    """Whether the reference is trained for ``dataset``: on tables, not on images (where trees are no peer)."""
    return dataset.image_shape is None


def train_trees(dataset: Dataset, seed: int, *, balanced: bool = False) -> dict[str, Any]:
    """Fits gradient-boosted trees with early stopping on ``dataset``'s validation split; tests them once.

    Args:
        dataset: The table.
        seed: The trees' ``random_state``.
        balanced: Weigh the classes alike (``class_weight="balanced"``), as the networks do under
            ``--class-weight balanced``.

    Returns:
        One run, as the final evaluation records a network's: ``seed``, every figure of the task on validation
        and test (``val_`` / ``test_`` + each name of :mod:`autodnn.metrics`; a regression's errors in the
        target's units), ``val_loss`` and ``test_loss`` (the log loss, or the squared error of the standardized
        target, as the networks'), ``iterations`` (the boosting iterations kept, each one tree a class, or one
        for two classes), the same number as ``epochs`` for the tables that list networks' epochs beside it,
        and ``seconds``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from autodnn.metrics import figures_of

    start = time.perf_counter()
    if dataset.is_regression:
        model = HistGradientBoostingRegressor(early_stopping=True, random_state=seed)
        reference: Any = float(np.median(dataset.in_target_units(dataset.y_train)))
    else:
        model = HistGradientBoostingClassifier(early_stopping=True, random_state=seed,
                                               class_weight="balanced" if balanced else None)
        reference = np.bincount(dataset.y_train, minlength=dataset.n_classes) / len(dataset.y_train)
    model.fit(dataset.x_train, dataset.y_train, X_val=dataset.x_valid, y_val=dataset.y_valid)
    run: dict[str, Any] = {"seed": seed, "iterations": int(model.n_iter_), "epochs": int(model.n_iter_)}
    for split, prefix in (("valid", "val"), ("test", "test")):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        if dataset.is_regression:
            standardized = model.predict(x)
            run[f"{prefix}_loss"] = float(np.mean((standardized - y) ** 2))
            figures = figures_of("regression", dataset.in_target_units(y), dataset.in_target_units(standardized),
                                 reference)
        else:
            probabilities = np.zeros((len(x), dataset.n_classes))
            probabilities[:, model.classes_] = model.predict_proba(x)
            figures = figures_of("classification", y, probabilities, reference)
            run[f"{prefix}_loss"] = figures["log_loss"]
        run.update({f"{prefix}_{name}": value for name, value in figures.items()})
    run["seconds"] = time.perf_counter() - start
    return run


def estimated_seconds(n_rows: int, n_features: int, n_classes: int) -> float:
    """A generous estimate of one seed's fit and tests, for the search's time budget: every one of the
    ``max_iter`` (100) boosting iterations growing one tree a class (one in all for two classes) over every
    training cell, at :data:`SECONDS_PER_CELL_TREE`, plus :data:`FIXED_SECONDS`."""
    trees = MAX_ITER * (n_classes if n_classes > 2 else 1)
    return FIXED_SECONDS + SECONDS_PER_CELL_TREE * n_rows * n_features * trees


def majority_share(dataset: Dataset) -> float:
    """The share of the most frequent class among the validation labels: the validation accuracy of always
    answering it, the least a network must beat. For a regression 0, the R² of answering the mean."""
    if dataset.is_regression:
        return 0.0
    counts = np.bincount(dataset.y_valid, minlength=dataset.n_classes)
    return float(counts.max() / max(1, len(dataset.y_valid)))


def seed_spread(runs: list[dict[str, Any]], key: str = "val_accuracy") -> float:
    """Sample standard deviation of the runs' finite validation scores (``key``; 0 with fewer than two)."""
    values = _val_scores(runs, key)
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def beats_majority(entries: list[dict[str, Any]], majority: float, key: str = "val_accuracy") -> bool:
    """Whether any configuration beats ``majority`` on validation by more than the seeds' spread.

    Each entry's mean validation score (``key``: accuracy, or a regression's R²) over its seeds is compared with ``majority`` plus the spread of the
    best's (``entries[0]``) validation accuracy across the seeds (:func:`seed_spread`): a margin smaller than
    what a change of seed moves is no sign that the network learned more than the class shares.
    """
    if not entries:
        return False
    spread = seed_spread(entries[0].get("runs") or [], key)
    for entry in entries:
        values = _val_scores(entry.get("runs") or [], key)
        if values and sum(values) / len(values) - majority > spread:
            return True
    return False


def _val_scores(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
