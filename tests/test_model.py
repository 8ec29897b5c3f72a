"""Tests of autodnn.network.model: each chapter-11 technique is where the configuration says and does what it should."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest

from autodnn.config import ACTIVATIONS, TrialConfig
from autodnn.network.layers import STOCHASTIC_LAYERS, GeneralizedSwish, Mish, RReLU, trained_params
from autodnn.network.model import (
    TABLE_11_1,
    build_model,
    count_params,
    dropout_layer_indices,
    hidden_units,
    initializer_spec,
    resolve_initializer,
)

FAN_IN, FAN_OUT = 800, 400  # unequal, so that fan_in and fan_avg give different variances
# One set of small shapes throughout: JAX compiles the random draws of each new kernel shape once.
F, U, C = 6, 8, 3


def _build(seed: int = 0, **fields: object) -> keras.Model:
    """A small model: F features, hidden layers of U units (2 unless n_hidden says), C classes."""
    return build_model(TrialConfig(**{"n_hidden": 2, "n_units": U, **fields}), F, C, seed=seed)


# Keras 3 variables predate NumPy 2's ``copy`` keyword of ``__array__``; the warning is Keras' own.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _np(tensor: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def _hidden_kernels(model: keras.Model) -> list[np.ndarray]:
    return [_np(layer.kernel) for layer in model.layers if layer.name.startswith("hidden_")]


# Initialization (Table 11-1) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "distribution", "mode"),
    list(itertools.product(["glorot", "he", "lecun"], ["normal", "uniform"], ["auto", "fan_in", "fan_avg"])),
)
def test_initializer_variance_matches_table_11_1(family: str, distribution: str, mode: str) -> None:
    config = TrialConfig(initializer=family, init_distribution=distribution, init_mode=mode)
    scale = {"glorot": 1.0, "he": 2.0, "lecun": 1.0}[family]
    fan_mode = mode if mode != "auto" else {"glorot": "fan_avg", "he": "fan_in", "lecun": "fan_in"}[family]
    fan = FAN_IN if fan_mode == "fan_in" else (FAN_IN + FAN_OUT) / 2
    variance = scale / fan

    weights = _np(resolve_initializer(config, seed=7)((FAN_IN, FAN_OUT)))

    # 320,000 draws: the sample variance is within ~0.5% of the truth (3 standard errors).
    assert abs(weights.mean()) < 0.01 * math.sqrt(variance)
    assert weights.var() == pytest.approx(variance, rel=0.02)
    bound = np.abs(weights).max()
    if distribution == "uniform":
        r = math.sqrt(3 * variance)
        assert r * 0.999 < bound <= r
    else:
        # Truncated at two standard deviations of the underlying (wider) normal, rescaled to variance sigma^2.
        assert bound <= 2 * math.sqrt(variance) / 0.87962566103423978 + 1e-6
        assert bound > 2 * math.sqrt(variance)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_auto_initializer_follows_table_11_1(activation: str) -> None:
    expected = {"selu": ("lecun", 1.0, "fan_in"), "tanh": ("glorot", 1.0, "fan_avg")}
    expected["sigmoid"] = expected["tanh"]
    family, scale, mode, distribution = initializer_spec(TrialConfig(activation=activation))
    assert (family, scale, mode) == expected.get(activation, ("he", 2.0, "fan_in"))
    assert distribution == "normal"
    init = resolve_initializer(TrialConfig(activation=activation))
    assert (init.scale, init.mode, init.distribution) == (scale, mode, "truncated_normal")


def test_table_11_1_covers_every_activation() -> None:
    assert set(TABLE_11_1) == set(ACTIVATIONS)


def test_build_model_puts_the_resolved_initializer_on_hidden_kernels_only() -> None:
    model = build_model(TrialConfig(n_hidden=2, n_units=100, activation="selu"), 100, 10, seed=0)
    for kernel in _hidden_kernels(model):
        sigma = math.sqrt(1.0 / kernel.shape[0])  # LeCun normal
        assert kernel.var() == pytest.approx(sigma**2, rel=0.05)
        assert np.abs(kernel).max() <= 2 * sigma / 0.87962566103423978 + 1e-6
    output = model.get_layer("output")
    assert isinstance(output.kernel_initializer, keras.initializers.GlorotUniform)
    assert output.activation is keras.activations.softmax


# Architecture and normalization ------------------------------------------------------------------------------


def test_plain_stack_names_and_widths() -> None:
    config = TrialConfig(n_hidden=3, n_units=U, first_layer_factor=1.5)
    model = build_model(config, F, C, seed=0)
    assert _names(model) == ["hidden_1", "act_1", "hidden_2", "act_2", "hidden_3", "act_3", "output"]
    assert [model.get_layer(f"hidden_{i}").units for i in (1, 2, 3)] == hidden_units(config) == [12, 8, 8]
    assert all(model.get_layer(f"hidden_{i}").use_bias for i in (1, 2, 3))
    assert model.output_shape == (None, C)


def test_zero_hidden_layers_is_softmax_regression() -> None:
    model = _build(n_hidden=0, dropout=0.5)
    assert _names(model) == ["output"]


def test_batch_norm_before_activation() -> None:
    model = _build(normalization="batch_norm_before", bn_momentum=0.9)
    assert _names(model) == ["hidden_1", "bn_1", "act_1", "hidden_2", "bn_2", "act_2", "output"]
    for i in (1, 2):
        dense, bn = model.get_layer(f"hidden_{i}"), model.get_layer(f"bn_{i}")
        assert not dense.use_bias and dense.bias is None
        assert dense.activation is keras.activations.linear
        assert isinstance(bn, keras.layers.BatchNormalization) and bn.momentum == 0.9


def test_batch_norm_after_activation() -> None:
    model = _build(activation="elu", normalization="batch_norm_after", bn_momentum=0.999)
    assert _names(model) == ["hidden_1", "act_1", "bn_1", "hidden_2", "act_2", "bn_2", "output"]
    for i in (1, 2):
        assert model.get_layer(f"hidden_{i}").use_bias
        assert isinstance(model.get_layer(f"act_{i}"), keras.layers.ELU)
        assert model.get_layer(f"bn_{i}").momentum == 0.999


# Regularization ----------------------------------------------------------------------------------------------


def test_max_norm_caps_hidden_kernel_columns_after_a_training_step() -> None:
    r = 1.5
    model = _build(max_norm=r)
    for layer in model.layers:
        if layer.name.startswith("hidden_"):
            layer.kernel.assign(np.full(layer.kernel.shape, 2.0, dtype=np.float32))
            assert isinstance(layer.kernel_constraint, keras.constraints.MaxNorm)
            assert layer.kernel_constraint.axis == 0
    assert model.get_layer("output").kernel_constraint is None
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.standard_normal((32, F)).astype(np.float32), rng.integers(0, 3, 32))
    for kernel in _hidden_kernels(model):
        norms = np.linalg.norm(kernel, axis=0)
        assert norms.max() <= r + 1e-5
        assert norms.min() > r - 0.05, "columns far above r should be rescaled to r, not shrunk further"


@pytest.mark.parametrize(("l1", "l2"), [(0.01, 0.0), (0.0, 0.01), (0.003, 0.02)])
def test_l1_l2_add_the_penalty_of_hidden_kernels(l1: float, l2: float) -> None:
    model = _build(n_hidden=3, l1=l1, l2=l2)
    kernels = _hidden_kernels(model)
    expected = sum(l1 * np.abs(k).sum() + l2 * np.square(k).sum() for k in kernels)
    assert len(model.losses) == 3
    assert float(sum(_np(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-5)


def test_no_penalty_without_l1_l2() -> None:
    model = _build()
    assert model.losses == []
    assert model.get_layer("hidden_1").kernel_regularizer is None


@pytest.mark.parametrize(
    ("placement", "top_k", "expected"),
    [("all", 1, [1, 2, 3, 4, 5]), ("top", 2, [4, 5]), ("top", 9, [1, 2, 3, 4, 5]), ("last", 3, [5])],
)
def test_dropout_follows_only_the_configured_hidden_layers(placement: str, top_k: int, expected: list[int]) -> None:
    config = TrialConfig(n_hidden=5, n_units=U, dropout=0.4, dropout_placement=placement, dropout_top_k=top_k)
    names = _names(build_model(config, F, C, seed=0))
    assert dropout_layer_indices(config) == expected
    assert [n for n in names if n.startswith("dropout_")] == [f"dropout_{i}" for i in expected]
    for i in expected:
        assert names[names.index(f"dropout_{i}") - 1] == f"act_{i}"


def test_dropout_comes_after_batch_norm_when_bn_follows_the_activation() -> None:
    names = _names(_build(dropout=0.2, normalization="batch_norm_after"))
    assert names == ["hidden_1", "act_1", "bn_1", "dropout_1", "hidden_2", "act_2", "bn_2", "dropout_2", "output"]


def test_alpha_dropout_sits_just_before_the_output() -> None:
    model = _build(n_hidden=3, activation="selu", alpha_dropout=0.1)
    assert _names(model)[-2:] == ["alpha_dropout", "output"]
    layer = model.get_layer("alpha_dropout")
    assert isinstance(layer, keras.layers.AlphaDropout) and layer.rate == 0.1
    assert sum(isinstance(layer, STOCHASTIC_LAYERS) for layer in model.layers) == 1


def test_no_dropout_layers_when_rates_are_zero() -> None:
    model = _build(n_hidden=3)
    assert not any(isinstance(layer, STOCHASTIC_LAYERS) for layer in model.layers)


# Activations -------------------------------------------------------------------------------------------------

Z = np.linspace(-4.0, 4.0, 81, dtype=np.float32).reshape(-1, 1)


def _act(config: TrialConfig) -> keras.layers.Layer:
    return build_model(config.replace(n_hidden=1, n_units=U), F, C, seed=0).get_layer("act_1")


@pytest.mark.parametrize(
    ("activation", "layer_type"),
    [
        ("relu", keras.layers.Activation),
        ("leaky_relu", keras.layers.LeakyReLU),
        ("prelu", keras.layers.PReLU),
        ("rrelu", RReLU),
        ("elu", keras.layers.ELU),
        ("selu", keras.layers.Activation),
        ("gelu", keras.layers.Activation),
        ("swish", keras.layers.Activation),
        ("mish", Mish),
        ("tanh", keras.layers.Activation),
        ("sigmoid", keras.layers.Activation),
    ],
)
def test_each_activation_gets_its_layer(activation: str, layer_type: type) -> None:
    assert type(_act(TrialConfig(activation=activation))) is layer_type


def test_leaky_relu_uses_activation_alpha_and_elu_its_own_alpha() -> None:
    leaky = _act(TrialConfig(activation="leaky_relu", activation_alpha=0.3))
    np.testing.assert_allclose(_np(leaky(Z)), np.where(Z >= 0, Z, 0.3 * Z), rtol=1e-6)
    elu = _act(TrialConfig(activation="elu", elu_alpha=0.7, activation_alpha=0.05))
    np.testing.assert_allclose(_np(elu(Z)), np.where(Z >= 0, Z, 0.7 * np.expm1(Z)), rtol=1e-5, atol=1e-6)


def test_swish_beta_one_is_keras_silu_and_other_betas_are_generalized() -> None:
    silu = _act(TrialConfig(activation="swish"))
    np.testing.assert_allclose(_np(silu(Z)), Z / (1 + np.exp(-Z)), rtol=1e-5, atol=1e-6)
    generalized = _act(TrialConfig(activation="swish", swish_beta=0.6))
    assert isinstance(generalized, GeneralizedSwish) and generalized.beta == 0.6
    np.testing.assert_allclose(_np(generalized(Z)), Z / (1 + np.exp(-0.6 * Z)), rtol=1e-5, atol=1e-6)


def test_rrelu_gets_the_configured_bounds() -> None:
    layer = _act(TrialConfig(activation="rrelu", rrelu_lower=0.05, rrelu_upper=0.25))
    assert (layer.lower, layer.upper) == (0.05, 0.25)
    np.testing.assert_allclose(_np(layer(Z)), np.where(Z >= 0, Z, 0.15 * Z), rtol=1e-6)


def test_selu_lecun_net_self_normalizes_and_relu_glorot_net_does_not() -> None:
    x = np.random.default_rng(0).standard_normal((2000, 100)).astype(np.float32)

    def activation_stats(activation: str, initializer: str) -> np.ndarray:
        config = TrialConfig(n_hidden=20, n_units=100, activation=activation, initializer=initializer)
        model = build_model(config, 100, 10, seed=1)
        h, stats = x, []
        for layer in model.layers[:-1]:
            h = layer(h)
            if layer.name.startswith("act_"):
                out = _np(h)
                stats.append((out.mean(), out.std()))
        return np.array(stats)

    selu = activation_stats("selu", "auto")
    relu = activation_stats("relu", "glorot")
    assert selu.shape == relu.shape == (20, 2)
    # Finite width (100 units) lets each layer drift a little; over ten seeds on JAX and TensorFlow the worst
    # layer stays within |mean| 0.03 and |std - 1| 0.07 of the fixed point.
    assert np.abs(selu[:, 0]).max() < 0.1
    assert np.abs(selu[:, 1] - 1).max() < 0.15
    # ReLU with Glorot halves the variance at every layer: 20 layers shrink the std by about 2**-10.
    assert np.abs(relu[:, 1] - 1).max() > 0.15
    assert relu[-1, 1] < 0.01
    assert np.all(np.diff(relu[:, 1]) < 0)


# Seeds and size ----------------------------------------------------------------------------------------------

_SEEDED = {"n_hidden": 3, "activation": "rrelu", "dropout": 0.5, "alpha_dropout": 0.2}


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [_np(w) for w in model.get_weights()]


def test_seed_repeats_weights_and_random_streams() -> None:
    x = np.random.default_rng(0).standard_normal((32, F)).astype(np.float32)
    first, second = _build(seed=42, **_SEEDED), _build(seed=42, **_SEEDED)
    for a, b in zip(_weights(first), _weights(second)):
        np.testing.assert_array_equal(a, b)
    # Training mode draws dropout masks and RReLU slopes: same seed, same draws.
    np.testing.assert_array_equal(_np(first(x, training=True)), _np(second(x, training=True)))
    assert not np.allclose(_np(first(x, training=True)), _np(first(x, training=False)))


def test_different_seeds_give_different_weights() -> None:
    first, second = _build(seed=1, **_SEEDED), _build(seed=2, **_SEEDED)
    kernels = [(a, b) for a, b in zip(_weights(first), _weights(second)) if a.ndim == 2]
    assert len(kernels) == 4
    assert all(not np.allclose(a, b) for a, b in kernels)


def test_hidden_layers_get_distinct_initial_weights() -> None:
    model = _build(n_hidden=3)
    k1, k2, k3 = _hidden_kernels(model)
    assert not np.allclose(k1, k2[:F]) and not np.allclose(k2, k3)


def test_exercise_8_network_has_500210_parameters() -> None:
    config = TrialConfig(n_hidden=20, n_units=100, activation="swish")
    assert count_params(config, 3072, 10) == 500_210
    assert build_model(config, 3072, 10, seed=0).count_params() == 500_210
    # The 3rd-edition notebook's BN variant (Dense with bias, BN after it) has 508,210; ours after the
    # activation has the same layers, and before the activation it drops the 20 x 100 biases.
    assert count_params(config.replace(normalization="batch_norm_after"), 3072, 10) == 508_210
    assert count_params(config.replace(normalization="batch_norm_before"), 3072, 10) == 506_210


@pytest.mark.parametrize(
    "config",
    [
        TrialConfig(n_hidden=3, n_units=U, first_layer_factor=1.5, activation="prelu"),
        TrialConfig(n_hidden=2, n_units=U, normalization="batch_norm_before", activation="prelu", dropout=0.1),
        TrialConfig(n_hidden=4, n_units=U, normalization="batch_norm_after", alpha_dropout=0.1),
        TrialConfig(n_hidden=0),
    ],
)
def test_count_params_matches_keras(config: TrialConfig) -> None:
    model = build_model(config, F, C, seed=0)
    assert count_params(config, F, C) == trained_params(model)
    # Keras counts each dropout layer's held rate as one more (untrained) weight.
    held = len(dropout_layer_indices(config)) + (config.alpha_dropout > 0)
    assert model.count_params() == trained_params(model) + held


def test_build_model_rejects_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        build_model(TrialConfig(), 4, 1)
    with pytest.raises(ValueError, match="n_features must be >= 1"):
        build_model(TrialConfig(), 0, 3)


def test_the_output_bias_starts_at_the_log_class_shares_unless_zeros_is_asked() -> None:
    priors = [0.9, 0.07, 0.03]
    model = build_model(TrialConfig(n_hidden=1, n_units=8), 4, 3, seed=0, priors=priors)
    assert np.allclose(model.get_layer("output").bias.numpy(), np.log(priors), atol=1e-6)
    untrained = keras.ops.convert_to_numpy(model(np.zeros((1, 4), dtype="float32"), training=False))[0]
    assert untrained.argmax() == 0
    zeros = build_model(TrialConfig(n_hidden=1, n_units=8, output_bias="zeros"), 4, 3, seed=0, priors=priors)
    assert not zeros.get_layer("output").bias.numpy().any()
    assert not build_model(TrialConfig(n_hidden=1, n_units=8), 4, 3, seed=0).get_layer("output").bias.numpy().any()


def test_the_books_configurations_keep_kerass_zero_output_bias() -> None:
    from autodnn.defaults import book_baselines

    assert {b.config.output_bias for b in book_baselines()} == {"zeros"}
