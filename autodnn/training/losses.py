"""The loss a network trains on: cross-entropy (weighted by class where asked), or a regression's MSE or Huber."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from autodnn.metrics import class_weights

if TYPE_CHECKING:
    from autodnn.config import TrialConfig
    from autodnn.datasets import Dataset

LOSS = "sparse_categorical_crossentropy"


class WeightedCrossEntropy(keras.losses.Loss):
    """Sparse categorical cross-entropy with each row's loss times its class's weight.

    The same as Keras' ``fit(class_weight=...)`` computes, but inside the loss, so that the compiled epochs of
    every backend (:mod:`autodnn.training.loops`) and the LR finder weigh rows alike without sample weights.

    Args:
        weights: One weight a class.
    """

    def __init__(self, weights: list[float], name: str = "weighted_crossentropy", reduction: Any = "sum_over_batch_size"
                 ) -> None:
        super().__init__(name=name, reduction=reduction)
        self.weights = [float(w) for w in weights]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        weights = keras.ops.take(keras.ops.convert_to_tensor(self.weights, dtype=y_pred.dtype), labels)
        return keras.losses.sparse_categorical_crossentropy(labels, y_pred) * weights

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weights": self.weights}


def row_weights(config: TrialConfig, dataset: Dataset) -> np.ndarray | None:
    """Each class's weight under ``config.class_weight`` (None: every row weighs the same)."""
    if dataset.is_regression or config.class_weight != "balanced":
        return None
    return class_weights(dataset.y_train, dataset.n_classes)


def loss_of(config: TrialConfig, dataset: Dataset) -> Any:
    """The training loss: cross-entropy for classes (weighted under ``class_weight: balanced``); for a regression
    MSE or Huber (``config.regression_loss``), on the standardized target."""
    if dataset.is_regression:
        if config.regression_loss == "huber":
            return keras.losses.Huber(delta=config.huber_delta)
        return "mean_squared_error"
    weights = row_weights(config, dataset)
    return LOSS if weights is None else WeightedCrossEntropy(weights.tolist())


def loss_key(config: TrialConfig, dataset: Dataset) -> tuple[float, ...] | None:
    """What of the loss a compiled program holds besides the configuration: the class weights, if any."""
    weights = row_weights(config, dataset)
    return None if weights is None else tuple(round(float(w), 12) for w in weights)
