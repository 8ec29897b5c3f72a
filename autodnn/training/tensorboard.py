"""TensorBoard logs of trials: epoch scalars and hyperparameters (HParams plugin), on any Keras backend.

``autodnn search --tensorboard DIR`` gives every trial its own folder under ``DIR`` (:func:`run_name`):
:class:`TensorBoardLogger` writes there, each epoch, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
``learning_rate`` and, where 1cycle cycles it, ``momentum`` (SGD) or ``beta_1`` (Adam's family), plus the
trial's hyperparameters once; :func:`write_experiment` writes the search space's parameters and the metrics
once at ``DIR``'s top, so that TensorBoard's HParams view compares the trials (``tensorboard --logdir DIR``).

The summaries are written with ``tf.summary`` whatever the Keras backend: TensorFlow is a dependency of
autodnn, but this module imports it (and TensorBoard) only when a logger or an experiment is made, so a
search without ``--tensorboard`` pays nothing. This module is Keras level: it never imports Optuna.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from autodnn.errors import UsageError
from autodnn.optim import current_learning_rate

if TYPE_CHECKING:
    from autodnn.space import Param, SearchSpace

__all__ = ["METRICS", "SCALARS", "TensorBoardLogger", "config_hparams", "encode_hparams", "experiment_written",
           "run_name", "write_experiment"]

#: The epoch scalars every classification trial logs, as :class:`autodnn.training.trainer.TrialResult` names them
#: in its history; a regression logs ``r2`` and ``val_r2`` in place of the accuracies, and a study searching
#: another metric its ``val_`` score too (:data:`SCORES`).
SCALARS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
#: Further scores an epoch's logs may hold.
SCORES = ("r2", "val_r2", "val_balanced_accuracy", "val_f1_macro", "val_roc_auc", "val_log_loss_skill",
          "val_mae_skill")

#: Metrics of the HParams view: tag, display name, dataset; the study's own metric comes first.
METRICS = (
    ("val_accuracy", "validation accuracy", "validation"),
    ("val_loss", "validation loss", "validation"),
    ("accuracy", "training accuracy", "training"),
    ("loss", "training loss", "training"),
)

_MISSING = "TensorBoard logs need TensorFlow's tensorboard package: pip install tensorboard"


def run_name(number: int, baseline: str | None = None) -> str:
    """The folder of a trial under the logs' top folder: ``trial-0007``, or ``trial-0001-book-2e`` for a baseline.

    The trial number comes first, zero-padded, so that folders sort in the order the trials started.
    """
    name = f"trial-{number:04d}"
    return f"{name}-{baseline}" if baseline else name


def _summary_api() -> tuple[Any, Any]:
    """``(tf, hp)``: TensorFlow and TensorBoard's HParams API, imported on first use.

    Raises:
        UsageError: TensorFlow or the tensorboard package is not installed.
    """
    try:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp
    except ImportError as exc:
        raise UsageError(_MISSING) from exc
    if keras.backend.backend() != "tensorflow":
        # Summaries need only the CPU; a CUDA build of TensorFlow would otherwise reserve GPU memory that the
        # JAX or PyTorch backend trains in. Once TensorFlow has started its runtime the devices are fixed.
        try:
            tf.config.set_visible_devices([], "GPU")
        except (RuntimeError, ValueError):
            pass
    return tf, hp


class TensorBoardLogger(keras.callbacks.Callback):
    """Writes a training run's epoch scalars and hyperparameters as TensorBoard event files.

    The learning rate (and 1cycle's momentum) is read from the optimizer at the end of each epoch, after the
    callbacks before this one ran (``ReduceLROnPlateau`` among them): put it after them, as
    :func:`autodnn.training.trainer.train` does, and it logs what the trainer's history records.

    Args:
        log_dir: The run's folder; created when missing.
        hparams: Hyperparameter values of the run (``bool``, numbers or strings, see :func:`encode_hparams`),
            written once through TensorBoard's HParams plugin; None writes none.
        trial_id: The run's name in the HParams view; defaults to the folder's name.

    Raises:
        UsageError: TensorFlow or the tensorboard package is not installed.
    """

    def __init__(self, log_dir: str | Path, *, hparams: Mapping[str, Any] | None = None,
                 trial_id: str | None = None) -> None:
        super().__init__()
        self._tf, self._hp = _summary_api()
        self.log_dir = Path(log_dir)
        self.hparams = dict(hparams) if hparams is not None else None
        self.trial_id = trial_id or self.log_dir.name
        self._writer: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._writer = self._tf.summary.create_file_writer(str(self.log_dir))
        if self.hparams is not None:
            with self._writer.as_default():
                self._hp.hparams(self.hparams, trial_id=self.trial_id, start_time_secs=time.time())
            self._writer.flush()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._writer is None:
            self.on_train_begin()
        values = {key: float(value) for key, value in (logs or {}).items() if key in SCALARS or key in SCORES}
        optimizer = self.model.optimizer
        values["learning_rate"] = current_learning_rate(optimizer)
        momentum = _cycled_momentum(optimizer)
        if momentum is not None:
            values[momentum[0]] = momentum[1]
        with self._writer.as_default(step=epoch):
            for tag, value in values.items():
                self._tf.summary.scalar(tag, value)
        # Flushed every epoch, so that a TensorBoard watching the search shows the trials in flight.
        self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _cycled_momentum(optimizer: keras.optimizers.Optimizer) -> tuple[str, float] | None:
    """``(name, value)`` of the momentum 1cycle cycles (:mod:`autodnn.optim`), or None when it cycles none."""
    if getattr(optimizer, "momentum_schedule", None) is None:
        return None
    name = optimizer.momentum_name
    return name, float(keras.ops.convert_to_numpy(getattr(optimizer, name)))


# --- The experiment: the space's parameters, and each trial's values in the same types ----------------------


def experiment_written(root: str | Path) -> bool:
    """Whether ``root`` already holds event files at its top (an experiment summary of an earlier search)."""
    return any(Path(root).glob("events.out.tfevents.*"))


def write_experiment(root: str | Path, space: SearchSpace) -> None:
    """Writes the HParams experiment at ``root``'s top: the space's searched parameters and :data:`METRICS`.

    Integer and float ranges become intervals, categorical parameters their choices (as strings where the
    choices mix types or include null, see :func:`encode_hparams`).

    Raises:
        UsageError: TensorFlow or the tensorboard package is not installed.
    """
    tf, hp = _summary_api()
    hparams = [hp.HParam(param.name, _domain(hp, param)) for param in space.params if param.kind != "fixed"]
    kinds = {"training": hp.Metric.TRAINING, "validation": hp.Metric.VALIDATION}
    metrics = [hp.Metric(tag, display_name=name, dataset_type=kinds[kind]) for tag, name, kind in METRICS]
    writer = tf.summary.create_file_writer(str(root))
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()


def _domain(hp: Any, param: Param) -> Any:
    if param.kind == "int":
        return hp.IntInterval(int(param.low), int(param.high))
    if param.kind == "float":
        return hp.RealInterval(float(param.low), float(param.high))
    kind = _choice_type(param.choices)
    return hp.Discrete([_encode(v, kind) for v in param.choices], dtype=kind)


def _choice_type(choices: tuple[Any, ...]) -> type:
    """The HParams type of a categorical parameter: ``bool``, ``float`` (any numbers) or ``str`` otherwise."""
    if choices and all(isinstance(v, bool) for v in choices):
        return bool
    if choices and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in choices):
        return float
    return str


def _encode(value: Any, kind: type | None) -> Any:
    if kind is str or not isinstance(value, (bool, int, float, str)):
        # The plugin has no null and one type per parameter: `clipnorm: [null, 1.0]` is a string parameter.
        return value if isinstance(value, str) else str(value)
    return float(value) if kind is float else value


def encode_hparams(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` in the types :func:`write_experiment` declared for them (numbers stay numbers).

    Args:
        space: The search space of the experiment.
        values: Parameter name -> value, such as an Optuna trial's ``params``; names the space does not
            search are kept, with None and other non-scalars as strings.
    """
    kinds = {p.name: _choice_type(p.choices) for p in space.params if p.kind == "categorical"}
    return {name: _encode(value, kinds.get(name)) for name, value in values.items()}


def config_hparams(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """The searched parameters' values in a configuration that was not sampled (a baseline, a retried trial).

    A conditional parameter is left out where its ``when`` does not hold, as sampling would leave it out.
    """
    values: dict[str, Any] = {}
    for param in space.params:
        if param.kind == "fixed" or param.name not in config:
            continue
        if all(config.get(k) in allowed for k, allowed in param.when.items()):
            values[param.name] = config[param.name]
    return values
