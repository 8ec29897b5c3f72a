"""The one place where Optuna meets Keras: trial -> configuration -> training -> stored result."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from autodnn.config import TrialConfig
from autodnn.errors import TrialFailed
from autodnn.study import cost
from autodnn.study.budget import DEFAULT_MC_SAMPLES
from autodnn.study.records import NOT_STARTED
from autodnn.study.strategy import first_step_of, may_prune_at

if TYPE_CHECKING:
    from autodnn.datasets import Dataset
    from autodnn.space import SearchSpace

#: Name of the value every study maximizes.
METRIC = "val_accuracy"
#: Trials in a row that the time left cannot pay for, after which the search stops drawing new ones.
UNAFFORDABLE_IN_A_ROW = 3
#: A sampled configuration whose predicted epoch costs more than this many times the priciest epoch the study
#: has measured is not started (:meth:`Objective._check_affordable`): low cost first.
COST_GROWTH = 2.0
#: After this many configurations in a row refused for their cost, the allowed growth doubles.
FRONTIER_REFUSALS = 10
#: A searched trial still at chance after this many epochs is stopped (:class:`TrialReporter`).
CHANCE_EPOCHS = 3
#: Validation accuracy this little above chance still counts as chance.
CHANCE_MARGIN = 0.01
#: What a training measures on the test split: kept out of a trial's ``result``, which the search reads.
TEST_METRICS = ("test_accuracy", "test_loss", "mc_test_accuracy")


class TrialReporter:
    """Reports each epoch's validation accuracy to an Optuna trial and relays its pruner's verdict.

    Baselines report too (their curves feed the pruner's median) but are never pruned: they are the measured
    reference the search is compared with. A trial is never pruned after its last epoch (``max_epochs``): it
    has finished, and its result is worth keeping. At the search's deadline every trial stops after the epoch
    in flight, baselines included, and is kept as pruned with its curve and the reason.

    Epoch ``e`` (0-based) is reported at step ``e + first_step``: studies since 1-based steps report epoch 1 at
    step 1, where Hyperband's first rung is; older ones (``first_step`` 0) go on as they began.

    A searched trial whose validation accuracy has not risen above ``chance`` (the share of the most frequent
    class) by its :data:`CHANCE_EPOCHS`-th epoch is stopped whatever the pruner says: a pruner compares it only
    with the trials of its bracket, and the first of a bracket it never stops.

    Args:
        trial: The trial being trained.
        prune: Whether the pruner (and the chance rule) may stop it.
        max_epochs: The trial's epoch budget.
        deadline: ``time.monotonic()`` value at which the search's time is up, or None.
        on_epoch: Called with (trial, 0-based epoch, that epoch's metrics) after each epoch is reported.
        first_step: The step of the first epoch (:func:`autodnn.study.strategy.first_step_of`).
        chance: Validation accuracy of always answering the most frequent class, or None not to check.
    """

    def __init__(self, trial: optuna.Trial, *, prune: bool = True, max_epochs: int | None = None,
                 deadline: float | None = None,
                 on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None,
                 first_step: int = 1, chance: float | None = None) -> None:
        self.trial = trial
        self.prune = prune
        self.max_epochs = max_epochs
        self.deadline = deadline
        self.on_epoch = on_epoch
        self.first_step = first_step
        self.chance = chance
        self._epoch = -1
        self._value = float("nan")
        self._best = float("-inf")

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        """Stores the epoch's validation accuracy as the trial's intermediate value, then tells ``on_epoch``."""
        self._epoch, self._value = epoch, metrics[METRIC]
        if not math.isnan(self._value):
            self._best = max(self._best, self._value)
        self.trial.report(self._value, step=epoch + self.first_step)
        if self.on_epoch is not None:
            self.on_epoch(self.trial, epoch, metrics)

    def should_stop(self) -> str | None:
        """Asks the deadline, then the pruner; says what stopped the trial, at which epoch and value."""
        last = self.max_epochs is not None and self._epoch + 1 >= self.max_epochs
        if self.deadline is not None and time.monotonic() >= self.deadline and not last:
            return (f"stopped at the search's time limit (--timeout) after epoch {self._epoch + 1}: "
                    f"{METRIC} {self._value:.4f}")
        if not self.prune or last:
            return None
        if self.chance is not None and self._epoch + 1 == CHANCE_EPOCHS and self._best <= self.chance + CHANCE_MARGIN:
            return (f"pruned at epoch {self._epoch + 1}: {METRIC} never rose above chance ({self.chance:.4f}, the "
                    f"most frequent class), best {self._best:.4f}")
        if not may_prune_at(self.trial.study.pruner, self._epoch + self.first_step):
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
            its epoch and is kept, pruned, with its curve and the reason. The search may move it between
            trials (:class:`autodnn.study.budget.TimeBudget`).
        spent: Set once :data:`UNAFFORDABLE_IN_A_ROW` trials in a row were not started because the time left
            could not pay for them: the search then stops drawing new ones.
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
    spent: bool = field(default=False, init=False)
    chance: float | None = field(default=None, init=False)
    _refused: int = field(default=0, init=False, repr=False)
    _growth: float = field(default=COST_GROWTH, init=False, repr=False)
    _over: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        import numpy as np

        labels = np.asarray(self.dataset.y_valid)
        if labels.size:
            self.chance = float(np.bincount(labels).max() / labels.size)

    def __call__(self, trial: optuna.Trial) -> float:
        from autodnn.trainer import train

        stored = trial.user_attrs.get("config")
        config = TrialConfig.from_dict(stored) if stored else self.space.sample(trial)
        if self.lr_finder and not stored:
            config = config.replace(lr_finder=True)
        trial.set_user_attr("config", config.to_dict())
        seed = int(trial.user_attrs.get("seed", self.seed + trial.number))
        trial.set_user_attr("seed", seed)
        self._check_affordable(trial, config, sampled=not stored and "warm_start" not in trial.user_attrs)
        if self.on_trial_start is not None:
            self.on_trial_start(trial.study, trial)
        logs = self._tensorboard_logs(trial, config, sampled=not stored)
        baseline = "baseline" in trial.user_attrs
        start = time.perf_counter()
        try:
            # A baseline is tested as the final evaluation tests it: its run counts as one of its seeds there.
            result = train(
                config,
                self.dataset,
                max_epochs=self.max_epochs,
                reporter=TrialReporter(trial, prune=not baseline, max_epochs=config.trained_epochs(self.max_epochs),
                                       deadline=self.deadline, on_epoch=self.on_epoch,
                                       first_step=first_step_of(trial.study.user_attrs.get("settings") or {}),
                                       chance=self.chance),
                seed=seed,
                mc_samples=self.evaluation_mc_samples(config) if baseline else self.mc_samples,
                evaluate_test=baseline,
                **logs,
            )
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            trial.set_user_attr("reason", reason[:500])
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            raise TrialFailed(reason) from exc
        trial.set_user_attr("result", {k: v for k, v in result.metrics.items() if k not in TEST_METRICS})
        trial.set_user_attr("history", result.to_dict()["history"])
        trial.set_user_attr("epoch_times", result.epoch_times)
        trial.set_user_attr(cost.MEASURED, cost.steady_epoch_seconds(result.epoch_times))
        if result.lr_finder is not None:
            trial.set_user_attr("lr_finder", result.to_dict()["lr_finder"])
        if result.stopped in ("pruned", "nan"):
            trial.set_user_attr("reason", result.reason)
            raise optuna.TrialPruned(result.reason)
        if baseline:
            trial.set_user_attr("test_run", result.evaluation_run(seed, time.perf_counter() - start))
        return result.val_accuracy

    def evaluation_mc_samples(self, config: TrialConfig) -> int:
        """MC-dropout passes of the final evaluation for ``config``: ``mc_samples`` or 30, none without dropout."""
        return (self.mc_samples or DEFAULT_MC_SAMPLES) if config.has_dropout else 0

    def _check_affordable(self, trial: optuna.Trial, config: TrialConfig, *, sampled: bool) -> None:
        """Records the predicted epoch time; under a deadline, refuses what the search should not start.

        A trial whose first epoch cannot end before the deadline is not started; after
        :data:`UNAFFORDABLE_IN_A_ROW` such in a row the search's time counts as spent (``spent``), so that the
        loop does not draw configurations until the clock runs out. A sampled configuration (not a baseline,
        a warm start or a retry) whose epoch would cost more than :data:`COST_GROWTH` times the priciest epoch
        the study has measured is not started either: the search starts cheap and grows its cost step by step,
        as FLAML's CFO does, instead of spending a small budget on a few huge random draws. After
        :data:`FRONTIER_REFUSALS` such refusals in a row the allowed growth doubles. A refused trial is kept,
        pruned, with its reason (TPE counts it among the bad), and not counted in ``--n-trials``.

        Raises:
            optuna.TrialPruned: The trial is not started.
        """
        data = self.dataset
        rows = len(data.x_train)
        trials = trial.study.get_trials(deepcopy=False)  # read once for the three estimates below
        rates = cost.calibrate(trials, data.n_features, data.n_classes, rows)
        predicted = cost.predict_epoch_seconds(config, data.n_features, data.n_classes, rows, rates)
        trial.set_user_attr(cost.PREDICTED, predicted)
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        first = predicted + cost.fixed_seconds(trials)
        if first > left:
            self._refused += 1
            self.spent = self._refused >= UNAFFORDABLE_IN_A_ROW
            self._refuse(trial, f"not started: its first epoch would take about {first:.1f} s (predicted, building "
                                f"and compiling included) and the search has {max(left, 0.0):.1f} s left")
        self._refused = 0
        frontier = cost.frontier(trials, data.n_features, data.n_classes, rows, rates) if sampled else None
        if frontier is not None and predicted > self._growth * frontier:
            reason = (f"not started: its epochs would take about {predicted:.2g} s, more than {self._growth:g} x "
                      f"those of the priciest configuration the search has trained ({frontier:.2g} s); the search "
                      "grows its cost step by step, cheapest first")
            self._over += 1
            if self._over >= FRONTIER_REFUSALS:
                self._growth, self._over = 2 * self._growth, 0
            self._refuse(trial, reason)
        self._over = 0

    @staticmethod
    def _refuse(trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(NOT_STARTED, True)
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
