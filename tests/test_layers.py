"""Tests of autodnn.network.layers: the custom activations and MC dropout, on whichever Keras backend is active."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.network.layers import STOCHASTIC_LAYERS, GeneralizedSwish, Mish, RReLU, mc_accuracy, mc_predict
from autodnn.network.model import build_model

Z = np.linspace(-6.0, 6.0, 1201, dtype=np.float32).reshape(-1, 1)


# Keras 3 variables predate NumPy 2's ``copy`` keyword of ``__array__``; the warning is Keras' own.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _np(tensor: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_mish_matches_its_formula() -> None:
    expected = Z * np.tanh(np.log1p(np.exp(Z)))
    np.testing.assert_allclose(_np(Mish()(Z)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("beta", [0.6, 1.0, 1.702, 3.0])
def test_generalized_swish_matches_its_formula(beta: float) -> None:
    expected = Z * _sigmoid(beta * Z)
    np.testing.assert_allclose(_np(GeneralizedSwish(beta)(Z)), expected, rtol=1e-5, atol=1e-6)


def test_generalized_swish_rejects_a_non_positive_beta() -> None:
    with pytest.raises(ValueError, match="beta must be > 0"):
        GeneralizedSwish(0.0)


def test_gelu_is_close_to_swish_with_beta_1_702() -> None:
    exact_gelu = np.array([z * 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) for z in Z.ravel()]).reshape(Z.shape)
    np.testing.assert_allclose(_np(keras.activations.gelu(Z, approximate=False)), exact_gelu, atol=1e-5)
    gap = np.abs(_np(GeneralizedSwish(1.702)(Z)) - exact_gelu).max()
    # The sigmoid approximation of GELU is off by about 0.02 at most; plain Swish (beta = 1) is much further.
    assert gap < 0.025
    assert np.abs(_np(GeneralizedSwish(1.0)(Z)) - exact_gelu).max() > 4 * gap


def test_rrelu_uses_the_mean_slope_at_inference() -> None:
    layer = RReLU(lower=0.1, upper=0.3, seed=1)
    out = _np(layer(Z, training=False))
    np.testing.assert_allclose(out, np.where(Z >= 0, Z, 0.2 * Z), rtol=1e-6)
    np.testing.assert_array_equal(_np(layer(Z)), out)


def test_rrelu_draws_a_slope_per_element_in_training() -> None:
    lower, upper = 1 / 8, 1 / 3
    layer = RReLU(lower, upper, seed=3)
    x = -np.ones((200, 50), dtype=np.float32)
    slopes = _np(layer(x, training=True)) / x
    assert slopes.min() >= lower - 1e-6 and slopes.max() <= upper + 1e-6
    # Uniform on [lower, upper]: mean at the midpoint, std = width / sqrt(12); both rows and columns vary.
    assert abs(slopes.mean() - (lower + upper) / 2) < 0.005
    assert abs(slopes.std() - (upper - lower) / math.sqrt(12)) < 0.005
    assert slopes.std(axis=0).min() > 0 and slopes.std(axis=1).min() > 0
    again = _np(layer(x, training=True)) / x
    assert not np.allclose(again, slopes)
    positive = np.abs(x)
    np.testing.assert_array_equal(_np(layer(positive, training=True)), positive)


def test_rrelu_rejects_bounds_in_the_wrong_order() -> None:
    with pytest.raises(ValueError, match="lower <= upper"):
        RReLU(0.4, 0.2)


@pytest.mark.parametrize(
    "layer", [Mish(name="m"), GeneralizedSwish(0.6, name="g"), RReLU(0.05, 0.2, seed=9, name="r")]
)
def test_custom_layers_are_registered_and_rebuild_from_their_config(layer: keras.layers.Layer) -> None:
    name = f"autodnn>{type(layer).__name__}"
    assert keras.saving.get_registered_name(type(layer)) == name
    assert keras.saving.get_registered_object(name) is type(layer)
    restored = type(layer).from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    np.testing.assert_allclose(_np(restored(Z)), _np(layer(Z)), rtol=1e-6)


def test_saved_model_with_custom_layers_reloads(tmp_path: Path) -> None:
    config = TrialConfig(n_hidden=2, n_units=8, activation="rrelu", dropout=0.2, alpha_dropout=0.1)
    model = build_model(config, 6, 3, seed=0)
    x = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# MC dropout -------------------------------------------------------------------------------------------------


def _mc_model() -> keras.Model:
    """A BN model whose moving statistics are far from any batch's, so a BN in training mode would show."""
    config = TrialConfig(
        n_hidden=3, n_units=8, activation="rrelu", normalization="batch_norm_before", dropout=0.3, alpha_dropout=0.1
    )
    model = build_model(config, 6, 3, seed=11)
    for i in range(1, 4):
        bn = model.get_layer(f"bn_{i}")
        bn.moving_mean.assign(np.full(8, 0.7, dtype=np.float32))
        bn.moving_variance.assign(np.full(8, 3.0, dtype=np.float32))
    return model


@pytest.fixture(scope="module")
def mc_model() -> keras.Model:
    """One model for the MC tests, so that its MC runners compile once."""
    return _mc_model()


def _seed_states(model: keras.Model) -> list[np.ndarray]:
    return [_np(layer.seed_generator.state) for layer in model.layers if isinstance(layer, STOCHASTIC_LAYERS)]


def _restore_seed_states(model: keras.Model, states: list[np.ndarray]) -> None:
    layers = [layer for layer in model.layers if isinstance(layer, STOCHASTIC_LAYERS)]
    for layer, state in zip(layers, states):
        layer.seed_generator.state.assign(state)


def _mc_pass(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One MC-dropout pass by hand: dropout layers in training mode, every other layer in inference mode."""
    h = x
    for layer in model.layers:
        h = layer(h, training=isinstance(layer, STOCHASTIC_LAYERS))
    return _np(h)


def test_mc_predict_is_the_mean_of_stochastic_passes_with_bn_in_inference_mode(mc_model: keras.Model) -> None:
    model = mc_model
    x = np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)
    samples = 6
    states = _seed_states(model)
    moving = [_np(model.get_layer(f"bn_{i}").moving_mean) for i in range(1, 4)]

    mean, std = mc_predict(model, x, samples, batch_size=len(x))

    _restore_seed_states(model, states)
    passes = np.stack([_mc_pass(model, x) for _ in range(samples)])
    assert mean.shape == std.shape == (16, 3)
    assert np.abs(passes[0] - passes[1]).max() > 1e-3, "passes should differ: dropout must be on"
    np.testing.assert_allclose(mean, passes.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(std, passes.std(axis=0), atol=1e-4)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)
    for i, before in enumerate(moving, start=1):
        np.testing.assert_array_equal(_np(model.get_layer(f"bn_{i}").moving_mean), before)


def test_mc_predict_in_batches_is_the_mean_of_batchwise_passes(mc_model: keras.Model) -> None:
    x = np.random.default_rng(2).standard_normal((40, 6)).astype(np.float32)
    samples, batch_size = 3, 16
    states = _seed_states(mc_model)

    mean, std = mc_predict(mc_model, x, samples, batch_size=batch_size)

    _restore_seed_states(mc_model, states)
    passes = np.stack(
        [
            np.concatenate([_mc_pass(mc_model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
            for _ in range(samples)
        ]
    )
    np.testing.assert_allclose(mean, passes.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(std, passes.std(axis=0), atol=1e-4)


def test_mc_predict_without_dropout_equals_predict() -> None:
    config = TrialConfig(n_hidden=2, n_units=8, normalization="batch_norm_after", activation="elu")
    model = build_model(config, 6, 3, seed=5)
    x = np.random.default_rng(3).standard_normal((40, 6)).astype(np.float32)
    mean, std = mc_predict(model, x, 10)
    np.testing.assert_allclose(mean, model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_array_equal(std, 0.0)


def test_mc_predict_draws_fresh_masks_at_every_call(mc_model: keras.Model) -> None:
    x = np.random.default_rng(4).standard_normal((16, 6)).astype(np.float32)
    states = _seed_states(mc_model)
    first = mc_predict(mc_model, x, 3)[0]
    assert not np.allclose(mc_predict(mc_model, x, 3)[0], first)
    _restore_seed_states(mc_model, states)
    np.testing.assert_array_equal(mc_predict(mc_model, x, 3)[0], first)


def test_mc_accuracy_scores_the_mc_mean_with_integer_or_one_hot_labels(mc_model: keras.Model) -> None:
    model = mc_model
    x = np.random.default_rng(5).standard_normal((40, 6)).astype(np.float32)
    y = np.random.default_rng(6).integers(0, 3, size=40)
    states = _seed_states(model)
    mean, _ = mc_predict(model, x, 4)
    expected = float(np.mean(mean.argmax(axis=1) == y))
    _restore_seed_states(model, states)
    assert mc_accuracy(model, x, y, 4) == pytest.approx(expected)
    _restore_seed_states(model, states)
    assert mc_accuracy(model, x, np.eye(3)[y], 4) == pytest.approx(expected)


def test_mc_predict_rejects_bad_arguments(mc_model: keras.Model) -> None:
    model = mc_model
    x = np.zeros((3, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="samples must be"):
        mc_predict(model, x, 0)
    with pytest.raises(ValueError, match="batch_size must be"):
        mc_predict(model, x, 2, batch_size=0)
    with pytest.raises(TypeError, match="Sequential"):
        inputs = keras.Input((6,))
        mc_predict(keras.Model(inputs, keras.layers.Dense(2)(inputs)), x, 2)
