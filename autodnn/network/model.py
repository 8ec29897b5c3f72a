"""Builds the dense network of one trial from its :class:`~autodnn.config.TrialConfig`.

The network is a ``keras.Sequential`` stack whose layers have predictable names, so that tests, the trainer
and reports can find them. For hidden layer ``i`` (1-based):

- ``hidden_i``: the Dense layer, always without activation (and without bias before batch norm);
- ``bn_i``: batch normalization, before ``act_i`` (``batch_norm_before``) or after it (``batch_norm_after``);
- ``act_i``: the activation, always a layer of its own, so its output is the hidden layer's activation
  whatever the activation or the normalization;
- ``dropout_i``: dropout after the hidden layer, where ``dropout_placement`` puts it.

Then ``alpha_dropout`` (when ``alpha_dropout > 0``) and ``output``, the softmax Dense layer (one linear unit for a
regression).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from autodnn.config import TrialConfig
from autodnn.network.layers import GeneralizedSwish, HeldAlphaDropout, HeldDropout, Mish, RReLU

__all__ = [
    "INITIALIZER_FAMILIES",
    "TABLE_11_1",
    "activation_layer",
    "build_model",
    "count_params",
    "derived_seed",
    "dropout_layer_indices",
    "hidden_units",
    "initializer_spec",
    "output_bias",
    "resolve_initializer",
]

#: Table 11-1: the initializer family each hidden activation calls for.
TABLE_11_1: dict[str, str] = {
    "relu": "he",
    "leaky_relu": "he",
    "prelu": "he",
    "rrelu": "he",
    "elu": "he",
    "gelu": "he",
    "swish": "he",
    "mish": "he",
    "selu": "lecun",
    "tanh": "glorot",
    "sigmoid": "glorot",
}

#: Scale and fan of each family's variance ``sigma^2 = scale / fan`` (Table 11-1).
INITIALIZER_FAMILIES: dict[str, tuple[float, str]] = {
    "glorot": (1.0, "fan_avg"),
    "he": (2.0, "fan_in"),
    "lecun": (1.0, "fan_in"),
}

# Independent seed streams, so that e.g. adding dropout does not change the initial weights.
_KERNEL, _OUTPUT, _DROPOUT, _ALPHA_DROPOUT, _RRELU = range(5)


def derived_seed(seed: int | None, stream: int, index: int = 0) -> int | None:
    """The seed of layer ``index``'s draws in random ``stream``, derived from the network's ``seed``."""
    if seed is None:
        return None
    state = np.random.SeedSequence(entropy=seed, spawn_key=(stream, index)).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def initializer_spec(config: TrialConfig) -> tuple[str, float, str, str]:
    """The hidden-kernel initializer a configuration asks for, resolved to plain values.

    Args:
        config: The trial configuration (``initializer``, ``init_mode``, ``init_distribution``, ``activation``).

    Returns:
        ``(family, scale, mode, distribution)``: the family (``auto`` resolved by Table 11-1), the variance
        scale, the fan (``fan_in`` or ``fan_avg``) and ``normal`` or ``uniform``.
    """
    family = TABLE_11_1[config.activation] if config.initializer == "auto" else config.initializer
    scale, mode = INITIALIZER_FAMILIES[family]
    if config.init_mode != "auto":
        mode = config.init_mode
    return family, scale, mode, config.init_distribution


def resolve_initializer(config: TrialConfig, *, seed: int | None = None) -> keras.initializers.VarianceScaling:
    """The hidden-kernel initializer of Table 11-1 for ``config``.

    Normal draws come from a truncated normal rescaled so that the variance is ``scale / fan`` (what Keras'
    ``he_normal`` and ``lecun_normal`` do); uniform draws lie in ``[-r, r]`` with ``r = sqrt(3 scale / fan)``.

    Args:
        config: The trial configuration.
        seed: Seed of the draws. A seeded initializer returns the same values at every call, so give each
            layer its own seed (:func:`build_model` does).

    Returns:
        A ``keras.initializers.VarianceScaling`` instance.
    """
    _, scale, mode, distribution = initializer_spec(config)
    return keras.initializers.VarianceScaling(
        scale=scale,
        mode=mode,
        distribution="truncated_normal" if distribution == "normal" else "uniform",
        seed=seed,
    )


def hidden_units(config: TrialConfig) -> list[int]:
    """Units of each hidden layer: the first is ``first_layer_factor`` times ``n_units`` (rounded)."""
    return config.hidden_units


def dropout_layer_indices(config: TrialConfig) -> list[int]:
    """The 1-based indices of the hidden layers followed by a ``dropout_i`` layer (empty without dropout)."""
    if config.dropout <= 0 or config.n_hidden == 0:
        return []
    if config.dropout_placement == "all":
        first = 1
    elif config.dropout_placement == "top":
        first = max(1, config.n_hidden - config.dropout_top_k + 1)
    else:
        first = config.n_hidden
    return list(range(first, config.n_hidden + 1))


def count_params(config: TrialConfig, n_features: int, n_classes: int) -> int:
    """Number of weights of the network :func:`build_model` makes, without building it.

    Batch norm counts its four vectors (two of them are moving statistics, not trained), as Keras does.
    """
    total, fan_in = 0, n_features
    for units in hidden_units(config):
        total += fan_in * units
        if config.normalization != "batch_norm_before":
            total += units
        if config.normalization != "none":
            total += 4 * units
        if config.activation == "prelu":
            total += units
        fan_in = units
    return total + fan_in * n_classes + n_classes


def activation_layer(config: TrialConfig, index: int, seed: int | None, name: str | None = None
                     ) -> keras.layers.Layer:
    """The hidden activation of ``config`` as a layer of its own, named ``name`` (default ``act_{index}``); an
    RReLU draws its slopes from stream ``index`` of ``seed``."""
    name = name or f"act_{index}"
    activation = config.activation
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=config.activation_alpha, name=name)
    if activation == "prelu":
        return keras.layers.PReLU(name=name)
    if activation == "rrelu":
        return RReLU(config.rrelu_lower, config.rrelu_upper, seed=derived_seed(seed, _RRELU, index), name=name)
    if activation == "elu":
        return keras.layers.ELU(alpha=config.elu_alpha, name=name)
    if activation == "swish":
        if config.swish_beta == 1.0:
            return keras.layers.Activation("silu", name=name)
        return GeneralizedSwish(config.swish_beta, name=name)
    if activation == "mish":
        return Mish(name=name)
    return keras.layers.Activation(activation, name=name)


def build_model(config: TrialConfig, n_features: int, n_classes: int, *, seed: int | None = None,
                priors: Sequence[float] | None = None, regression: bool = False) -> keras.Model:
    """Builds the (uncompiled) classifier or regressor a trial configuration describes.

    Args:
        config: The trial configuration.
        n_features: Width of the input rows.
        n_classes: Number of classes of the softmax output; must be >= 2. Ignored for a regression.
        seed: Makes the initial weights and the dropout and RReLU random streams repeatable (on one backend
            and device); None draws fresh ones.
        priors: The training class shares, for ``config.output_bias == "priors"`` (the output bias starts at
            their logarithms); None starts it at zero.
        regression: One linear output unit (bias at zero, the standardized target's mean) instead of a softmax.

    Returns:
        A ``keras.Sequential`` model with the layer names listed in this module's docstring.

    Raises:
        ValueError: ``n_features`` or ``n_classes`` is out of range.
    """
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, but got {n_features}.")
    if n_classes < 2 and not regression:
        raise ValueError(f"n_classes must be >= 2 for a softmax classifier, but got {n_classes}.")
    regularize = config.l1 > 0 or config.l2 > 0
    dropout_after = set(dropout_layer_indices(config))
    layers: list[keras.layers.Layer | keras.KerasTensor] = [keras.Input(shape=(n_features,), name="features")]
    for i, units in enumerate(hidden_units(config), start=1):
        layers.append(
            keras.layers.Dense(
                units,
                use_bias=config.normalization != "batch_norm_before",
                kernel_initializer=resolve_initializer(config, seed=derived_seed(seed, _KERNEL, i)),
                kernel_regularizer=keras.regularizers.L1L2(l1=config.l1, l2=config.l2) if regularize else None,
                kernel_constraint=keras.constraints.MaxNorm(config.max_norm, axis=0) if config.max_norm else None,
                name=f"hidden_{i}",
            )
        )
        activation = activation_layer(config, i, seed)
        if config.normalization == "none":
            layers.append(activation)
        else:
            bn = keras.layers.BatchNormalization(momentum=config.bn_momentum, name=f"bn_{i}")
            layers.extend([bn, activation] if config.normalization == "batch_norm_before" else [activation, bn])
        if i in dropout_after:
            layers.append(
                HeldDropout(config.dropout, seed=derived_seed(seed, _DROPOUT, i), name=f"dropout_{i}")
            )
    if config.alpha_dropout > 0:
        layers.append(
            HeldAlphaDropout(
                config.alpha_dropout, seed=derived_seed(seed, _ALPHA_DROPOUT), name="alpha_dropout"
            )
        )
    layers.append(
        keras.layers.Dense(
            1 if regression else n_classes,
            activation=None if regression else "softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=derived_seed(seed, _OUTPUT)),
            bias_initializer="zeros" if regression else output_bias(config, priors, n_classes),
            name="output",
        )
    )
    return keras.Sequential(layers, name="autodnn_mlp")


def output_bias(config: TrialConfig, priors: Sequence[float] | None, n_classes: int) -> Any:
    """Log class shares (clipped away from zero) where the configuration asks for them and they are known."""
    if config.output_bias != "priors" or priors is None:
        return "zeros"
    shares = np.clip(np.asarray(priors, dtype=np.float64), 1e-6, None)
    if shares.shape != (n_classes,):
        raise ValueError(f"priors must hold one share a class ({n_classes}), but got shape {shares.shape}.")
    return keras.initializers.Constant(np.log(shares / shares.sum()).tolist())
