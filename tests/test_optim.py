"""Optimizers and schedules of chapter 11: the book's formulas, shapes and clipping examples, in and out of fit."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.errors import ConfigError
from autodnn.optim import (
    OneCycleAdam,
    OneCycleAdamax,
    OneCycleAdamW,
    OneCycleMomentum,
    OneCycleNadam,
    OneCycleSchedule,
    OneCycleSGD,
    PowerSchedule,
    build_optimizer,
    one_cycle_phases,
)

schedules = keras.optimizers.schedules


def values(schedule, steps) -> np.ndarray:
    """Evaluates a schedule (a pure function of the step) at every step of ``steps`` at once."""
    return np.asarray(keras.ops.convert_to_numpy(schedule(np.asarray(steps, dtype="int32"))), dtype=float)


def lr_at(optimizer: keras.optimizers.Optimizer, step: int) -> float:
    return float(values(optimizer._learning_rate, [step])[0])


# --- 1cycle ------------------------------------------------------------------------------------------------

# 1001 steps: 101 of final annealing (1001 // 10 + 1, as the author's OneCycleScheduler) and two phases of 450.
TOTAL, HALF, LAST, PEAK = 1001, 450, 101, 0.1


def test_one_cycle_phases_match_the_authors_scheduler():
    # The author's CIFAR-10 run: 352 steps x 15 epochs; last 529, half 2,375 (book-reference 3.3).
    assert one_cycle_phases(5280, 0.1) == (2375, 529)
    assert one_cycle_phases(TOTAL, 0.1) == (HALF, LAST)
    assert one_cycle_phases(100, 0.0) == (50, 0)


def test_one_cycle_schedule_has_the_books_shape():
    schedule = OneCycleSchedule(PEAK, total_steps=TOTAL)
    lr = values(schedule, range(TOTAL))
    start, final = PEAK / 10, PEAK / 10 / 1000
    assert lr[0] == pytest.approx(start, rel=1e-6)
    assert lr[HALF] == pytest.approx(PEAK, rel=1e-6)
    assert lr.max() == pytest.approx(PEAK, rel=1e-6) and int(lr.argmax()) == HALF
    assert lr[2 * HALF] == pytest.approx(start, rel=1e-6)
    assert lr[TOTAL - 1] == pytest.approx(final, rel=1e-5)
    # Linear in each phase: exact midpoints.
    assert lr[HALF // 2] == pytest.approx((start + PEAK) / 2, rel=1e-6)
    assert lr[HALF + HALF // 2] == pytest.approx((start + PEAK) / 2, rel=1e-6)
    assert lr[2 * HALF + 50] == pytest.approx((start + final) / 2, rel=1e-6)
    assert lr[100] == pytest.approx(start + (PEAK - start) * 100 / HALF, rel=1e-6)
    # Monotonic in each phase.
    assert np.all(np.diff(lr[: HALF + 1]) > 0)
    assert np.all(np.diff(lr[HALF : 2 * HALF + 1]) < 0)
    assert np.all(np.diff(lr[2 * HALF :]) < 0)
    # Straight lines, up to float32 rounding.
    assert np.allclose(lr[: HALF + 1], np.linspace(start, PEAK, HALF + 1), rtol=1e-6, atol=0)
    assert np.allclose(lr[HALF : 2 * HALF + 1], np.linspace(PEAK, start, HALF + 1), rtol=1e-6, atol=0)
    assert np.allclose(lr[2 * HALF :], np.linspace(start, final, LAST), rtol=1e-5, atol=0)
    # Beyond the planned steps the rate stays at the final value.
    assert values(schedule, [TOTAL + 10])[0] == pytest.approx(final, rel=1e-5)


def test_one_cycle_momentum_mirrors_the_learning_rate():
    momentum = values(OneCycleMomentum(0.95, 0.85, total_steps=TOTAL), range(TOTAL))
    assert momentum[0] == pytest.approx(0.95)
    assert momentum[HALF] == pytest.approx(0.85)  # at the learning-rate peak
    assert momentum[HALF // 2] == pytest.approx(0.90)
    assert momentum[HALF + HALF // 2] == pytest.approx(0.90)
    assert momentum[2 * HALF] == pytest.approx(0.95)
    assert np.all(momentum[2 * HALF :] == pytest.approx(0.95))  # flat during the final annealing
    assert np.all(np.diff(momentum[: HALF + 1]) < 0)
    assert np.all(np.diff(momentum[HALF : 2 * HALF + 1]) > 0)


def test_one_cycle_schedules_serialize():
    lr = OneCycleSchedule(0.05, total_steps=300, div=20.0, final_div=100.0, last_fraction=0.2)
    copy = schedules.deserialize(schedules.serialize(lr))
    assert isinstance(copy, OneCycleSchedule) and copy.get_config() == lr.get_config()
    assert np.allclose(values(copy, range(300)), values(lr, range(300)))
    momentum = OneCycleMomentum(0.9, 0.8, total_steps=300, last_fraction=0.2)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(momentum))
    assert isinstance(copy, OneCycleMomentum) and copy.get_config() == momentum.get_config()


# --- other schedules: closed forms -------------------------------------------------------------------------

SPE = 10  # steps per epoch


def number(value) -> float:
    """A hyperparameter as a float, whether the optimizer holds it as a float or in a variable."""
    return float(keras.ops.convert_to_numpy(value))


def build(epochs: int = 30, learning_rate: float = 0.01, **changes):
    return build_optimizer(TrialConfig(**changes), learning_rate, steps_per_epoch=SPE, epochs=epochs)


@pytest.mark.parametrize(("c", "cls"), [(1.0, schedules.InverseTimeDecay), (2.0, PowerSchedule)])
def test_power_schedule(c, cls):
    optimizer, _ = build(schedule="power", decay_epochs=5, power_c=c)
    assert isinstance(optimizer._learning_rate.source, cls)
    s = 5 * SPE
    for k in range(4):  # after s steps eta0/2, then eta0/3, ... when c = 1
        assert lr_at(optimizer, k * s) == pytest.approx(0.01 / (1 + k) ** c, rel=1e-6)
    assert lr_at(optimizer, 17) == pytest.approx(0.01 / (1 + 17 / s) ** c, rel=1e-6)


def test_exponential_schedule_divides_by_ten_every_s_steps():
    optimizer, _ = build(schedule="exponential", decay_epochs=2)
    assert isinstance(optimizer._learning_rate.source, schedules.ExponentialDecay)
    s = 2 * SPE
    for k in range(4):
        assert lr_at(optimizer, k * s) == pytest.approx(0.01 * 0.1**k, rel=1e-5)
    assert lr_at(optimizer, 7) == pytest.approx(0.01 * 0.1 ** (7 / s), rel=1e-5)


def test_piecewise_schedule_changes_at_the_first_step_of_each_boundary_epoch():
    optimizer, _ = build(schedule="piecewise", piecewise_epochs=(5, 15), piecewise_factors=(1.0, 0.5, 0.1))
    assert isinstance(optimizer._learning_rate.source, schedules.PiecewiseConstantDecay)
    expected = {0: 0.01, 49: 0.01, 50: 0.005, 149: 0.005, 150: 0.001, 1000: 0.001}
    for step, lr in expected.items():
        assert lr_at(optimizer, step) == pytest.approx(lr, rel=1e-6), step


def test_cosine_schedule_spans_the_planned_epochs():
    optimizer, _ = build(epochs=20, schedule="cosine")
    assert isinstance(optimizer._learning_rate.source, schedules.CosineDecay)
    total = 20 * SPE
    for step in (0, 13, total // 4, total // 2, total - 1, total):
        assert lr_at(optimizer, step) == pytest.approx(0.01 * (1 + math.cos(math.pi * step / total)) / 2, abs=1e-8)


def test_constant_schedule_is_a_settable_rate():
    optimizer, callbacks = build(schedule="constant", learning_rate=0.003)
    assert callbacks == []
    assert isinstance(optimizer.learning_rate, keras.Variable)
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.003)


def test_performance_scheduling_halves_the_rate_after_its_patience():
    patience, lr = 2, 1e-6
    optimizer, callbacks = build(optimizer="sgd", schedule="performance", plateau_patience=patience, learning_rate=lr)
    (plateau,) = callbacks
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau)
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.5, patience)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    y = rng.integers(0, 2, 64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer, loss="sparse_categorical_crossentropy")
    # At 1e-6 the validation loss moves by far less than ReduceLROnPlateau's min_delta: it never improves.
    history = model.fit(
        x, y, validation_data=(x[:32], y[:32]), epochs=patience + 2, batch_size=32, callbacks=callbacks, verbose=0
    )
    rates = history.history["learning_rate"]
    assert rates[: patience + 1] == pytest.approx([lr] * (patience + 1), rel=1e-6)
    assert rates[patience + 1] == pytest.approx(lr / 2, rel=1e-6)


# --- optimizers ---------------------------------------------------------------------------------------------

CHANGES = {"momentum": 0.8, "rho": 0.85, "beta_1": 0.7, "beta_2": 0.99, "weight_decay": 0.0}


@pytest.mark.parametrize(
    ("name", "cls", "expected"),
    [
        ("sgd", keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
        ("momentum", keras.optimizers.SGD, {"momentum": 0.8, "nesterov": False}),
        ("nesterov", keras.optimizers.SGD, {"momentum": 0.8, "nesterov": True}),
        ("adagrad", keras.optimizers.Adagrad, {}),
        ("rmsprop", keras.optimizers.RMSprop, {"rho": 0.85, "momentum": 0.0}),
        ("adam", keras.optimizers.Adam, {"beta_1": 0.7, "beta_2": 0.99}),
        ("adamax", keras.optimizers.Adamax, {"beta_1": 0.7, "beta_2": 0.99}),
        ("nadam", keras.optimizers.Nadam, {"beta_1": 0.7, "beta_2": 0.99}),
        ("adamw", keras.optimizers.AdamW, {"beta_1": 0.7, "beta_2": 0.99, "weight_decay": 0.0}),
    ],
)
def test_each_optimizer_name_builds_its_keras_class(name, cls, expected):
    optimizer, callbacks = build(optimizer=name, learning_rate=0.02, **CHANGES)
    assert isinstance(optimizer, cls)
    assert callbacks == []
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.02)
    for attribute, value in expected.items():
        actual = getattr(optimizer, attribute)
        assert (actual is value) if isinstance(value, bool) else number(actual) == pytest.approx(value), attribute
    if name != "adamw":
        assert optimizer.weight_decay is None
    assert optimizer.clipnorm is None and optimizer.clipvalue is None


def test_adamw_takes_the_configs_weight_decay():
    optimizer, _ = build(optimizer="adamw", weight_decay=0.05)
    assert isinstance(optimizer, keras.optimizers.AdamW) and number(optimizer.weight_decay) == pytest.approx(0.05)


def test_weight_decay_on_sgd_is_keras_decoupled_decay():
    optimizer, _ = build(optimizer="sgd", weight_decay=0.1, learning_rate=0.5)
    assert number(optimizer.weight_decay) == pytest.approx(0.1)
    variable = keras.Variable(np.array([2.0], dtype="float32"))
    optimizer.apply_gradients([(np.zeros(1, dtype="float32"), variable)])
    # No gradient, yet the weight shrinks by lr * decay: w - 0.5 * 0.1 * w.
    assert float(variable.numpy()[0]) == pytest.approx(2.0 * (1 - 0.5 * 0.1))


def one_step(**changes) -> np.ndarray:
    """Applies the book's gradient [0.9, 100.0] once with SGD at learning rate 1 and returns -update."""
    optimizer, _ = build(optimizer="sgd", learning_rate=1.0, **changes)
    variable = keras.Variable(np.zeros(2, dtype="float32"))
    optimizer.apply_gradients([(np.array([0.9, 100.0], dtype="float32"), variable)])
    return -variable.numpy()


def test_clipnorm_keeps_the_direction():
    assert one_step(clipnorm=1.0) == pytest.approx([0.00899964, 0.9999595], rel=1e-5)


def test_clipvalue_clips_each_component():
    assert one_step(clipvalue=1.0) == pytest.approx([0.9, 1.0], rel=1e-6)


def test_clipnorm_and_clipvalue_together_is_a_config_error():
    with pytest.raises(ConfigError, match="clipnorm .* clipvalue"):
        build(clipnorm=1.0, clipvalue=0.5)


def test_steps_must_be_positive():
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        build_optimizer(TrialConfig(), 0.01, steps_per_epoch=0, epochs=3)


# --- 1cycle momentum cycling --------------------------------------------------------------------------------

CYCLED = {
    "momentum": (OneCycleSGD, "momentum"),
    "nesterov": (OneCycleSGD, "momentum"),
    "adam": (OneCycleAdam, "beta_1"),
    "adamax": (OneCycleAdamax, "beta_1"),
    "nadam": (OneCycleNadam, "beta_1"),
    "adamw": (OneCycleAdamW, "beta_1"),
}


@pytest.mark.parametrize("name", sorted(CYCLED))
def test_one_cycle_cycles_the_momentum_of_optimizers_that_have_one(name):
    cls, attribute = CYCLED[name]
    config = TrialConfig(optimizer=name, schedule="1cycle", momentum_max=0.95, momentum_min=0.85)
    optimizer, callbacks = build_optimizer(config, 0.05, steps_per_epoch=SPE, epochs=10)
    assert isinstance(optimizer, cls) and callbacks == []
    assert isinstance(optimizer._learning_rate.source, OneCycleSchedule)
    assert optimizer.momentum_schedule.source.get_config() == OneCycleMomentum(0.95, 0.85, 100).get_config()
    assert float(getattr(optimizer, attribute)) == pytest.approx(0.95)  # step 0
    # Serialization keeps the class, the base value as a float, and both schedules.
    serialized = keras.saving.serialize_keras_object(optimizer)
    assert serialized["config"][attribute] == 0.95
    copy = keras.saving.deserialize_keras_object(serialized)
    assert type(copy) is type(optimizer)
    assert copy.momentum_schedule.get_config() == optimizer.momentum_schedule.get_config()
    assert copy._learning_rate.get_config() == optimizer._learning_rate.get_config()


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adagrad"])
def test_one_cycle_leaves_optimizers_without_cycled_momentum_plain(name):
    optimizer, _ = build(optimizer=name, schedule="1cycle")
    assert type(optimizer) is type(build(optimizer=name)[0])
    assert isinstance(optimizer._learning_rate.source, OneCycleSchedule)


def reference_trajectory(name: str, rates: np.ndarray, momenta: np.ndarray, w0: float, target: float) -> np.ndarray:
    """Keras' update rules by hand, in float64, on the loss (w - target)**2 (gradient 2 (w - target))."""
    w, m, v, out = w0, 0.0, 0.0, []
    for t, (lr, mu) in enumerate(zip(rates, momenta)):
        g = 2 * (w - target)
        if name == "momentum":
            m = mu * m - lr * g
            w += m
        elif name == "nesterov":
            m = mu * m - lr * g
            w += mu * m - lr * g
        else:  # adam, beta_2 = 0.999, epsilon = 1e-7
            m += (g - m) * (1 - mu)
            v += (g * g - v) * (1 - 0.999)
            alpha = lr * math.sqrt(1 - 0.999 ** (t + 1)) / (1 - mu ** (t + 1))
            w -= alpha * m / (math.sqrt(v) + 1e-7)
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_cycled_momentum_changes_inside_the_compiled_training_loop(name):
    epochs, w0, target, peak = 20, 0.0, 1.0, 0.05
    config = TrialConfig(optimizer=name, schedule="1cycle", momentum_max=0.95, momentum_min=0.5)
    # One step per epoch, so the weight can be read after every step even where JAX keeps state on device.
    optimizer, _ = build_optimizer(config, peak, steps_per_epoch=1, epochs=epochs)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(w0))]
    )
    model.compile(optimizer, loss="mse")
    trajectory: list[float] = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: trajectory.append(float(model.get_weights()[0][0, 0]))
    )
    x, y = np.ones((1, 1), "float32"), np.full((1, 1), target, "float32")
    model.fit(x, y, epochs=epochs, verbose=0, callbacks=[record])

    steps = np.arange(epochs)
    rates = values(optimizer._learning_rate, steps)
    momenta = values(optimizer.momentum_schedule, steps)
    assert momenta.min() == pytest.approx(0.5)
    cycled = reference_trajectory(name, rates, momenta, w0, target)
    baked = reference_trajectory(name, rates, np.full(epochs, 0.95), w0, target)
    assert np.allclose(trajectory, cycled, rtol=1e-4, atol=1e-6)
    # A momentum frozen at its value when the step was compiled would give a visibly different path.
    assert np.abs(np.array(trajectory) - baked).max() > 100 * 1e-4 * np.abs(baked).max()
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == epochs


def test_cycling_optimizer_survives_saving_the_model(tmp_path):
    config = TrialConfig(optimizer="nesterov", schedule="1cycle")
    optimizer, _ = build_optimizer(config, 0.05, steps_per_epoch=4, epochs=2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer, loss="mse")
    model.fit(np.ones((16, 2), "float32"), np.ones((16, 1), "float32"), batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, OneCycleSGD) and loaded.optimizer.nesterov
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 4
    assert float(loaded.optimizer.momentum) == pytest.approx(float(optimizer.momentum))
