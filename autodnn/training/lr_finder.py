"""The learning-rate finder of chapter 11: an exponential sweep of the learning rate, one step per batch.

Procedure (the book's, 2nd ed. ch. 10 and ch. 11): starting from ``min_lr`` (1e-5), train one batch at a
time and multiply the learning rate by ``factor = (max_lr / min_lr) ** (1 / iterations)`` after every batch
(1.0280 for 1e-5 to 10 in 500 iterations), cycling through the data as often as needed. The loss of each
batch is recorded as the step computes it (not Keras' running mean of the epoch, which lags), and smoothed
with fastai's bias-corrected exponential moving average ``avg = b*avg + (1-b)*loss``,
``smoothed = avg / (1 - b**(i+1))``. The sweep stops early when the loss diverges: a loss that is not
finite (that step is not recorded), or a smoothed loss above ``divergence_factor`` times the best so far.

Automatic pick (the book: "typically about 10 times lower than the turning point"):

1. The *turning point* is the learning rate at the minimum of the smoothed loss, ignoring the first
   ``skip_start`` iterations, whose smoothed values rest on a handful of batches.
2. The suggestion is ``turning_point / 10``.
3. Safeguard: the suggestion is never below ``min_lr``. A turning point within the first decade of the sweep
   means the sweep started too high; below ``min_lr`` nothing was measured, so the lowest measured rate is
   the best-supported choice.
4. When the smoothed loss never falls by at least ``min_decrease`` (1 %) below its value at ``skip_start``
   (every rate was too high, the network cannot learn, or the sweep stopped before ``skip_start``), there is
   no turning point: ``turning_point`` is None, ``loss_decreased`` is False, and the suggestion falls back to
   the learning rate the model was compiled with.

The model must be compiled by the caller with the optimizer that training will use, with a constant
learning rate (the finder sets it per batch). Afterwards every model variable (weights, batch-norm
statistics, dropout seeds) and every optimizer variable (step counter, learning rate, moments) is restored
to its value before the sweep, so training can start from the same initial state, as the book's "reinitialize
your model" asks.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from autodnn.errors import ConfigError

__all__ = ["LRFinder", "LRFinderResult", "StepRunner", "plot_lr_finder"]


@dataclass(frozen=True)
class LRFinderResult:
    """What a learning-rate sweep measured and what it suggests.

    Attributes:
        learning_rates: Learning rate of each recorded step (a geometric sequence from ``min_lr``).
        losses: Loss of each recorded step's batch, before that step's update.
        smoothed: Bias-corrected exponential moving average of ``losses``.
        suggestion: Learning rate to train with (see the module docstring for the rule).
        turning_point: Learning rate at the minimum of the smoothed loss, or None when the loss never
            went down.
        diverged: Whether the sweep stopped early because the loss diverged.
        iterations: Number of recorded steps (fewer than configured when the sweep diverged).
        loss_decreased: Whether the smoothed loss went down at all; False means ``suggestion`` is the
            fallback (the learning rate the model was compiled with).
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    turning_point: float | None
    diverged: bool
    iterations: int
    loss_decreased: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Returns the result as JSON-able plain values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFinderResult:
        """Builds a result from :meth:`to_dict`'s output.

        Raises:
            ConfigError: A key is unknown or a required one is missing.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{', '.join(unknown)} not a field of LRFinderResult; known: {', '.join(sorted(names))}.")
        try:
            return cls(
                learning_rates=[float(v) for v in data["learning_rates"]],
                losses=[float(v) for v in data["losses"]],
                smoothed=[float(v) for v in data["smoothed"]],
                suggestion=float(data["suggestion"]),
                turning_point=None if data["turning_point"] is None else float(data["turning_point"]),
                diverged=bool(data["diverged"]),
                iterations=int(data["iterations"]),
                loss_decreased=bool(data.get("loss_decreased", True)),
            )
        except KeyError as exc:
            raise ConfigError(f"LRFinderResult needs the key {exc.args[0]!r}.") from None


class LRFinder:
    """Exponential learning-rate sweep with the book's automatic pick.

    Args:
        min_lr: First learning rate of the sweep.
        max_lr: The rate the sweep would reach after ``iterations`` steps.
        iterations: Number of steps (batches) of the sweep.
        smoothing: Factor ``b`` of the loss's exponential moving average (0 disables smoothing).
        divergence_factor: Stop once the smoothed loss exceeds this multiple of its best value.
        skip_start: Number of first iterations ignored when looking for the turning point.
        min_decrease: Relative drop of the smoothed loss below its value at ``skip_start`` that counts as
            the loss going down.
        seed: Seed of the order in which batches are drawn.

    Raises:
        ConfigError: An argument is out of range.
    """

    def __init__(
        self,
        min_lr: float = 1e-5,
        max_lr: float = 10.0,
        iterations: int = 500,
        smoothing: float = 0.98,
        divergence_factor: float = 4.0,
        skip_start: int = 10,
        min_decrease: float = 0.01,
        seed: int = 0,
    ) -> None:
        if not min_lr > 0:
            raise ConfigError(f"`min_lr` must be > 0, but got {min_lr}.")
        if not max_lr > min_lr:
            raise ConfigError(f"`max_lr` must be > `min_lr` ({min_lr}), but got {max_lr}.")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 2:
            raise ConfigError(f"`iterations` must be an integer >= 2, but got {iterations}.")
        if not 0 <= smoothing < 1:
            raise ConfigError(f"`smoothing` must be in [0, 1), but got {smoothing}.")
        if not divergence_factor > 1:
            raise ConfigError(f"`divergence_factor` must be > 1, but got {divergence_factor}.")
        if isinstance(skip_start, bool) or not isinstance(skip_start, int) or not 0 <= skip_start < iterations:
            raise ConfigError(f"`skip_start` must be an integer in [0, iterations), but got {skip_start}.")
        if not 0 <= min_decrease < 1:
            raise ConfigError(f"`min_decrease` must be in [0, 1), but got {min_decrease}.")
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.iterations = iterations
        self.smoothing = float(smoothing)
        self.divergence_factor = float(divergence_factor)
        self.skip_start = skip_start
        self.min_decrease = float(min_decrease)
        self.seed = seed

    @property
    def factor(self) -> float:
        """Ratio between consecutive learning rates, ``(max_lr / min_lr) ** (1 / iterations)``."""
        return (self.max_lr / self.min_lr) ** (1.0 / self.iterations)

    def learning_rate(self, step: int) -> float:
        """Learning rate of the sweep's ``step``-th batch (0-based)."""
        return self.min_lr * self.factor**step

    def find(self, model: keras.Model, x: Any, y: Any, *, batch_size: int, steps: StepRunner | None = None
             ) -> LRFinderResult:
        """Sweeps the learning rate on ``model`` and restores the model and its optimizer afterwards.

        Args:
            model: A model compiled with the optimizer to tune, whose learning rate is a constant.
            x: Training inputs (an array indexable along the first axis).
            y: Training targets, aligned with ``x``.
            batch_size: Batch size of the sweep; use the training's, as the best rate depends on it.
            steps: Trains a run of consecutive steps, each on its rows of ``x`` at its rate, and returns each
                step's loss (e.g. one compiled call for many steps); by default ``train_on_batch`` per step.

        Returns:
            The measured curve and the pick.

        Raises:
            ConfigError: The model is not compiled, its learning rate is a schedule, the batch size is not
                positive, or ``x`` and ``y`` differ in length or are empty.
        """
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ConfigError("the model is not compiled; compile it with the optimizer to tune before `find`.")
        if not isinstance(optimizer.learning_rate, keras.Variable):
            raise ConfigError(
                "the optimizer's learning rate is a schedule, but the finder sets it per batch; compile the model "
                "with a constant learning rate for the sweep (e.g. build_optimizer with schedule 'constant')."
            )
        x, y = np.asarray(x), np.asarray(y)
        if batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1, but got {batch_size}.")
        if len(x) == 0 or len(x) != len(y):
            raise ConfigError(f"x and y must be non-empty and of equal length, but have {len(x)} and {len(y)}.")

        if not model.built:
            model(x[:1])
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        saved = [(v, np.array(v.numpy(), copy=True)) for v in [*model.variables, *optimizer.variables]]
        fallback = float(optimizer.learning_rate.numpy())
        try:
            rates, losses, smoothed, diverged = self._sweep(steps or _OneBatchAtATime(model, x, y), len(x),
                                                            batch_size)
        finally:
            for variable, value in saved:
                variable.assign(value)
        return self._result(rates, losses, smoothed, diverged, fallback)

    def batches(self, n: int, batch_size: int) -> np.ndarray:
        """The rows of each step's batch, ``(iterations, batch)``: equal-sized batches of a fresh permutation
        each pass over the data (a ragged last batch would make JAX compile the step a second time)."""
        n_batches = max(1, n // batch_size)
        size = min(batch_size, n)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n)
        rows = np.empty((self.iterations, size), dtype=np.int32)
        for step in range(self.iterations):
            batch = step % n_batches
            if batch == 0 and step > 0:
                order = rng.permutation(n)
            rows[step] = order[batch * size : (batch + 1) * size]
        return rows

    def _sweep(self, steps: StepRunner, n: int, batch_size: int) -> tuple[list[float], list[float], list[float], bool]:
        rows = self.batches(n, batch_size)
        all_rates = [self.learning_rate(step) for step in range(self.iterations)]
        rates: list[float] = []
        losses: list[float] = []
        smoothed: list[float] = []
        average, best = 0.0, math.inf
        for first in range(0, self.iterations, steps.chunk):
            chunk = slice(first, min(first + steps.chunk, self.iterations))
            for step, loss in zip(range(chunk.start, chunk.stop), steps(rows[chunk], all_rates[chunk])):
                if not math.isfinite(loss):
                    return rates, losses, smoothed, True
                average = self.smoothing * average + (1 - self.smoothing) * loss
                value = average / (1 - self.smoothing ** (step + 1))
                rates.append(all_rates[step])
                losses.append(loss)
                smoothed.append(value)
                best = min(best, value)
                if value > self.divergence_factor * best:
                    return rates, losses, smoothed, True
        return rates, losses, smoothed, False

    def _result(
        self, rates: list[float], losses: list[float], smoothed: list[float], diverged: bool, fallback: float
    ) -> LRFinderResult:
        suggestion, turning = self.suggest(rates, smoothed, fallback=fallback)
        return LRFinderResult(
            learning_rates=rates,
            losses=losses,
            smoothed=smoothed,
            suggestion=suggestion,
            turning_point=turning,
            diverged=diverged,
            iterations=len(rates),
            loss_decreased=turning is not None,
        )

    def turning_point(self, rates: list[float], smoothed: list[float]) -> float | None:
        """Learning rate at the minimum of ``smoothed`` after ``skip_start``, or None when it never went down.

        Args:
            rates: The sweep's learning rates.
            smoothed: The smoothed loss at each of them.
        """
        if len(smoothed) <= self.skip_start:
            return None
        window = np.asarray(smoothed[self.skip_start :], dtype=float)
        lowest = int(np.argmin(window))
        if not window[lowest] < window[0] * (1 - self.min_decrease):
            return None
        return float(rates[self.skip_start + lowest])

    def suggest(self, rates: list[float], smoothed: list[float], *, fallback: float) -> tuple[float, float | None]:
        """Applies the pick rule of the module docstring to a measured curve.

        Args:
            rates: The sweep's learning rates.
            smoothed: The smoothed loss at each of them.
            fallback: Rate to suggest when the loss never went down.

        Returns:
            ``(suggestion, turning_point)``; ``turning_point`` is None when the fallback was used.
        """
        turning = self.turning_point(rates, smoothed)
        if turning is None:
            return float(fallback), None
        return max(turning / 10.0, self.min_lr), turning


class StepRunner(Protocol):
    """Trains consecutive steps of a sweep and returns their losses (see :meth:`LRFinder.find`)."""

    #: Steps per call; the sweep checks for divergence between calls.
    chunk: int

    def __call__(self, rows: np.ndarray, rates: list[float]) -> list[float]:
        """Trains one step per row of ``rows`` (indices of the training data), the i-th at ``rates[i]``."""


class _OneBatchAtATime:
    """``train_on_batch`` per step: the loss of each batch, on any backend."""

    chunk = 1

    def __init__(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
        self.model, self.x, self.y = model, x, y

    def __call__(self, rows: np.ndarray, rates: list[float]) -> list[float]:
        losses = []
        for index, rate in zip(rows, rates):
            self.model.optimizer.learning_rate = rate
            logs = self.model.train_on_batch(self.x[index], self.y[index], return_dict=True)
            losses.append(float(logs["loss"]))
        return losses


def plot_lr_finder(result: LRFinderResult, path: str | Path) -> None:
    """Draws the loss against the learning rate (log scale) with the turning point and the pick, as a PNG.

    Args:
        result: A sweep's result.
        path: Where to write the PNG.
    """
    # The object-oriented API leaves pyplot's global backend and figure registry alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(result.learning_rates, result.losses, color="0.75", linewidth=0.8, label="batch loss")
    axes.plot(result.learning_rates, result.smoothed, color="C0", linewidth=2, label="smoothed loss")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate (log scale)")
    axes.set_ylabel("loss")
    if not result.learning_rates:
        axes.set_xlim(result.suggestion / 10, result.suggestion * 10)
    if result.turning_point is not None:
        axes.axvline(result.turning_point, color="C3", linestyle=":", label=f"turning point {result.turning_point:.2g}")
    label = f"pick {result.suggestion:.2g}" + ("" if result.loss_decreased else " (fallback: loss never went down)")
    axes.axvline(result.suggestion, color="C2", linestyle="--", label=label)
    if result.smoothed:
        low = min(min(result.losses), min(result.smoothed))
        start = result.smoothed[0]
        # The divergence at the end would otherwise squash the informative part of the curve.
        high = max(start + 0.5 * (start - low), low * 1.1 if low > 0 else low + 1.0)
        axes.set_ylim(low - 0.05 * (high - low), high)
    title = "learning-rate finder" + (", diverged" if result.diverged else "")
    axes.set_title(f"{title} ({result.iterations} iterations)")
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(Path(path), format="png")
