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

The schedules and :func:`build_schedule` live in ``_schedules``, the momentum-cycling optimizers in
``_cycling``, and :func:`build_optimizer` in ``_optimizers``; everything public is imported from here.
"""

from __future__ import annotations

from autodnn.optim._cycling import OneCycleAdam, OneCycleAdamax, OneCycleAdamW, OneCycleNadam, OneCycleSGD
from autodnn.optim._optimizers import build_optimizer
from autodnn.optim._schedules import (
    OneCycleMomentum,
    OneCycleSchedule,
    PowerSchedule,
    build_schedule,
    current_learning_rate,
    one_cycle_phases,
)

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
    "current_learning_rate",
    "one_cycle_phases",
]
