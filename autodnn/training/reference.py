"""The non-neural reference on tables: scikit-learn's gradient-boosted trees, as a user would run them.

``HistGradientBoostingClassifier`` with its defaults, but for early stopping on the same validation split the
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


def applies(dataset: Dataset) -> bool:
    """Whether the reference is trained for ``dataset``: on tables, not on images (where trees are no peer)."""
    return dataset.image_shape is None


def train_trees(dataset: Dataset, seed: int) -> dict[str, Any]:
    """Fits gradient-boosted trees with early stopping on ``dataset``'s validation split; tests them once.

    Returns:
        One run, as the final evaluation records a network's: ``seed``, ``val_accuracy``, ``val_loss`` (log
        loss), ``test_accuracy``, ``test_loss``, ``epochs`` (the trees kept, one per boosting iteration) and
        ``seconds``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss

    start = time.perf_counter()
    model = HistGradientBoostingClassifier(early_stopping=True, random_state=seed)
    model.fit(dataset.x_train, dataset.y_train, X_val=dataset.x_valid, y_val=dataset.y_valid)
    labels = np.arange(dataset.n_classes)

    def measured(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        probabilities = model.predict_proba(x)
        accuracy = float(np.mean(model.classes_[probabilities.argmax(axis=1)] == y))
        full = np.zeros((len(x), dataset.n_classes))
        full[:, model.classes_] = probabilities
        return accuracy, float(log_loss(y, full, labels=labels))

    val_accuracy, val_loss = measured(dataset.x_valid, dataset.y_valid)
    test_accuracy, test_loss = measured(dataset.x_test, dataset.y_test)
    return {"seed": seed, "val_accuracy": val_accuracy, "val_loss": val_loss, "test_accuracy": test_accuracy,
            "test_loss": test_loss, "epochs": int(model.n_iter_), "seconds": time.perf_counter() - start}


def majority_share(dataset: Dataset) -> float:
    """Validation accuracy of always answering the most frequent class of training."""
    counts = np.bincount(dataset.y_train, minlength=dataset.n_classes)
    return float(np.mean(dataset.y_valid == int(np.argmax(counts))))


def beats_majority(runs: list[dict[str, Any]], majority: float) -> bool:
    """Whether a configuration's validation accuracy beats ``majority`` beyond the spread of its seeds (one
    standard deviation; with one seed, any margin)."""
    values = [r["val_accuracy"] for r in runs if isinstance(r.get("val_accuracy"), float)
              and math.isfinite(r["val_accuracy"])]
    if not values:
        return False
    mean = sum(values) / len(values)
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return mean - spread > majority
