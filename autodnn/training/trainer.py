"""Trains one configuration on one dataset and returns what happened, epoch by epoch.

The trainer knows nothing of Optuna: it talks to the search through a :class:`Reporter`, which receives each
epoch's validation metrics and may ask to stop (pruning).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras
import numpy as np

from autodnn.errors import ConfigError
from autodnn.metrics import IN_GRAPH_SCORES
from autodnn.network.conv import build_conv_model
from autodnn.network.layers import mc_accuracy, trained_params
from autodnn.network.model import build_model
from autodnn.optim import build_optimizer, current_learning_rate
from autodnn.training import loops
from autodnn.training.losses import loss_key, loss_of
from autodnn.training.lr_finder import LRFinder, LRFinderResult
from autodnn.training.programs import program_key
from autodnn.training.restore import BestAccuracy, best_epoch, restore_rule
from autodnn.training.result import TrialResult
from autodnn.training.scoring import IN_GRAPH, EpochScorer, searched_name, split_figures
from autodnn.training.session import seed_everything, start_session
from autodnn.training.tensorboard import TensorBoardLogger

if TYPE_CHECKING:
    from autodnn.config import TrialConfig
    from autodnn.datasets import Dataset

def _metrics(dataset: Dataset) -> list[Any]:
    return [keras.metrics.R2Score(name="r2")] if dataset.is_regression else ["accuracy"]


class Reporter(Protocol):
    """How the trainer tells the search about progress, and learns that it should stop."""

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        """Receives the metrics of the epoch just finished (0-based ``epoch``)."""

    def should_stop(self) -> str | None:
        """Returns a reason to stop training now (the trial is hopeless), or None to go on."""


def train(
    config: TrialConfig,
    dataset: Dataset,
    *,
    max_epochs: int,
    reporter: Reporter | None = None,
    seed: int = 0,
    evaluate_test: bool = False,
    mc_samples: int | None = None,
    verbose: int = 0,
    precision: str | None = None,
    tensorboard_dir: str | Path | None = None,
    hparams: Mapping[str, Any] | None = None,
    keep_model: bool = False,
    metric: str | None = None,
) -> TrialResult:
    """Builds the network of ``config`` and trains it with early stopping on ``dataset``.

    An epoch is one compiled call with the data on the device (see :mod:`autodnn.training.loops`): every epoch trains
    ``len(x_train) // batch_size`` full batches in a fresh order and drops the ragged remainder, then
    validates once.

    Args:
        config: The hyperparameters.
        dataset: Train, validation and test arrays; only train and validation are used unless
            ``evaluate_test``.
        max_epochs: Upper bound on epochs; ``config.epochs`` may ask for fewer, and early stopping usually ends
            sooner.
        reporter: Receives each epoch's metrics and may stop training.
        seed: Seeds weights, dropout and shuffling, so a run repeats on the same backend and device.
        evaluate_test: Also evaluate the final weights on the test split.
        mc_samples: Passes of MC dropout at evaluation; defaults to ``config.mc_samples``.
        verbose: 0 is silent; otherwise one progress line per epoch.
        precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``; None keeps what
            :func:`autodnn.backend.configure_device` set for this process (``float32`` by default).
        tensorboard_dir: Folder of TensorBoard event files for this run: the epoch scalars of the history,
            1cycle's momentum and ``hparams`` (:class:`autodnn.training.tensorboard.TensorBoardLogger`); None writes none.
        hparams: Hyperparameter values for TensorBoard's HParams plugin, with ``tensorboard_dir``.
        keep_model: Return the trained network (restored best weights) in ``model`` of the result, e.g. to
            save it; by default the result holds no model, so the network can be freed.
        metric: What the search optimizes (a name of :data:`autodnn.metrics.METRICS`): reported each epoch as
            ``val_`` + its searched number; None is accuracy, or a regression's RMSE (searched as R²).

    Returns:
        The result; a NaN loss or a stop asked by the reporter ends training early and says so in
        ``stopped`` and ``reason``.
    """
    start_session(precision)
    run = prepare(config, dataset, max_epochs=max_epochs, reporter=reporter, seed=seed,
                  tensorboard_dir=tensorboard_dir, hparams=hparams, metric=metric)
    outcome = loops.fit(run.model, dataset, batch_size=config.batch_size, epochs=run.epochs, callbacks=run.callbacks,
                       seed=seed, verbose=verbose, program_key=run.program_key)
    return finish(run, outcome, evaluate_test=evaluate_test, mc_samples=mc_samples, keep_model=keep_model)


@dataclass
class Run:
    """A network ready to train: built, its learning rate found, compiled, with the callbacks of its run.

    Attributes:
        config: The hyperparameters.
        dataset: What it trains on.
        model: The compiled network.
        callbacks: Its schedule's callbacks, early stopping, the epoch monitor and TensorBoard's logger.
        seed: The seed of its weights, dropout and batch order.
        learning_rate: The initial (for 1cycle: peak) learning rate.
        finder_result: The LR finder's sweep, when it ran.
        program_key: Which compiled program it can share (:func:`autodnn.training.programs.program_key`).
        epochs: The epochs it trains at most (:meth:`TrialConfig.trained_epochs` of the budget).
    """

    config: TrialConfig
    dataset: Dataset
    model: keras.Model
    callbacks: list[keras.callbacks.Callback]
    seed: int
    learning_rate: float
    finder_result: LRFinderResult | None
    program_key: tuple
    epochs: int
    monitor: _EpochMonitor = field(repr=False)
    early_stopping: keras.callbacks.EarlyStopping = field(repr=False)
    searched: str = "accuracy"


def prepare(
    config: TrialConfig,
    dataset: Dataset,
    *,
    max_epochs: int,
    reporter: Reporter | None = None,
    seed: int = 0,
    tensorboard_dir: str | Path | None = None,
    hparams: Mapping[str, Any] | None = None,
    metric: str | None = None,
) -> Run:
    """Builds and compiles the network of ``config`` (after :func:`start_session`); see :func:`train`."""
    searched = searched_name(dataset, metric)
    seed_everything(seed)
    epochs = config.trained_epochs(max_epochs)
    steps_per_epoch = loops.steps_per_epoch(len(dataset.x_train), config.batch_size)
    model = _network(config, dataset, seed)
    learning_rate = config.learning_rate
    finder_result = None
    if config.lr_finder:
        finder_result = sweep_learning_rate(model, config, dataset, seed=seed)
        learning_rate = float(finder_result.suggestion)
    optimizer, schedule_callbacks = build_optimizer(
        config, learning_rate, steps_per_epoch=steps_per_epoch, epochs=epochs
    )
    model.compile(optimizer=optimizer, loss=loss_of(config, dataset), metrics=_metrics(dataset),
                  **loops.compile_options(steps_per_epoch))
    monitor = _EpochMonitor(reporter, optimizer, searched, in_graph=IN_GRAPH_SCORES[dataset.task])
    by_loss = restore_rule(config, len(dataset.y_valid), regression=dataset.is_regression) == "val_loss"
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=by_loss
    )
    if not by_loss:
        schedule_callbacks = [*schedule_callbacks, BestAccuracy(f"val_{searched}")]
    if searched not in IN_GRAPH:
        schedule_callbacks = [EpochScorer(dataset, searched), *schedule_callbacks]
    key = program_key(
        config, n_features=dataset.n_features, n_classes=dataset.n_outputs, steps=steps_per_epoch,
        batch=loops.effective_batch_size(len(dataset.x_train), config.batch_size), epochs=epochs,
        precision=keras.config.dtype_policy().name, loss=loss_key(config, dataset),
        image_shape=dataset.image_shape,
    )
    callbacks = [*schedule_callbacks, early_stopping, monitor, *_tensorboard(tensorboard_dir, hparams)]
    return Run(config, dataset, model, callbacks, seed, learning_rate, finder_result, key, epochs, monitor,
               early_stopping, searched)


def finish(
    run: Run, outcome: loops.FitOutcome, *, evaluate_test: bool = False, mc_samples: int | None = None,
    keep_model: bool = False,
) -> TrialResult:
    """The result of a trained :class:`Run`: restored weights validated (and tested, when asked)."""
    config, dataset, model, monitor = run.config, run.dataset, run.model, run.monitor
    history = {k: [float(v) for v in values] for k, values in monitor.history.items()}
    epochs = len(monitor.epoch_times)
    rule = restore_rule(config, len(dataset.y_valid), regression=dataset.is_regression)
    best = best_epoch(history, "val_loss" if rule == "val_loss" else f"val_{run.searched}")
    val_loss, val_score = loops.evaluate(model, dataset, "valid")
    if monitor.stop_reason:
        stopped, reason = monitor.stop_kind, monitor.stop_reason
    elif run.early_stopping.stopped_epoch > 0:
        stopped = "early_stopping"
        reason = f"no better validation loss for {config.patience} epochs"
    else:
        stopped, reason = "completed", ""
    samples = mc_samples if mc_samples is not None else config.mc_samples
    result = TrialResult(
        val_accuracy=float("nan") if dataset.is_regression else val_score,
        val_loss=val_loss,
        train_accuracy=history["accuracy"][best] if epochs and not dataset.is_regression else float("nan"),
        train_loss=history["loss"][best] if epochs else float("nan"),
        epochs=epochs,
        best_epoch=best + 1,
        stopped=stopped,
        reason=reason,
        history=history,
        epoch_times=monitor.epoch_times,
        learning_rate=run.learning_rate,
        lr_finder=run.finder_result.to_dict() if run.finder_result is not None else None,
        n_params=trained_params(model),
        samples_per_second=outcome.samples_per_epoch * epochs / max(sum(monitor.epoch_times), 1e-9),
        task=dataset.task,
        searched=run.searched,
    )
    diverged = stopped == "nan"
    splits = ("valid", "test") if evaluate_test else ("valid",)
    for split in splits if not diverged else ():
        prefix = "val" if split == "valid" else "test"
        result.figures.update({f"{prefix}_{k}": v for k, v in split_figures(model, dataset, split).items()})
    if evaluate_test:
        result.test_loss, test_score = loops.evaluate(model, dataset, "test")
        if not dataset.is_regression:
            result.test_accuracy = test_score
    if not dataset.is_regression and samples and config.has_dropout and not diverged:
        result.mc_val_accuracy = mc_accuracy(model, dataset.x_valid, dataset.y_valid, samples)
        if evaluate_test:
            result.mc_test_accuracy = mc_accuracy(model, dataset.x_test, dataset.y_test, samples)
    if keep_model:
        result.model = model
    return result


def _network(config: TrialConfig, dataset: Dataset, seed: int) -> keras.Model:
    if config.family == "conv":
        if dataset.image_shape is None:
            raise ConfigError("family 'conv' needs images (a dataset with an image shape); this dataset is a table: "
                              "search it with a dense space such as --space default")
        regression = dataset.is_regression
        return build_conv_model(config, dataset.image_shape, 1 if regression else dataset.n_classes, seed=seed,
                                priors=None if regression else class_shares(dataset), regression=regression)
    if dataset.is_regression:
        return build_model(config, dataset.n_features, 1, seed=seed, regression=True)
    return build_model(config, dataset.n_features, dataset.n_classes, seed=seed, priors=class_shares(dataset))


def class_shares(dataset: Dataset) -> np.ndarray:
    """Each class's share of the training rows."""
    return np.bincount(dataset.y_train, minlength=dataset.n_classes) / max(len(dataset.y_train), 1)


def sweep_learning_rate(
    model: keras.Model, config: TrialConfig, dataset: Dataset, *, seed: int = 0, iterations: int | None = None
) -> LRFinderResult:
    """Runs the learning-rate finder on ``model`` with the optimizer of ``config`` at a constant rate.

    The model's weights are left as they were, so training starts from the same initialization.

    Args:
        model: The freshly built network.
        config: Gives the optimizer and batch size (the best rate depends on both).
        dataset: Its training split is swept over.
        seed: Order of the batches.
        iterations: Steps of the sweep; defaults to the book's 500, or 5 epochs when that is fewer (at
            least 50: small datasets are cycled through).
    """
    steps_per_epoch = loops.steps_per_epoch(len(dataset.x_train), config.batch_size)
    optimizer, _ = build_optimizer(config.replace(schedule="constant"), config.learning_rate,
                                   steps_per_epoch=steps_per_epoch, epochs=1)
    model.compile(optimizer=optimizer, loss=loss_of(config, dataset))
    finder = LRFinder(iterations=iterations or max(50, min(500, 5 * steps_per_epoch)), seed=seed)
    batch = loops.effective_batch_size(len(dataset.x_train), config.batch_size)
    key = program_key(config.replace(schedule="constant"), n_features=dataset.n_features,
                      n_classes=dataset.n_outputs, steps=0, batch=batch, epochs=1,
                      precision=keras.config.dtype_policy().name, loss=loss_key(config, dataset),
                      image_shape=dataset.image_shape)
    steps = loops.sweep_steps(model, dataset, batch=batch, program_key=key)
    return finder.find(model, dataset.x_train, dataset.y_train, batch_size=config.batch_size, steps=steps)


def find_learning_rate(
    config: TrialConfig, dataset: Dataset, *, seed: int = 0, iterations: int | None = None
) -> LRFinderResult:
    """Builds the network of ``config`` and sweeps the learning rate on it (``autodnn lr-find``)."""
    keras.backend.clear_session(free_memory=True)
    seed_everything(seed)
    model = _network(config, dataset, seed)
    return sweep_learning_rate(model, config, dataset, seed=seed, iterations=iterations)


class _EpochMonitor(keras.callbacks.Callback):
    """Times epochs, records metrics and the learning rate, stops on NaN and when the reporter asks."""

    def __init__(self, reporter: Reporter | None, optimizer: keras.optimizers.Optimizer, searched: str = "accuracy",
                 in_graph: str = "accuracy") -> None:
        super().__init__()
        scores = dict.fromkeys((f"val_{in_graph}", f"val_{searched}"))
        self.keys = ("loss", in_graph, "val_loss", *scores, "learning_rate")
        self.reporter = reporter
        self.optimizer_ref = optimizer
        self.history: dict[str, list[float]] = {}
        self.epoch_times: list[float] = []
        self.stop_kind = ""
        self.stop_reason = ""
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        # A population's loop gives each member its share of the epoch's wall time.
        self.epoch_times.append(logs.pop("epoch_seconds", None) or time.perf_counter() - self._start)
        logs["learning_rate"] = current_learning_rate(self.optimizer_ref)
        for key in self.keys:
            self.history.setdefault(key, []).append(float(logs.get(key, float("nan"))))
        if not (math.isfinite(logs.get("loss", math.nan)) and math.isfinite(logs.get("val_loss", math.nan))):
            self.stop_kind = "nan"
            self.stop_reason = f"loss became {logs.get('loss')} (validation {logs.get('val_loss')}) at epoch {epoch + 1}"
            self.model.stop_training = True
            return
        if self.reporter is None:
            return
        self.reporter.report(epoch, {k: float(v) for k, v in logs.items()})
        reason = self.reporter.should_stop()
        if reason:
            self.stop_kind, self.stop_reason = "pruned", reason
            self.model.stop_training = True


def _tensorboard(log_dir: str | Path | None, hparams: Mapping[str, Any] | None) -> list[keras.callbacks.Callback]:
    # The logger loads TensorFlow and TensorBoard when it is made, so a run without logs never does.
    return [] if log_dir is None else [TensorBoardLogger(log_dir, hparams=hparams)]
