"""What one training run produced: :class:`TrialResult`, JSON-able for the study and the final evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import keras
import numpy as np


@dataclass
class TrialResult:
    """What one training run produced.

    Attributes:
        val_accuracy: Validation accuracy of the restored weights (``config.restore_best``: the epoch of
            best validation loss, or of best validation accuracy).
        val_loss: Validation loss of the restored weights.
        train_accuracy: Training accuracy at the best epoch, as Keras measured it during the epoch.
        train_loss: Training loss at the best epoch.
        epochs: Epochs trained.
        best_epoch: 1-based epoch whose weights were kept.
        stopped: ``completed`` (ran all epochs), ``early_stopping``, ``pruned`` or ``nan``.
        reason: Why training stopped early, in words (empty when it completed).
        history: Per-epoch lists of ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``.
        epoch_times: Wall seconds of each epoch, validation included.
        learning_rate: The initial (for 1cycle: peak) learning rate used.
        lr_finder: The learning-rate finder's curve and pick, when it ran.
        mc_val_accuracy: Validation accuracy with MC dropout, when the net has dropout and it was asked for.
        test_accuracy: Test accuracy, only when the caller asked for a test evaluation.
        test_loss: Test loss, likewise.
        mc_test_accuracy: Test accuracy with MC dropout, likewise.
        n_params: Trainable and non-trainable parameters of the network.
        samples_per_second: Training samples processed per second of epoch time.
        task: ``classification`` or ``regression`` (a regression's accuracy fields are NaN or None).
        searched: The number the search maximizes (:attr:`autodnn.metrics.Metric.searched`): ``val_<it>``
            is in ``figures``, and :attr:`score` is its value.
        figures: Every figure of the task (:mod:`autodnn.metrics`) of the restored weights on validation
            (``val_`` + name) and, when the test split was evaluated, on test (``test_`` + name); a
            regression's errors in the target's units.
        model: The trained network, only when :func:`train` was asked to keep it (``keep_model``); never
            part of :meth:`to_dict` or :attr:`metrics`.
    """

    val_accuracy: float
    val_loss: float
    train_accuracy: float
    train_loss: float
    epochs: int
    best_epoch: int
    stopped: str
    reason: str = ""
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_times: list[float] = field(default_factory=list)
    learning_rate: float = 0.0
    lr_finder: dict[str, Any] | None = None
    mc_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    mc_test_accuracy: float | None = None
    n_params: int = 0
    samples_per_second: float = 0.0
    task: str = "classification"
    searched: str = "accuracy"
    figures: dict[str, float] = field(default_factory=dict)
    model: keras.Model | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Returns the result as JSON-able values (NaN becomes None)."""
        return _json_safe({f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"})

    @property
    def score(self) -> float:
        """The searched number on validation (``figures["val_" + searched]``); NaN where it was not measured."""
        value = self.figures.get(f"val_{self.searched}")
        if value is None:
            return self.val_accuracy if self.searched == "accuracy" else float("nan")
        return float(value)

    @property
    def metrics(self) -> dict[str, Any]:
        """The scalar fields and the figures, flat: everything but the per-epoch history, epoch times and
        LR-finder curve."""
        stored = self.to_dict()
        flat = {k: v for k, v in stored.items() if k not in ("history", "epoch_times", "lr_finder", "figures")}
        return {**flat, **stored["figures"]}

    def evaluation_run(self, seed: int, seconds: float) -> dict[str, Any]:
        """One run of the final evaluation (:mod:`autodnn.evaluate`), from a training that tested its network."""
        return {
            "seed": seed,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "val_accuracy": self.val_accuracy,
            "val_loss": self.val_loss,
            "mc_test_accuracy": self.mc_test_accuracy,
            "epochs": self.epochs,
            "seconds": seconds,
            "learning_rate": self.learning_rate,
            "stopped": self.stopped,
            "history": self.to_dict()["history"],
            **_json_safe(self.figures),
        }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value
