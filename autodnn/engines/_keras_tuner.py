"""KerasTuner as a search engine: its oracles (Hyperband, Bayesian optimization, random search) choose the
configurations, autodnn's trainer trains them, and every trial is recorded in the Optuna study.

The YAML space is translated once into KerasTuner hyperparameters: ranges become ``Int``/``Float`` (log
sampling kept), categorical parameters ``Choice`` (values of mixed types, ``null`` included, as their JSON
text), and ``when`` conditions ``conditional_scope``\\ s, so that KerasTuner knows which parameters are active.
A trial's configuration is then sampled through the same :meth:`SearchSpace.sample` as an Optuna trial, reading
the oracle's values, so constraints and defaults apply exactly as in autodnn's own engine.

Hyperband trains a trial for the ``tuner/epochs`` its bracket gives. KerasTuner's own trainer would resume a
promoted configuration from its parent's checkpoint; autodnn's trainer starts every trial from fresh weights,
and the epochs a trial trains are what it costs (``--epoch-budget`` counts them the same for every engine).
Trials are not pruned by the median pruner: Hyperband's successive halving is KerasTuner's pruning, and
Bayesian optimization and random search run every trial to its end or early stop.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from autodnn.errors import StudyError
from autodnn.objective import METRIC

if TYPE_CHECKING:
    from autodnn.datasets import Dataset
    from autodnn.space import Param, SearchSpace

#: Hyperband's reduction factor (KerasTuner's and the paper's default).
HYPERBAND_FACTOR = 3
#: Random configurations Bayesian optimization starts from, as in autodnn's TPE.
BAYESIAN_INITIAL_POINTS = 10


def _encoded(param: Param) -> bool:
    """Whether a categorical parameter's choices are passed to KerasTuner as JSON text.

    KerasTuner's ``Choice`` takes values of one type among int, float, str and bool; anything else (``null``,
    lists, mixed types) is encoded.
    """
    kinds = {type(c) for c in param.choices}
    if kinds <= {bool} or kinds <= {str}:
        return False
    return not (kinds <= {int, float} and bool not in kinds)


def _to_kt(param: Param, value: Any) -> Any:
    if param.kind != "categorical":
        return value
    if _encoded(param):
        return json.dumps(value)
    if {type(c) for c in param.choices} == {int, float} or isinstance(value, float):
        return float(value)
    return value


def _from_kt(param: Param, value: Any) -> Any:
    if param.kind == "categorical":
        if _encoded(param):
            return json.loads(value)
        for choice in param.choices:  # 1 for 1.0 where the YAML wrote an int
            if choice == value:
                return choice
    if param.kind == "int":
        return int(value)
    if param.kind == "float":
        return float(value)
    return value


def optuna_distribution(param: Param) -> BaseDistribution:
    """The Optuna distribution an Optuna trial would have sampled ``param`` from."""
    if param.kind == "categorical":
        return CategoricalDistribution(list(param.choices))
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high), log=param.log,
                               step=int(param.step) if param.step is not None else 1)
    return FloatDistribution(float(param.low), float(param.high), log=param.log, step=param.step)


@dataclass
class KerasTunerSpace:
    """A search space seen through KerasTuner's hyperparameters.

    Attributes:
        space: The autodnn space.
    """

    space: SearchSpace
    _params: dict[str, Param] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._params = {p.name: p for p in self.space.params}

    def declare(self, hp: Any) -> None:
        """Registers every searched parameter in ``hp`` (a ``keras_tuner.HyperParameters``), each inside the
        conditional scopes of its ``when``; a condition on a fixed parameter is decided here."""
        for param in self.space.params:
            if param.kind == "fixed":
                continue
            scopes = []
            for parent_name, allowed in param.when.items():
                parent = self._params[parent_name]
                if parent.kind == "fixed":
                    if parent.value not in allowed:
                        break
                    continue
                scopes.append((parent_name, [_to_kt(parent, v) for v in allowed]))
            else:
                self._declare_in(hp, param, scopes)

    def _declare_in(self, hp: Any, param: Param, scopes: list[tuple[str, list[Any]]]) -> None:
        if scopes:
            name, values = scopes[0]
            with hp.conditional_scope(name, values):
                self._declare_in(hp, param, scopes[1:])
            return
        sampling = "log" if param.log else "linear"
        if param.kind == "categorical":
            hp.Choice(param.name, [_to_kt(param, c) for c in param.choices], ordered=False)
        elif param.kind == "int":
            # KerasTuner reads an Int's step as a factor under log sampling: a log range has none.
            step = None if param.log else int(param.step or 1)
            hp.Int(param.name, int(param.low), int(param.high), step=step, sampling=sampling)
        else:
            hp.Float(param.name, float(param.low), float(param.high), step=param.step, sampling=sampling)

    def sample(self, values: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, BaseDistribution]]:
        """Turns the oracle's values into a configuration.

        Args:
            values: ``trial.hyperparameters.values`` of a KerasTuner trial (its ``tuner/...`` entries ignored).

        Returns:
            ``(config, params, distributions)``: the validated :class:`TrialConfig`, and the parameters the
            space actually sampled, with their Optuna distributions, for the study's record.
        """
        suggested = _OracleValues(self._params, values)
        config = self.space.sample(suggested)
        return config, suggested.params, suggested.distributions


class _OracleValues:
    """Answers :meth:`SearchSpace.sample`'s ``suggest_*`` calls with a KerasTuner trial's values.

    A parameter the oracle left inactive (its condition differs in KerasTuner's view, e.g. because a
    constraint fixed the parent) falls back to the middle of its range or its first choice.
    """

    def __init__(self, params: dict[str, Param], values: dict[str, Any]) -> None:
        self._params = params
        self._values = values
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _get(self, name: str) -> Any:
        param = self._params[name]
        raw = self._values.get(name)
        if raw is None:
            value = _fallback(param)
        else:
            value = _from_kt(param, raw)
        self.params[name] = value
        self.distributions[name] = optuna_distribution(param)
        return value

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._get(name)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self._get(name)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._get(name)


def _fallback(param: Param) -> Any:
    if param.kind == "categorical":
        return param.choices[0]
    low, high = float(param.low), float(param.high)
    middle = math.sqrt(low * high) if param.log else (low + high) / 2
    if param.kind == "int":
        step = int(param.step or 1)
        return int(low + round((middle - low) / step) * step)
    return middle


@dataclass
class _Budget:
    """When the KerasTuner search stops: enough searched trials, the epoch budget spent, or the time up."""

    n_trials: int
    epoch_budget: int | None
    deadline: float | None

    def reached(self, study: optuna.Study) -> bool:
        from autodnn.study.records import epochs_spent, searched_count

        if searched_count(study) >= self.n_trials:
            return True
        if self.epoch_budget is not None and epochs_spent(study) >= self.epoch_budget:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline


def run_keras_tuner(
    study: optuna.Study,
    space: SearchSpace,
    dataset: Dataset,
    *,
    strategy: str,
    n_trials: int,
    max_epochs: int,
    seed: int = 0,
    timeout: float | None = None,
    epoch_budget: int | None = None,
    lr_finder: bool = False,
    max_failures: int = 5,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
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
        timeout: Stop starting trials after this many seconds.
        epoch_budget: Stop starting trials once the study's searched trials trained this many epochs.
        lr_finder: Run the learning-rate finder in every trial.
        max_failures: Stop with an error after this many consecutive failed trials.
        on_trial: Called with the study and the recorded trial after each one.

    Returns:
        How many trials KerasTuner ran.

    Raises:
        StudyError: ``max_failures`` consecutive trials failed.
    """
    import keras_tuner as kt

    budget = _Budget(n_trials, epoch_budget, None if timeout is None else time.monotonic() + timeout)
    if budget.reached(study):
        return 0
    translated = KerasTunerSpace(space)
    runner = _TrialRunner(study, translated, dataset, strategy=strategy, max_epochs=max_epochs, seed=seed,
                          lr_finder=lr_finder, on_trial=on_trial)
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
            raise StudyError(f"{max_failures} trials in a row failed, the last with: {runner.last_reason}; "
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

    def __call__(self, kt_trial: Any) -> dict[str, float]:
        import keras_tuner as kt

        from autodnn.trainer import train

        values = dict(kt_trial.hyperparameters.values)
        epochs = int(values.get("tuner/epochs", self.max_epochs))
        config, params, distributions = self.translated.sample(values)
        if self.lr_finder:
            config = config.replace(lr_finder=True)
        number = len(self.study.get_trials(deepcopy=False))
        seed = self.seed + number
        attrs: dict[str, Any] = {
            "config": config.to_dict(),
            "seed": seed,
            "engine": {"name": "keras-tuner", "strategy": self.strategy, "trial_id": kt_trial.trial_id,
                       **{k.split("/", 1)[1]: v for k, v in values.items() if k.startswith("tuner/")}},
        }
        started = dt.datetime.now()
        self.ran += 1
        try:
            result = train(config, self.dataset, max_epochs=epochs, seed=seed)
        except Exception as exc:  # noqa: BLE001 - a trial's failure is recorded, the search goes on
            self.last_reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
            attrs.update(reason=self.last_reason, traceback=traceback.format_exc()[-4000:])
            self._record(TrialState.FAIL, None, params, distributions, attrs, {}, started)
            raise kt.errors.FailedTrialError(self.last_reason) from exc
        attrs.update(result=result.metrics, history=result.to_dict()["history"], epoch_times=result.epoch_times)
        if result.lr_finder is not None:
            attrs["lr_finder"] = result.to_dict()["lr_finder"]
        curve = {i: v for i, v in enumerate(result.history.get("val_accuracy", [])) if math.isfinite(v)}
        if result.stopped == "nan":
            attrs["reason"] = result.reason
            self._record(TrialState.PRUNED, None, params, distributions, attrs, curve, started)
            return {METRIC: 0.0}
        self._record(TrialState.COMPLETE, result.val_accuracy, params, distributions, attrs, curve, started)
        return {METRIC: result.val_accuracy}

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
