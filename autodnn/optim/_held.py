"""Float hyperparameters held in optimizer variables, so that one compiled train step serves many trials.

Keras optimizers read ``beta_1``, ``momentum``, ``rho``, ``weight_decay`` and the clipping threshold as Python
floats, and schedules compute the learning rate from Python floats: tracing bakes all of them into the
compiled program as constants, so two trials that differ only in a learning rate compile twice. Here they
are variables of the optimizer instead, i.e. part of the optimizer state that the train step takes as an
argument:

- :func:`held_optimizer` returns an optimizer class whose float hyperparameters (named by ``held``) and
  gradient-clipping threshold are scalar variables;
- :class:`StepTable` is a schedule tabulated at every step of the planned training and held in a variable of
  the optimizer: any schedule (Keras' own, 1cycle's rate and its momentum) becomes a lookup of the step.

What is left in the program is structure: which optimizer, whether it has momentum or weight decay, which
kind of clipping, how many steps the table holds. Trials that agree on it (and on the network) can share one
compiled program, and :mod:`autodnn.training.programs` names the fields that may differ.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from autodnn.optim._schedules import serializable

__all__ = ["StepTable", "held_optimizer"]


@serializable
class StepTable(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule's value at each step ``0 .. len - 1``, read from a variable of the optimizer that owns it.

    Until :meth:`attach` gives it a variable it reads its own constant table, so it also works on its own.
    Steps past the end read the last value.

    Args:
        values: The value at each step.
        source: The schedule the values were computed from, if any (:meth:`of`).
    """

    def __init__(self, values: Any, source: Any = None) -> None:
        self.values = np.asarray(values, dtype="float32").reshape(-1)
        if self.values.size == 0:
            raise ValueError("a step table needs at least one step.")
        self.source = source
        self.variable: keras.Variable | None = None

    @classmethod
    def of(cls, schedule: Any, steps: int) -> StepTable:
        """Tabulates ``schedule`` (a function of the step) at steps ``0 .. steps - 1``."""
        return cls(ops.convert_to_numpy(schedule(np.arange(max(steps, 1), dtype="int64"))), source=schedule)

    def attach(self, optimizer: keras.optimizers.Optimizer, name: str) -> None:
        """Makes the table a variable of ``optimizer``, so that it travels with the optimizer's state."""
        values = self.values
        self.variable = optimizer.add_variable(
            shape=values.shape, initializer=lambda shape, dtype=None: ops.convert_to_tensor(values, dtype),
            dtype="float32", name=name,
        )

    def __len__(self) -> int:
        return int(self.values.size)

    def __call__(self, step: Any) -> Any:
        table = self.variable if self.variable is not None else ops.convert_to_tensor(self.values)
        index = ops.clip(ops.cast(step, "int32"), 0, len(self) - 1)
        return ops.take(table, index)

    def get_config(self) -> dict[str, Any]:
        return {"values": self.values.tolist()}


class _HeldHyperparameters:
    """Mixin for a Keras optimizer: the hyperparameters named in ``held`` become scalar variables.

    Args:
        held: Attribute names and values, e.g. ``{"beta_1": 0.9, "weight_decay": 1e-4}``; the parent
            class receives the same values as plain floats for its own checks.
        clip: ``("norm", value)`` to clip each gradient tensor's L2 norm, ``("value", value)`` to clip each
            component, or None; the threshold is a variable too.
        **kwargs: Those of the parent optimizer; a :class:`StepTable` learning rate or ``momentum_schedule``
            is attached as a variable.
    """

    def __init__(
        self, *args: Any, held: dict[str, float] | None = None, clip: tuple[str, float] | None = None, **kwargs: Any
    ) -> None:
        held = dict(held or {})
        super().__init__(*args, **{**kwargs, **held})  # type: ignore[call-arg]
        self._held_values = held
        self._held_clip = clip
        self._clip_variable = None
        if isinstance(self._learning_rate, StepTable):
            self._learning_rate.attach(self, "learning_rate_table")
        schedule = self.__dict__.get("_momentum_schedule")
        if isinstance(schedule, StepTable):
            schedule.attach(self, "momentum_table")
        for name, value in held.items():
            setattr(self, name, self._scalar(name, value))
        if clip is not None:
            self._clip_variable = self._scalar(f"clip{clip[0]}", clip[1])

    def _scalar(self, name: str, value: float) -> keras.Variable:
        return self.add_variable(shape=(), initializer=keras.initializers.Constant(float(value)), dtype="float32",
                                 name=name)

    def _clip_gradients(self, grads: list[Any]) -> list[Any]:
        if self._held_clip is None:
            return grads
        kind, threshold = self._held_clip[0], self._clip_variable
        if kind == "norm":
            return [None if g is None else _clip_by_norm(g, threshold) for g in grads]
        return [None if g is None else ops.clip(g, -ops.cast(threshold, g.dtype), ops.cast(threshold, g.dtype))
                for g in grads]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # type: ignore[misc]
        config.update(self._held_values)
        config["held"] = self._held_values
        config["clip"] = self._held_clip
        return config


def _clip_by_norm(gradient: Any, threshold: Any) -> Any:
    """``gradient * threshold / max(||gradient||, threshold)``, as Keras' ``clipnorm`` computes it."""
    threshold = ops.cast(threshold, gradient.dtype)
    squares = ops.sum(ops.square(gradient))
    positive = squares > 0
    norm = ops.where(positive, ops.sqrt(ops.where(positive, squares, ops.ones_like(squares))), squares)
    return ops.multiply(gradient, threshold) / ops.maximum(norm, threshold)


_CLASSES: dict[type, type] = {}


def held_optimizer(cls: type[keras.optimizers.Optimizer]) -> type[keras.optimizers.Optimizer]:
    """The subclass of the Keras optimizer ``cls`` whose float hyperparameters are variables (one per class)."""
    held = _CLASSES.get(cls)
    if held is None:
        name = f"Held{cls.__name__}"
        held = serializable(type(name, (_HeldHyperparameters, cls), {"__module__": __name__, "__qualname__": name}))
        _CLASSES[cls] = held
    return held
