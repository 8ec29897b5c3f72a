"""The configuration of one trial: plain, validated, JSON-able.

A :class:`TrialConfig` is what a search space samples and what the trainer trains. Field names are the keys
of the YAML search spaces and of the parameters stored in the study, so one spelling is used everywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from autodnn.errors import ConfigError

ACTIVATIONS = (
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
)
INITIALIZERS = ("auto", "glorot", "he", "lecun")
INIT_DISTRIBUTIONS = ("normal", "uniform")
INIT_MODES = ("auto", "fan_in", "fan_avg")
NORMALIZATIONS = ("none", "batch_norm_before", "batch_norm_after")
DROPOUT_PLACEMENTS = ("all", "top", "last")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam", "adamw")
SCHEDULES = ("constant", "power", "exponential", "piecewise", "performance", "1cycle", "cosine")
RESTORES = ("auto", "val_loss", "val_accuracy")
OUTPUT_BIASES = ("priors", "zeros")
REGRESSION_LOSSES = ("mse", "huber")
CLASS_WEIGHTINGS = ("none", "balanced")

#: Validation splits under this many rows are small: one row moves the accuracy by more than 0.1 points, so
#: a run keeps its best-loss epoch there (``restore_best: auto``) and the final evaluation picks among finalists.
SMALL_VALIDATION = 1000
#: MC-dropout passes with which a net with dropout is tested (the final evaluation, and a baseline's search run
#: that counts as one of its seeds there), unless ``--mc-samples`` says otherwise.
DEFAULT_MC_SAMPLES = 30

#: Optimizers whose momentum 1cycle cycles (``momentum`` for SGD, ``beta_1`` for Adam's family).
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov", "adam", "adamax", "nadam", "adamw")

_CHOICES: dict[str, tuple[str, ...]] = {
    "activation": ACTIVATIONS,
    "initializer": INITIALIZERS,
    "init_distribution": INIT_DISTRIBUTIONS,
    "init_mode": INIT_MODES,
    "normalization": NORMALIZATIONS,
    "dropout_placement": DROPOUT_PLACEMENTS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "restore_best": RESTORES,
    "output_bias": OUTPUT_BIASES,
    "regression_loss": REGRESSION_LOSSES,
    "class_weight": CLASS_WEIGHTINGS,
}

# (low, high, low_inclusive, high_inclusive); None means unbounded on that side.
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "n_hidden": (0, None, True, True),
    "n_units": (1, None, True, True),
    "first_layer_factor": (1.0, None, True, True),
    "activation_alpha": (0.0, None, True, True),
    "elu_alpha": (0.0, None, False, True),
    "swish_beta": (0.0, None, False, True),
    "rrelu_lower": (0.0, 1.0, True, True),
    "rrelu_upper": (0.0, 1.0, True, True),
    "bn_momentum": (0.0, 1.0, False, False),
    "dropout": (0.0, 1.0, True, False),
    "dropout_top_k": (1, None, True, True),
    "alpha_dropout": (0.0, 1.0, True, False),
    "l1": (0.0, None, True, True),
    "l2": (0.0, None, True, True),
    "weight_decay": (0.0, None, True, True),
    "learning_rate": (0.0, None, False, True),
    "huber_delta": (0.0, None, False, True),
    "momentum": (0.0, 1.0, True, False),
    "rho": (0.0, 1.0, False, False),
    "beta_1": (0.0, 1.0, True, False),
    "beta_2": (0.0, 1.0, False, False),
    "decay_epochs": (0.0, None, False, True),
    "power_c": (0.0, None, False, True),
    "plateau_factor": (0.0, 1.0, False, False),
    "plateau_patience": (1, None, True, True),
    "onecycle_div": (1.0, None, True, True),
    "onecycle_final_div": (1.0, None, True, True),
    "onecycle_last_fraction": (0.0, 0.5, True, False),
    "momentum_max": (0.0, 1.0, True, False),
    "momentum_min": (0.0, 1.0, True, False),
    "batch_size": (1, None, True, True),
    "patience": (1, None, True, True),
    "mc_samples": (0, None, True, True),
}


@dataclass(frozen=True)
class TrialConfig:
    """Every hyperparameter of one dense network and its training.

    Attributes:
        n_hidden: Number of hidden dense layers.
        n_units: Units of every hidden layer (the first one is ``first_layer_factor`` times wider).
        first_layer_factor: Width of the first hidden layer relative to ``n_units`` (1 = constant width).
        activation: Hidden-layer activation, one of :data:`ACTIVATIONS`.
        activation_alpha: Slope of leaky ReLU's negative side (the book: 0.2 beat 0.01; Keras' default 0.3).
        elu_alpha: ELU's saturation value for negative inputs (the book: usually 1).
        swish_beta: Generalized Swish ``z * sigmoid(beta * z)``; 1 is plain Swish (SiLU).
        rrelu_lower: Lower bound of RReLU's random negative slope during training.
        rrelu_upper: Upper bound of RReLU's random negative slope; inference uses the mean of both.
        initializer: Kernel initializer family; ``auto`` follows Table 11-1 for the activation.
        init_distribution: Normal (truncated normal of the right variance) or uniform.
        init_mode: Fan used for the variance; ``auto`` is the family's own (Glorot fan_avg, He/LeCun fan_in).
        normalization: No normalization, batch norm before the activation (dense without bias), or after it.
        bn_momentum: Momentum of the batch-norm moving averages.
        dropout: Dropout rate of hidden layers (0 disables it).
        dropout_placement: Dropout after every hidden layer, after the top ``dropout_top_k`` only, or the last.
        dropout_top_k: How many of the top hidden layers get dropout when the placement is ``top``.
        alpha_dropout: Alpha-dropout rate before the output layer (for SELU nets).
        max_norm: Max-norm constraint ``r`` on every hidden kernel's columns, or None.
        l1: L1 penalty factor on hidden kernels.
        l2: L2 penalty factor on hidden kernels.
        weight_decay: Decoupled weight decay (AdamW's own; SGD-family optimizers accept it too).
        clipnorm: Clip each gradient to this L2 norm, or None.
        clipvalue: Clip every gradient component to ``[-clipvalue, clipvalue]``, or None.
        optimizer: One of :data:`OPTIMIZERS`; ``momentum`` and ``nesterov`` are SGD with momentum.
        learning_rate: Initial (for 1cycle: maximum) learning rate; ignored when ``lr_finder`` is set.
        lr_finder: Run the learning-rate finder first and use its pick as ``learning_rate``.
        momentum: Momentum of ``momentum``/``nesterov`` (and RMSProp's momentum term is left at 0).
        rho: RMSProp's decay rate of the squared-gradient average.
        beta_1: First-moment decay of Adam's family.
        beta_2: Second-moment decay of Adam's family.
        schedule: Learning-rate schedule, one of :data:`SCHEDULES`.
        decay_epochs: ``s`` of the power and exponential schedules, in epochs.
        power_c: Exponent ``c`` of the power schedule.
        piecewise_epochs: Epoch boundaries of the piecewise-constant schedule.
        piecewise_factors: Learning-rate factors of each piece (one more than the boundaries).
        plateau_factor: Performance scheduling multiplies the rate by this when validation loss stalls.
        plateau_patience: Epochs without improvement before performance scheduling cuts the rate.
        onecycle_div: 1cycle starts (and ends its cycle) at ``learning_rate / onecycle_div``.
        onecycle_final_div: 1cycle ends at ``learning_rate / onecycle_div / onecycle_final_div``.
        onecycle_last_fraction: Fraction of the steps spent on 1cycle's final annealing.
        momentum_max: Highest momentum (or beta_1) of 1cycle's momentum cycle.
        momentum_min: Lowest momentum (or beta_1), reached at the peak learning rate.
        batch_size: Mini-batch size.
        epochs: Epochs this configuration trains at most, and the horizon of its schedule (cosine decay and
            1cycle anneal over them); None trains for the run's whole budget (``--max-epochs``), and a value
            above the budget is cut to it (:meth:`trained_epochs`).
        patience: Early-stopping patience, in epochs without a better validation loss.
        restore_best: Which epoch's weights the run keeps: the best validation loss (the book's
            ``restore_best_weights``), the best validation accuracy (the search's objective; a tie goes to the
            lower loss), or ``auto``: the accuracy where validation has at least :data:`SMALL_VALIDATION` rows,
            the steadier loss where it has fewer.
        mc_samples: Number of stochastic passes of MC dropout at evaluation (0 disables it).
        output_bias: The output layer's initial bias: ``priors``, the log of the training class shares, so that
            an untrained net answers the class shares and its loss starts at theirs (on imbalanced classes it
            then learns the rare class instead of first the shares); ``zeros``, Keras' default (the book's
            configurations). On balanced classes the two are the same net. A regression's output starts at zero,
            the standardized target's training mean.
        regression_loss: A regression's loss on the standardized target: ``mse`` (the book's), or ``huber``
            (quadratic within ``huber_delta`` standard deviations of the target, linear beyond: outliers pull
            less). Classification ignores it.
        huber_delta: Where the Huber loss turns linear, in standard deviations of the target.
        class_weight: ``balanced`` weighs each training row's loss by ``n / (classes x its class's rows)``
            (scikit-learn's rule), so that every class weighs the same in all; ``none`` weighs rows alike. A
            regression ignores it.
    """

    n_hidden: int = 2
    n_units: int = 100
    first_layer_factor: float = 1.0
    activation: str = "relu"
    activation_alpha: float = 0.2
    elu_alpha: float = 1.0
    swish_beta: float = 1.0
    rrelu_lower: float = 1 / 8
    rrelu_upper: float = 1 / 3
    initializer: str = "auto"
    init_distribution: str = "normal"
    init_mode: str = "auto"
    normalization: str = "none"
    bn_momentum: float = 0.99
    dropout: float = 0.0
    dropout_placement: str = "all"
    dropout_top_k: int = 1
    alpha_dropout: float = 0.0
    max_norm: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    clipnorm: float | None = None
    clipvalue: float | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_finder: bool = False
    momentum: float = 0.9
    rho: float = 0.9
    beta_1: float = 0.9
    beta_2: float = 0.999
    schedule: str = "constant"
    decay_epochs: float = 20.0
    power_c: float = 1.0
    piecewise_epochs: tuple[int, ...] = (5, 15)
    piecewise_factors: tuple[float, ...] = (1.0, 0.5, 0.1)
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    onecycle_div: float = 10.0
    onecycle_final_div: float = 1000.0
    onecycle_last_fraction: float = 0.1
    momentum_max: float = 0.95
    momentum_min: float = 0.85
    batch_size: int = 32
    epochs: int | None = None
    patience: int = 10
    restore_best: str = "val_loss"
    mc_samples: int = 0
    output_bias: str = "priors"
    regression_loss: str = "mse"
    huber_delta: float = 1.0
    class_weight: str = "none"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise ConfigError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Returns the configuration as JSON-able plain values (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialConfig:
        """Builds a configuration from plain values; unknown keys are an error that suggests a spelling.

        Raises:
            ConfigError: A key is unknown or a value is invalid.
        """
        names = field_names()
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ConfigError("; ".join(unknown_key_message(k, names, "a TrialConfig field") for k in unknown))
        kwargs = {}
        for key, value in data.items():
            if key in ("piecewise_epochs", "piecewise_factors") and isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrialConfig:
        """Returns a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def hidden_units(self) -> list[int]:
        """Units of each hidden layer: the first is ``first_layer_factor`` times ``n_units`` (rounded)."""
        if self.n_hidden == 0:
            return []
        first = max(1, round(self.n_units * self.first_layer_factor))
        return [first] + [self.n_units] * (self.n_hidden - 1)

    def trained_epochs(self, budget: int) -> int:
        """The epochs a run with an epoch budget of ``budget`` trains this configuration for at most."""
        return budget if self.epochs is None else min(budget, self.epochs)

    @property
    def has_dropout(self) -> bool:
        """Whether any dropout layer is active, so that MC dropout makes sense."""
        return (self.dropout > 0 and self.n_hidden > 0) or self.alpha_dropout > 0

    def evaluation_mc_samples(self, asked: int = 0) -> int:
        """MC-dropout passes when this configuration is tested: ``asked``, else :data:`DEFAULT_MC_SAMPLES`;
        none without dropout."""
        return (asked or DEFAULT_MC_SAMPLES) if self.has_dropout else 0

    @property
    def momentum_name(self) -> str | None:
        """The optimizer attribute 1cycle cycles (``momentum`` or ``beta_1``), or None when it has none."""
        if self.optimizer not in MOMENTUM_OPTIMIZERS:
            return None
        return "momentum" if self.optimizer in ("momentum", "nesterov") else "beta_1"


def field_names() -> tuple[str, ...]:
    """Names of the hyperparameters of :class:`TrialConfig`, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(TrialConfig) if f.name != "extra")


def field_type(name: str) -> type:
    """The plain Python type a field holds (int, float, str, bool or tuple)."""
    default = next(f for f in dataclasses.fields(TrialConfig) if f.name == name).default
    if name in ("max_norm", "clipnorm", "clipvalue"):
        return float
    if name == "epochs":
        return int
    return type(default)


def unknown_key_message(key: str, known: tuple[str, ...] | list[str], what: str) -> str:
    """One sentence saying ``key`` is not ``what``, with a suggestion when a known name is close."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(known)}."
    return f"'{key}' is not {what}.{hint}"


def validate(config: TrialConfig) -> list[str]:
    """Lists every problem of ``config``, one sentence each (empty when it is valid)."""
    problems = [p for name in field_names() if (p := field_problem(name, getattr(config, name)))]
    if problems:
        return problems
    if config.rrelu_lower > config.rrelu_upper:
        problems.append(f"rrelu_lower ({config.rrelu_lower}) must be <= rrelu_upper ({config.rrelu_upper})")
    if config.clipnorm is not None and config.clipvalue is not None:
        problems.append(f"clipnorm ({config.clipnorm}) and clipvalue ({config.clipvalue}) exclude each other: "
                        "Keras clips by one of them; set the other to null")
    if config.momentum_min > config.momentum_max:
        problems.append(f"momentum_min ({config.momentum_min}) must be <= momentum_max ({config.momentum_max})")
    if len(config.piecewise_factors) != len(config.piecewise_epochs) + 1:
        problems.append(
            f"piecewise_factors needs one more value than piecewise_epochs ({len(config.piecewise_epochs)}), "
            f"but has {len(config.piecewise_factors)}"
        )
    if list(config.piecewise_epochs) != sorted(config.piecewise_epochs):
        problems.append(f"piecewise_epochs must increase, but got {list(config.piecewise_epochs)}")
    return problems


def field_problem(name: str, value: Any) -> str | None:
    """Says what is wrong with ``value`` for the field ``name``, or None when it is allowed.

    Args:
        name: A :class:`TrialConfig` field.
        value: A candidate value (as read from YAML or JSON).

    Returns:
        One sentence, or None.
    """
    if name in _CHOICES:
        choices = _CHOICES[name]
        if value in choices:
            return None
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"{name} is {value!r}, not one of {', '.join(choices)}.{hint}"
    if name in ("max_norm", "clipnorm", "clipvalue"):
        if value is None or (_is_number(value) and value > 0):
            return None
        return f"{name} must be a positive number or null, but got {value!r}"
    if name == "epochs":
        if value is None or (_is_number(value) and float(value).is_integer() and value >= 1):
            return None
        return f"epochs must be a whole number >= 1 or null (the run's budget), but got {value!r}"
    if name == "lr_finder":
        return None if isinstance(value, bool) else f"lr_finder must be true or false, but got {value!r}"
    if name in ("piecewise_epochs", "piecewise_factors"):
        if isinstance(value, (list, tuple)) and all(_is_number(v) and v >= 0 for v in value):
            return None
        return f"{name} must be a list of non-negative numbers, but got {value!r}"
    if name not in _RANGES:
        return None
    low, high, low_inc, high_inc = _RANGES[name]
    if not _is_number(value):
        hint = f" (write {value} with a decimal point, e.g. 1.0e-4)" if isinstance(value, str) else ""
        return f"{name} must be a number, but got {value!r}{hint}"
    if field_type(name) is int and not float(value).is_integer():
        return f"{name} must be a whole number, but got {value!r}"
    if not math.isfinite(value) or _outside(value, low, high, low_inc, high_inc):
        return f"{name} must be in {_interval(low, high, low_inc, high_inc)}, but got {value!r}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _outside(value: float, low: float | None, high: float | None, low_inc: bool, high_inc: bool) -> bool:
    if low is not None and (value < low or (value == low and not low_inc)):
        return True
    return high is not None and (value > high or (value == high and not high_inc))


def _interval(low: float | None, high: float | None, low_inc: bool, high_inc: bool) -> str:
    left = "(-inf" if low is None else ("[" if low_inc else "(") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + ("]" if high_inc else ")")
    return f"{left}, {right}"
