"""The one place where Optuna meets Keras: trial -> configuration -> training -> stored result."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from autodnn.config import TrialConfig
from autodnn.errors import TrialFailed
from autodnn.metrics import searched_of
from autodnn.study import cost
from autodnn.study.chance import Chance
from autodnn.study.deadline import Deadline
from autodnn.study.options import stored_options
from autodnn.study.strategy import first_step_of, may_prune_at
from autodnn.study.trial_record import (
    BASELINE,
    CONFIG,
    NOT_STARTED,
    PREDICTED,
    REASON,
    RESULT,
    SEED,
    TEST_RUN,
    WARM_START,
    write_training,
)

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
#: A sampled trial whose measured epochs cost more than this many times what the cost frontier let it start with
#: is stopped (:class:`TrialReporter`): the cost model mispredicted it, and low cost first holds on measurements.
MEASURED_GROWTH = 2.0
#: Epochs measured under this many seconds are never stopped as too slow: their times jitter by more than they
#: cost (0.01 to 0.19 s for one net's epochs on digits), and the most such a trial can overrun is seconds.
SLOW_FLOOR = 1.0


class TrialReporter:
    """Reports each epoch's validation accuracy to an Optuna trial and relays its pruner's verdict.

    Baselines report too (their curves feed the pruner's median) but are never pruned: they are the measured
    reference the search is compared with. Neither are the designed start's trials (:mod:`autodnn.tuning.warm_start`):
    a few configurations chosen to train well, whose first epochs under a warm-up or 1cycle schedule say little
    (Hyperband's first rung, after epoch 1, stopped two of the three on digits at 0.48 and 0.88 validation
    accuracy; trained through, they reach 0.98 and 0.96). A trial is never pruned after its last epoch (``max_epochs``): it
    has finished, and its result is worth keeping. At the search's deadline every trial stops after the epoch
    in flight, baselines included, and is kept as pruned with its curve and the reason.

    Epoch ``e`` (0-based) is reported at step ``e + first_step``: studies since 1-based steps report epoch 1 at
    step 1, where Hyperband's first rung is; older ones (``first_step`` 0) go on as they began.

    Once a trial of the study has shown the data learnable, a searched trial that has not beaten ``chance``
    (:meth:`Chance.learned`: neither its validation loss below the class priors' nor its accuracy above the most
    frequent class beyond the split's noise) by its :data:`CHANCE_EPOCHS`-th epoch is stopped whatever the
    pruner says: a pruner compares it only with the trials
    of its bracket, and the first of a bracket it never stops. No fixed margin: with 97% of one class a trial at
    97.9% whose loss fell below the priors' goes on.

    Args:
        trial: The trial being trained.
        prune: Whether the pruner (and the chance rule) may stop it.
        max_epochs: The trial's epoch budget.
        deadline: When the search's time is up; None for never.
        on_epoch: Called with (trial, 0-based epoch, that epoch's metrics) after each epoch is reported.
        first_step: The step of the first epoch (:func:`autodnn.study.strategy.first_step_of`).
        chance: What answering the class priors scores on validation, or None not to check.
        metric: The reported score: ``val_accuracy``, or a regression's ``val_r2``.
        cost_limit: Seconds an epoch of this trial was allowed to cost when it started (the cost frontier's,
            :meth:`Objective._check_affordable`), or None for no limit. From its second epoch on (the first holds
            building, compiling and the LR finder), a trial whose epochs measure more than
            :data:`MEASURED_GROWTH` times that, and more than :data:`SLOW_FLOOR`, is stopped: a draw the cost
            model mispredicted (14 x 651 units at batch 16 on CIFAR-10, predicted 13 s an epoch, took 43 to 102)
            would otherwise spend the search's budget alone.
    """

    def __init__(self, trial: optuna.Trial, *, prune: bool = True, max_epochs: int | None = None,
                 deadline: Deadline | None = None,
                 on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None,
                 first_step: int = 1, chance: Chance | None = None, metric: str = METRIC,
                 cost_limit: float | None = None) -> None:
        self.cost_limit = cost_limit
        self._reported_at: float | None = None
        self._epoch_seconds: float | None = None
        self.metric = metric
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
        self._best_loss = float("inf")

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        """Stores the epoch's validation score as the trial's intermediate value, then tells ``on_epoch``."""
        now = time.monotonic()
        if self._reported_at is not None:
            self._epoch_seconds = now - self._reported_at
        self._reported_at = now
        self._epoch, self._value = epoch, metrics[self.metric]
        if not math.isnan(self._value):
            self._best = max(self._best, self._value)
        loss = metrics.get("val_loss", float("nan"))
        if not math.isnan(loss):
            self._best_loss = min(self._best_loss, loss)
        self.trial.report(self._value, step=epoch + self.first_step)
        if self.on_epoch is not None:
            self.on_epoch(self.trial, epoch, metrics)

    def should_stop(self) -> str | None:
        """Asks the deadline, then the pruner; says what stopped the trial, at which epoch and value."""
        last = self.max_epochs is not None and self._epoch + 1 >= self.max_epochs
        if self.deadline is not None and self.deadline.left() <= 0 and not last:
            return (f"stopped at the search's time limit (--timeout) after epoch {self._epoch + 1}: "
                    f"{self.metric} {self._value:.4f}")
        if not self.prune or last:
            return None
        if self.cost_limit is not None and self._epoch_seconds is not None \
                and self._epoch_seconds > max(MEASURED_GROWTH * self.cost_limit, SLOW_FLOOR):
            return (f"pruned at epoch {self._epoch + 1}: too slow: its epochs take {self._epoch_seconds:.3g} s, more "
                    f"than {MEASURED_GROWTH:g} x the {self.cost_limit:.2g} s the search let it start with; the search "
                    "grows its cost step by step, cheapest first")
        chance = self.chance
        if chance is not None and self._epoch + 1 == CHANCE_EPOCHS and not chance.learned(self._best, self._best_loss):
            said = (f"pruned at epoch {self._epoch + 1}: never beat chance: {self.metric} best {self._best:.4f} "
                    f"against {chance.score:.4f} ({chance.answer}")
            if chance.loss == -math.inf:
                return said + ")"
            return (f"{said}, +/- {chance.noise:.4f}), val_loss best {self._best_loss:.4f} against "
                    f"{chance.loss:.4f} (the best constant answer's)")
        if not may_prune_at(self.trial.study.pruner, self._epoch + self.first_step):
            return None
        if not self.trial.should_prune():
            return None
        return f"pruned at epoch {self._epoch + 1}: {self.metric} {self._value:.4f} was below the pruner's threshold"


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
        tensorboard: Folder of TensorBoard logs: each trial writes its own subfolder (:mod:`autodnn.training.tensorboard`);
            None writes none.
        deadline: When the search's time is up: the trial in flight stops after its epoch and is kept, pruned,
            with its curve and the reason. The trial loop may move it between trials
            (:class:`autodnn.tuning.budget.BudgetDeadline`); once :data:`UNAFFORDABLE_IN_A_ROW` trials in a row
            were not started because the time left could not pay for them, the objective spends it
            (:meth:`autodnn.study.deadline.Deadline.spend`) and the loop draws no more.
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
    deadline: Deadline = field(default_factory=Deadline)
    on_trial_start: Callable[[optuna.Study, optuna.Trial], None] | None = None
    on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None
    metric_name: str | None = None
    class_weight: str | None = None
    chance: Chance | None = field(default=None, init=False)
    weighted_chance: Chance | None = field(default=None, init=False)
    metric: str = field(default=METRIC, init=False)
    _refused: int = field(default=0, init=False, repr=False)
    _growth: float = field(default=COST_GROWTH, init=False, repr=False)
    _over: int = field(default=0, init=False, repr=False)
    _cost_limit: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.chance = Chance.of_dataset(self.dataset, self.metric_name)
        self.weighted_chance = Chance.of_dataset(self.dataset, self.metric_name, "balanced")
        self.metric = f"val_{searched_of(self.dataset.task, self.metric_name)}"

    def __call__(self, trial: optuna.Trial) -> float:
        from autodnn.training.trainer import train

        stored = trial.user_attrs.get(CONFIG)
        config = TrialConfig.from_dict(stored) if stored else self.space.sample(trial)
        if self.lr_finder and not stored:
            config = config.replace(lr_finder=True)
        if self.class_weight and all(p.name != "class_weight" for p in self.space.params):
            config = config.replace(class_weight=self.class_weight)
        trial.set_user_attr(CONFIG, config.to_dict())
        seed = int(trial.user_attrs.get(SEED, self.seed + trial.number))
        trial.set_user_attr(SEED, seed)
        predicted = self._check_affordable(trial, config, sampled=not stored and WARM_START not in trial.user_attrs)
        if self.on_trial_start is not None:
            self.on_trial_start(trial.study, trial)
        logs = self._tensorboard_logs(trial, config, sampled=not stored)
        baseline = BASELINE in trial.user_attrs
        start = time.perf_counter()
        try:
            # A baseline is tested as the final evaluation tests it: its run counts as one of its seeds there.
            result = train(
                config,
                self.dataset,
                max_epochs=self.max_epochs,
                reporter=TrialReporter(trial, prune=not (baseline or WARM_START in trial.user_attrs),
                                       max_epochs=config.trained_epochs(self.max_epochs), cost_limit=self._cost_limit,
                                       deadline=self.deadline, on_epoch=self.on_epoch,
                                       first_step=first_step_of(stored_options(trial.study)),
                                       chance=self._chance_rule(trial.study, config), metric=self.metric),
                seed=seed,
                mc_samples=self.evaluation_mc_samples(config) if baseline else self.mc_samples,
                evaluate_test=baseline,
                metric=self.metric_name,
                **logs,
            )
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            reason = write_training(trial.set_user_attr, config, seed=seed, predicted=predicted, error=exc)
            raise TrialFailed(reason) from exc
        stopped = write_training(trial.set_user_attr, config, seed=seed, predicted=predicted, result=result)
        if stopped is not None:
            raise optuna.TrialPruned(stopped)
        if baseline:
            trial.set_user_attr(TEST_RUN, result.evaluation_run(seed, time.perf_counter() - start))
        return result.score

    def _chance_rule(self, study: optuna.Study, config: TrialConfig) -> Chance | None:
        """The chance level ``config`` must beat (its loss weighted as its training weighs classes), once some
        trial of the study has beaten its own (the data is learnable); None before, so that where nothing learns
        every trial still finishes and the final evaluation can say so, instead of a search of trials all
        stopped at chance."""
        if self._chance_of(config.class_weight) is None:
            return None
        for past in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            result = past.user_attrs.get(RESULT) or {}
            loss, score = result.get("val_loss"), result.get(self.metric)
            weighting = (past.user_attrs.get(CONFIG) or {}).get("class_weight", "none")
            level = self._chance_of(weighting)
            if isinstance(loss, float) and isinstance(score, float) and level is not None and level.learned(score, loss):
                return self._chance_of(config.class_weight)
        return None

    def _chance_of(self, class_weight: str) -> Chance | None:
        return self.weighted_chance if class_weight == "balanced" else self.chance

    def evaluation_mc_samples(self, config: TrialConfig) -> int:
        """MC-dropout passes of the final evaluation for ``config``: ``mc_samples`` or 30, none without dropout."""
        return config.evaluation_mc_samples(self.mc_samples)

    def _check_affordable(self, trial: optuna.Trial, config: TrialConfig, *, sampled: bool) -> float:
        """Records the predicted epoch time; under a deadline, refuses what the search should not start.

        A trial whose first epoch cannot end before the deadline is not started. Nor is a sampled one that
        cannot train the fewest epochs it could end at, once a trial of its family has measured this machine's
        rate (before, the deadline rests on the priors' upper bound of the final evaluation and moves later): the
        deadline would stop it and the search would keep nothing of it. Those are its own epochs (its schedule's
        horizon), or its early-stopping patience and one where that is sooner. The designed start and the
        baselines, whose time the budget plans, need their first epoch only. After
        :data:`UNAFFORDABLE_IN_A_ROW` such in a row the search's time counts as spent (``spent``), so that the
        loop does not draw configurations until the clock runs out. A sampled configuration (not a baseline,
        a warm start or a retry) whose epoch would cost more than :data:`COST_GROWTH` times the priciest epoch
        the study has measured is not started either: the search starts cheap and grows its cost step by step,
        as FLAML's CFO does, instead of spending a small budget on a few huge random draws. After
        :data:`FRONTIER_REFUSALS` such refusals in a row the allowed growth doubles. A refused trial is kept,
        pruned, with its reason (TPE counts it among the bad), and not counted in ``--n-trials``.

        Returns:
            The predicted seconds of one epoch.

        Raises:
            optuna.TrialPruned: The trial is not started.
        """
        data = self.dataset
        rows = len(data.x_train)
        self._cost_limit = None
        trials = trial.study.get_trials(deepcopy=False)  # read once for the three estimates below
        shape = data.image_shape
        rates = cost.calibrate(trials, data.n_features, data.n_outputs, rows, shape, config.family)
        predicted = cost.predict_epoch_seconds(config, data.n_features, data.n_outputs, rows, rates, shape)
        trial.set_user_attr(PREDICTED, predicted)
        if not self.deadline.bounded:
            return predicted
        left = self.deadline.left()
        frontier = (cost.frontier(trials, data.n_features, data.n_outputs, rows, rates, shape, config.family)
                    if sampled else None)
        fewest = 1 if frontier is None else min(config.trained_epochs(self.max_epochs), config.patience + 1)
        needed = predicted * fewest + cost.fixed_seconds(trials)
        if needed > left:
            self._refused += 1
            if self._refused >= UNAFFORDABLE_IN_A_ROW:
                self.deadline.spend()
            what = "its first epoch" if fewest == 1 else f"the {fewest} epochs it trains at least"
            self._refuse(trial, f"not started: {what} would take about {needed:.1f} s (predicted, building and "
                                f"compiling included) and the search has {max(left, 0.0):.1f} s left")
        self._refused = 0
        if frontier is not None and predicted > self._growth * frontier:
            reason = (f"not started: its epochs would take about {predicted:.2g} s, more than {self._growth:g} x "
                      f"those of the priciest configuration the search has trained ({frontier:.2g} s); the search "
                      "grows its cost step by step, cheapest first")
            self._over += 1
            if self._over >= FRONTIER_REFUSALS:
                self._growth, self._over = 2 * self._growth, 0
            self._refuse(trial, reason)
        self._over = 0
        if frontier is not None:
            self._cost_limit = self._growth * frontier
        return predicted

    @staticmethod
    def _refuse(trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(NOT_STARTED, True)
        trial.set_user_attr(REASON, reason)
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

        from autodnn.training import tensorboard as tb

        if not tb.experiment_written(self.tensorboard):
            tb.write_experiment(self.tensorboard, self.space)
        values = trial.params if sampled else tb.config_hparams(self.space, config.to_dict())
        folder = Path(self.tensorboard) / tb.run_name(trial.number, trial.user_attrs.get(BASELINE))
        return {"tensorboard_dir": folder, "hparams": tb.encode_hparams(self.space, values)}


def build_objective(
    study: optuna.Study,
    dataset: Dataset,
    space: SearchSpace,
    *,
    deadline: Deadline | None = None,
    on_trial_start: Callable[[optuna.Study, optuna.Trial], None] | None = None,
    on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None,
) -> Objective:
    """The objective of ``study``, from the options it stores (:mod:`autodnn.study.options`).

    ``autodnn search`` and every ``autodnn worker`` build it here, so that they train trials alike.

    Args:
        study: A study made by ``autodnn search``.
        dataset: Its data (checked against the study's fingerprint by the caller).
        space: Its search space.
        deadline: When the search's time is up; None for never.
        on_trial_start: Called with (study, trial) once the trial's configuration is known.
        on_epoch: Called with (trial, 0-based epoch, that epoch's metrics) after every epoch.
    """
    options = stored_options(study)
    return Objective(space, dataset, int(options["max_epochs"]), seed=int(options["seed"]),
                     mc_samples=int(options.get("mc_samples") or 0), lr_finder=bool(options.get("lr_finder")),
                     tensorboard=options.get("tensorboard"), deadline=deadline or Deadline(),
                     on_trial_start=on_trial_start, on_epoch=on_epoch, metric_name=options.get("metric"),
                     class_weight=options.get("class_weight"))
