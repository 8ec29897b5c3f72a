"""A trained network's figures on a split (:mod:`autodnn.metrics`), and the searched score of every epoch.

The loops measure a split's loss and the task's in-graph score (accuracy, or a regression's R²) each epoch
(:mod:`autodnn.training.loops`). A study that searches another metric (``--metric balanced_accuracy`` ...) gets
it each epoch from :class:`EpochScorer`, which predicts the validation split and measures it on the host, so
that pruning, early-stopping's kept epoch and the trial's value all follow the metric the user chose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from autodnn.metrics import IN_GRAPH_SCORES, figures_of, searched_of
from autodnn.training import jax_eval, jax_loop, loops

if TYPE_CHECKING:
    from autodnn.datasets import Dataset

#: Searched scores the loops measure in the compiled evaluation, with no predictions on the host.
IN_GRAPH = tuple(IN_GRAPH_SCORES.values())


def searched_name(dataset: Dataset, metric: str | None) -> str:
    """The number a training reports as ``val_<it>`` for ``metric`` (:func:`autodnn.metrics.searched_of`)."""
    return searched_of(dataset.task, metric)


def predict(model: keras.Model, dataset: Dataset, split: str) -> np.ndarray:
    """Class probabilities ``(n, n_classes)``, or a regression's predictions ``(n,)`` in the target's units."""
    x = getattr(dataset, f"x_{split}")
    if keras.backend.backend() == "jax":
        output = jax_eval.evaluator(model).predict(model, jax_loop.device_data(dataset).split(split))
    else:
        output = model.predict(x, batch_size=loops.EVAL_ROWS, verbose=0)
    output = np.asarray(output, dtype=np.float64)
    return dataset.in_target_units(output) if dataset.is_regression else output


def constant_answer(dataset: Dataset) -> Any:
    """What a net that learned nothing answers: the training class shares, or the training target's median."""
    if dataset.is_regression:
        return float(np.median(dataset.in_target_units(dataset.y_train)))
    return np.bincount(dataset.y_train, minlength=dataset.n_classes) / max(len(dataset.y_train), 1)


def split_figures(model: keras.Model, dataset: Dataset, split: str) -> dict[str, float]:
    """Every figure of the task (:func:`autodnn.metrics.figures_of`) of ``model`` on one split, unprefixed."""
    actual = getattr(dataset, f"y_{split}")
    if dataset.is_regression:
        actual = dataset.in_target_units(actual)
    return figures_of(dataset.task, actual, predict(model, dataset, split), constant_answer(dataset))


class EpochScorer(keras.callbacks.Callback):
    """Adds ``val_<searched>`` to each epoch's logs, for the callbacks after it (place it first).

    Args:
        dataset: Whose validation split is measured.
        searched: A name of :data:`autodnn.metrics.METRICS`' ``searched`` numbers not in :data:`IN_GRAPH`.
    """

    def __init__(self, dataset: Dataset, searched: str) -> None:
        super().__init__()
        self.dataset, self.key, self.searched = dataset, f"val_{searched}", searched

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        loss = logs.get("val_loss")
        if loss is None or not np.isfinite(loss):
            logs[self.key] = float("nan")
            return
        logs[self.key] = split_figures(self.model, self.dataset, "valid")[self.searched]
