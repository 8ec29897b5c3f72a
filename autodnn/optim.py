"""Optimizers and learning-rate schedules of chapter 11, built from a :class:`~autodnn.config.TrialConfig`.

Every schedule is a :class:`keras.optimizers.schedules.LearningRateSchedule`: the optimizer evaluates it from
its own step counter (``optimizer.iterations``) inside the compiled train step, so no Python code runs per
batch and the same code works under JAX's ``jit`` and TensorFlow's ``tf.function``. Keras' own schedule
classes are used where they compute the book's formula (``t`` is the step, ``s`` is ``decay_epochs`` steps):

==============  ================================================  =====================================
``schedule``    learning rate at step ``t``                       class
==============  ================================================  =====================================
constant        ``lr``                                            (a plain float)
power           ``lr / (1 + t/s)**c``                             ``InverseTimeDecay`` (c = 1) or
                                                                  :class:`PowerSchedule`
exponential     ``lr * 0.1**(t/s)``                               ``ExponentialDecay``
piecewise       ``lr * piecewise_factors[i]`` in the i-th piece   ``PiecewiseConstantDecay``
cosine          ``lr * (1 + cos(pi * t/T)) / 2``, T = all steps   ``CosineDecay``
performance     ``lr``, times ``plateau_factor`` when the         ``keras.callbacks.ReduceLROnPlateau``
                validation loss stalls                            in the returned callbacks
1cycle          linear up, down, then a final linear annealing    :class:`OneCycleSchedule`
==============  ================================================  =====================================

A piece of the piecewise schedule starts with the first step of its boundary epoch (Keras'
``PiecewiseConstantDecay`` keeps the old value at the boundary step itself, so the boundaries are shifted by
one). Cosine decay reaches 0 at the end of the planned epochs.

1cycle also cycles the momentum (SGD's ``momentum``, Adam's family's ``beta_1``) inversely to the learning
rate, with :class:`OneCycleMomentum`. Keras 3 optimizers read ``self.momentum`` / ``self.beta_1`` inside
``update_step``; a Python float there would be baked into the compiled step, so the cycling optimizers
(:class:`OneCycleSGD`, :class:`OneCycleAdam`, ...) make that attribute a property computed from
``self.iterations``, which is a tensor inside the compiled step.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from autodnn.config import TrialConfig
from autodnn.errors import ConfigError

__all__ = [
    "OneCycleAdam",
    "OneCycleAdamW",
    "OneCycleAdamax",
    "OneCycleMomentum",
    "OneCycleNadam",
    "OneCycleSGD",
    "OneCycleSchedule",
    "PowerSchedule",
    "build_optimizer",
    "build_schedule",
    "one_cycle_phases",
]

_serializable = keras.saving.register_keras_serializable(package="autodnn")


def one_cycle_phases(total_steps: int, last_fraction: float) -> tuple[int, int]:
    """Splits 1cycle's steps as the book author's ``OneCycleScheduler`` does.

    Args:
        total_steps: Number of optimizer steps of the whole training.
        last_fraction: Fraction of the steps spent on the final annealing (0 for none).

    Returns:
        ``(half_steps, last_steps)``: the length of the rising phase (the falling phase has the same length)
        and of the final annealing. With 0.1 this gives ``last = total // 10 + 1`` like the author's code.
    """
    # The small epsilon keeps 0.29 * 100 from flooring to 28.
    last = min(total_steps, math.floor(total_steps * last_fraction + 1e-9) + 1) if last_fraction > 0 else 0
    return (total_steps - last) // 2, last


@_serializable
class PowerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Power scheduling ``initial_learning_rate / (1 + step / decay_steps) ** power``.

    With ``power == 1`` this is Keras' ``InverseTimeDecay``; the book's ``c`` is ``power``.

    Args:
        initial_learning_rate: Learning rate at step 0.
        decay_steps: ``s``: after ``s`` steps the rate is ``initial_learning_rate / 2**power``.
        power: ``c``, usually 1.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, power: float = 1.0) -> None:
        if decay_steps <= 0:
            raise ConfigError(f"`decay_steps` must be > 0, but got {decay_steps}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = float(decay_steps)
        self.power = float(power)

    def __call__(self, step: Any) -> Any:
        t = ops.cast(step, keras.config.floatx())
        return self.initial_learning_rate / ops.power(1.0 + t / self.decay_steps, self.power)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
        }


@_serializable
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's 1cycle learning rate, as the book describes it and its author's ``OneCycleScheduler`` codes it.

    The rate rises linearly from ``start = max_learning_rate / div`` to ``max_learning_rate`` over the first
    ``half`` steps, falls linearly back to ``start`` over the next ``half`` steps, then falls linearly to
    ``start / final_div`` over the last ``last_fraction`` of the steps (see :func:`one_cycle_phases`).
    Unlike the author's callback, which reaches ``start / final_div`` one step after training ends, this
    schedule reaches it at the last step (``total_steps - 1``) and stays there beyond.

    Args:
        max_learning_rate: Peak rate, reached at step ``half``.
        total_steps: Number of optimizer steps of the whole training (epochs times steps per epoch).
        div: Ratio of the peak to the starting rate (the book: about 10).
        final_div: Ratio of the starting rate to the final rate (the author: 1000).
        last_fraction: Fraction of the steps spent on the final annealing.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        div: float = 10.0,
        final_div: float = 1000.0,
        last_fraction: float = 0.1,
    ) -> None:
        _check_cycle(total_steps, last_fraction)
        if div < 1 or final_div < 1:
            raise ConfigError(f"`div` and `final_div` must be >= 1, but got {div} and {final_div}.")
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.div = float(div)
        self.final_div = float(final_div)
        self.last_fraction = float(last_fraction)
        self.half_steps, self.last_steps = one_cycle_phases(self.total_steps, self.last_fraction)

    @property
    def start_learning_rate(self) -> float:
        """Rate at step 0 and at the end of the cycle."""
        return self.max_learning_rate / self.div

    @property
    def final_learning_rate(self) -> float:
        """Rate at the last step."""
        return self.start_learning_rate / self.final_div

    def __call__(self, step: Any) -> Any:
        return _one_cycle_curve(
            step,
            self.half_steps,
            self.total_steps,
            self.start_learning_rate,
            self.max_learning_rate,
            self.final_learning_rate,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "div": self.div,
            "final_div": self.final_div,
            "last_fraction": self.last_fraction,
        }


@_serializable
class OneCycleMomentum:
    """1cycle's momentum: the mirror image of :class:`OneCycleSchedule`'s cycle, flat during the annealing.

    Momentum falls linearly from ``max_momentum`` to ``min_momentum`` while the learning rate rises, climbs
    back to ``max_momentum`` while it falls, and stays at ``max_momentum`` for the final annealing.

    Args:
        max_momentum: Momentum (or ``beta_1``) at the start, at the end of the cycle and afterwards.
        min_momentum: Momentum at the peak learning rate.
        total_steps: Same as the learning-rate schedule's.
        last_fraction: Same as the learning-rate schedule's.
    """

    def __init__(
        self, max_momentum: float, min_momentum: float, total_steps: int, last_fraction: float = 0.1
    ) -> None:
        _check_cycle(total_steps, last_fraction)
        if not 0 <= min_momentum <= max_momentum <= 1:
            raise ConfigError(
                f"momentum bounds must satisfy 0 <= min <= max <= 1, but got min {min_momentum} and max "
                f"{max_momentum}."
            )
        self.max_momentum = float(max_momentum)
        self.min_momentum = float(min_momentum)
        self.total_steps = int(total_steps)
        self.last_fraction = float(last_fraction)
        self.half_steps, _ = one_cycle_phases(self.total_steps, self.last_fraction)

    def __call__(self, step: Any) -> Any:
        return _one_cycle_curve(
            step, self.half_steps, self.total_steps, self.max_momentum, self.min_momentum, self.max_momentum
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "max_momentum": self.max_momentum,
            "min_momentum": self.min_momentum,
            "total_steps": self.total_steps,
            "last_fraction": self.last_fraction,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OneCycleMomentum:
        return cls(**config)


def _check_cycle(total_steps: int, last_fraction: float) -> None:
    if total_steps < 1:
        raise ConfigError(f"`total_steps` must be >= 1, but got {total_steps}.")
    if not 0 <= last_fraction < 1:
        raise ConfigError(f"`last_fraction` must be in [0, 1), but got {last_fraction}.")


def _one_cycle_curve(step: Any, half: int, total: int, start: float, middle: float, end: float) -> Any:
    """Piecewise-linear ``start -> middle`` (half steps), ``middle -> start`` (half steps), ``start -> end``."""
    t = ops.cast(step, keras.config.floatx())
    width = float(max(half, 1))
    cycle_end = 2 * half
    rising = _between(start, middle, t / width)
    falling = _between(middle, start, (t - half) / width)
    annealing = _between(start, end, ops.clip((t - cycle_end) / float(max(total - 1 - cycle_end, 1)), 0.0, 1.0))
    return ops.where(t < half, rising, ops.where(t < cycle_end, falling, annealing))


def _between(a: float, b: float, fraction: Any) -> Any:
    # This form is exact at both ends in float32; a + (b - a) * f loses the small end value to cancellation.
    return a * (1.0 - fraction) + b * fraction


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

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # type: ignore[misc]
        config[self._cycled_name] = self.__dict__[f"_base_{self._cycled_name}"]
        config["momentum_schedule"] = (
            None if self._momentum_schedule is None else keras.saving.serialize_keras_object(self._momentum_schedule)
        )
        return config


@_serializable
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
        if self._momentum_schedule is not None or self._base_momentum != 0:
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


@_serializable
class OneCycleAdam(_OneCycleMomentumMixin, keras.optimizers.Adam):
    """Adam whose ``beta_1`` follows ``momentum_schedule``.

    Adam's bias correction then uses ``beta_1 ** t`` with the current ``beta_1`` rather than the product of
    the past ones; both are about 0 after a few dozen steps, so the difference does not matter.
    """

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


@_serializable
class OneCycleAdamax(_OneCycleMomentumMixin, keras.optimizers.Adamax):
    """Adamax whose ``beta_1`` follows ``momentum_schedule``."""

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


@_serializable
class OneCycleNadam(_OneCycleMomentumMixin, keras.optimizers.Nadam):
    """Nadam whose ``beta_1`` follows ``momentum_schedule`` (its running momentum product uses each step's)."""

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


@_serializable
class OneCycleAdamW(_OneCycleMomentumMixin, keras.optimizers.AdamW):
    """AdamW whose ``beta_1`` follows ``momentum_schedule``."""

    _cycled_name = "beta_1"
    beta_1 = _cycled("beta_1")


_CYCLING = {
    "momentum": OneCycleSGD,
    "nesterov": OneCycleSGD,
    "adam": OneCycleAdam,
    "adamax": OneCycleAdamax,
    "nadam": OneCycleNadam,
    "adamw": OneCycleAdamW,
}
_PLAIN = {
    "sgd": keras.optimizers.SGD,
    "momentum": keras.optimizers.SGD,
    "nesterov": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
    "adamw": keras.optimizers.AdamW,
}


def build_schedule(
    config: TrialConfig, learning_rate: float, *, steps_per_epoch: int, epochs: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate the optimizer is given: a float (constant, performance) or a schedule of the step.

    Args:
        config: The trial's configuration (``schedule`` and its parameters).
        learning_rate: Initial rate (for 1cycle: the peak rate).
        steps_per_epoch: Optimizer steps per epoch, to turn epochs into steps.
        epochs: Planned number of epochs (the length of cosine decay and of 1cycle).

    Returns:
        A float for ``constant`` and ``performance``, otherwise a ``LearningRateSchedule``.
    """
    lr = float(learning_rate)
    name = config.schedule
    if name in ("constant", "performance"):
        return lr
    schedules = keras.optimizers.schedules
    total = steps_per_epoch * epochs
    if name == "power":
        s = config.decay_epochs * steps_per_epoch
        if config.power_c == 1:
            return schedules.InverseTimeDecay(lr, decay_steps=s, decay_rate=1.0)
        return PowerSchedule(lr, decay_steps=s, power=config.power_c)
    if name == "exponential":
        return schedules.ExponentialDecay(lr, decay_steps=config.decay_epochs * steps_per_epoch, decay_rate=0.1)
    if name == "piecewise":
        values = [lr * f for f in config.piecewise_factors]
        if not config.piecewise_epochs:
            return values[0]
        # Keras keeps the old value at step == boundary; minus one makes the new rate start with its epoch.
        boundaries = [int(e * steps_per_epoch) - 1 for e in config.piecewise_epochs]
        return schedules.PiecewiseConstantDecay(boundaries, values)
    if name == "cosine":
        return schedules.CosineDecay(lr, decay_steps=total)
    if name == "1cycle":
        return OneCycleSchedule(
            lr,
            total_steps=total,
            div=config.onecycle_div,
            final_div=config.onecycle_final_div,
            last_fraction=config.onecycle_last_fraction,
        )
    raise ConfigError(f"schedule is {name!r}, not a known schedule")


def build_optimizer(
    config: TrialConfig, learning_rate: float, *, steps_per_epoch: int, epochs: int
) -> tuple[keras.optimizers.Optimizer, list[keras.callbacks.Callback]]:
    """Builds the trial's optimizer, its learning-rate schedule, and the callbacks the schedule needs.

    ``sgd`` is SGD without momentum; ``momentum`` and ``nesterov`` are SGD with ``config.momentum``;
    ``rmsprop`` uses ``config.rho`` and no momentum term; Adam's family uses ``beta_1`` and ``beta_2``;
    ``adamw`` uses ``config.weight_decay`` (0 included). A positive ``weight_decay`` on any other optimizer is
    Keras' ``weight_decay`` argument: decoupled decay, ``w -= weight_decay * learning_rate * w`` before each
    update, not an L2 term in the loss. ``clipnorm`` clips each gradient tensor's L2 norm, ``clipvalue`` each
    component.

    With ``schedule == "1cycle"``, optimizers with a momentum term to cycle (``config.momentum_name``) get
    momentum (or ``beta_1``) cycling from ``momentum_max`` to ``momentum_min`` and back, replacing
    ``config.momentum`` / ``config.beta_1``. RMSProp's momentum is left uncycled (it is 0 here).

    Args:
        config: The trial's configuration.
        learning_rate: Initial learning rate (for 1cycle: the peak); usually ``config.learning_rate`` or the
            learning-rate finder's pick.
        steps_per_epoch: Optimizer steps per epoch (``ceil(n_train / batch_size)``).
        epochs: Planned number of epochs; 1cycle and cosine decay are laid out over this many.

    Returns:
        ``(optimizer, callbacks)``; ``callbacks`` holds ``ReduceLROnPlateau`` for the ``performance`` schedule
        and is empty otherwise. Pass both to ``compile`` / ``fit``.

    Raises:
        ConfigError: ``steps_per_epoch`` or ``epochs`` is not positive, or ``clipnorm`` and ``clipvalue``
            are both set (Keras applies only one).
    """
    if steps_per_epoch < 1 or epochs < 1:
        raise ConfigError(
            f"`steps_per_epoch` and `epochs` must be >= 1, but got {steps_per_epoch} and {epochs}."
        )
    if config.clipnorm is not None and config.clipvalue is not None:
        raise ConfigError(
            f"clipnorm ({config.clipnorm}) and clipvalue ({config.clipvalue}) are both set, but Keras applies "
            "only one; set the other to null."
        )
    schedule = build_schedule(config, learning_rate, steps_per_epoch=steps_per_epoch, epochs=epochs)
    kwargs: dict[str, Any] = {"learning_rate": schedule}
    if config.clipnorm is not None:
        kwargs["clipnorm"] = float(config.clipnorm)
    if config.clipvalue is not None:
        kwargs["clipvalue"] = float(config.clipvalue)
    name = config.optimizer
    if name == "adamw" or config.weight_decay > 0:
        kwargs["weight_decay"] = float(config.weight_decay)
    if name in ("momentum", "nesterov"):
        kwargs["momentum"] = float(config.momentum)
        kwargs["nesterov"] = name == "nesterov"
    elif name == "rmsprop":
        kwargs["rho"] = float(config.rho)
    elif name in ("adam", "adamax", "nadam", "adamw"):
        kwargs["beta_1"] = float(config.beta_1)
        kwargs["beta_2"] = float(config.beta_2)

    cls = _PLAIN[name]
    if config.schedule == "1cycle" and config.momentum_name is not None and config.momentum_max > 0:
        cls = _CYCLING[name]
        kwargs[config.momentum_name] = float(config.momentum_max)
        kwargs["momentum_schedule"] = OneCycleMomentum(
            config.momentum_max,
            config.momentum_min,
            total_steps=steps_per_epoch * epochs,
            last_fraction=config.onecycle_last_fraction,
        )
    optimizer = cls(**kwargs)

    callbacks: list[keras.callbacks.Callback] = []
    if config.schedule == "performance":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=config.plateau_factor, patience=config.plateau_patience
            )
        )
    return optimizer, callbacks
