"""Local moves around the incumbent, between TPE's draws.

TPE models where good configurations are across the whole space; after a designed start it has a few strong
points and a space of thirty dimensions, and its own draws mostly land far from them. FLAML's CFO shows the
other half of a good search: small moves around the best configuration found so far, which climb from a good
start instead of leaving it. :class:`LocalMoves` blends the two in one Optuna sampler: a share of the trials
(:data:`LOCAL_SHARE`, decided per trial from the seed and the trial's number, so a study replays the same) is
a neighbour of the incumbent, the others are TPE's.

A neighbour keeps the incumbent's parameters and moves them a little: a number by a normal step of
:data:`STEP` of its range (on the log scale where the range is logarithmic), reflected at the bounds; a
categorical parameter, with a probability that changes about :data:`CATEGORICAL_FLIPS` of them a move, to an
adjacent choice where the choices are numbers (a batch size of 64 goes to 32 or 128) and to any other choice
where they are names. A parameter the incumbent does not have (one that a flipped choice switches on) is
TPE's to draw. The incumbent is the best finished trial that has searched parameters: a book baseline, which
has none, never is; a warm start may be, which is how a search improves on its designed start.

Every trial the sampler moves says so in its user attributes (:data:`LOCAL_MOVE`: the incumbent's number).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from autodnn.study.trial_record import LOCAL_MOVE

#: The share of trials that are moves around the incumbent (once there is one).
LOCAL_SHARE = 1 / 3
#: Standard deviation of a numeric parameter's step, as a share of its (log-)range.
STEP = 0.1
#: Categorical parameters a move changes, on average.
CATEGORICAL_FLIPS = 1.5


class LocalMoves(optuna.samplers.BaseSampler):
    """A sampler whose trials are ``base``'s draws or, a :data:`LOCAL_SHARE` of them, neighbours of the best.

    Args:
        base: The sampler of the other trials (TPE); it sees every trial, the moved ones included.
        seed: Seeds which trials move and how; the same seed moves the same trials the same way.
        share: The share of trials that move around the incumbent.
    """

    def __init__(self, base: optuna.samplers.BaseSampler, *, seed: int | None = None,
                 share: float = LOCAL_SHARE) -> None:
        self._base = base
        self._seed = 0 if seed is None else int(seed)
        self._share = share
        self._moves: dict[int, _Move | None] = {}

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)
        move = self._move(study, trial)
        if move is not None:
            # In the storage for good, and in the trial that Optuna's Trial serves its attributes from.
            study._storage.set_trial_user_attr(trial._trial_id, LOCAL_MOVE, move.incumbent.number)
            trial.set_user_attr(LOCAL_MOVE, move.incumbent.number)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._move(study, trial) is not None:
            return {}
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        move = self._move(study, trial)
        if move is None or not move.knows(param_name, param_distribution):
            return self._base.sample_independent(study, trial, param_name, param_distribution)
        return move.neighbour(param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._moves.pop(trial.number, None)
        self._base.after_trial(study, trial, state, values)

    def _move(self, study: optuna.Study, trial: FrozenTrial) -> _Move | None:
        """The move of ``trial``, decided once: None when it is the base sampler's (or an enqueued trial)."""
        if trial.number not in self._moves:
            rng = np.random.default_rng(zlib.crc32(f"{self._seed}:local:{trial.number}".encode()))
            incumbent = None
            if rng.random() < self._share and not _enqueued(trial):
                incumbent = incumbent_of(study)
            self._moves[trial.number] = None if incumbent is None else _Move(incumbent, rng)
        return self._moves[trial.number]


def incumbent_of(study: optuna.Study) -> FrozenTrial | None:
    """The best finished trial of the whole study with searched parameters (book baselines have none), or None."""
    try:
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    except RuntimeError:
        return None
    # Read from the storage: under Optuna's Hyperband the sampler is handed a study of one bracket's trials.
    finished = study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.COMPLETE,))
    complete = [t for t in finished if t.params and t.value is not None and math.isfinite(t.value)]
    if not complete:
        return None
    return (max if maximize else min)(complete, key=lambda t: t.value)


def _enqueued(trial: FrozenTrial) -> bool:
    """Whether ``trial`` came from the queue (a warm start or a book baseline): its values are fixed."""
    return "fixed_params" in trial.system_attrs


class _Move:
    """One neighbour of ``incumbent``: each parameter's value drawn on first ask."""

    def __init__(self, incumbent: FrozenTrial, rng: np.random.Generator) -> None:
        self.incumbent = incumbent
        self._rng = rng
        n_categorical = sum(isinstance(d, CategoricalDistribution) and len(d.choices) > 1
                            for d in incumbent.distributions.values())
        self._flip = min(0.5, CATEGORICAL_FLIPS / max(n_categorical, 1))

    def knows(self, name: str, distribution: BaseDistribution) -> bool:
        """Whether the incumbent has ``name`` in a distribution this move can step in."""
        held = self.incumbent.distributions.get(name)
        if held is None:
            return False
        if isinstance(distribution, CategoricalDistribution):
            return isinstance(held, CategoricalDistribution) and self.incumbent.params[name] in distribution.choices
        return isinstance(distribution, (FloatDistribution, IntDistribution))

    def neighbour(self, name: str, distribution: BaseDistribution) -> Any:
        value = self.incumbent.params[name]
        if isinstance(distribution, CategoricalDistribution):
            return self._choice(value, distribution.choices)
        return self._number(float(value), distribution)

    def _choice(self, value: Any, choices: Sequence[Any]) -> Any:
        if len(choices) < 2 or self._rng.random() >= self._flip:
            return value
        numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if value in numbers and len(numbers) > 1:
            ordered = sorted(numbers)
            at = ordered.index(value)
            adjacent = [ordered[i] for i in (at - 1, at + 1) if 0 <= i < len(ordered)]
            return adjacent[self._rng.integers(len(adjacent))]
        others = [c for c in choices if c != value]
        return others[self._rng.integers(len(others))]

    def _number(self, value: float, distribution: FloatDistribution | IntDistribution) -> float | int:
        low, high = float(distribution.low), float(distribution.high)
        if high <= low:
            return distribution.low
        scale = (math.log, math.exp) if distribution.log else (lambda x: x, lambda x: x)
        lo, hi = scale[0](low), scale[0](high)
        unit = (scale[0](min(max(value, low), high)) - lo) / (hi - lo)
        unit = _reflect(unit + self._rng.normal(0.0, STEP))
        moved = scale[1](lo + unit * (hi - lo))
        step = distribution.step
        if step is not None:
            moved = low + round((moved - low) / step) * step
        moved = min(max(moved, low), high)
        return round(moved) if isinstance(distribution, IntDistribution) else float(moved)


def _reflect(unit: float) -> float:
    """``unit`` folded back into [0, 1] at its ends, as a step that overshoots a bound bounces off it."""
    unit = abs(unit) % 2.0
    return 2.0 - unit if unit > 1.0 else unit
