"""A designed start for the search: a few dense-net configurations worth training before any random draw.

TPE starts from random draws, and in a space as wide as chapter 11's (1 to 30 layers of 16 to 1,024 units,
eleven activations, nine optimizers) a random start spends most of a small budget on nets that train badly
or slowly: in a 16-minute CIFAR-10 search two start-up trials took 14 of the 16 minutes to reach 31% and 14%
(benchmarks/RESULTS.md). A warm start enqueues, before the book's baselines, configurations that the
literature and this project's own runs say train well on standardized dense inputs, so the sampler's model of
the space begins with good points. They are searched trials: sampled through the space (so they obey its
ranges, conditions and constraints) and counted in ``--n-trials``, but never pruned, as the book's baselines are
not: their first epochs under a warm-up or 1cycle schedule say little of where they end.

The start depends on the data and the family, by one rule: a convolutional space gets its own convnet, images in
a dense space the dense starts measured on CIFAR-10, tables the ones measured on the development suite's tables
(:data:`WarmStart.kinds`). A convolutional start's epochs shrink to what the search's budget leaves it
(:meth:`autodnn.tuning.budget.TimeBudget.start_epochs`): on 2 CPU cores an epoch of CIFAR-10 takes minutes. Both were ranked on validation figures
only (``benchmarks/designed_start.py`` for tables, ``benchmarks/warm_starts.py`` for CIFAR-10; the figures are
in each start's ``why`` and in benchmarks/RESULTS.md). On the suite's tables the two starts designed for
CIFAR-10 fell short of the table's best candidate by 0.028 and 0.066 of the validation score on average, the
three table starts by 0.013 to 0.023, and on the tables held out from that choice by 0.087 and 0.089 against 0.035
to 0.049.

Each configuration is projected onto the study's space: a value inside its range or among its choices is
kept, a number outside its range is clipped to the nearest bound, anything else is left to the sampler, and a
conditional parameter is set only where its condition holds. Two projections that come out the same are
enqueued once. On small data a warm start's batch size is halved until an epoch has :data:`MIN_STEPS` steps
(at least 16 rows a batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autodnn.config import TrialConfig
from autodnn.study.trial_record import WARM_START

if TYPE_CHECKING:
    from collections.abc import Callable

    import optuna

    from autodnn.space import SearchSpace


@dataclass(frozen=True)
class WarmStart:
    """One designed configuration.

    Attributes:
        name: Its name in the study (``warm_start`` user attribute) and in the report.
        why: Where it comes from, in one sentence.
        values: Configuration fields (:class:`autodnn.config.TrialConfig` names) and their values.
        kinds: The data it starts the search on: ``tables``, ``images`` (dense nets) or both, or ``conv``
            (a convolutional space).
    """

    name: str
    why: str
    values: dict[str, Any]
    kinds: tuple[str, ...] = ("tables", "images")


#: Cheapest first: on a small budget the first ones are those that fit. Validation figures: the mean over 2 seeds
#: of the searched number (accuracy, balanced accuracy, R²) per table, from ``benchmarks/designed_start.py``.
WARM_STARTS: tuple[WarmStart, ...] = (
    WarmStart(
        "small-adam",
        "A cheap probe: two ReLU layers of 256 with He init, Adam at its published default rate 1e-3 (Kingma & "
        "Ba 2015) and light dropout; the best start on the suite's tables it was chosen on (validation short of "
        "each table's best candidate by 0.013 on average: 0.972 accuracy on digits, 0.946 breast_cancer, 0.591 R² "
        "diabetes).",
        {"n_hidden": 2, "n_units": 256, "first_layer_factor": 1.0, "activation": "relu", "initializer": "he",
         "init_distribution": "normal", "init_mode": "auto",
         "normalization": "none", "dropout": 0.1, "dropout_placement": "all", "optimizer": "adam",
         "beta_1": 0.9, "beta_2": 0.999, "learning_rate": 1.0e-3, "schedule": "constant", "epochs": 20, "batch_size": 128,
         "l1": 0.0, "l2": 0.0, "max_norm": None, "clipnorm": None, "lr_finder": False},
    ),
    WarmStart(
        "relu-mlp",
        "The tuned MLP of Gorishniy et al. (2021) at typical tuned values: four ReLU layers of 256, dropout 0.1, "
        "AdamW at 1e-3 with weight decay 1e-5, batch 128, trained to early stopping (patience 16 where the space leaves it free); short of the "
        "tables' best candidate by 0.018 on average on validation, and the closest of all on the held-out tables "
        "but one (0.035; 0.687 R² on cars-mpg, the best there).",
        {"n_hidden": 4, "n_units": 256, "first_layer_factor": 1.0, "activation": "relu", "initializer": "he",
         "init_distribution": "normal", "init_mode": "auto", "normalization": "none", "dropout": 0.1,
         "dropout_placement": "all", "optimizer": "adamw", "beta_1": 0.9, "beta_2": 0.999, "weight_decay": 1.0e-5,
         "learning_rate": 1.0e-3, "schedule": "constant", "epochs": None, "batch_size": 128, "patience": 16,
         "l1": 0.0, "l2": 0.0, "max_norm": None, "clipnorm": None, "lr_finder": False},
        kinds=("tables",),
    ),
    WarmStart(
        "swish-bn-long",
        "The 3rd edition's Table 11-3 for a small table: three layers of 256, Swish, He init, batch norm, dropout "
        "0.1, Nadam under 1cycle (Smith 2018) with peak rate 2e-3 over 50 epochs, batch 128; best on validation on "
        "cars-origin (0.970), iris (1.000) and penguins-mass (0.888 R²), short of the best by 0.023 on average.",
        {"n_hidden": 3, "n_units": 256, "first_layer_factor": 1.0, "activation": "swish", "swish_beta": 1.0,
         "initializer": "he", "init_distribution": "normal", "init_mode": "auto", "normalization": "batch_norm_before",
         "bn_momentum": 0.99, "dropout": 0.1, "dropout_placement": "all", "optimizer": "nadam", "beta_1": 0.9,
         "beta_2": 0.999, "learning_rate": 2.0e-3, "schedule": "1cycle", "epochs": 50, "batch_size": 128,
         "l1": 0.0, "l2": 0.0, "max_norm": None, "clipnorm": None, "lr_finder": False},
        kinds=("tables",),
    ),
    WarmStart(
        "wide-bn-adamw",
        "Three layers of 1,024 with He init, batch norm before ReLU (Ioffe & Szegedy 2015), dropout 0.3 on "
        "every layer, AdamW with weight decay 1e-4 (Loshchilov & Hutter 2019), rate 1e-3 with cosine decay over "
        "20 epochs, batch 256: 59.4% validation accuracy on CIFAR-10 in 125 s as the search of 2026-12-02 trained it "
        "(seed 0, a 2-core Intel Xeon); short of the tables' best candidate by 0.028 of the validation score.",
        {"n_hidden": 3, "n_units": 1024, "first_layer_factor": 1.0, "activation": "relu", "initializer": "he",
         "init_distribution": "normal", "init_mode": "auto",
         "normalization": "batch_norm_before", "bn_momentum": 0.99, "dropout": 0.3, "dropout_placement": "all",
         "optimizer": "adamw", "beta_1": 0.9, "beta_2": 0.999, "weight_decay": 1.0e-4, "learning_rate": 1.0e-3,
         "schedule": "cosine", "epochs": 20, "batch_size": 256, "l1": 0.0, "l2": 0.0, "max_norm": None, "clipnorm": None,
         "lr_finder": False},
        kinds=("images",),
    ),
    WarmStart(
        "deep-swish-1cycle",
        "The 3rd edition's Table 11-3 for a deep net, made concrete: six layers of 512, Swish, He init, batch "
        "norm, Nadam under 1cycle (Smith 2018) with peak rate 2e-3 over 20 epochs, dropout 0.2, batch 128: 59.8% "
        "validation accuracy on CIFAR-10 in 95 s in the same search, the best there; short of the tables' best "
        "candidate by 0.066.",
        {"n_hidden": 6, "n_units": 512, "first_layer_factor": 1.0, "activation": "swish", "swish_beta": 1.0,
         "initializer": "he", "init_distribution": "normal", "init_mode": "auto", "normalization": "batch_norm_before", "bn_momentum": 0.99,
         "dropout": 0.2, "dropout_placement": "all", "optimizer": "nadam", "beta_1": 0.9, "beta_2": 0.999,
         "learning_rate": 2.0e-3, "schedule": "1cycle", "epochs": 20, "batch_size": 128, "l1": 0.0, "l2": 0.0,
         "max_norm": None, "clipnorm": None, "lr_finder": False},
        kinds=("images",),
    ),
    WarmStart(
        "small-convnet",
        "A convnet sized for CPUs after the primer's pattern and chapter 14: a 3 x 3 stem of 32 filters pooled to "
        "16 x 16, three groups of one plain block (64-128-256) with batch norm before ReLU and max pooling, global "
        "average pooling, AdamW (weight decay 1e-4) under 1cycle with peak 3e-3 over 6 epochs, batch 128, "
        "horizontal flips: 79.0% validation accuracy on CIFAR-10 in 747 s on 2 CPU cores (TensorFlow, seed 0), "
        "against 73.0% for 16 filters kept at full resolution (842 s) and 72.6% for that with shifts "
        "(benchmarks/warm_starts.py, 2026-12-07).",
        {"family": "conv", "conv_filters": 32, "filter_growth": 2.0, "conv_groups": 3, "conv_blocks": 1,
         "kernel_size": 3, "stem_kernel": 3, "stem_downsample": True, "conv_block": "plain",
         "downsample": "max_pool", "conv_head": "gap", "n_hidden": 0, "activation": "relu", "initializer": "he",
         "init_distribution": "normal", "normalization": "batch_norm_before", "bn_momentum": 0.9, "dropout": 0.0,
         "spatial_dropout": 0.0, "optimizer": "adamw", "beta_1": 0.9, "beta_2": 0.999, "weight_decay": 1.0e-4,
         "learning_rate": 3.0e-3, "schedule": "1cycle", "epochs": 6, "batch_size": 128, "l1": 0.0, "l2": 0.0,
         "clipnorm": None, "augment_flip": True, "augment_shift": 0.0, "label_smoothing": 0.0, "lr_finder": False},
        kinds=("conv",),
    ),
)

#: At most this share of ``--n-trials`` starts warm, so that a small search still searches.
SHARE = 0.25
#: A warm start takes at least this many optimizer steps an epoch: on small data its batch size shrinks.
MIN_STEPS = 16


def project(space: SearchSpace, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``space`` that ``values`` decides, as Optuna's ``enqueue_trial`` takes them.

    Args:
        space: The study's search space.
        values: Configuration fields and values (a :class:`WarmStart`'s).

    Returns:
        Parameter name -> value, for the space's sampled parameters only, in its order.
    """
    chosen: dict[str, Any] = {}
    known: dict[str, Any] = {}  # sampled or fixed, for the conditions of later parameters
    for param in space.params:
        if param.kind == "fixed":
            known[param.name] = param.value
            continue
        if not all(k in known and known[k] in allowed for k, allowed in param.when.items()):
            continue
        if param.name not in values:
            continue
        value = _fit(param, values[param.name])
        if value is not _SKIP:
            chosen[param.name] = known[param.name] = value
    return chosen


_SKIP = object()


def _fit(param: Any, value: Any) -> Any:
    """``value`` inside ``param``'s range or choices (a number outside the range clipped), or ``_SKIP``."""
    if param.kind == "categorical":
        return value if value in param.choices else _SKIP
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _SKIP
    low, high = float(param.low), float(param.high)
    clipped = min(max(float(value), low), high)
    if param.kind == "int":
        step = int(param.step or 1)
        return int(low + round((clipped - low) / step) * step)
    return clipped


def fitted(values: dict[str, Any], n_train: int | None) -> dict[str, Any]:
    """``values`` with a batch size small enough for :data:`MIN_STEPS` steps an epoch on ``n_train`` rows.

    The largest power of two that fits, at least 16 and at most the configuration's own: a 3 x 1024 net at batch
    256 takes two steps an epoch on breast_cancer's 409 training rows, and 30 epochs are then 60 steps.
    """
    if n_train is None or "batch_size" not in values:
        return values
    batch = values["batch_size"]
    while batch > 16 and n_train / batch < MIN_STEPS:
        batch //= 2
    return {**values, "batch_size": batch}


def designed_start(kind: str) -> tuple[WarmStart, ...]:
    """The warm starts of ``kind`` data, in the order they train: ``tables`` or ``images`` (dense nets), or
    ``conv`` (a convolutional space's)."""
    return tuple(start for start in WARM_STARTS if kind in start.kinds)


def enqueue_warm_starts(study: optuna.Study, space: SearchSpace, n_trials: int, n_train: int | None = None,
                        kind: str = "tables", epochs: Callable[[TrialConfig], int] | None = None) -> int:
    """Enqueues the warm starts that the study does not hold yet, at most :data:`SHARE` of ``n_trials``.

    Args:
        study: The study.
        space: Its search space, onto which each warm start is projected.
        n_trials: The search's ``--n-trials``.
        n_train: Training rows, which cap each warm start's batch size (:func:`fitted`); None keeps them.
        kind: ``tables``, ``images`` or ``conv``: which designed start (:func:`designed_start`).
        epochs: The epochs a start of a given configuration may train under the search's budget
            (:meth:`autodnn.tuning.budget.TimeBudget.start_epochs`); None keeps each start's own.

    Returns:
        How many were enqueued.
    """
    present = {t.user_attrs.get(WARM_START) for t in study.get_trials(deepcopy=False)}
    budget = max(1, int(n_trials * SHARE)) - len(present - {None})
    seen: list[dict[str, Any]] = []
    added = 0
    for start in designed_start(kind):
        if added >= budget:
            break
        values = fitted(start.values, n_train)
        if epochs is not None and values.get("epochs") is not None:
            values = {**values, "epochs": epochs(TrialConfig.from_dict(values))}
        params = project(space, values)
        if start.name in present or not params or params in seen:
            continue
        seen.append(params)
        study.enqueue_trial(params, user_attrs={WARM_START: start.name})
        added += 1
    return added
