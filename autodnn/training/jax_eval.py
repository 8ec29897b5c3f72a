"""Compiled evaluation on JAX: a split's loss and score (accuracy, or a regression's R²), and its predictions.

One :class:`JaxEvaluator` serves every model of one program (:mod:`autodnn.training.jax_loop`): it takes the
model's variables as arguments, so validation, the final evaluation and the test split share its compiled calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np


@dataclass
class Split:
    """One evaluation split as device arrays: padded to whole chunks of ``rows`` and a mask of the real rows."""

    x: list[Any]
    y: list[Any]
    mask: list[Any]
    n: int
    spread: float = 0.0
    """For a regression's float targets: the sum of squares around their mean (R²'s denominator)."""


class JaxEvaluator:
    """Loss and score over padded chunks, one compiled call per chunk, for any model shaped like ``model``.

    The score is the accuracy of a softmax classifier, or the R² of a one-output regressor (its loss the
    compiled one: squared or Huber error).
    """

    def __init__(self, model: keras.Model) -> None:
        import jax

        self.regression = model.output_shape[-1] == 1
        #: The log key of the score: ``val_accuracy``, or ``val_r2`` for a regression.
        self.key = "val_r2" if self.regression else "val_accuracy"
        weighted = isinstance(model.loss, keras.losses.Loss)
        row_loss = _row_loss(model.loss) if self.regression or weighted else None

        def chunk(trainable: Any, non_trainable: Any, x: Any, y: Any, mask: Any) -> Any:
            y_pred, _, losses = model.stateless_call(trainable, non_trainable, x, training=False, return_losses=True)
            y_pred = keras.ops.cast(y_pred, "float32")
            if self.regression:
                target = keras.ops.reshape(y, (-1, 1))
                per_row = row_loss(target, y_pred)
                hits = keras.ops.square(target[:, 0] - y_pred[:, 0])
            else:
                per_row = (row_loss(y, y_pred) if row_loss is not None
                           else keras.losses.sparse_categorical_crossentropy(y, y_pred))
                hits = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1) == y, "float32")
            penalty = sum(keras.ops.cast(loss, "float32") for loss in losses) if losses else 0.0
            return keras.ops.sum(per_row * mask), keras.ops.sum(hits * mask), penalty

        self.chunk = jax.jit(chunk)

        def outputs(trainable: Any, non_trainable: Any, x: Any) -> Any:
            y_pred, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return keras.ops.cast(y_pred, "float32")

        self.outputs = jax.jit(outputs)

    def predict(self, model: keras.Model, split: Split) -> np.ndarray:
        """The network's outputs for the split's rows (class probabilities, or one value a row), float32."""
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        parts = [np.asarray(self.outputs(trainable, non_trainable, x)) for x in split.x]
        output = np.concatenate(parts)[: split.n]
        return output[:, 0] if self.regression else output

    def evaluate(self, model: keras.Model, split: Split) -> tuple[float, float]:
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        loss_sum, correct, penalty = 0.0, 0.0, 0.0
        parts = [self.chunk(trainable, non_trainable, x, y, m) for x, y, m in zip(split.x, split.y, split.mask)]
        for part_loss, part_correct, part_penalty in parts:
            loss_sum += float(part_loss)
            correct += float(part_correct)
            penalty = float(part_penalty)
        n = max(split.n, 1)
        if self.regression:
            return loss_sum / n + penalty, 1.0 - correct / split.spread if split.spread > 0 else float("nan")
        return loss_sum / n + penalty, correct / n


def _row_loss(loss: Any) -> Any:
    """``(y_true, y_pred) -> loss of each row`` of a compiled regression loss (a name or a Keras loss object)."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config({**loss.get_config(), "reduction": None})
    return keras.losses.get(loss)


def evaluator(model: keras.Model) -> JaxEvaluator:
    # One evaluator per model (validation, the final evaluation and the test split share its compiled
    # function), kept on the model: a dictionary keyed by the model would keep it alive through the evaluator.
    evaluator = model.__dict__.get("_autodnn_evaluator")
    if evaluator is None:
        evaluator = JaxEvaluator(model)
        object.__setattr__(model, "_autodnn_evaluator", evaluator)
    return evaluator
