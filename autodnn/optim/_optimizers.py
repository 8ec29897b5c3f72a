"""The optimizer of a trial, built from its configuration.

:func:`build_optimizer` picks the Keras optimizer (or its momentum-cycling twin for 1cycle) and sets its
hyperparameters, weight decay, gradient clipping, learning-rate schedule, and the callbacks that schedule needs.
"""

from __future__ import annotations

from typing import Any

import keras

from autodnn.config import TrialConfig
from autodnn.errors import ConfigError
from autodnn.optim._cycling import OneCycleAdam, OneCycleAdamax, OneCycleAdamW, OneCycleNadam, OneCycleSGD
from autodnn.optim._held import StepTable, held_optimizer
from autodnn.optim._schedules import OneCycleMomentum, build_schedule

__all__ = ["build_optimizer"]

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
    total_steps = steps_per_epoch * epochs
    schedule = build_schedule(config, learning_rate, steps_per_epoch=steps_per_epoch, epochs=epochs)
    # One entry past the last step: the rate after training, which the history's last epoch reports.
    if not isinstance(schedule, float):
        schedule = StepTable.of(schedule, total_steps + 1)
    kwargs: dict[str, Any] = {"learning_rate": schedule}
    held: dict[str, float] = {}
    name = config.optimizer
    if name == "adamw" or config.weight_decay > 0:
        held["weight_decay"] = float(config.weight_decay)
    if name in ("momentum", "nesterov"):
        held["momentum"] = float(config.momentum)
        kwargs["nesterov"] = name == "nesterov"
    elif name == "rmsprop":
        held["rho"] = float(config.rho)
    elif name in ("adam", "adamax", "nadam", "adamw"):
        held["beta_1"] = float(config.beta_1)
        held["beta_2"] = float(config.beta_2)

    cls = _PLAIN[name]
    if config.schedule == "1cycle" and config.momentum_name is not None and config.momentum_max > 0:
        cls = _CYCLING[name]
        del held[config.momentum_name]
        kwargs[config.momentum_name] = float(config.momentum_max)
        cycle = OneCycleMomentum(
            config.momentum_max,
            config.momentum_min,
            total_steps=total_steps,
            last_fraction=config.onecycle_last_fraction,
        )
        kwargs["momentum_schedule"] = StepTable.of(cycle, total_steps + 1)
    elif name in ("momentum", "nesterov"):
        # Keras' SGD tests its momentum as a Python number; this one does not, so the momentum can be held.
        cls = OneCycleSGD
    clip = None
    if config.clipnorm is not None:
        clip = ("norm", float(config.clipnorm))
    elif config.clipvalue is not None:
        clip = ("value", float(config.clipvalue))
    optimizer = held_optimizer(cls)(held=held, clip=clip, **kwargs)

    callbacks: list[keras.callbacks.Callback] = []
    if config.schedule == "performance":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=config.plateau_factor, patience=config.plateau_patience
            )
        )
    return optimizer, callbacks
