"""Population training: several trials of one architecture trained together, K at once, in one program.

Small dense nets cannot fill a machine one trial at a time: a step of a 32-row batch is hundreds of tiny
kernels. Trials whose configurations share a compiled program (:func:`autodnn.training.programs.program_key`: the
same network and optimizer structure, any learning rate and schedule, momentum, betas, weight decay, dropout
rate, clipping threshold or seed) can instead be stacked along a population axis, so that each kernel does K
trials' work (:class:`autodnn.training.jax_loop.JaxPopulation`).

Each member is still its own training: its own seed (weights, dropout, batch order), learning-rate finder,
early stopping, NaN guard and reporter (pruning), and its own :class:`~autodnn.training.trainer.TrialResult`, the
same, within float tolerance, as :func:`autodnn.training.trainer.train` gives for it alone. Its ``epoch_times`` are its
share of the population's epochs, so the seconds of a population's members add up to its wall time.

On TensorFlow and PyTorch the members train one after the other (said once per process).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras

from autodnn.training import loops
from autodnn.training.losses import loss_key
from autodnn.training.programs import program_key
from autodnn.training.session import start_session
from autodnn.training.trainer import Reporter, TrialResult, finish, prepare, train

if TYPE_CHECKING:
    from autodnn.config import TrialConfig
    from autodnn.datasets import Dataset

__all__ = ["population_key", "train_population"]

logger = logging.getLogger(__name__)
_SAID: set[str] = set()


def _backend() -> str:
    return keras.backend.backend()


def population_key(config: TrialConfig, dataset: Dataset, *, max_epochs: int, precision: str | None = None) -> tuple:
    """The program key of ``config`` on ``dataset`` and its epochs: configurations with equal keys can train as
    one population."""
    epochs = config.trained_epochs(max_epochs)
    return epochs, *program_key(
        config, n_features=dataset.n_features, n_classes=dataset.n_outputs,
        steps=loops.steps_per_epoch(len(dataset.x_train), config.batch_size),
        batch=loops.effective_batch_size(len(dataset.x_train), config.batch_size), epochs=epochs,
        precision=precision or keras.config.dtype_policy().name, loss=loss_key(config, dataset),
        image_shape=dataset.image_shape,
    )


def train_population(
    configs: Sequence[TrialConfig],
    dataset: Dataset,
    *,
    max_epochs: int,
    seeds: Sequence[int],
    reporters: Sequence[Reporter | None] | None = None,
    evaluate_test: bool = False,
    mc_samples: int | None = None,
    precision: str | None = None,
    keep_model: bool = False,
    metric: str | None = None,
) -> list[TrialResult]:
    """Trains each configuration with its seed, all in one population; see :func:`autodnn.training.trainer.train`.

    Args:
        configs: Configurations sharing one :func:`population_key`.
        dataset: What they train on.
        max_epochs: Upper bound on each member's epochs (each trains its own ``epochs`` within it).
        seeds: Each member's seed.
        reporters: Each member's reporter (or None).
        evaluate_test: Also test each member's final weights.
        mc_samples: Passes of MC dropout at evaluation; defaults to each configuration's.
        precision: As for :func:`autodnn.training.trainer.train`.
        keep_model: Return each trained network in its result's ``model``.
        metric: What the search optimizes, as for :func:`autodnn.training.trainer.train`.

    Returns:
        One result per configuration, in order.

    Raises:
        ValueError: The lists differ in length, or the configurations do not share a program.
    """
    reporters = list(reporters) if reporters is not None else [None] * len(configs)
    if not len(configs) == len(seeds) == len(reporters):
        raise ValueError(f"give one seed and one reporter per configuration ({len(configs)}), not "
                         f"{len(seeds)} and {len(reporters)}.")
    options = {"evaluate_test": evaluate_test, "mc_samples": mc_samples, "keep_model": keep_model}
    if metric is not None:
        options["metric"] = metric
    backend = _backend()
    if len(configs) == 1 or backend != "jax":
        if len(configs) > 1 and backend not in _SAID:
            _SAID.add(backend)
            logger.warning("population training needs the JAX backend; on %s the trials train one at a time.",
                           backend)
        return [train(c, dataset, max_epochs=max_epochs, seed=s, reporter=r, precision=precision, **options)
                for c, s, r in zip(configs, seeds, reporters)]
    start_session(precision)
    keys = {population_key(c, dataset, max_epochs=max_epochs) for c in configs}
    if len(keys) > 1:
        raise ValueError("the configurations of a population must share one program (autodnn.training.population."
                         "population_key); group them first.")
    runs = [prepare(c, dataset, max_epochs=max_epochs, reporter=r, seed=s, metric=metric)
            for c, s, r in zip(configs, seeds, reporters)]
    outcome = loops.fit_population([run.model for run in runs], dataset, batch_size=configs[0].batch_size,
                                  epochs=runs[0].epochs, callbacks=[run.callbacks for run in runs], seeds=list(seeds),
                                  program_key=runs[0].program_key)
    return [finish(run, outcome, **{k: v for k, v in options.items() if k != "metric"}) for run in runs]
