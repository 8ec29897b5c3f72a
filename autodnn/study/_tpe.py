"""Optuna's TPE with bookkeeping whose cost per trial stays flat as a study grows.

``TPESampler(multivariate=True, group=True, constant_liar=True)`` reads the study's trials from the storage
once for every group of parameters that appear together (16 groups in the ``default`` space), because the
constant liar needs the running trials fresh; and it rebuilds the groups from every finished trial at every
trial. At 1,000 trials that bookkeeping, not the Parzen estimators, is most of what sampling a trial costs
(``benchmarks/scale.py``). :class:`TPESampler` keeps Optuna's algorithm and changes only that bookkeeping:

- the trials are read once per trial (running ones included, fresh from the storage) and every group's
  estimator is fitted on that one read;
- the groups are grown incrementally, adding only the trials finished since the last call;
- once more than ``history`` trials have finished, the estimators are fitted on the best
  ``PRIORITY`` trials and the most recent others up to ``history``. Optuna's TPE already lets old trials fade:
  the "good" group is at most the best 25 and older trials weigh less in the "bad" one.

Below ``history`` finished trials its proposals are exactly those of ``optuna.samplers.TPESampler`` with the
same arguments and seed (``tests/test_tpe.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.search_space import _GroupDecomposedSearchSpace
from optuna.trial import FrozenTrial, TrialState

#: Finished trials beyond which the estimators see a window of the history.
HISTORY = 300
#: Best finished trials the window always keeps (TPE's "good" group is at most 25 of them).
PRIORITY = 50


class TPESampler(optuna.samplers.TPESampler):
    """``optuna.samplers.TPESampler`` with one storage read per trial and a bounded history.

    Args:
        history: Finished trials the estimators are fitted on, at most (the best :data:`PRIORITY` and the
            most recent others).
        **kwargs: Those of ``optuna.samplers.TPESampler``.
    """

    def __init__(self, *, history: int = HISTORY, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._history = history
        if self._group:
            self._group_decomposed_search_space = _IncrementalGroups(include_pruned=True)
        self._view: _OneRead | None = None

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return super().infer_relative_search_space(self._read(study, trial), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return super().sample_relative(self._read(study, trial), trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return super().sample_independent(self._read(study, trial), trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._view = None
        super().after_trial(study, trial, state, values)

    def _read(self, study: optuna.Study, trial: FrozenTrial) -> Any:
        """The study as the sampler sees it while it samples ``trial``: read once, windowed."""
        view = self._view
        if view is None or view.study is not study or view.number != trial.number:
            view = self._view = _OneRead(study, trial.number, self._history)
        return view


class _OneRead:
    """A study whose trials are read from the storage on first use and then served from memory.

    Everything but ``_get_trials`` goes to the study itself (the storage writes of the constant liar too).
    """

    def __init__(self, study: optuna.Study, number: int, history: int) -> None:
        self.study = study
        self.number = number
        self._history = history
        self._all: list[FrozenTrial] | None = None
        self._trials: list[FrozenTrial] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.study, name)

    def all_trials(self, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        """Every trial of the study, as read once: what the window was cut from."""
        if self._all is None:
            self._all = self.study._get_trials(deepcopy=False, states=None, use_cache=False)
            self._trials = _window(self._all, self.study.direction, self._history)
        return [t for t in self._all if states is None or t.state in states]

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        self.all_trials()
        return [t for t in self._trials if states is None or t.state in states]


def _window(trials: list[FrozenTrial], direction: optuna.study.StudyDirection, history: int) -> list[FrozenTrial]:
    """``trials`` with the finished ones cut to the best :data:`PRIORITY` and the most recent others."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(finished) <= history:
        return trials
    sign = -1.0 if direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    complete = [t for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
    best = {t.number for t in sorted(complete, key=lambda t: sign * t.value)[:PRIORITY]}
    recent = sorted((t.number for t in finished if t.number not in best), reverse=True)[: history - len(best)]
    keep = best | set(recent)
    return [t for t in trials if t.number in keep or t.state not in (TrialState.COMPLETE, TrialState.PRUNED)]


class _IncrementalGroups(_GroupDecomposedSearchSpace):
    """Optuna's decomposition of the search space into groups, fed each finished trial once (every one of
    them, not only those in the estimators' window)."""

    def __init__(self, include_pruned: bool = False) -> None:
        super().__init__(include_pruned)
        self._seen: set[int] = set()

    def calculate(self, study: _OneRead, use_cache: bool = False) -> Any:
        states = (TrialState.COMPLETE, TrialState.PRUNED) if self._include_pruned else (TrialState.COMPLETE,)
        for trial in study.all_trials(states):
            if trial.number not in self._seen:
                self._seen.add(trial.number)
                self._search_space.add_distributions(trial.distributions)
        return self._search_space
