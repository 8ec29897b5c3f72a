"""The loss a network trains on: cross-entropy (weighted by class, smoothed, where asked), or a regression's MSE or
Huber."""

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
    """Sparse categorical cross-entropy with each row's loss times its class's weight, and label smoothing.

    The weights are what Keras' ``fit(class_weight=...)`` computes, but inside the loss, so that the compiled
    epochs of every backend (:mod:`autodnn.training.loops`) and the LR finder weigh rows alike without sample
    weights. Label smoothing moves ``smoothing`` of the target from the true class to all classes alike, as
    Keras' ``CategoricalCrossentropy(label_smoothing=...)`` does for one-hot targets: the loss is
    ``(1 - smoothing) * CE(true class) + smoothing * mean over classes of CE``.

    Args:
        weights: One weight a class; None weighs every row alike.
        smoothing: The label smoothing, in ``[0, 1)``.
    """

    def __init__(self, weights: list[float] | None = None, smoothing: float = 0.0, name: str = "weighted_crossentropy",
                 reduction: Any = "sum_over_batch_size") -> None:
        super().__init__(name=name, reduction=reduction)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.smoothing = float(smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        loss = keras.losses.sparse_categorical_crossentropy(labels, y_pred)
        if self.smoothing > 0:
            every = -keras.ops.mean(keras.ops.log(keras.ops.clip(y_pred, keras.config.epsilon(), 1.0)), axis=-1)
            loss = (1.0 - self.smoothing) * loss + self.smoothing * every
        if self.weights is None:
            return loss
        return loss * keras.ops.take(keras.ops.convert_to_tensor(self.weights, dtype=y_pred.dtype), labels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weights": self.weights, "smoothing": self.smoothing}


def row_weights(config: TrialConfig, dataset: Dataset) -> np.ndarray | None:
    """Each class's weight under ``config.class_weight`` (None: every row weighs the same)."""
    if dataset.is_regression or config.class_weight != "balanced":
        return None
    return class_weights(dataset.y_train, dataset.n_classes)


def loss_of(config: TrialConfig, dataset: Dataset) -> Any:
    """The training loss: cross-entropy for classes (weighted under ``class_weight: balanced``, smoothed under
    ``label_smoothing``); for a regression
    MSE or Huber (``config.regression_loss``), on the standardized target."""
    if dataset.is_regression:
        if config.regression_loss == "huber":
            return keras.losses.Huber(delta=config.huber_delta)
        return "mean_squared_error"
    weights = row_weights(config, dataset)
    if weights is None and config.label_smoothing == 0:
        return LOSS
    return WeightedCrossEntropy(None if weights is None else weights.tolist(), config.label_smoothing)


def loss_key(config: TrialConfig, dataset: Dataset) -> tuple[float, ...] | None:
    """What of the loss a compiled program holds besides the configuration: the class weights, if any."""
    weights = row_weights(config, dataset)
    return None if weights is None else tuple(round(float(w), 12) for w in weights)
