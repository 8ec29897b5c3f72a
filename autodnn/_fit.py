"""The training loops behind :func:`autodnn.trainer.train`: whole epochs compiled, data kept on the device.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from autodnn.programs import ProgramCache

if TYPE_CHECKING:
    from autodnn.datasets import Dataset

#: Rows per compiled evaluation call; larger than any training batch, small enough for any device.
EVAL_ROWS = 2048


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
            (:func:`autodnn.programs.program_key` says when that is right); None compiles for this model.

    Returns:
        The steps and batch size the epochs used.
    """
    n_train = len(dataset.x_train)
    outcome = FitOutcome(steps_per_epoch(n_train, batch_size), effective_batch_size(n_train, batch_size))
    backend = keras.backend.backend()
    if backend == "jax":
        _JaxLoop(model, _data(dataset), outcome, program_key).run(epochs, callbacks, seed, verbose)
    elif backend == "tensorflow":
        _fit_tensorflow(model, dataset, outcome, epochs, callbacks, seed, verbose)
    else:
        _fit_batches(model, dataset, outcome, epochs, callbacks, seed, verbose)
    return outcome


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
        return _jax_evaluator(model).evaluate(model, _data(dataset).split(split))
    loss, accuracy = model.evaluate(x, y, batch_size=EVAL_ROWS, verbose=0)
    return float(loss), float(accuracy)


# --- data prepared once per process -------------------------------------------------------------------------


@dataclass
class _Split:
    """One evaluation split as device arrays: padded to whole chunks of ``rows`` and a mask of the real rows."""

    x: list[Any]
    y: list[Any]
    mask: list[Any]
    n: int


@dataclass
class _DeviceData:
    """A dataset's arrays on the accelerator (or in the backend's CPU memory), made once per process."""

    dataset: weakref.ref
    x_train: Any
    y_train: Any
    eval_rows: int
    splits: dict[str, _Split] = field(default_factory=dict)

    def split(self, name: str) -> _Split:
        if name not in self.splits:
            dataset = self.dataset()
            assert dataset is not None, "the dataset was freed while its device copy was in use"
            self.splits[name] = _pad_split(getattr(dataset, f"x_{name}"), getattr(dataset, f"y_{name}"), self.eval_rows)
        return self.splits[name]


# Keyed by the Dataset object itself: a search trains every trial on one dataset, so its device copy is made
# for the first trial and reused by the others; it goes away with the dataset.
_DEVICE_DATA: weakref.WeakKeyDictionary[Any, _DeviceData] = weakref.WeakKeyDictionary()


def _data(dataset: Dataset) -> _DeviceData:
    data = _DEVICE_DATA.get(dataset)
    if data is None:
        import jax.numpy as jnp

        # One row size serves validation and test, so a trial compiles its evaluation once.
        rows = min(EVAL_ROWS, _round_up(max(len(dataset.y_valid), 1), 8))
        data = _DeviceData(weakref.ref(dataset), jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train), rows)
        _DEVICE_DATA[dataset] = data
    return data


def _pad_split(x: np.ndarray, y: np.ndarray, rows: int) -> _Split:
    import jax.numpy as jnp

    n = len(y)
    total = max(rows, _round_up(n, rows))
    xs = np.zeros((total, x.shape[1]), dtype=x.dtype)
    xs[:n] = x
    ys = np.zeros(total, dtype=y.dtype)
    ys[:n] = y
    mask = (np.arange(total) < n).astype(np.float32)
    chunks = range(0, total, rows)
    return _Split(
        [jnp.asarray(xs[i : i + rows]) for i in chunks],
        [jnp.asarray(ys[i : i + rows]) for i in chunks],
        [jnp.asarray(mask[i : i + rows]) for i in chunks],
        n,
    )


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# --- JAX -----------------------------------------------------------------------------------------------------


@dataclass
class _Program:
    """A compiled epoch and evaluation, and the shapes of the state they were traced for."""

    epoch: Any
    evaluator: _JaxEvaluator
    spec: tuple


#: Programs kept per process, by :func:`autodnn.programs.program_key`. Each keeps the network it was traced
#: from alive (its layers are the program's code); later models of the same key pass their own state.
PROGRAMS: ProgramCache[Hashable, _Program] = ProgramCache(size=8)


class _JaxLoop:
    """Drives callbacks around a compiled epoch; the model's variables are synced once per epoch."""

    def __init__(self, model: keras.Model, data: _DeviceData, outcome: FitOutcome, key: Hashable | None) -> None:
        self.model = model
        self.data = data
        self.steps = outcome.steps_per_epoch
        self.batch = outcome.batch_size
        x0, y0 = data.x_train[: self.batch], data.y_train[: self.batch]
        # Builds the compiled loss and metrics, which fit would do on its first batch.
        model._symbolic_build(data_batch=(x0, y0))
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        spec = _state_spec(model)
        program = PROGRAMS.get((key, self.steps, self.batch)) if key is not None else None
        if program is None or program.spec != spec:
            program = _Program(_jax_epoch_function(model, self.steps, self.batch), _JaxEvaluator(model), spec)
            if key is not None:
                PROGRAMS.put((key, self.steps, self.batch), program)
        self.epoch_fn = program.epoch
        self.evaluator = program.evaluator
        object.__setattr__(model, "_autodnn_evaluator", program.evaluator)

    def run(self, epochs: int, callbacks: list[keras.callbacks.Callback], seed: int, verbose: int) -> None:
        import jax.numpy as jnp

        model = self.model
        hooks = keras.callbacks.CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
            steps=self.steps, model=model,
        )
        rng = np.random.default_rng(seed)
        n_train = len(self.data.y_train)
        model.stop_training = False
        hooks.on_train_begin()
        logs: dict[str, float] = {}
        for epoch in range(epochs):
            model.reset_metrics()
            hooks.on_epoch_begin(epoch)
            hooks.on_train_batch_begin(0)
            order = rng.permutation(n_train)[: self.steps * self.batch].astype(np.int32)
            state = _jax_state(model)
            state, step_logs = self.epoch_fn(state, self.data.x_train, self.data.y_train, jnp.asarray(order))
            _set_jax_state(model, state)
            logs = {name: float(value) for name, value in step_logs.items()}
            hooks.on_train_batch_end(self.steps - 1, logs)
            logs["val_loss"], logs["val_accuracy"] = self.evaluator.evaluate(model, self.data.split("valid"))
            hooks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        hooks.on_train_end(logs)


def _jax_state(model: keras.Model) -> tuple[list[Any], ...]:
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )


def _state_spec(model: keras.Model) -> tuple:
    return tuple(tuple((tuple(v.shape), str(v.dtype)) for v in part) for part in _jax_state(model))


def _set_jax_state(model: keras.Model, state: tuple[list[Any], ...]) -> None:
    owners = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
              model.metrics_variables)
    for variables, values in zip(owners, state):
        for variable, value in zip(variables, values):
            variable.assign(value)


#: Epoch programs traced in this process (one item, counted up while tracing): tests read it.
TRACES = [0]


def _jax_epoch_function(model: keras.Model, steps: int, batch: int) -> Any:
    """``(state, x, y, order) -> (state, logs)``: ``steps`` train steps on rows ``order`` of ``x``, ``y``."""
    import jax

    def epoch(state: Any, x: Any, y: Any, order: Any) -> Any:
        TRACES[0] += 1

        def step(state: Any, rows: Any) -> Any:
            logs, state = model.train_step(state, (x[rows], y[rows]))
            return state, logs

        # Logs leave the scan as per-step outputs (a few scalars a step), the last of which holds the epoch's
        # running means; carrying them would need their structure before tracing, i.e. a second trace.
        state, logs = jax.lax.scan(step, state, order.reshape(steps, batch))
        return state, jax.tree.map(lambda values: values[-1], logs)

    # The dataset arrays are arguments, not closed-over constants: constants would be copied into the program.
    return jax.jit(epoch)


class _JaxEvaluator:
    """Loss and accuracy over padded chunks, one compiled call per chunk, for any model shaped like ``model``."""

    def __init__(self, model: keras.Model) -> None:
        import jax

        def chunk(trainable: Any, non_trainable: Any, x: Any, y: Any, mask: Any) -> Any:
            y_pred, _, losses = model.stateless_call(trainable, non_trainable, x, training=False, return_losses=True)
            y_pred = keras.ops.cast(y_pred, "float32")
            per_row = keras.losses.sparse_categorical_crossentropy(y, y_pred)
            correct = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1) == y, "float32")
            penalty = sum(keras.ops.cast(loss, "float32") for loss in losses) if losses else 0.0
            return keras.ops.sum(per_row * mask), keras.ops.sum(correct * mask), penalty

        self.chunk = jax.jit(chunk)

    def evaluate(self, model: keras.Model, split: _Split) -> tuple[float, float]:
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        loss_sum, correct, penalty = 0.0, 0.0, 0.0
        parts = [self.chunk(trainable, non_trainable, x, y, m) for x, y, m in zip(split.x, split.y, split.mask)]
        for part_loss, part_correct, part_penalty in parts:
            loss_sum += float(part_loss)
            correct += float(part_correct)
            penalty = float(part_penalty)
        n = max(split.n, 1)
        return loss_sum / n + penalty, correct / n


def _jax_evaluator(model: keras.Model) -> _JaxEvaluator:
    # One evaluator per model (validation, the final evaluation and the test split share its compiled
    # function), kept on the model: a dictionary keyed by the model would keep it alive through the evaluator.
    evaluator = model.__dict__.get("_autodnn_evaluator")
    if evaluator is None:
        evaluator = _JaxEvaluator(model)
        object.__setattr__(model, "_autodnn_evaluator", evaluator)
    return evaluator


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
    model.fit(train, epochs=epochs, validation_data=valid, callbacks=callbacks, verbose=verbose)


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

