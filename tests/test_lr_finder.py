"""The learning-rate finder: the book's sweep, its pick against a grid search, divergence, and restoration."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import keras
import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.errors import ConfigError
from autodnn.optim import build_optimizer
from autodnn.training.lr_finder import LRFinder, LRFinderResult, plot_lr_finder

BATCH = 32


@dataclass
class Problem:
    """Least squares with SGD: loss ``mean((x.w + b - y)**2)`` on standardized, well-conditioned inputs."""

    x: np.ndarray
    y: np.ndarray
    model: keras.Model
    initial: list[np.ndarray]

    @property
    def divergence_threshold(self) -> float:
        """``2 / L``, L the largest eigenvalue of the loss's Hessian ``2 [x 1]^T [x 1] / n``."""
        design = np.hstack([self.x, np.ones((len(self.x), 1))]).astype(float)
        largest = 2 * np.linalg.eigvalsh(design.T @ design / len(design)).max()
        return 2 / largest


def least_squares(seed: int = 0, n: int = 512, d: int = 8, noise: float = 0.3) -> Problem:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    y = (x @ rng.standard_normal((d, 1)) + noise * rng.standard_normal((n, 1))).astype("float32")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    return Problem(x, y, model, [w.copy() for w in model.get_weights()])


@pytest.fixture(scope="module")
def sweep() -> tuple[Problem, LRFinderResult]:
    """The book's sweep (1e-5 to 10 in 500 iterations) on the least-squares problem, run once."""
    problem = least_squares()
    return problem, LRFinder().find(problem.model, problem.x, problem.y, batch_size=BATCH)


def test_factor_of_the_books_sweep():
    finder = LRFinder(min_lr=1e-5, max_lr=10.0, iterations=500)
    assert finder.factor == pytest.approx(1.0280, abs=1e-4)
    assert finder.factor == pytest.approx(math.exp(math.log(1e6) / 500), rel=1e-12)


def test_learning_rates_are_geometric(sweep):
    _, result = sweep
    rates = np.array(result.learning_rates)
    assert rates[0] == pytest.approx(1e-5)
    assert np.allclose(rates[1:] / rates[:-1], LRFinder().factor, rtol=1e-9, atol=0)
    assert len(result.losses) == len(result.smoothed) == len(rates) == result.iterations


def grid_search(problem: Problem, rates: np.ndarray, epochs: int) -> dict[float, float]:
    """Trains from the same initial weights at each constant rate and returns the final training loss."""
    model, final = problem.model, {}
    for rate in rates:
        model.set_weights(problem.initial)
        model.optimizer.learning_rate = float(rate)
        model.fit(problem.x, problem.y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
        loss = model.evaluate(problem.x, problem.y, batch_size=len(problem.x), verbose=0)
        final[float(rate)] = loss if math.isfinite(loss) else math.inf
    model.set_weights(problem.initial)
    return final


def test_recovers_the_best_learning_rate_within_a_factor_of_3(sweep):
    problem, result = sweep
    # Known optimum: the best constant rate for a short training (2 epochs, 32 steps) on the same problem.
    final = grid_search(problem, np.geomspace(1e-2, 2.0, 16), epochs=2)
    best = min(final, key=final.get)
    assert best / 3 <= result.suggestion <= 3 * best, (result.suggestion, best, final)
    # The analytic anchor: gradient descent diverges above 2/L, which is where the loss turns.
    threshold = problem.divergence_threshold
    assert threshold / 2 <= result.turning_point <= 2 * threshold, (result.turning_point, threshold)
    assert final[best] < min(v for r, v in final.items() if r > 1.5 * threshold)
    assert result.suggestion == pytest.approx(result.turning_point / 10)
    assert result.loss_decreased


def test_divergence_stops_the_sweep_early(sweep):
    _, result = sweep
    assert result.diverged
    assert result.iterations < 500
    assert result.smoothed[-1] > 4.0 * min(result.smoothed)
    assert result.turning_point < result.learning_rates[-1]


def test_smoothing_is_a_bias_corrected_moving_average(sweep):
    _, result = sweep
    beta, average, expected = 0.98, 0.0, []
    for i, loss in enumerate(result.losses):
        average = beta * average + (1 - beta) * loss
        expected.append(average / (1 - beta ** (i + 1)))
    assert result.smoothed[0] == pytest.approx(result.losses[0])
    assert np.allclose(result.smoothed, expected, rtol=1e-12)


def test_weights_are_restored_bit_for_bit(sweep):
    problem, _ = sweep
    for before, after in zip(problem.initial, problem.model.get_weights()):
        assert np.array_equal(before, after)


def test_model_and_optimizer_state_are_restored():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 6)).astype("float32")
    y = rng.integers(0, 3, 128)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    optimizer, _ = build_optimizer(TrialConfig(optimizer="adam"), 1e-3, steps_per_epoch=4, epochs=1)
    model.compile(optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for start in range(0, 4 * BATCH, BATCH):  # so that moments, step and statistics are not at their start
        model.train_on_batch(x[start : start + BATCH], y[start : start + BATCH])
    before = [np.array(v.numpy(), copy=True) for v in [*model.variables, *optimizer.variables]]

    result = LRFinder(iterations=40).find(model, x, y, batch_size=BATCH)

    assert result.iterations > 0
    after = [v.numpy() for v in [*model.variables, *optimizer.variables]]
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert np.array_equal(old, new)
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 4


def test_records_the_loss_of_each_batch_not_the_running_mean():
    # The untrained model predicts 0; half the targets are 0 and half are 10. At 1e-9 the weights do not
    # move, so the two batches of each pass split the total squared error: their losses add up to 100.
    # Keras' running mean would report the pass's mean, 50, as the second loss of every pass.
    x = np.ones((2 * BATCH, 1), "float32")
    y = np.concatenate([np.zeros((BATCH, 1)), np.full((BATCH, 1), 10.0)]).astype("float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    result = LRFinder(min_lr=1e-9, max_lr=2e-9, iterations=12, skip_start=0).find(model, x, y, batch_size=BATCH)
    losses = np.array(result.losses)
    assert losses[0::2] + losses[1::2] == pytest.approx(np.full(6, 100.0), abs=1e-3)
    assert np.abs(losses - 50).max() > 1.0, losses


def test_a_loss_that_never_goes_down_falls_back_to_the_compiled_rate():
    problem = least_squares(seed=2)
    problem.model.optimizer.learning_rate = 0.02
    result = LRFinder(min_lr=1e3, max_lr=1e4, iterations=50).find(
        problem.model, problem.x, problem.y, batch_size=BATCH
    )
    assert result.diverged and result.iterations < 10
    assert not result.loss_decreased and result.turning_point is None
    assert result.suggestion == pytest.approx(0.02)
    assert float(problem.model.optimizer.learning_rate.numpy()) == pytest.approx(0.02)


RATES = list(1e-4 * 1.1 ** np.arange(100))


def u_shaped(minimum: int) -> list[float]:
    return [1.0 + ((i - minimum) / 50) ** 2 for i in range(len(RATES))]


def test_pick_is_ten_times_below_the_turning_point():
    finder = LRFinder(min_lr=1e-4, max_lr=1.0, iterations=100)
    suggestion, turning = finder.suggest(RATES, u_shaped(60), fallback=0.5)
    assert turning == RATES[60]
    assert suggestion == pytest.approx(RATES[60] / 10)


def test_pick_ignores_the_first_iterations():
    finder = LRFinder(min_lr=1e-4, max_lr=1.0, iterations=100, skip_start=10)
    smoothed = u_shaped(60)
    smoothed[3] = 0.0  # an early, barely averaged dip
    assert finder.suggest(RATES, smoothed, fallback=0.5)[1] == RATES[60]


def test_pick_is_never_below_min_lr():
    finder = LRFinder(min_lr=1e-4, max_lr=1.0, iterations=100, skip_start=0)
    smoothed = [2.0] + u_shaped(12)[1:]
    suggestion, turning = finder.suggest(RATES, smoothed, fallback=0.5)
    assert turning == RATES[12] and turning / 10 < 1e-4
    assert suggestion == 1e-4


@pytest.mark.parametrize(
    "smoothed",
    [
        [1.0 + 0.01 * i for i in range(100)],  # only goes up
        [1.0 - 0.00005 * i for i in range(100)],  # flat: less than 1 % down
        [1.0] * 5,  # stopped before skip_start
    ],
)
def test_no_turning_point_when_the_loss_never_goes_down(smoothed):
    finder = LRFinder(min_lr=1e-4, max_lr=1.0, iterations=100)
    assert finder.suggest(RATES[: len(smoothed)], smoothed, fallback=0.5) == (0.5, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_lr": -1}, "`min_lr` must be > 0, but got -1."),
        ({"max_lr": 1e-6}, "`max_lr` must be > `min_lr` (1e-05), but got 1e-06."),
        ({"iterations": 1}, "`iterations` must be an integer >= 2, but got 1."),
        ({"smoothing": 1.0}, "`smoothing` must be in [0, 1), but got 1.0."),
        ({"divergence_factor": 1.0}, "`divergence_factor` must be > 1, but got 1.0."),
        ({"skip_start": 500}, "`skip_start` must be an integer in [0, iterations), but got 500."),
        ({"min_decrease": -0.1}, "`min_decrease` must be in [0, 1), but got -0.1."),
    ],
)
def test_constructor_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError) as error:
        LRFinder(**kwargs)
    assert str(error.value) == message


def test_find_needs_a_compiled_model_with_a_constant_rate():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    with pytest.raises(ConfigError, match="not compiled"):
        LRFinder().find(model, x, y, batch_size=4)
    optimizer, _ = build_optimizer(TrialConfig(schedule="exponential"), 0.01, steps_per_epoch=2, epochs=1)
    model.compile(optimizer, loss="mse")
    with pytest.raises(ConfigError, match="schedule"):
        LRFinder().find(model, x, y, batch_size=4)


def test_result_round_trips_through_json(sweep):
    _, result = sweep
    copy = LRFinderResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert copy == result
    with pytest.raises(ConfigError, match="suggestions"):
        LRFinderResult.from_dict({**result.to_dict(), "suggestions": 1.0})


def test_plot_writes_a_png(sweep, tmp_path):
    _, result = sweep
    fallback = LRFinderResult([], [], [], 0.01, None, True, 0, loss_decreased=False)
    for name, data in (("sweep.png", result), ("empty.png", fallback)):
        path = tmp_path / name
        plot_lr_finder(data, path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
