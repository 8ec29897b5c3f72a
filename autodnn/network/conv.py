"""Builds the convolutional network of one trial (``family: conv``) from its :class:`~autodnn.config.TrialConfig`.

The design follows the primer's pattern (a stem, a learner of groups of blocks, a task head) and the book's
chapter 14 (``DefaultConv2D``, the Fashion-MNIST CNN, ``ResidualUnit``). The input is a row of standardized
pixels, as every autodnn dataset gives it; the network reshapes it to the image and, in training only, flips
and shifts it (:class:`~autodnn.network.augment.FlipShift`). Layers have predictable names:

- ``image``: the reshape; ``augment``: the augmentation, where the configuration asks for one;
- ``stem_conv`` (with ``stem_bn``, ``act_0``) and ``stem_pool`` under ``stem_downsample``;
- group ``g`` (1-based), block ``b``: ``g{g}b{b}_conv`` (a residual block: ``_conv1``, ``_conv2``, and
  ``_project`` on a shortcut that changes width or size), its ``_bn`` and activation, then ``g{g}_pool``
  (``downsample: max_pool``) and ``g{g}_dropout`` (``spatial_dropout``);
- ``gap`` or ``flatten``; the head's ``hidden_i``, ``act_h{i}``, ``dropout_i`` as a dense net's; ``output``.

The kernel initializer, the activation and the normalization's placement are the dense family's rules
(:mod:`autodnn.network.model`): Table 11-1 decides ``auto``, batch norm before the activation drops the
convolution's bias. L1/L2 and max-norm apply to every convolution and hidden dense kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from autodnn.config import TrialConfig
from autodnn.network.augment import FlipShift
from autodnn.network.layers import HeldDropout
from autodnn.network.model import (
    activation_layer,
    derived_seed,
    dropout_layer_indices,
    hidden_units,
    output_bias,
    resolve_initializer,
)

__all__ = ["build_conv_model"]

# Seed streams of their own, apart from the dense family's (0-4).
_CONV, _HEAD, _OUTPUT, _DROPOUT, _SPATIAL, _AUGMENT = range(10, 16)


class _Builder:
    """Adds the layers of one network to a functional graph, numbering kernels and activations for seeds."""

    def __init__(self, config: TrialConfig, seed: int | None) -> None:
        self.config = config
        self.seed = seed
        self.n_kernels = 0
        self.n_activations = 0
        regularize = config.l1 > 0 or config.l2 > 0
        self.regularizer = keras.regularizers.L1L2(l1=config.l1, l2=config.l2) if regularize else None

    def conv(self, x: Any, filters: int, kernel: int, name: str, strides: int = 1, bias: bool = True) -> Any:
        self.n_kernels += 1
        return keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=bias,
            kernel_initializer=resolve_initializer(self.config, seed=derived_seed(self.seed, _CONV, self.n_kernels)),
            kernel_regularizer=self.regularizer,
            kernel_constraint=(keras.constraints.MaxNorm(self.config.max_norm, axis=[0, 1, 2])
                               if self.config.max_norm else None),
            name=name)(x)

    def activate(self, x: Any, name: str) -> Any:
        """The activation, with batch norm before or after it as the configuration places it."""
        act = self.activation(name)
        if self.config.normalization == "none":
            return act(x)
        bn = keras.layers.BatchNormalization(momentum=self.config.bn_momentum, name=f"{name}_bn")
        return bn(act(x)) if self.config.normalization == "batch_norm_after" else act(bn(x))

    def conv_unit(self, x: Any, filters: int, kernel: int, name: str, strides: int = 1) -> Any:
        """Convolution, normalization and activation: the plain block, and each half of a residual one."""
        x = self.conv(x, filters, kernel, f"{name}_conv", strides, bias=self.config.normalization != "batch_norm_before")
        return self.activate(x, name)

    def residual(self, x: Any, filters: int, name: str, strides: int) -> Any:
        """The book's ``ResidualUnit``: two convolutions, the second not activated before the sum, and a
        shortcut projected by a 1 x 1 convolution where the width or the size changes."""
        config = self.config
        main = self.conv_unit(x, filters, config.kernel_size, f"{name}a", strides)
        main = self.conv(main, filters, config.kernel_size, f"{name}b_conv", bias=config.normalization == "none")
        if config.normalization != "none":
            main = keras.layers.BatchNormalization(momentum=config.bn_momentum, name=f"{name}b_bn")(main)
        shortcut = x
        if strides != 1 or x.shape[-1] != filters:
            shortcut = self.conv(x, filters, 1, f"{name}_project", strides, bias=config.normalization == "none")
            if config.normalization != "none":
                shortcut = keras.layers.BatchNormalization(momentum=config.bn_momentum, name=f"{name}_project_bn")(
                    shortcut)
        summed = keras.layers.Add(name=f"{name}_add")([main, shortcut])
        return self.activation(name)(summed)

    def activation(self, name: str) -> keras.layers.Layer:
        self.n_activations += 1
        return activation_layer(self.config, self.n_activations, self.seed, name=f"act_{name}")


def build_conv_model(config: TrialConfig, image_shape: Sequence[int], n_classes: int, *, seed: int | None = None,
                     priors: Sequence[float] | None = None, regression: bool = False) -> keras.Model:
    """Builds the (uncompiled) convolutional classifier or regressor of ``config``.

    Args:
        config: The trial configuration (``family: conv``).
        image_shape: ``(height, width, channels)``; the network's input is a row of ``height * width * channels``
            standardized values in that order, as :class:`autodnn.datasets.Dataset` holds images.
        n_classes: Classes of the softmax output (>= 2); ignored for a regression.
        seed: Makes the initial weights, the dropout masks and the augmentation repeatable.
        priors: The training class shares, for ``output_bias: priors``.
        regression: One linear output unit instead of a softmax.

    Returns:
        A functional ``keras.Model`` with the layer names of this module's docstring.
    """
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (height, width, channels), but got {tuple(image_shape)}.")
    if n_classes < 2 and not regression:
        raise ValueError(f"n_classes must be >= 2 for a softmax classifier, but got {n_classes}.")
    build = _Builder(config, seed)
    n_features = int(image_shape[0] * image_shape[1] * image_shape[2])
    inputs = keras.Input(shape=(n_features,), name="features")
    x = keras.layers.Reshape(tuple(int(d) for d in image_shape), name="image")(inputs)
    if config.augment_flip or config.augment_shift > 0:
        x = FlipShift(config.augment_flip, config.augment_shift, seed=derived_seed(seed, _AUGMENT),
                      name="augment")(x)
    x = build.conv_unit(x, config.conv_filters, config.stem_kernel, "stem")
    if config.stem_downsample:
        x = keras.layers.MaxPooling2D(2, padding="same", name="stem_pool")(x)
    for g, filters in enumerate(config.group_filters, start=1):
        for b in range(1, config.conv_blocks + 1):
            strides = 2 if config.downsample == "stride" and b == config.conv_blocks else 1
            name = f"g{g}b{b}"
            if config.conv_block == "residual":
                x = build.residual(x, filters, name, strides)
            else:
                x = build.conv_unit(x, filters, config.kernel_size, name, strides)
        if config.downsample == "max_pool":
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"g{g}_pool")(x)
        if config.spatial_dropout > 0:
            x = keras.layers.SpatialDropout2D(config.spatial_dropout, seed=derived_seed(seed, _SPATIAL, g),
                                              name=f"g{g}_dropout")(x)
    if config.conv_head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    dropout_after = set(dropout_layer_indices(config))
    for i, units in enumerate(hidden_units(config), start=1):
        x = keras.layers.Dense(
            units, use_bias=config.normalization != "batch_norm_before",
            kernel_initializer=resolve_initializer(config, seed=derived_seed(seed, _HEAD, i)),
            kernel_regularizer=build.regularizer, name=f"hidden_{i}")(x)
        x = build.activate(x, f"h{i}")
        if i in dropout_after:
            x = HeldDropout(config.dropout, seed=derived_seed(seed, _DROPOUT, i), name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(
        1 if regression else n_classes, activation=None if regression else "softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed=derived_seed(seed, _OUTPUT)),
        bias_initializer="zeros" if regression else output_bias(config, priors, n_classes),
        name="output")(x)
    return keras.Model(inputs, outputs, name="autodnn_convnet")
