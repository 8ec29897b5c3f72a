"""autodnn's TPE: Optuna's proposals, with one storage read per trial and a bounded history."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest

from autodnn.space import load_space
from autodnn.study._tpe import TPESampler

TPE_ARGS = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 10}


def score(params: dict[str, Any]) -> float:
    """A deterministic objective over the default space's parameters."""
    lr = params.get("learning_rate", 1e-3)
    return -abs(math.log10(lr) + 2.5) - 0.01 * params.get("n_hidden", 5) + 0.001 * params.get("n_units", 100) ** 0.5


def run(sampler: optuna.samplers.BaseSampler, n: int, storage: Any = None) -> list[dict[str, Any]]:
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    space = load_space("default")
    proposals = []
    for _ in range(n):
        trial = study.ask()
        space.sample(trial)
        proposals.append(dict(trial.params))
        study.tell(trial, score(trial.params))
    return proposals


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_proposals_equal_optunas_tpe_over_a_conditional_space() -> None:
    ours = run(TPESampler(seed=3, **TPE_ARGS), 40)
    optunas = run(optuna.samplers.TPESampler(seed=3, **TPE_ARGS), 40)
    assert ours == optunas
    # Past the ten random start-up trials the model is in charge: proposals are not all distinct by chance.
    assert len({p["activation"] for p in ours[10:]}) < len(ours[10:])


class CountingStorage(optuna.storages.InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_all_trials(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return super().get_all_trials(*args, **kwargs)


def test_reads_the_trials_once_per_trial_where_optuna_reads_them_per_group() -> None:
    n = 30
    ours, optunas = CountingStorage(), CountingStorage()
    run(TPESampler(seed=0, **TPE_ARGS), n, ours)
    run(optuna.samplers.TPESampler(seed=0, **TPE_ARGS), n, optunas)
    # The study's own bookkeeping reads a few times per trial either way; the sampler adds one read per trial.
    assert ours.reads < optunas.reads / 3, (ours.reads, optunas.reads)


def test_history_window_keeps_the_best_and_the_most_recent() -> None:
    from autodnn.study._tpe import PRIORITY, _window

    study = optuna.create_study(direction="maximize")
    for number in range(200):
        study.add_trial(optuna.trial.create_trial(value=float((number * 37) % 200), params={},
                                                  distributions={}))
    kept = _window(study.trials, study.direction, history=120)
    numbers = {t.number for t in kept}
    assert len(kept) == 120
    best = sorted(study.trials, key=lambda t: -t.value)[:PRIORITY]
    assert {t.number for t in best} <= numbers
    others = sorted(numbers - {t.number for t in best})
    assert others == sorted(n for n in range(200) if n not in {t.number for t in best})[-(120 - PRIORITY):]
    assert _window(study.trials, study.direction, history=200) == study.trials


def test_a_windowed_sampler_still_proposes_near_the_best() -> None:
    proposals = run(TPESampler(seed=1, history=30, **TPE_ARGS), 80)
    late = [p["learning_rate"] for p in proposals[50:]]
    # The objective peaks at a learning rate of 10**-2.5; random draws from [1e-5, 1e-1] land within one decade
    # of it 50% of the time.
    near = sum(abs(math.log10(lr) + 2.5) < 1.0 for lr in late)
    assert near / len(late) > 0.7, late
