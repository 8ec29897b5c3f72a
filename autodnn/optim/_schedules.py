"""Learning-rate schedules of chapter 11, and :func:`build_schedule`, which picks one from a trial's configuration.

Each schedule is a pure function of the optimizer's step. Keras' own schedule classes are used where they
compute the book's formula; :class:`PowerSchedule` and :class:`OneCycleSchedule` cover the rest, and
:class:`OneCycleMomentum` is 1cycle's momentum curve, which the optimizers of :mod:`autodnn.optim._cycling`
read at every step.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from autodnn.config import TrialConfig
from autodnn.errors import ConfigError

__all__ = ["OneCycleMomentum", "OneCycleSchedule", "PowerSchedule", "build_schedule", "current_learning_rate",
           "one_cycle_phases"]

#: Registers a class under the package name ``autodnn``, so that saved models and configs find it again.
serializable = keras.saving.register_keras_serializable(package="autodnn")


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


@serializable
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


@serializable
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


@serializable
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


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate ``optimizer`` uses at its current step (its schedule evaluated at ``iterations``)."""
    lr = optimizer.learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        lr = lr(optimizer.iterations)
    return float(ops.convert_to_numpy(lr))
