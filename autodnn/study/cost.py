"""What a configuration costs before it trains: seconds per epoch, from its shape, calibrated by the study.

An epoch of a dense net costs about ``a * macs * rows + b * steps * layers`` seconds: ``macs`` multiply-adds
per row through the network (the weights of its dense layers), ``rows`` the training rows, ``steps`` the
optimizer steps (rows / batch size), ``layers`` its dense layers, ``a`` the machine's seconds per multiply-add
of training (forward and backward) and ``b`` its fixed cost per layer and step (the kernels each layer
launches, which dominate small batches of deep nets). Both rates are fitted to the study's own trials (least
squares on relative error once :data:`MIN_FIT_TRIALS` have measured epochs; before that ``b`` stays at its
prior and ``a`` is the median of what each trial implies), so the model follows the machine, the backend and
the precision the study trains on; before any trial has finished they are those measured on a 2-core Intel
Xeon with JAX.
A convolutional net (``family: conv``) counts the multiply-adds of its convolutions at each resolution
(:func:`conv_multiply_adds`) and its convolutions among its layers; its rates are fitted on the study's
convolutional trials alone, since a multiply-add of a convolution and one of a dense layer cost differently.
The search uses the prediction to start no trial whose first epoch cannot end before the deadline, and
records it beside the measured epoch time (``autodnn show``).
"""

from __future__ import annotations

import itertools
import os
import statistics
from typing import TYPE_CHECKING

from autodnn.config import TrialConfig
from autodnn.study.trial_record import CONFIG, EPOCH_TIMES, MEASURED, steady_epoch_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from optuna.trial import FrozenTrial

#: Seconds per multiply-add of training and per layer and optimizer step before the study has measured its own
#: (2-core Intel Xeon, JAX: the 20 x 100 net trains at about 1.4 GFLOP/s of multiply-adds at batch 32, and a
#: CIFAR-10 study's 20 x 100 baselines at batch 32 spend about 60 microseconds a layer and step besides).
PRIOR_SECONDS_PER_MAC = 2.5e-10
PRIOR_SECONDS_PER_STEP = 6.0e-5
#: The same for a convolutional net before the study has measured one, by backend: a 2-core AMD EPYC trains a
#: 32-64-128 convnet of two 3 x 3 convolutions a resolution (39M multiply-adds a 32 x 32 x 3 image) at 77
#: images a second with JAX; with TensorFlow (oneDNN, which ``--backend auto`` picks for convnets on a CPU) the
#: conv space's designed start (a pooled 32-filter stem, 64-128-256: 15.0M multiply-adds) at about 370 images a
#: second, 1.8e-10 s a multiply-add (benchmarks/RESULTS.md, 2026-12-07). Wider nets use the cores better (a 170.8M
#: one ran at 7.6e-11, conv_throughput.py, 2026-12-06): the prior errs long on them until the study measures its own.
PRIOR_SECONDS_PER_CONV_MAC = 3.4e-10
PRIOR_SECONDS_PER_CONV_MAC_BY_BACKEND = {"tensorflow": 1.8e-10}
#: Trials with measured epochs from which both rates are fitted rather than one.
MIN_FIT_TRIALS = 4
#: Seconds a trial spends besides its epochs (building, compiling, the final validation) before the study has
#: measured its own (benchmarks/RESULTS.md, "Fixed cost of a trial": 0.6 to 5.5 s on 2 cores).
FIXED_SECONDS = 3.0
#: Trials whose epochs calibrate the model: the latest ones, which ran on the machine as it is now.
CALIBRATION_TRIALS = 50


def multiply_adds(config: TrialConfig, n_features: int, n_classes: int,
                  image_shape: Sequence[int] | None = None) -> int:
    """Multiply-adds of one row's forward pass: the dense layers' weights, or a convolutional net's
    (:func:`conv_multiply_adds`) where the configuration is one and the data are images."""
    if config.family == "conv" and image_shape is not None:
        return conv_multiply_adds(config, image_shape, n_classes)[0]
    widths = [n_features, *config.hidden_units, n_classes]
    return sum(a * b for a, b in itertools.pairwise(widths))


def conv_multiply_adds(config: TrialConfig, image_shape: Sequence[int], n_classes: int) -> tuple[int, int]:
    """Multiply-adds of one image's forward pass through the convolutional net of ``config``
    (:mod:`autodnn.network.conv`), and its layers with weights (convolutions and dense)."""
    height, width, channels = (int(d) for d in image_shape)
    k, stem = config.kernel_size, config.stem_kernel
    total, layers = height * width * stem * stem * channels * config.conv_filters, 1
    channels = config.conv_filters
    if config.stem_downsample:
        height, width = -(-height // 2), -(-width // 2)
    for filters in config.group_filters:
        for block in range(1, config.conv_blocks + 1):
            last = block == config.conv_blocks and config.downsample == "stride"
            out_h, out_w = (-(-height // 2), -(-width // 2)) if last else (height, width)
            total += out_h * out_w * k * k * channels * filters
            layers += 1
            if config.conv_block == "residual":
                total += out_h * out_w * k * k * filters * filters
                layers += 1
                if last or channels != filters:
                    total += out_h * out_w * channels * filters
                    layers += 1
            height, width, channels = out_h, out_w, filters
        if config.downsample == "max_pool":
            height, width = -(-height // 2), -(-width // 2)
    head = [channels if config.conv_head == "gap" else height * width * channels, *config.hidden_units, n_classes]
    return total + sum(a * b for a, b in itertools.pairwise(head)), layers + config.n_hidden + 1


def steps(config: TrialConfig, rows: int) -> int:
    """Optimizer steps of one epoch: full batches only, at least one."""
    return max(1, rows // config.batch_size)


def layer_steps(config: TrialConfig, rows: int, image_shape: Sequence[int] | None = None) -> int:
    """Optimizer steps of one epoch times the layers with weights each step runs through."""
    if config.family == "conv" and image_shape is not None:
        return steps(config, rows) * conv_multiply_adds(config, image_shape, 2)[1]
    return steps(config, rows) * (config.n_hidden + 1)


def conv_prior(backend: str | None = None) -> float:
    """Seconds per multiply-add of a convolutional net's training on ``backend`` (default: this process's
    ``KERAS_BACKEND``) before a study has measured one."""
    backend = os.environ.get("KERAS_BACKEND", "") if backend is None else backend
    return PRIOR_SECONDS_PER_CONV_MAC_BY_BACKEND.get(backend, PRIOR_SECONDS_PER_CONV_MAC)


def calibrate(trials: Sequence[FrozenTrial], n_features: int, n_classes: int, rows: int,
              image_shape: Sequence[int] | None = None, family: str = "dense") -> tuple[float, float]:
    """``(seconds per multiply-add, seconds per layer and step)`` of ``family``'s networks from a study's
    ``trials`` of that family, or the priors.

    Each trial with a measured epoch time (:data:`MEASURED`) says what its epochs cost. From
    :data:`MIN_FIT_TRIALS` of them on, both rates are the least-squares fit of the relative error (each trial
    weighs alike, however long its epochs); a fit that comes out with a rate not above zero is discarded. Until
    then, and after such a fit, the step rate is its prior and the rest is attributed to the multiply-adds, at
    the median rate over trials (robust to a trial that shared the machine with another process).
    """
    samples = []
    measured = [t for t in trials if t.user_attrs.get(MEASURED) and CONFIG in t.user_attrs
                and t.user_attrs[CONFIG].get("family", "dense") == family]
    for trial in measured[-CALIBRATION_TRIALS:]:
        parsed = TrialConfig.from_dict(trial.user_attrs[CONFIG])
        samples.append((multiply_adds(parsed, n_features, n_classes, image_shape) * rows,
                        layer_steps(parsed, rows, image_shape), float(trial.user_attrs[MEASURED])))
    if len(samples) >= MIN_FIT_TRIALS:
        fitted = _fit_rates(samples)
        if fitted is not None:
            return fitted
    rates = [(seconds - PRIOR_SECONDS_PER_STEP * work_steps) / macs for macs, work_steps, seconds in samples
             if macs > 0 and seconds > PRIOR_SECONDS_PER_STEP * work_steps]
    prior = conv_prior() if family == "conv" else PRIOR_SECONDS_PER_MAC
    return (statistics.median(rates) if rates else prior), PRIOR_SECONDS_PER_STEP


def _fit_rates(samples: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """Least squares of ``a * macs + b * layer_steps / seconds - 1`` over ``samples``; None unless both > 0."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float64)
    weights = 1.0 / data[:, 2]
    (per_mac, per_step), *_ = np.linalg.lstsq(data[:, :2] * weights[:, None], np.ones(len(data)), rcond=None)
    if per_mac <= 0 or per_step <= 0:
        return None
    return float(per_mac), float(per_step)


def fixed_seconds(trials: Sequence[FrozenTrial]) -> float:
    """Seconds a trial spends besides its steady epochs (building, compiling, testing), from a study's ``trials``.

    The median, over the latest complete trials with measured epochs, of their wall time less their epochs at
    the steady rate; :data:`FIXED_SECONDS` before any trial completed.
    """
    from optuna.trial import TrialState

    spent = []
    for trial in [t for t in trials if t.state == TrialState.COMPLETE][-CALIBRATION_TRIALS:]:
        times = trial.user_attrs.get(EPOCH_TIMES)
        steady = steady_epoch_seconds(times or [])
        if steady is None or trial.datetime_start is None or trial.datetime_complete is None:
            continue
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
        spent.append(max(0.0, wall - steady * len(times)))
    return statistics.median(spent) if spent else FIXED_SECONDS


def frontier(trials: Sequence[FrozenTrial], n_features: int, n_classes: int, rows: int,
             rates: tuple[float, float], image_shape: Sequence[int] | None = None,
             family: str = "dense") -> float | None:
    """The predicted epoch seconds of the priciest configuration among ``trials`` that trained; None before any.

    Predicted at today's ``rates`` for every trial alike, so that it compares with a new configuration's
    prediction in the same units (a measured epoch of a tiny net can be below any prediction's step term).
    """
    trained = [TrialConfig.from_dict(t.user_attrs[CONFIG]) for t in trials
               if t.user_attrs.get(MEASURED) and CONFIG in t.user_attrs]
    trained = [config for config in trained if config.family == family]
    if not trained:
        return None
    return max(predict_epoch_seconds(config, n_features, n_classes, rows, rates, image_shape) for config in trained)


def predict_epoch_seconds(config: TrialConfig, n_features: int, n_classes: int, rows: int,
                          rates: tuple[float, float], image_shape: Sequence[int] | None = None) -> float:
    """Predicted seconds of one steady epoch of ``config`` on ``rows`` training rows (of ``image_shape`` where
    they are images), at the ``rates`` of its family (:func:`calibrate`)."""
    per_mac, per_step = rates
    return (per_mac * multiply_adds(config, n_features, n_classes, image_shape) * rows
            + per_step * layer_steps(config, rows, image_shape))
