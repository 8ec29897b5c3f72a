"""The training loops behind :func:`autodnn.training.trainer.train`: whole epochs compiled, data kept on the device.

Keras' ``fit`` runs Python for every batch: it slices the arrays, copies the batch to the device, calls the
compiled step and dispatches callbacks. For the small dense nets autodnn searches that overhead is most of an
epoch at batch 32 (benchmarks/throughput.py). So each backend gets the loop that removes it:

- JAX: one ``jax.jit`` function trains a whole epoch. ``lax.scan`` runs Keras' own stateless
  ``model.train_step`` (loss, regularization, loss scaling, optimizer, constraints and metrics as ``fit``
  computes them) over batches gathered on the device from a permutation, and validation is one more compiled
  call. Python runs once per epoch.
- TensorFlow: ``fit`` on a ``tf.data`` pipeline that gathers shuffled batches from tensors made once, compiled
  with ``steps_per_execution`` = one epoch and XLA (``jit_compile``), so an epoch is one graph call.
- Any other backend (PyTorch): ``fit`` on a :class:`keras.utils.PyDataset` of the same batches.

Every loop has the same semantics: each epoch draws a fresh permutation from ``seed``, trains
``len(x_train) // batch_size`` full batches and drops the ragged remainder (a partial batch would compile
the step a second time), then validates once. Callbacks see what ``fit`` with ``steps_per_execution`` shows
them: epoch hooks as usual, batch hooks once per epoch.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from autodnn.training import jax_eval, jax_loop

if TYPE_CHECKING:
    from autodnn.datasets import Dataset

#: Rows per compiled evaluation call; larger than any training batch, small enough for any device.
EVAL_ROWS = jax_loop.EVAL_ROWS


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: full batches only (at least one, of all rows, when data is scarce)."""
    return max(1, n_train // batch_size)


def effective_batch_size(n_train: int, batch_size: int) -> int:
    """The batch size actually trained: ``batch_size``, or every row when there are fewer."""
    return min(batch_size, n_train)


def compile_options(steps: int) -> dict[str, Any]:
    """Extra ``model.compile`` arguments for this backend's loop.

    Args:
        steps: Optimizer steps per epoch (:func:`steps_per_epoch`).
    """
    if keras.backend.backend() == "tensorflow":
        # One graph call per epoch, fused by XLA: 2.3x the samples per CPU-second of TensorFlow's plain loop.
        return {"steps_per_execution": steps, "jit_compile": True}
    return {}


@dataclass
class FitOutcome:
    """What the loop measured besides what the callbacks recorded.

    Attributes:
        steps_per_epoch: Optimizer steps per epoch.
        batch_size: Rows per step.
    """

    steps_per_epoch: int
    batch_size: int

    @property
    def samples_per_epoch(self) -> int:
        """Training rows seen per epoch."""
        return self.steps_per_epoch * self.batch_size


def fit(
    model: keras.Model,
    dataset: Dataset,
    *,
    batch_size: int,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    seed: int,
    verbose: int = 0,
    program_key: Hashable | None = None,
) -> FitOutcome:
    """Trains a compiled ``model`` on ``dataset``'s training split, validating once per epoch.

    Args:
        model: A compiled Keras model (compiled with :func:`compile_options`).
        dataset: Its ``x_train``/``y_train`` are trained on, ``x_valid``/``y_valid`` give ``val_loss`` and
            ``val_accuracy``.
        batch_size: Rows per optimizer step.
        epochs: Epochs at most; a callback may stop sooner through ``model.stop_training``.
        callbacks: Keras callbacks; epoch hooks fire every epoch, batch hooks once per epoch.
        seed: Seeds the order of the batches of every epoch.
        verbose: 0 silent, otherwise one progress line per epoch.
        program_key: On JAX, models trained with the same key reuse one compiled epoch and evaluation
            (:func:`autodnn.training.programs.program_key` says when that is right); None compiles for this model.

    Returns:
        The steps and batch size the epochs used.
    """
    n_train = len(dataset.x_train)
    outcome = FitOutcome(steps_per_epoch(n_train, batch_size), effective_batch_size(n_train, batch_size))
    backend = keras.backend.backend()
    if backend == "jax":
        jax_loop.JaxLoop(model, jax_loop.device_data(dataset), outcome.steps_per_epoch, outcome.batch_size,
                         program_key).run(
            epochs, callbacks, seed, verbose)
    elif backend == "tensorflow":
        _fit_tensorflow(model, dataset, outcome, epochs, callbacks, seed, verbose)
    else:
        _fit_batches(model, dataset, outcome, epochs, callbacks, seed, verbose)
    return outcome


def fit_population(
    models: list[keras.Model],
    dataset: Dataset,
    *,
    batch_size: int,
    epochs: int,
    callbacks: list[list[keras.callbacks.Callback]],
    seeds: list[int],
    program_key: Hashable | None = None,
) -> FitOutcome:
    """Trains several compiled models of one structure together, each as :func:`fit` would train it alone.

    JAX only (:class:`autodnn.training.jax_loop.JaxPopulation`): the members' states are stacked and one vmapped
    program trains them all, each with its own batch order (``seeds``), callbacks and stopping.

    Args:
        models: Compiled models with the same network and optimizer structure (one program key).
        dataset: What they train and validate on.
        batch_size: Rows per optimizer step, the same for all.
        epochs: Epochs at most; each member stops on its own.
        callbacks: Each member's callbacks.
        seeds: Each member's batch-order seed.
        program_key: Their common :func:`autodnn.training.programs.program_key`; None compiles for these models.

    Raises:
        ValueError: Not on JAX, or lists of different lengths.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(f"population training needs the JAX backend, not {keras.backend.backend()}.")
    if not len(models) == len(callbacks) == len(seeds) or not models:
        raise ValueError("give one list of callbacks and one seed for each of at least one model.")
    n_train = len(dataset.x_train)
    outcome = FitOutcome(steps_per_epoch(n_train, batch_size), effective_batch_size(n_train, batch_size))
    population = jax_loop.JaxPopulation(models, jax_loop.device_data(dataset), outcome.steps_per_epoch,
                                        outcome.batch_size, program_key)
    population.run(epochs, callbacks, seeds)
    return outcome


def sweep_steps(model: keras.Model, dataset: Dataset, *, batch: int, program_key: Hashable | None = None
                ) -> jax_loop.JaxSweep | None:
    """The LR finder's compiled steps on this backend (:class:`autodnn.training.lr_finder.StepRunner`).

    JAX sweeps in compiled chunks (:class:`autodnn.training.jax_loop.JaxSweep`); None on every other backend,
    where the finder calls ``train_on_batch`` one batch at a time.
    """
    if keras.backend.backend() != "jax":
        return None
    return jax_loop.JaxSweep(model, jax_loop.device_data(dataset), batch, program_key)


def evaluate(model: keras.Model, dataset: Dataset, split: str) -> tuple[float, float]:
    """Loss (regularization included, as ``fit`` reports it) and accuracy of ``model`` on one split.

    Args:
        model: A compiled model.
        dataset: Holds the split.
        split: ``valid`` or ``test``.

    Returns:
        ``(loss, accuracy)``.
    """
    x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    if keras.backend.backend() == "jax":
        return jax_eval.evaluator(model).evaluate(model, jax_loop.device_data(dataset).split(split))
    loss, accuracy = model.evaluate(x, y, batch_size=EVAL_ROWS, verbose=0)
    return float(loss), float(accuracy)


# --- TensorFlow ----------------------------------------------------------------------------------------------


def _tf_tensors(dataset: Dataset) -> tuple[Any, ...]:
    cached = _TF_TENSORS.get(dataset)
    if cached is None:
        import tensorflow as tf

        cached = _TF_TENSORS[dataset] = tuple(
            tf.constant(a) for a in (dataset.x_train, dataset.y_train, dataset.x_valid, dataset.y_valid)
        )
    return cached


_TF_TENSORS: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _fit_tensorflow(
    model: keras.Model, dataset: Dataset, outcome: FitOutcome, epochs: int,
    callbacks: list[keras.callbacks.Callback], seed: int, verbose: int,
) -> None:
    import tensorflow as tf

    x, y, x_valid, y_valid = _tf_tensors(dataset)
    n = len(dataset.y_train)
    # Only indices are shuffled; batches are gathered from the tensors, so no copy of the data is buffered.
    train = (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(outcome.batch_size, drop_remainder=True)
        .map(lambda rows: (tf.gather(x, rows), tf.gather(y, rows)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    valid = tf.data.Dataset.from_tensor_slices((x_valid, y_valid)).batch(EVAL_ROWS)
    # The dataset shuffles its indices itself; Keras' own shuffle does not apply to a tf.data.Dataset (and warns).
    model.fit(train, epochs=epochs, validation_data=valid, callbacks=callbacks, verbose=verbose, shuffle=False)


# --- any other backend ---------------------------------------------------------------------------------------


class _Batches(keras.utils.PyDataset):
    """Full shuffled batches of in-memory arrays, reshuffled every epoch from one seeded generator."""

    def __init__(self, x: np.ndarray, y: np.ndarray, outcome: FitOutcome, seed: int) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.steps, self.batch = outcome.steps_per_epoch, outcome.batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(y))

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch : (index + 1) * self.batch]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.y))


def _fit_batches(
    model: keras.Model, dataset: Dataset, outcome: FitOutcome, epochs: int,
    callbacks: list[keras.callbacks.Callback], seed: int, verbose: int,
) -> None:
    model.fit(
        _Batches(dataset.x_train, dataset.y_train, outcome, seed), epochs=epochs,
        validation_data=(dataset.x_valid, dataset.y_valid), validation_batch_size=EVAL_ROWS,
        callbacks=callbacks, verbose=verbose,
    )

