"""Which epoch's weights a run keeps: the best validation loss, the best validation accuracy, or by data size."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras
import numpy as np

from autodnn.config import SMALL_VALIDATION

if TYPE_CHECKING:
    from autodnn.config import TrialConfig

__all__ = ["BestAccuracy", "best_epoch", "restore_rule"]


def restore_rule(config: TrialConfig, n_valid: int, *, regression: bool = False) -> str:
    """``val_loss`` or ``val_accuracy``: what ``config.restore_best`` means for a validation split of ``n_valid`` rows.

    A regression always keeps its best-loss epoch: its loss is the squared (or Huber) error the score ranks by.
    """
    if regression:
        return "val_loss"
    if config.restore_best != "auto":
        return config.restore_best
    return "val_accuracy" if n_valid >= SMALL_VALIDATION else "val_loss"


def best_epoch(history: dict[str, list[float]], restore_best: str) -> int:
    """The 0-based epoch whose weights a run keeps (``restore_best``; 0 when no epoch is finite)."""
    losses = history.get("val_loss", [])
    finite = [i for i, loss in enumerate(losses) if math.isfinite(loss)]
    if not finite:
        return 0
    if restore_best == "val_loss":
        return min(finite, key=lambda i: (losses[i], i))
    scores = history[restore_best]
    return min(finite, key=lambda i: (-scores[i] if math.isfinite(scores[i]) else math.inf, losses[i], i))


class BestAccuracy(keras.callbacks.Callback):
    """Keeps the weights of the epoch of best validation score (``key``: the accuracy, or the searched metric;
    lower loss on a tie) and restores them."""

    def __init__(self, key: str = "val_accuracy") -> None:
        super().__init__()
        self.key = key
        self.best: tuple[float, float] | None = None
        self.weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        loss, accuracy = float(logs.get("val_loss", math.nan)), float(logs.get(self.key, math.nan))
        if not (math.isfinite(loss) and math.isfinite(accuracy)):
            return
        if self.best is None or (-accuracy, loss) < self.best:
            self.best = (-accuracy, loss)
            self.weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.weights is not None:
            self.model.set_weights(self.weights)
