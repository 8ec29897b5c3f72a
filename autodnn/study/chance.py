"""What a network that learned nothing scores on validation, for the searched metric: the chance rule's level."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autodnn.metrics import class_weights, figures_of, searched_of

if TYPE_CHECKING:
    from autodnn.datasets import Dataset

#: Standard errors of the constant answer's validation accuracy within which a trial's accuracy is still chance.
CHANCE_ERRORS = 2.0
#: Searched numbers whose constant answer's level moves with the luck of the split like an accuracy does.
_PROPORTIONS = ("accuracy", "balanced_accuracy", "f1_macro")


@dataclass(frozen=True)
class Chance:
    """What a network that learned nothing scores on validation: it answers the class priors, or for a regression
    the training median.

    Attributes:
        score: The searched number (:attr:`autodnn.metrics.Metric.searched`) of the constant answer on the
            validation split: the most frequent class's share for accuracy, 1 / classes for balanced accuracy,
            0.5 for ROC AUC, 0 for a skill score; a regression's R² of at least 0 (0 is the split's own mean).
        loss: The validation log loss of answering the training class shares as probabilities; under class
            weights, the weighted log loss of the best constant answer (the weighted shares: uniform under
            ``balanced``), as the weighted loss measures a trial; for a regression ``-inf`` (its score says it).
        noise: How far above ``score`` a trial's score may lie by the luck of a validation split this size
            (:data:`CHANCE_ERRORS` standard errors of a proportion; none for the other scores).
        answer: The constant answer, in words.
    """

    score: float
    loss: float
    noise: float
    answer: str = "the most frequent class"

    @classmethod
    def of(cls, y_train: Any, y_valid: Any, n_classes: int, searched: str = "accuracy",
           weights: np.ndarray | None = None) -> Chance | None:
        """The chance level of a classification split; None without validation rows.

        Args:
            y_train: Training class indices.
            y_valid: Validation class indices.
            n_classes: Number of classes.
            searched: The searched number (:attr:`autodnn.metrics.Metric.searched`).
            weights: Each class's loss weight, where the trials train and validate with class weights.
        """
        train, valid = np.asarray(y_train), np.asarray(y_valid)
        if not valid.size or not train.size:
            return None
        counts = np.bincount(train, minlength=n_classes)
        shares = counts / train.size
        constant = np.broadcast_to(shares, (valid.size, n_classes))
        figures = figures_of("classification", valid, constant, shares)
        if weights is None:
            log_loss = float(-np.mean(np.log(np.clip(shares[valid], 1e-12, None))))
        else:
            weighted = weights * counts / max(float(np.sum(weights * counts)), 1e-12)
            log_loss = float(-np.mean(weights[valid] * np.log(np.clip(weighted[valid], 1e-12, None))))
        score = figures[searched]
        noise = CHANCE_ERRORS * math.sqrt(score * (1 - score) / valid.size) if searched in _PROPORTIONS else 0.0
        return cls(score, log_loss, noise)

    @classmethod
    def of_dataset(cls, dataset: Dataset, metric: str | None = None, class_weight: str = "none") -> Chance | None:
        """The chance level of ``dataset``'s validation split for ``metric`` (None: the task's default), for
        trials trained with ``class_weight``."""
        searched = searched_of(dataset.task, metric)
        if not dataset.is_regression:
            weights = class_weights(dataset.y_train, dataset.n_classes) if class_weight == "balanced" else None
            return cls.of(dataset.y_train, dataset.y_valid, dataset.n_classes, searched, weights)
        if not len(dataset.y_valid):
            return None
        actual = dataset.in_target_units(dataset.y_valid)
        median = float(np.median(dataset.in_target_units(dataset.y_train)))
        figures = figures_of("regression", actual, np.full(actual.shape, median), median)
        return cls(max(figures[searched], 0.0), -math.inf, 0.0, "the training median")

    def learned(self, best_score: float, best_loss: float) -> bool:
        """Whether a trial beat chance: a validation loss below the priors', or a score above the constant
        answer's beyond the split's noise. Either shows learning; on imbalanced classes the loss moves first."""
        return best_loss < self.loss or best_score > self.score + self.noise
