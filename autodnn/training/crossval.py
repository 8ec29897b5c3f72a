"""Cross-validated choice on small data: which of a few configurations validation prefers, measured on every
training and validation row instead of one small split.

Below :data:`autodnn.config.SMALL_VALIDATION` validation rows, one split's figure is mostly the luck of which rows
fell into it: on breast_cancer (114 validation rows) the search's pick, a book configuration of better mean
validation accuracy over three seeds, tested 2.6 points below the designed start's (benchmarks/RESULTS.md,
2026-12-03). Here each candidate trains once on each fold of the training and validation rows together
(:func:`autodnn.datasets.folds`), is scored on the rows that fold held out, and the candidates rank by their mean
over the folds, then by lower mean validation loss. Every candidate sees the same folds with the same seeds. The
test split is never read.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from autodnn.config import TrialConfig

#: Folds of the cross-validation: every row scored once, each network trained on four fifths of the training and
#: validation rows, about as many as a study's training split (75 to 90% of them, :mod:`autodnn.datasets`).
FOLDS = 5

#: The callbacks of a fold's training, as the final evaluation's (:func:`autodnn.evaluate.evaluate`): ``on_start``
#: (entry, seed, most epochs), ``on_epoch`` (entry, seed, epoch, metrics), ``on_run`` (entry, run).
Callbacks = dict[str, Callable[..., None] | None]


def cross_validate(candidates: list[dict[str, Any]], dataset: Any, *, score: str, max_epochs: int, seed: int,
                   metric: str | None = None, folds: int = FOLDS, callbacks: Callbacks | None = None) -> None:
    """Trains each candidate once per fold and stores its fold runs and their means in ``candidate["cv"]``.

    Args:
        candidates: Entries with a ``config`` (a :class:`TrialConfig` dict) and a ``name``.
        dataset: The study's dataset; its training and validation rows make the folds.
        score: The validation figure compared, ``val_<searched>`` (higher is better).
        max_epochs: Epoch budget of every training.
        seed: Seed of the folds' shuffle; fold ``i`` trains with seed ``seed + i``, whoever the candidate.
        metric: The study's metric, for the trainer's figures.
        folds: Number of folds.
        callbacks: ``on_start``, ``on_epoch`` and ``on_run`` as :func:`autodnn.evaluate.evaluate` takes them;
            each fold's entry is named ``<name> fold i/k`` and has kind ``fold``.
    """
    from autodnn.datasets import folds as make_folds
    from autodnn.training.trainer import train

    callbacks = callbacks or {}
    on_start, on_epoch, on_run = (callbacks.get(name) for name in ("on_start", "on_epoch", "on_run"))
    parts = make_folds(dataset, folds, seed)
    for candidate in candidates:
        config = TrialConfig.from_dict(candidate["config"])
        runs = []
        for i, part in enumerate(parts):
            entry = {**candidate, "name": f"{candidate['name']} fold {i + 1}/{folds}", "kind": "fold"}
            if on_start is not None:
                on_start(entry, seed + i, config.trained_epochs(max_epochs))
            start = time.perf_counter()
            result = train(config, part, max_epochs=max_epochs, seed=seed + i, metric=metric,
                           reporter=EpochRelay(entry, seed + i, on_epoch) if on_epoch is not None else None)
            run = {"seed": seed + i, "fold": i + 1, score: result.score, "val_loss": result.val_loss,
                   "epochs": result.epochs, "seconds": time.perf_counter() - start}
            runs.append(run)
            if on_run is not None:
                on_run(entry, run)
        # A fold that diverged (NaN) makes the mean NaN, which ranks last: a configuration that fails on some
        # rows is not judged by the folds it survived.
        candidate["cv"] = {"folds": folds, "runs": runs, f"{score}_mean": statistics.fmean(r[score] for r in runs),
                           "val_loss_mean": statistics.fmean(r["val_loss"] for r in runs)}


def rank_key(candidate: dict[str, Any], score: str) -> tuple[float, float]:
    """Sorts cross-validated candidates best first: higher mean ``score`` over the folds, then lower mean loss."""
    return better_first(candidate["cv"][f"{score}_mean"], candidate["cv"]["val_loss_mean"])


def better_first(value: float, loss: float) -> tuple[float, float]:
    """A sort key, best first: higher validation figure ``value``, then lower validation ``loss``; NaN last."""
    return (-value if math.isfinite(value) else math.inf, loss if math.isfinite(loss) else math.inf)


class EpochRelay:
    """The trainer's reporter in the final evaluation (its seeds, its folds): passes each epoch on, never stops
    a training."""

    def __init__(self, entry: dict[str, Any], seed: int, on_epoch: Callable[..., None]) -> None:
        self.entry, self.seed, self.on_epoch = entry, seed, on_epoch

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        self.on_epoch(self.entry, self.seed, epoch, metrics)

    def should_stop(self) -> str | None:
        return None

