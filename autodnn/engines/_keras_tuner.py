"""KerasTuner as a search engine: its oracles (Hyperband, Bayesian optimization, random search) choose the
configurations, autodnn's trainer trains them, and every trial is recorded in the Optuna study.

The YAML space is translated once into KerasTuner hyperparameters (:mod:`autodnn.engines._kt_space`); a
trial's configuration is then sampled through the same :meth:`SearchSpace.sample` as an Optuna trial, reading
the oracle's values, so constraints and defaults apply exactly as in autodnn's own engine.

Hyperband trains a trial for the ``tuner/epochs`` its bracket gives. KerasTuner's own trainer would resume a
promoted configuration from its parent's checkpoint; autodnn's trainer starts every trial from fresh weights,
and the epochs a trial trains are what it costs (``--epoch-budget`` counts them the same for every engine).
Trials are not pruned by the median pruner: Hyperband's successive halving is KerasTuner's pruning, and
Bayesian optimization and random search run every trial to its end or early stop.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from autodnn.engines._kt_space import KerasTunerSpace
from autodnn.errors import SearchFailed
from autodnn.objective import METRIC
from autodnn.study import cost
from autodnn.study.deadline import Deadline
from autodnn.study.options import stored_options
from autodnn.study.strategy import first_step_of
from autodnn.study.trial_record import CONFIG, ENGINE, SEED, write_training

if TYPE_CHECKING:
    from autodnn.datasets import Dataset
    from autodnn.space import SearchSpace

#: Hyperband's reduction factor (KerasTuner's and the paper's default).
HYPERBAND_FACTOR = 3
#: Random configurations Bayesian optimization starts from, as in autodnn's TPE.
BAYESIAN_INITIAL_POINTS = 10


@dataclass
class _Budget:
    """When the KerasTuner search stops: enough searched trials, the epoch budget spent, or the time up."""

    n_trials: int
    epoch_budget: int | None
    deadline: Deadline

    def reached(self, study: optuna.Study) -> bool:
        from autodnn.study.records import epochs_spent, searched_count

        if searched_count(study) >= self.n_trials:
            return True
        if self.epoch_budget is not None and epochs_spent(study) >= self.epoch_budget:
            return True
        return self.deadline.passed()


def run_keras_tuner(
    study: optuna.Study,
    space: SearchSpace,
    dataset: Dataset,
    *,
    strategy: str,
    n_trials: int,
    max_epochs: int,
    seed: int = 0,
    deadline: Deadline | None = None,
    epoch_budget: int | None = None,
    lr_finder: bool = False,
    max_failures: int = 5,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_trial_start: Callable[[optuna.Study, RunningTrial], None] | None = None,
    on_epoch: Callable[[RunningTrial, int, dict[str, float]], None] | None = None,
) -> int:
    """Searches ``space`` with a KerasTuner oracle and records each trial in ``study``.

    Args:
        study: The study; its finished searched trials count toward ``n_trials`` (the baselines do not).
        space: The search space, translated by :class:`KerasTunerSpace`.
        dataset: The data every trial trains on.
        strategy: ``hyperband``, ``bayesian`` or ``random``.
        n_trials: Target number of finished searched trials in the study (baselines not counted).
        max_epochs: Epoch budget of a trial (Hyperband's largest bracket trains this many).
        seed: Seeds the oracle; trial ``n`` of the study trains with ``seed + n``.
        deadline: Start no trial once it has passed.
        epoch_budget: Stop starting trials once the study's searched trials trained this many epochs.
        lr_finder: Run the learning-rate finder in every trial.
        max_failures: Stop with an error after this many consecutive failed trials.
        on_trial: Called with the study and the recorded trial after each one.
        on_trial_start: Called with the study and a :class:`RunningTrial` before each trial trains.
        on_epoch: Called with the :class:`RunningTrial`, the 0-based epoch and its metrics after each epoch.

    Returns:
        How many trials KerasTuner ran.

    Raises:
        SearchFailed: ``max_failures`` consecutive trials failed.
    """
    import keras_tuner as kt

    budget = _Budget(n_trials, epoch_budget, deadline or Deadline())
    if budget.reached(study):
        return 0
    translated = KerasTunerSpace(space)
    runner = _TrialRunner(study, translated, dataset, strategy=strategy, max_epochs=max_epochs, seed=seed,
                          lr_finder=lr_finder, on_trial=on_trial, on_trial_start=on_trial_start, on_epoch=on_epoch)
    objective = kt.Objective(METRIC, direction="max")
    if strategy == "hyperband":
        oracle = kt.oracles.HyperbandOracle(objective, max_epochs=max_epochs, factor=HYPERBAND_FACTOR,
                                            hyperband_iterations=None, seed=seed,
                                            max_consecutive_failed_trials=max_failures)
    elif strategy == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(objective, max_trials=n_trials, seed=seed,
                                                       num_initial_points=BAYESIAN_INITIAL_POINTS,
                                                       max_consecutive_failed_trials=max_failures)
    else:
        oracle = kt.oracles.RandomSearchOracle(objective, max_trials=n_trials, seed=seed,
                                               max_consecutive_failed_trials=max_failures)
    logging.getLogger("keras_tuner").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="autodnn-kt-") as directory:
        tuner = _tuner_class(kt)(oracle, runner=runner, translated=translated, budget=budget, study=study,
                                 directory=directory, project_name=study.study_name, overwrite=True)
        try:
            tuner.search(verbose=0)
        except RuntimeError as exc:
            if "consecutive" not in str(exc):
                raise
            raise SearchFailed(f"{max_failures} trials in a row failed, the last with: {runner.last_reason}; "
                             f"see 'autodnn show {study.study_name}'") from None
    return runner.ran


def _tuner_class(kt: Any) -> type:
    """A ``keras_tuner.Tuner`` whose trials run autodnn's trainer (defined lazily: KerasTuner is imported
    only by studies that use it)."""

    class AutodnnTuner(kt.Tuner):
        def __init__(self, oracle: Any, *, runner: _TrialRunner, translated: KerasTunerSpace, budget: _Budget,
                     study: optuna.Study, **kwargs: Any) -> None:
            self._runner, self._translated, self._budget, self._study = runner, translated, budget, study
            super().__init__(oracle=oracle, **kwargs)

        def _populate_initial_space(self) -> None:
            hp = self.oracle.get_space()
            self._translated.declare(hp)
            self.oracle.update_space(hp)

        def pre_create_trial(self) -> None:
            if self._budget.reached(self._study):
                # The oracle answers STOPPED once it holds max_trials trials.
                self.oracle.max_trials = max(1, len(self.oracle.trials))

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            return self._runner(trial)

        def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
            """Models are not kept: the study holds the configuration, and evaluation retrains it."""

    return AutodnnTuner


@dataclass
class RunningTrial:
    """What ``on_trial_start`` and ``on_epoch`` get of a KerasTuner trial before it is recorded in the study.

    Attributes:
        number: The number it will have in the study.
        user_attrs: Its attributes: configuration, seed, and the bracket's epochs under ``engine``.
    """

    number: int
    user_attrs: dict[str, Any]


@dataclass
class _EpochRelay:
    """The trainer's reporter of a KerasTuner trial: passes each epoch on and never stops training (Hyperband's
    brackets are KerasTuner's pruning)."""

    trial: RunningTrial
    on_epoch: Callable[[RunningTrial, int, dict[str, float]], None]

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        self.on_epoch(self.trial, epoch, metrics)

    def should_stop(self) -> str | None:
        return None


@dataclass
class _TrialRunner:
    """Trains one KerasTuner trial with autodnn's trainer and records it as an Optuna trial."""

    study: optuna.Study
    translated: KerasTunerSpace
    dataset: Dataset
    strategy: str
    max_epochs: int
    seed: int
    lr_finder: bool
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None
    ran: int = 0
    last_reason: str = ""
    on_trial_start: Callable[[optuna.Study, RunningTrial], None] | None = None
    on_epoch: Callable[[RunningTrial, int, dict[str, float]], None] | None = None

    def __call__(self, kt_trial: Any) -> dict[str, float]:
        import keras_tuner as kt

        from autodnn.training.trainer import train

        values = dict(kt_trial.hyperparameters.values)
        epochs = int(values.get("tuner/epochs", self.max_epochs))
        config, params, distributions = self.translated.sample(values)
        if self.lr_finder:
            config = config.replace(lr_finder=True)
        trials = self.study.get_trials(deepcopy=False)
        number = len(trials)
        seed = self.seed + number
        data = self.dataset
        rows = len(data.x_train)
        rates = cost.calibrate(trials, data.n_features, data.n_outputs, rows, data.image_shape, config.family)
        predicted = cost.predict_epoch_seconds(config, data.n_features, data.n_outputs, rows, rates,
                                               data.image_shape)
        attrs: dict[str, Any] = {
            CONFIG: config.to_dict(),
            SEED: seed,
            ENGINE: {"name": "keras-tuner", "strategy": self.strategy, "trial_id": kt_trial.trial_id,
                     **{k.split("/", 1)[1]: v for k, v in values.items() if k.startswith("tuner/")}},
        }
        started = dt.datetime.now()
        self.ran += 1
        running = RunningTrial(number, attrs)
        if self.on_trial_start is not None:
            self.on_trial_start(self.study, running)
        relay = None if self.on_epoch is None else _EpochRelay(running, self.on_epoch)
        try:
            result = train(config, self.dataset, max_epochs=epochs, seed=seed, reporter=relay,
                           metric=stored_options(self.study).get("metric"))
        except Exception as exc:  # a trial's failure is recorded, the search goes on
            self.last_reason = write_training(attrs.__setitem__, config, seed=seed, predicted=predicted, error=exc)
            self._record(TrialState.FAIL, None, params, distributions, attrs, {}, started)
            raise kt.errors.FailedTrialError(self.last_reason) from exc
        stopped = write_training(attrs.__setitem__, config, seed=seed, predicted=predicted, result=result)
        first = first_step_of(stored_options(self.study))
        curve = {i + first: v for i, v in enumerate(result.history.get(f"val_{result.searched}", []))
                 if math.isfinite(v)}
        if stopped is not None:
            self._record(TrialState.PRUNED, None, params, distributions, attrs, curve, started)
            return {METRIC: 0.0}
        self._record(TrialState.COMPLETE, result.score, params, distributions, attrs, curve, started)
        return {METRIC: result.score}

    def _record(self, state: TrialState, value: float | None, params: dict[str, Any],
                distributions: dict[str, BaseDistribution], attrs: dict[str, Any], curve: dict[int, float],
                started: dt.datetime) -> None:
        trial = FrozenTrial(
            number=0, trial_id=0, state=state, value=value, datetime_start=started,
            datetime_complete=dt.datetime.now(), params=params, distributions=distributions, user_attrs=attrs,
            system_attrs={}, intermediate_values=curve,
        )
        self.study.add_trial(trial)
        if self.on_trial is not None:
            self.on_trial(self.study, self.study.get_trials(deepcopy=False)[-1])
