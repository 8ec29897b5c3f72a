"""Layers and inference helpers that Keras lacks: Mish, generalized Swish, RReLU and MC dropout.

The activations are small registered layers, so a saved model loads without custom objects once
``autodnn.network.layers`` is imported. MC dropout (Gal and Ghahramani 2016; chapter 11) averages the predictions of
many passes in which only the dropout layers are stochastic while batch normalization keeps using its moving
statistics, which is what the book's ``MCDropout`` subclass achieves. Here the mode is chosen per layer at
prediction time instead, so the models that :func:`autodnn.network.model.build_model` makes use plain Keras dropout
layers and train, save and predict like any other model.
"""

from __future__ import annotations

import weakref
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = [
    "STOCHASTIC_LAYERS",
    "GeneralizedSwish",
    "HeldAlphaDropout",
    "HeldDropout",
    "Mish",
    "RReLU",
    "mc_accuracy",
    "mc_predict",
    "trained_params",
]

#: Layer types that MC dropout runs in training mode; every other layer runs in inference mode.
STOCHASTIC_LAYERS: tuple[type[keras.layers.Layer], ...] = (keras.layers.Dropout, keras.layers.AlphaDropout)


@keras.saving.register_keras_serializable(package="autodnn")
class Mish(keras.layers.Layer):
    """Mish activation ``z * tanh(softplus(z))`` (Misra 2019)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return inputs * ops.tanh(ops.softplus(inputs))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="autodnn")
class GeneralizedSwish(keras.layers.Layer):
    """Swish with a fixed slope: ``z * sigmoid(beta * z)``.

    ``beta = 1`` is SiLU (Keras' ``"swish"``); ``beta = 1.702`` approximates GELU.

    Args:
        beta: Slope of the sigmoid gate; must be > 0.
        **kwargs: Passed to :class:`keras.layers.Layer` (``name``, ``dtype``, ...).

    Raises:
        ValueError: ``beta`` is not positive.
    """

    def __init__(self, beta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not beta > 0:
            raise ValueError(f"beta must be > 0, but got {beta!r}.")
        self.beta = float(beta)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return inputs * ops.sigmoid(self.beta * inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="autodnn")
class RReLU(keras.layers.Layer):
    """Randomized leaky ReLU (Xu et al. 2015).

    In training every element gets its own negative slope drawn uniformly from ``[lower, upper]``, which acts
    as a regularizer; at inference the slope is fixed to the mean ``(lower + upper) / 2``.

    Args:
        lower: Smallest negative slope, in ``[0, 1]``.
        upper: Largest negative slope, in ``[lower, 1]``.
        seed: Seed of the slopes' random generator, for repeatable training.
        **kwargs: Passed to :class:`keras.layers.Layer`.

    Raises:
        ValueError: The bounds are outside ``[0, 1]`` or ``lower > upper``.
    """

    def __init__(self, lower: float = 1 / 8, upper: float = 1 / 3, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= lower <= upper <= 1.0:
            raise ValueError(f"RReLU needs 0 <= lower <= upper <= 1, but got lower={lower!r}, upper={upper!r}.")
        self.lower = float(lower)
        self.upper = float(upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    @property
    def inference_slope(self) -> float:
        """The fixed negative slope used at inference, the mean of the bounds."""
        return (self.lower + self.upper) / 2

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training:
            slope = keras.random.uniform(
                ops.shape(inputs),
                minval=self.lower,
                maxval=self.upper,
                dtype=inputs.dtype,
                seed=self.seed_generator,
            )
        else:
            slope = ops.cast(self.inference_slope, inputs.dtype)
        return ops.where(inputs >= 0, inputs, slope * inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lower": self.lower, "upper": self.upper, "seed": self.seed}


class _HeldRate:
    """Mixin for a dropout layer: its rate is a non-trainable scalar weight, not a Python float.

    Tracing would bake a float rate into the compiled train step; as a weight the rate is part of the
    model's state, so nets that differ only in their dropout rate share one compiled program
    (:mod:`autodnn.training.programs`). The weight is not a parameter of the network: :func:`trained_params` leaves
    it out.
    """

    rate: float

    def build(self, input_shape: Any) -> None:
        self.rate_variable = self.add_weight(  # type: ignore[attr-defined]
            shape=(), initializer=keras.initializers.Constant(float(self.rate)), trainable=False, name="rate"
        )
        super().build(input_shape)  # type: ignore[misc]

    def held_rate(self, dtype: Any) -> Any:
        """The rate, as a tensor of ``dtype``."""
        return ops.cast(self.rate_variable, dtype)


@keras.saving.register_keras_serializable(package="autodnn")
class HeldDropout(_HeldRate, keras.layers.Dropout):
    """``keras.layers.Dropout`` (the same masks and scaling) whose rate is held in a weight (:class:`_HeldRate`)."""

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        # Keras' backend dropout tests its rate as a Python number; this is its arithmetic, for a tensor rate.
        keep = 1 - self.held_rate(inputs.dtype)
        shape = ops.shape(inputs) if self.noise_shape is None else self.noise_shape
        kept = keras.random.uniform(shape, seed=self.seed_generator) < ops.cast(keep, "float32")
        return ops.where(kept, inputs / keep, ops.zeros_like(inputs))


@keras.saving.register_keras_serializable(package="autodnn")
class HeldAlphaDropout(_HeldRate, keras.layers.AlphaDropout):
    """``keras.layers.AlphaDropout`` (Klambauer et al. 2017) whose rate is held in a weight."""

    _ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        rate = self.held_rate(inputs.dtype)
        noise_shape = self._get_concrete_noise_shape(inputs, self.noise_shape)
        kept = ops.cast(ops.greater_equal(keras.random.uniform(noise_shape, seed=self.seed_generator), rate),
                        inputs.dtype)
        a = ops.power((1 - rate) * (1 + rate * self._ALPHA_P**2), -0.5)
        b = -a * self._ALPHA_P * rate
        return a * (inputs * kept + self._ALPHA_P * (1 - kept)) + b


def trained_params(model: keras.Model) -> int:
    """The network's weights, as ``count_params`` counts them, less the held dropout rates."""
    held = sum(1 for layer in model.layers if isinstance(layer, _HeldRate))
    return int(model.count_params()) - held


class _StackRunner(keras.Model):
    """Runs a slice of a layer stack with dropout layers in training mode and all others in inference mode.

    Keras' functional models pass the outer ``training`` flag to every layer, so the per-layer modes need a
    model of their own; sharing the layer objects shares the weights and the dropout seed generators.
    """

    def __init__(self, stack: list[keras.layers.Layer], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stack = stack

    def call(self, inputs: Any) -> Any:
        x = inputs
        for layer in self.stack:
            x = layer(x, training=isinstance(layer, STOCHASTIC_LAYERS))
        return x


# The layers a split was made from, then its prefix and suffix runners.
_Split = tuple[tuple[keras.layers.Layer, ...], _StackRunner | None, _StackRunner | None]

# Runners compile on first use; caching them per model keeps repeated MC evaluations from recompiling.
_RUNNERS: weakref.WeakKeyDictionary[keras.Model, _Split] = weakref.WeakKeyDictionary()


def _runners(model: keras.Model) -> tuple[_StackRunner | None, _StackRunner | None]:
    """Splits ``model`` at its first dropout layer into a deterministic prefix and a stochastic suffix.

    Either part is None when it is empty: no prefix when the first layer is a dropout layer, no suffix when
    the model has no dropout layer at all.
    """
    if not isinstance(model, keras.Sequential):
        raise TypeError(
            f"MC dropout needs a keras.Sequential layer stack (as build_model makes), but got "
            f"{type(model).__name__}."
        )
    layers = tuple(model.layers)
    cached = _RUNNERS.get(model)
    if cached is not None and cached[0] == layers:
        return cached[1], cached[2]
    first = next((i for i, layer in enumerate(layers) if isinstance(layer, STOCHASTIC_LAYERS)), len(layers))
    prefix = _StackRunner(list(layers[:first]), name="mc_prefix") if first > 0 else None
    suffix = _StackRunner(list(layers[first:]), name="mc_suffix") if first < len(layers) else None
    _RUNNERS[model] = (layers, prefix, suffix)
    return prefix, suffix


def _predict_in_batches(runner: _StackRunner, x: np.ndarray, batch_size: int) -> np.ndarray:
    # predict_on_batch skips the per-call data pipeline that predict() builds, which costs ~0.1 s a call on
    # TensorFlow and would dominate a few hundred MC passes over a small validation set.
    return np.concatenate(
        [np.asarray(runner.predict_on_batch(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def mc_predict(
    model: keras.Model, x: Any, samples: int, *, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo dropout: the mean and spread of ``samples`` stochastic predictions.

    Every pass runs the dropout and alpha-dropout layers in training mode and every other layer (batch
    normalization, RReLU, ...) in inference mode, so moving statistics are used and never updated. The
    layers before the first dropout layer are deterministic, so their output is computed once and only the
    rest of the network runs ``samples`` times, each pass batched over ``x``. Passes draw their masks from
    the dropout layers' seed generators, so a model built with a seed gives repeatable results.

    Args:
        model: A Sequential layer stack, such as :func:`autodnn.network.model.build_model` returns.
        x: Inputs, shape ``(n, n_features)``.
        samples: Number of stochastic passes (the book uses 10 to 100); must be >= 1.
        batch_size: Rows per compiled call.

    Returns:
        ``(mean, std)``: the mean class probabilities over the passes and their standard deviation (an
        uncertainty estimate), both float32 of shape ``(n, n_classes)``. Without dropout layers the mean is
        the plain prediction and the deviation is zero.

    Raises:
        ValueError: ``samples`` or ``batch_size`` is not a positive whole number.
        TypeError: ``model`` is not a Sequential stack.
    """
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a whole number >= 1, but got {samples!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, but got {batch_size!r}.")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must hold at least one row of features, but has shape {x.shape}.")
    prefix, suffix = _runners(model)
    hidden = _predict_in_batches(prefix, x, batch_size) if prefix is not None else x
    if suffix is None:
        return hidden.astype(np.float32), np.zeros_like(hidden, dtype=np.float32)
    # Sums in float64 keep the one-pass variance exact enough for hundreds of passes.
    total = np.zeros((len(x), *model.output_shape[1:]), dtype=np.float64)
    total_sq = np.zeros_like(total)
    for _ in range(samples):
        probs = _predict_in_batches(suffix, hidden, batch_size).astype(np.float64)
        total += probs
        total_sq += probs * probs
    mean = total / samples
    std = np.sqrt(np.maximum(total_sq / samples - mean * mean, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def mc_accuracy(model: keras.Model, x: Any, y: Any, samples: int, *, batch_size: int = 1024) -> float:
    """Accuracy of the MC-dropout mean prediction (see :func:`mc_predict`).

    Args:
        model: A Sequential layer stack with a softmax output.
        x: Inputs, shape ``(n, n_features)``.
        y: Integer class labels of shape ``(n,)`` (or ``(n, 1)``), or one-hot targets of shape
            ``(n, n_classes)``.
        samples: Number of stochastic passes; must be >= 1.
        batch_size: Rows per compiled call.

    Returns:
        The fraction of rows whose most probable class is the label.
    """
    mean, _ = mc_predict(model, x, samples, batch_size=batch_size)
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == mean.shape[1] and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    if len(labels) != len(mean):
        raise ValueError(f"y has {len(labels)} labels but x has {len(mean)} rows; they must match.")
    return float(np.mean(mean.argmax(axis=1) == labels))
