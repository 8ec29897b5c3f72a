"""One trial's configuration: every hyperparameter of the network and of its training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from autodnn.config._values import DEFAULT_MC_SAMPLES, MOMENTUM_OPTIMIZERS
from autodnn.errors import ConfigError


@dataclass(frozen=True)
class TrialConfig:
    """Every hyperparameter of one network, dense or convolutional, and of its training.

    A convolutional network (``family: conv``, for images) is a stem, ``conv_groups`` groups of ``conv_blocks``
    blocks that each end in a downsampling, and a head: global average pooling or a flatten, then the dense
    fields' ``n_hidden`` layers of ``n_units`` (with their dropout) and the output. Its activation,
    initializer, normalization, regularization, optimizer, schedule and batch size are the same fields as a
    dense network's.

    Attributes:
        family: ``dense`` (a stack of dense layers over the features) or ``conv`` (a convolutional network over
            the image; :mod:`autodnn.network.conv`).
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
        conv_groups: Groups of blocks after the stem; each group ends in a downsampling by 2.
        conv_blocks: Blocks in each group (a plain block is one convolution, a residual block two).
        conv_filters: Filters of the stem; group ``g`` (1-based) has ``conv_filters * filter_growth ** g``.
        filter_growth: How much wider each group is than the one before.
        kernel_size: Kernel size of the blocks' convolutions.
        stem_kernel: Kernel size of the stem's convolution (the book's CNN: 7).
        stem_downsample: Downsample by 2 after the stem too (the book's CNN does; on 32 x 32 images most nets
            do not).
        conv_block: ``plain`` (convolution, normalization, activation) or ``residual`` (two of them and a
            shortcut, projected by a 1 x 1 convolution where the width changes; the book's ``ResidualUnit``).
        downsample: ``max_pool`` (2 x 2 max pooling after the group) or ``stride`` (the group's last block
            convolves with stride 2).
        conv_head: ``gap`` (global average pooling, few weights) or ``flatten`` (the book's CNN).
        spatial_dropout: Rate of spatial dropout (whole feature maps) after each group; 0 disables it.
        augment_flip: Training sees each image flipped left to right with probability 1/2.
        augment_shift: Training sees each image shifted by up to this share of its height and width, the
            uncovered border filled with zeros (the standardized mean); 0 disables it.
        label_smoothing: Share of the target moved from the true class to all classes alike (classification).
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
    family: str = "dense"
    conv_groups: int = 3
    conv_blocks: int = 1
    conv_filters: int = 32
    filter_growth: float = 2.0
    kernel_size: int = 3
    stem_kernel: int = 3
    stem_downsample: bool = False
    conv_block: str = "plain"
    downsample: str = "max_pool"
    conv_head: str = "gap"
    spatial_dropout: float = 0.0
    augment_flip: bool = False
    augment_shift: float = 0.0
    label_smoothing: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        from autodnn.config._checks import validate

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
        from autodnn.config._checks import unknown_key_message

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
    def shape_words(self) -> str:
        """The network's shape in a few words: ``2 x 64`` (dense), or a convnet's stem, groups and head:
        ``conv 3x3 32, 3 groups of 1 plain block (64-128-256), max pool, gap, dense 128``."""
        if self.family != "conv":
            return f"{self.n_hidden} x {self.n_units}"
        blocks = f"{self.conv_blocks} {self.conv_block} block{'s' if self.conv_blocks > 1 else ''}"
        stem = f"{self.stem_kernel}x{self.stem_kernel} {self.conv_filters}" + (" pooled" if self.stem_downsample else "")
        head = f", dense {'-'.join(map(str, self.hidden_units))}" if self.n_hidden else ""
        return (f"conv {stem}, {self.conv_groups} groups of {blocks} "
                f"({'-'.join(map(str, self.group_filters))}), {self.downsample.replace('_', ' ')}, "
                f"{self.conv_head}{head}")

    @property
    def group_filters(self) -> list[int]:
        """Filters of each group of a convolutional network (:attr:`conv_filters` grown per group)."""
        return [max(1, round(self.conv_filters * self.filter_growth ** g)) for g in range(1, self.conv_groups + 1)]

    @property
    def has_dropout(self) -> bool:
        """Whether a dense network has an active dropout layer, so that MC dropout makes sense (it needs the
        dense family's layer stack: a convolutional network is tested without it)."""
        return self.family == "dense" and ((self.dropout > 0 and self.n_hidden > 0) or self.alpha_dropout > 0)

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
