"""The JAX training loop: a whole epoch is one compiled ``lax.scan`` over batches gathered on the device.

:func:`autodnn.training.loops.fit` describes the semantics every backend's loop shares. Here ``lax.scan`` runs Keras'
own stateless ``model.train_step`` (loss, regularization, loss scaling, optimizer, constraints and metrics as
``fit`` computes them) over batches gathered on the device from a permutation; validation is one more
compiled call, and Python runs once per epoch. Compiled programs are kept by
:func:`autodnn.training.programs.program_key`, so a trial whose network and optimizer kind were already compiled in
this process traces and compiles nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from autodnn.training.jax_eval import JaxEvaluator, Split
from autodnn.training.programs import ProgramCache

if TYPE_CHECKING:
    from autodnn.datasets import Dataset

#: Rows per compiled evaluation call; larger than any training batch, small enough for any device.
EVAL_ROWS = 2048


# --- data prepared once per process -------------------------------------------------------------------------


@dataclass
class _DeviceData:
    """A dataset's arrays on the accelerator (or in the backend's CPU memory), made once per process."""

    dataset: weakref.ref
    x_train: Any
    y_train: Any
    eval_rows: int
    splits: dict[str, Split] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            dataset = self.dataset()
            assert dataset is not None, "the dataset was freed while its device copy was in use"
            self.splits[name] = _pad_split(getattr(dataset, f"x_{name}"), getattr(dataset, f"y_{name}"), self.eval_rows)
        return self.splits[name]


# Keyed by the Dataset object itself: a search trains every trial on one dataset, so its device copy is made
# for the first trial and reused by the others; it goes away with the dataset.
_DEVICE_DATA: weakref.WeakKeyDictionary[Any, _DeviceData] = weakref.WeakKeyDictionary()


def device_data(dataset: Dataset) -> _DeviceData:
    data = _DEVICE_DATA.get(dataset)
    if data is None:
        import jax.numpy as jnp

        # One row size serves validation and test, so a trial compiles its evaluation once.
        rows = min(EVAL_ROWS, _round_up(max(len(dataset.y_valid), 1), 8))
        data = _DeviceData(weakref.ref(dataset), jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train), rows)
        _DEVICE_DATA[dataset] = data
    return data


def _pad_split(x: np.ndarray, y: np.ndarray, rows: int) -> Split:
    import jax.numpy as jnp

    n = len(y)
    total = max(rows, _round_up(n, rows))
    xs = np.zeros((total, x.shape[1]), dtype=x.dtype)
    xs[:n] = x
    ys = np.zeros(total, dtype=y.dtype)
    ys[:n] = y
    mask = (np.arange(total) < n).astype(np.float32)
    chunks = range(0, total, rows)
    spread = float(np.sum((y - y.mean()) ** 2, dtype=np.float64)) if y.dtype.kind == "f" and n else 0.0
    return Split(
        [jnp.asarray(xs[i : i + rows]) for i in chunks],
        [jnp.asarray(ys[i : i + rows]) for i in chunks],
        [jnp.asarray(mask[i : i + rows]) for i in chunks],
        n,
        spread,
    )


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# --- JAX -----------------------------------------------------------------------------------------------------


@dataclass
class _Program:
    """A compiled epoch and evaluation, and the shapes of the state they were traced for."""

    epoch: Any
    evaluator: JaxEvaluator
    spec: tuple


#: Programs kept per process, by :func:`autodnn.training.programs.program_key`. Each keeps the network it was traced
#: from alive (its layers are the program's code); later models of the same key pass their own state.
PROGRAMS: ProgramCache[Hashable, _Program] = ProgramCache(size=8)


def _program(model: keras.Model, data: _DeviceData, steps: int, batch: int, key: Hashable | None,
             compile_epoch: Any) -> _Program:
    """The program ``model`` trains with: the one kept under ``key`` when its state has the same shapes."""
    x0, y0 = data.x_train[:batch], data.y_train[:batch]
    # Builds the compiled loss and metrics, which fit would do on its first batch.
    model._symbolic_build(data_batch=(x0, y0))
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    spec = _state_spec(model)
    # The training rows' shape too: the program takes them whole, and a new shape would retrace it with the model
    # it was first built for (whose optimizer may since have changed, as after the LR finder's sweep).
    full_key = (compile_epoch.__name__, key, steps, batch, data.x_train.shape)
    program = PROGRAMS.get(full_key) if key is not None else None
    if program is None or program.spec != spec:
        program = _Program(compile_epoch(model, steps, batch), JaxEvaluator(model), spec)
        if key is not None:
            PROGRAMS.put(full_key, program)
    object.__setattr__(model, "_autodnn_evaluator", program.evaluator)
    return program


class JaxLoop:
    """Drives callbacks around a compiled epoch; the model's variables are synced once per epoch."""

    def __init__(self, model: keras.Model, data: _DeviceData, steps: int, batch: int,
                 key: Hashable | None) -> None:
        self.model = model
        self.data = data
        self.steps = steps
        self.batch = batch
        program = _program(model, data, self.steps, self.batch, key, _jax_epoch_function)
        self.epoch_fn = program.epoch
        self.evaluator = program.evaluator

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
            logs["val_loss"], logs[self.evaluator.key] = self.evaluator.evaluate(model, self.data.split("valid"))
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


def _epoch_body(model: keras.Model, steps: int, batch: int) -> Any:
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

    return epoch


def _jax_epoch_function(model: keras.Model, steps: int, batch: int) -> Any:
    import jax

    # The dataset arrays are arguments, not closed-over constants: constants would be copied into the program.
    return jax.jit(_epoch_body(model, steps, batch))


def _population_epoch_function(model: keras.Model, steps: int, batch: int) -> Any:
    """The epoch of :func:`_epoch_body` for K stacked states and K orders at once (one program for each K)."""
    import jax

    return jax.jit(jax.vmap(_epoch_body(model, steps, batch), in_axes=(0, None, None, 0)))


class JaxPopulation:
    """Trains K models of one program together: their states stacked along a leading axis, one vmapped epoch.

    Every member keeps its own batch order (from its seed), callbacks, early stopping and stop decision, so
    it trains exactly as :class:`JaxLoop` would train it alone. A member that stops keeps its state; its
    slot is filled with a copy of a running member's state (computed, then dropped) so that the program's
    shape stays, until at most half the slots run: then the running members are packed into fewer slots
    (one more compilation, for that K). Each member's epoch reports its share of the population's wall time
    (``epoch_seconds`` in the logs).
    """

    def __init__(self, models: list[keras.Model], data: _DeviceData, steps: int, batch: int,
                 key: Hashable | None) -> None:
        self.models = models
        self.data = data
        self.steps = steps
        self.batch = batch
        programs = [_program(m, data, self.steps, self.batch, key, _population_epoch_function) for m in models]
        if key is None and len({p.spec for p in programs}) > 1:
            raise ValueError("the members of a population must share one network and optimizer structure.")
        self.epoch_fn = programs[0].epoch
        self.evaluator = programs[0].evaluator

    def run(self, epochs: int, callbacks: list[list[keras.callbacks.Callback]], seeds: list[int]) -> None:
        import time

        import jax
        import jax.numpy as jnp

        models = self.models
        hooks = [keras.callbacks.CallbackList(c, add_history=True, epochs=epochs, steps=self.steps, model=m)
                 for m, c in zip(models, callbacks)]
        rngs = [np.random.default_rng(seed) for seed in seeds]
        n_train = len(self.data.y_train)
        logs: list[dict[str, float]] = [{} for _ in models]
        for model, hook in zip(models, hooks):
            model.stop_training = False
            hook.on_train_begin()
        running = list(range(len(models)))
        slots = len(models)
        for epoch in range(epochs):
            start = time.perf_counter()
            if len(running) <= slots // 2:
                slots = len(running)
            members = running + [running[0]] * (slots - len(running))
            for i in running:
                models[i].reset_metrics()
                hooks[i].on_epoch_begin(epoch)
                hooks[i].on_train_batch_begin(0)
            orders = [rngs[i].permutation(n_train)[: self.steps * self.batch].astype(np.int32) for i in running]
            orders += [orders[0]] * (slots - len(running))
            state = jax.tree.map(lambda *values: jnp.stack(values), *[_jax_state(models[i]) for i in members])
            state, step_logs = self.epoch_fn(state, self.data.x_train, self.data.y_train, jnp.asarray(np.stack(orders)))
            step_logs = {name: np.asarray(values) for name, values in step_logs.items()}
            for slot, i in enumerate(running):
                _set_jax_state(models[i], jax.tree.map(lambda values, slot=slot: values[slot], state))
                logs[i] = {name: float(values[slot]) for name, values in step_logs.items()}
                hooks[i].on_train_batch_end(self.steps - 1, logs[i])
                logs[i]["val_loss"], logs[i][self.evaluator.key] = self.evaluator.evaluate(
                    models[i], self.data.split("valid"))
            share = (time.perf_counter() - start) / len(running)
            for i in running:
                logs[i]["epoch_seconds"] = share
                hooks[i].on_epoch_end(epoch, logs[i])
            running = [i for i in running if not models[i].stop_training]
            if not running:
                break
        for model, hook, last in zip(models, hooks, logs):
            hook.on_train_end(last)


class JaxSweep:
    """The LR finder's steps (:class:`autodnn.training.lr_finder.StepRunner`) as one compiled call per ``chunk`` steps.

    Each step trains its batch at its own rate, written into the optimizer's learning-rate variable inside the
    program, with the metrics reset first, so its loss is that batch's loss as ``train_on_batch`` reports it.
    The program is kept by ``key`` like the epochs, so a repeated architecture sweeps without compiling.
    """

    def __init__(self, model: keras.Model, data: _DeviceData, batch: int, key: Hashable | None, chunk: int = 50
                 ) -> None:
        self.model, self.data, self.chunk = model, data, chunk
        self.program = _program(model, data, chunk, batch, key, _sweep_function)

    def __call__(self, rows: np.ndarray, rates: list[float]) -> list[float]:
        import jax.numpy as jnp

        n = len(rates)
        padded_rows = np.resize(rows, (self.chunk, rows.shape[1]))
        padded_rates = np.resize(np.asarray(rates, dtype=np.float32), self.chunk)
        self.model.reset_metrics()
        state = _jax_state(self.model)
        state, losses = self.program.epoch(state, self.data.x_train, self.data.y_train, jnp.asarray(padded_rows),
                                           jnp.asarray(padded_rates))
        _set_jax_state(self.model, state)
        return [float(v) for v in np.asarray(losses)[:n]]


def _sweep_function(model: keras.Model, steps: int, batch: int) -> Any:
    """``(state, x, y, rows, rates) -> (state, losses)``: one train step per row of ``rows``, each at its rate."""
    import jax

    optimizer = model.optimizer
    rate_index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer.learning_rate)

    def sweep(state: Any, x: Any, y: Any, rows: Any, rates: Any) -> Any:
        TRACES[0] += 1
        trainable, non_trainable, optimizer_values, fresh_metrics = state

        def step(carry: Any, inputs: Any) -> Any:
            index, rate = inputs
            trainable, non_trainable, optimizer_values = carry
            optimizer_values = list(optimizer_values)
            optimizer_values[rate_index] = rate.astype(optimizer_values[rate_index].dtype)
            logs, (trainable, non_trainable, optimizer_values, _) = model.train_step(
                (trainable, non_trainable, optimizer_values, fresh_metrics), (x[index], y[index]))
            return (trainable, non_trainable, optimizer_values), logs["loss"]

        carry, losses = jax.lax.scan(step, (trainable, non_trainable, optimizer_values), (rows, rates))
        return (*carry, fresh_metrics), losses

    return jax.jit(sweep)
