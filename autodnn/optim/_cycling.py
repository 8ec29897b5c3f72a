"""Keras optimizers whose momentum (SGD's ``momentum``, Adam's family's ``beta_1``) follows 1cycle's cycle.

Keras 3 optimizers read ``self.momentum`` / ``self.beta_1`` inside ``update_step``; a Python float there would
be baked into the compiled step, so these optimizers make that attribute a property computed from
``self.iterations``, which is a tensor inside the compiled step. The cycle itself is
:class:`~autodnn.optim.OneCycleMomentum`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from autodnn.optim._schedules import OneCycleMomentum, serializable

__all__ = ["OneCycleAdam", "OneCycleAdamW", "OneCycleAdamax", "OneCycleNadam", "OneCycleSGD"]


def _cycled(name: str) -> property:
    """A hyperparameter that reads ``momentum_schedule(self.iterations)`` when the optimizer has one.

    The setter keeps the plain value, so the parent ``__init__`` (which assigns it) and ``get_config`` work.
    """
    base = f"_base_{name}"

    def fget(self: Any) -> Any:
        schedule = self.__dict__.get("_momentum_schedule")
        if schedule is None:
            # TensorFlow's attribute tracking reads the attribute before the parent `__init__` first sets it.
            return self.__dict__.get(base)
        return schedule(self.iterations)

    def fset(self: Any, value: float) -> None:
        self.__dict__[base] = value

    return property(fget, fset, doc=f"``{name}``, a tensor of the current step while 1cycle cycles it.")


class _OneCycleMomentumMixin:
    """Adds ``momentum_schedule`` to a Keras optimizer whose ``_cycled_name`` attribute is a :func:`_cycled`."""

    _cycled_name: str

    def __init__(
        self, *args: Any, momentum_schedule: OneCycleMomentum | dict | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(momentum_schedule, dict):
            momentum_schedule = keras.saving.deserialize_keras_object(momentum_schedule)
        self._momentum_schedule = momentum_schedule

    @property
    def momentum_schedule(self) -> OneCycleMomentum | None:
        """The schedule of the cycled hyperparameter, or None when it is constant."""
        return self._momentum_schedule

    @property
    def momentum_name(self) -> str:
        """``momentum`` or ``beta_1``: the hyperparameter ``momentum_schedule`` drives."""
        return self._cycled_name

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # type: ignore[misc]
        config[self._cycled_name] = self.__dict__[f"_base_{self._cycled_name}"]
        config["momentum_schedule"] = (
            None if self._momentum_schedule is None else keras.saving.serialize_keras_object(self._momentum_schedule)
        )
        return config


@serializable
class OneCycleSGD(_OneCycleMomentumMixin, keras.optimizers.SGD):
    """SGD with momentum (or Nesterov) whose ``momentum`` follows ``momentum_schedule``.

    Args:
        *args: Those of ``keras.optimizers.SGD``; ``momentum`` should be the schedule's maximum.
        momentum_schedule: A :class:`OneCycleMomentum` (or its serialized form), or None for constant momentum.
        **kwargs: Those of ``keras.optimizers.SGD``.
    """

    _cycled_name = "momentum"
    momentum = _cycled("momentum")

    def build(self, variables: list) -> None:
        if self.built:
            return
        # SGD's own build tests `self.momentum != 0` as a Python bool, which a tensor cannot answer.
        keras.optimizers.Optimizer.build(self, variables)
        self.momentums = []
        base = self._base_momentum
        if self._momentum_schedule is not None or isinstance(base, keras.Variable) or base != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not self.momentums:
            super().update_step(gradient, variable, learning_rate)
            return
        # Keras' SGD update, without its Python test on the (here symbolic) momentum.
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self.momentum, variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate)))
        if self.nesterov:
            self.assign_add(
                variable, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate))
            )
        else:
            self.assign_add(variable, m)


@serializable
class OneCycleAdam(_OneCycleMomentumMixin, keras.optimizers.Adam):
    """Adam whose ``beta_1`` follows ``momentum_schedule``.

    Adam's bias correction then uses ``beta_1 ** t`` with the current ``beta_1`` rather than the product of
    the past ones; both are about 0 after a few dozen steps, so the difference does not matter.
    """

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


@serializable
class OneCycleAdamax(_OneCycleMomentumMixin, keras.optimizers.Adamax):
    """Adamax whose ``beta_1`` follows ``momentum_schedule``."""

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


@serializable
class OneCycleNadam(_OneCycleMomentumMixin, keras.optimizers.Nadam):
    """Nadam whose ``beta_1`` follows ``momentum_schedule`` (its running momentum product uses each step's)."""

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


@serializable
class OneCycleAdamW(_OneCycleMomentumMixin, keras.optimizers.AdamW):
    """AdamW whose ``beta_1`` follows ``momentum_schedule``."""

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")
