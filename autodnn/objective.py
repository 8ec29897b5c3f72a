"""The one place where Optuna meets Keras: trial -> configuration -> training -> stored result."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from autodnn.config import TrialConfig
from autodnn.errors import TrialFailed
from autodnn.study.strategy import may_prune_at

if TYPE_CHECKING:
    from autodnn.datasets import Dataset
    from autodnn.space import SearchSpace

#: Name of the value every study maximizes.
METRIC = "val_accuracy"


class TrialReporter:
    """Reports each epoch's validation accuracy to an Optuna trial and relays its pruner's verdict.

    Baselines report too (their curves feed the pruner's median) but are never pruned: they are the measured
    reference the search is compared with.
    """

    def __init__(self, trial: optuna.Trial, *, prune: bool = True) -> None:
        self.trial = trial
        self.prune = prune
        self._epoch = -1
        self._value = float("nan")

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        """Stores the epoch's validation accuracy as the trial's intermediate value."""
        self._epoch, self._value = epoch, metrics[METRIC]
        self.trial.report(self._value, step=epoch)

    def should_stop(self) -> str | None:
        """Asks the pruner; says which epoch and value made the trial hopeless."""
        if not self.prune or not may_prune_at(self.trial.study.pruner, self._epoch) or not self.trial.should_prune():
            return None
        return f"pruned at epoch {self._epoch + 1}: {METRIC} {self._value:.4f} was below the pruner's threshold"


@dataclass
class Objective:
    """Samples a configuration (or takes an enqueued one), trains it and records everything in the trial.

    Attributes:
        space: Where configurations come from.
        dataset: The data every trial trains on.
        max_epochs: Epoch budget of a trial.
        seed: Base seed; trial ``n`` trains with ``seed + n`` (a retried trial keeps its original seed).
        mc_samples: Passes of MC dropout at evaluation for nets with dropout.
        lr_finder: Run the learning-rate finder in every searched trial (baselines keep their own setting).
    """

    space: SearchSpace
    dataset: Dataset
    max_epochs: int
    seed: int = 0
    mc_samples: int = 0
    lr_finder: bool = False

    def __call__(self, trial: optuna.Trial) -> float:
        from autodnn.trainer import train

        stored = trial.user_attrs.get("config")
        config = TrialConfig.from_dict(stored) if stored else self.space.sample(trial)
        if self.lr_finder and not stored:
            config = config.replace(lr_finder=True)
        trial.set_user_attr("config", config.to_dict())
        seed = int(trial.user_attrs.get("seed", self.seed + trial.number))
        trial.set_user_attr("seed", seed)
        try:
            result = train(
                config,
                self.dataset,
                max_epochs=self.max_epochs,
                reporter=TrialReporter(trial, prune="baseline" not in trial.user_attrs),
                seed=seed,
                mc_samples=self.mc_samples,
            )
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            trial.set_user_attr("reason", reason[:500])
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            raise TrialFailed(reason) from exc
        trial.set_user_attr("result", result.metrics)
        trial.set_user_attr("history", result.to_dict()["history"])
        trial.set_user_attr("epoch_times", result.epoch_times)
        if result.lr_finder is not None:
            trial.set_user_attr("lr_finder", result.to_dict()["lr_finder"])
        if result.stopped in ("pruned", "nan"):
            trial.set_user_attr("reason", result.reason)
            raise optuna.TrialPruned(result.reason)
        return result.val_accuracy
