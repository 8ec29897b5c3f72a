"""The values each field of a trial's configuration may take: named choices and numeric ranges."""

from __future__ import annotations

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
FAMILIES = ("dense", "conv")
CONV_BLOCKS = ("plain", "residual")
DOWNSAMPLES = ("max_pool", "stride")
CONV_HEADS = ("gap", "flatten")

#: Validation splits under this many rows are small: one row moves the accuracy by more than 0.1 points, so
#: a run keeps its best-loss epoch there (``restore_best: auto``) and the final evaluation picks the best by
#: cross-validation among the search's finalists and the baselines.
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
    "family": FAMILIES,
    "conv_block": CONV_BLOCKS,
    "downsample": DOWNSAMPLES,
    "conv_head": CONV_HEADS,
}

#: The numeric fields that hold whole numbers.
_INTEGERS = frozenset({"n_hidden", "n_units", "dropout_top_k", "plateau_patience", "batch_size", "patience",
                       "mc_samples", "conv_groups", "conv_blocks", "conv_filters", "kernel_size", "stem_kernel"})

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
    "conv_groups": (1, None, True, True),
    "conv_blocks": (1, None, True, True),
    "conv_filters": (1, None, True, True),
    "filter_growth": (1.0, None, True, True),
    "kernel_size": (1, None, True, True),
    "stem_kernel": (1, None, True, True),
    "spatial_dropout": (0.0, 1.0, True, False),
    "augment_shift": (0.0, 0.5, True, True),
    "label_smoothing": (0.0, 1.0, True, False),
}
