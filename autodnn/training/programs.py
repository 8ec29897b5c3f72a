"""Which trials can share one compiled training program, and the bounded cache that keeps the programs.

A compiled epoch (see :mod:`autodnn.training.loops`) bakes in the network's structure and the optimizer's kind; the
float hyperparameters are not baked in: the optimizer holds them in variables (:mod:`autodnn.optim._held`),
the dropout layers hold their rates in weights (:class:`autodnn.network.layers.HeldDropout`), and every schedule is a
table of its values per step. So trials whose configurations differ only in :data:`HELD_FIELDS` (or in what
only the Python loop reads, :data:`HOST_FIELDS`) train with the same program: the second one compiles
nothing. :func:`program_key` is the part that must agree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from autodnn.config import TrialConfig
from autodnn.network.model import dropout_layer_indices

__all__ = ["HELD_FIELDS", "HOST_FIELDS", "ProgramCache", "program_key"]

#: Fields whose values are state of the compiled program: any value, the same program.
HELD_FIELDS = frozenset({
    "learning_rate", "momentum", "rho", "beta_1", "beta_2", "weight_decay", "clipnorm", "clipvalue",
    "dropout", "dropout_placement", "dropout_top_k", "alpha_dropout",
    "decay_epochs", "power_c", "piecewise_epochs", "piecewise_factors",
    "onecycle_div", "onecycle_final_div", "onecycle_last_fraction", "momentum_max", "momentum_min",
})

#: Fields that only the Python side of training reads (early stopping, the plateau callback, the finder; the
#: epochs, whose only mark on the program is its schedule table's length, which the key holds).
HOST_FIELDS = frozenset({"epochs", "patience", "restore_best", "plateau_factor", "plateau_patience", "lr_finder",
                         "mc_samples"})


def _structure(config: TrialConfig) -> dict[str, Any]:
    """What the held fields still decide about the program's shape."""
    tabulated = config.schedule not in ("constant", "performance") and not (
        config.schedule == "piecewise" and not config.piecewise_epochs
    )
    cycled = config.schedule == "1cycle" and config.momentum_name is not None and config.momentum_max > 0
    clip = "norm" if config.clipnorm is not None else "value" if config.clipvalue is not None else None
    return {
        "dropout_layers": tuple(dropout_layer_indices(config)),
        "alpha_dropout": config.alpha_dropout > 0,
        "weight_decay": config.optimizer == "adamw" or config.weight_decay > 0,
        "clip": clip,
        "tabulated": tabulated,
        "cycled": cycled,
    }


def program_key(
    config: TrialConfig, *, n_features: int, n_classes: int, steps: int, batch: int, epochs: int, precision: str,
    loss: Hashable = None, image_shape: tuple[int, ...] | None = None,
) -> tuple:
    """A hashable key equal for two trainings exactly when one compiled epoch serves both.

    Args:
        config: The trial's configuration.
        n_features: Width of the input rows.
        n_classes: Outputs of the softmax.
        steps: Optimizer steps per epoch.
        batch: Rows per step.
        epochs: Planned epochs (the length of a tabulated schedule).
        precision: The dtype policy's name.
        loss: What of the loss the program holds besides the configuration (the class weights,
            :func:`autodnn.training.losses.loss_key`).
        image_shape: ``(height, width, channels)`` of image rows, which the network unflattens them to; None
            for tables.
    """
    fixed = {k: v for k, v in config.to_dict().items() if k not in HELD_FIELDS | HOST_FIELDS}
    structure = _structure(config)
    table = steps * epochs + 1 if structure["tabulated"] or structure["cycled"] else 0
    shape = (n_features, n_classes, steps, batch, table, precision) + ((loss,) if loss is not None else ())
    shape += (tuple(image_shape),) if image_shape is not None else ()
    return (*shape, *sorted((k, _hashable(v)) for k, v in {**fixed, **structure}.items()))


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ProgramCache(Generic[K, V]):
    """The ``size`` programs used last, by key; the oldest goes when a new one comes.

    Args:
        size: Programs kept (each holds a compiled executable and the network it was traced from).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
