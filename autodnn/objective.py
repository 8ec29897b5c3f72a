"""The one place where Optuna meets Keras: trial -> configuration -> training -> stored result."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from autodnn.config import TrialConfig
from autodnn.errors import TrialFailed
from autodnn.study import cost
from autodnn.study.strategy import may_prune_at

if TYPE_CHECKING:
    from autodnn.datasets import Dataset
    from autodnn.space import SearchSpace

#: Name of the value every study maximizes.
METRIC = "val_accuracy"
#: Trials in a row that the time left cannot pay for, after which the search stops drawing new ones.
UNAFFORDABLE_IN_A_ROW = 3


class TrialReporter:
    """Reports each epoch's validation accuracy to an Optuna trial and relays its pruner's verdict.

    Baselines report too (their curves feed the pruner's median) but are never pruned: they are the measured
    reference the search is compared with. A trial is never pruned after its last epoch (``max_epochs``): it
    has finished, and its result is worth keeping. At the search's deadline every trial stops after the epoch
    in flight, baselines included, and is kept as pruned with its curve and the reason.

    Args:
        trial: The trial being trained.
        prune: Whether the pruner may stop it.
        max_epochs: The trial's epoch budget.
        deadline: ``time.monotonic()`` value at which the search's time is up, or None.
        on_epoch: Called with (trial, 0-based epoch, that epoch's metrics) after each epoch is reported.
    """

    def __init__(self, trial: optuna.Trial, *, prune: bool = True, max_epochs: int | None = None,
                 deadline: float | None = None,
                 on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None) -> None:
        self.trial = trial
        self.prune = prune
        self.max_epochs = max_epochs
        self.deadline = deadline
        self.on_epoch = on_epoch
        self._epoch = -1
        self._value = float("nan")

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        """Stores the epoch's validation accuracy as the trial's intermediate value, then tells ``on_epoch``."""
        self._epoch, self._value = epoch, metrics[METRIC]
        self.trial.report(self._value, step=epoch)
        if self.on_epoch is not None:
            self.on_epoch(self.trial, epoch, metrics)

    def should_stop(self) -> str | None:
        """Asks the deadline, then the pruner; says what stopped the trial, at which epoch and value."""
        last = self.max_epochs is not None and self._epoch + 1 >= self.max_epochs
        if self.deadline is not None and time.monotonic() >= self.deadline and not last:
            return (f"stopped at the search's time limit (--timeout) after epoch {self._epoch + 1}: "
                    f"{METRIC} {self._value:.4f}")
        if not self.prune or last or not may_prune_at(self.trial.study.pruner, self._epoch):
            return None
        if not self.trial.should_prune():
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
        tensorboard: Folder of TensorBoard logs: each trial writes its own subfolder (:mod:`autodnn.tensorboard`);
            None writes none.
        deadline: ``time.monotonic()`` value at which the search's time is up: the trial in flight stops after
            its epoch and is kept, pruned, with its curve and the reason.
        on_trial_start: Called with (study, trial) once the trial's configuration is known, before training.
        on_epoch: Called with (trial, 0-based epoch, that epoch's metrics) after every epoch, e.g. to show
            progress.
    """

    space: SearchSpace
    dataset: Dataset
    max_epochs: int
    seed: int = 0
    mc_samples: int = 0
    lr_finder: bool = False
    tensorboard: str | None = None
    deadline: float | None = None
    on_trial_start: Callable[[optuna.Study, optuna.Trial], None] | None = None
    on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None
    _refused: int = field(default=0, init=False, repr=False)

    def __call__(self, trial: optuna.Trial) -> float:
        from autodnn.trainer import train

        stored = trial.user_attrs.get("config")
        config = TrialConfig.from_dict(stored) if stored else self.space.sample(trial)
        if self.lr_finder and not stored:
            config = config.replace(lr_finder=True)
        trial.set_user_attr("config", config.to_dict())
        seed = int(trial.user_attrs.get("seed", self.seed + trial.number))
        trial.set_user_attr("seed", seed)
        self._check_affordable(trial, config)
        if self.on_trial_start is not None:
            self.on_trial_start(trial.study, trial)
        logs = self._tensorboard_logs(trial, config, sampled=not stored)
        try:
            result = train(
                config,
                self.dataset,
                max_epochs=self.max_epochs,
                reporter=TrialReporter(trial, prune="baseline" not in trial.user_attrs, max_epochs=self.max_epochs,
                                       deadline=self.deadline, on_epoch=self.on_epoch),
                seed=seed,
                mc_samples=self.mc_samples,
                **logs,
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
        trial.set_user_attr(cost.MEASURED, cost.steady_epoch_seconds(result.epoch_times))
        if result.lr_finder is not None:
            trial.set_user_attr("lr_finder", result.to_dict()["lr_finder"])
        if result.stopped in ("pruned", "nan"):
            trial.set_user_attr("reason", result.reason)
            raise optuna.TrialPruned(result.reason)
        return result.val_accuracy

    def _check_affordable(self, trial: optuna.Trial, config: TrialConfig) -> None:
        """Records the predicted epoch time; before the deadline, refuses a trial whose first epoch cannot end.

        After :data:`UNAFFORDABLE_IN_A_ROW` refusals in a row the search's time counts as spent (the deadline
        moves to now), so that the loop does not draw configurations until the clock runs out.

        Raises:
            optuna.TrialPruned: The trial is not started: the time left would not pay for its first epoch.
        """
        data = self.dataset
        rows = len(data.x_train)
        rates = cost.calibrate(trial.study, data.n_features, data.n_classes, rows)
        predicted = cost.predict_epoch_seconds(config, data.n_features, data.n_classes, rows, rates)
        trial.set_user_attr(cost.PREDICTED, predicted)
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        if predicted + cost.FIXED_SECONDS <= left:
            self._refused = 0
            return
        self._refused += 1
        if self._refused >= UNAFFORDABLE_IN_A_ROW:
            self.deadline = time.monotonic()
        reason = (f"not started: its first epoch would take about {predicted + cost.FIXED_SECONDS:.1f} s "
                  f"(predicted, building and compiling included) and the search has {max(left, 0.0):.1f} s left")
        trial.set_user_attr("reason", reason)
        raise optuna.TrialPruned(reason)

    def _tensorboard_logs(self, trial: optuna.Trial, config: TrialConfig, *, sampled: bool) -> dict[str, Any]:
        """``train``'s TensorBoard arguments: the trial's folder under ``tensorboard`` and its hyperparameters.

        A sampled trial logs its Optuna ``params``; a baseline or a retried trial, whose configuration was
        stored, the space's parameters read from that configuration. The experiment summary (the space's
        parameters, for the HParams view) is written at the top first, when no search wrote it there yet.
        """
        if self.tensorboard is None:
            return {}
        from pathlib import Path

        from autodnn import tensorboard as tb

        if not tb.experiment_written(self.tensorboard):
            tb.write_experiment(self.tensorboard, self.space)
        values = trial.params if sampled else tb.config_hparams(self.space, config.to_dict())
        folder = Path(self.tensorboard) / tb.run_name(trial.number, trial.user_attrs.get("baseline"))
        return {"tensorboard_dir": folder, "hparams": tb.encode_hparams(self.space, values)}
