"""Local moves around the incumbent: which trials move, from where, how far, and that the moves climb."""

from __future__ import annotations

import math
import statistics
from typing import Any

import optuna
import pytest

from autodnn.space import load_space
from autodnn.study._local import LOCAL_SHARE, LocalMoves, incumbent_of
from autodnn.study.strategy import make_pruner, make_sampler
from autodnn.study.trial_record import BASELINE, LOCAL_MOVE


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def score(params: dict[str, Any]) -> float:
    """Best at a learning rate of 10^-2.5, 4 hidden layers, batch 64 and Adam."""
    return (-abs(math.log10(params.get("learning_rate", 1e-3)) + 2.5) - 0.05 * abs(params.get("n_hidden", 4) - 4)
            - 0.3 * (params.get("batch_size") != 64) - 0.3 * (params.get("optimizer") != "adam"))


def searched(sampler: optuna.samplers.BaseSampler, n: int, start: dict[str, Any] | None = None,
             pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    space = load_space("default")
    if start is not None:
        study.enqueue_trial(start)
    for _ in range(n):
        trial = study.ask()
        space.sample(trial)
        trial.report(score(trial.params), step=1)
        trial.should_prune()
        study.tell(trial, score(trial.params))
    return study


@pytest.mark.parametrize("pruner", ["none", "hyperband"])
def test_a_share_of_trials_are_neighbours_of_the_best_so_far(pruner: str) -> None:
    # Under Hyperband, Optuna hands the sampler a study of the trial's bracket only: the best is still the study's.
    study = searched(make_sampler(3, "tpe-local"), 60, pruner=make_pruner(pruner, max_epochs=27))
    moved = [t for t in study.trials if LOCAL_MOVE in t.user_attrs]
    assert 0.2 * 60 < len(moved) < 0.5 * 60, len(moved)
    for trial in moved:
        incumbent = study.trials[trial.user_attrs[LOCAL_MOVE]]
        earlier = [t for t in study.trials[: trial.number] if t.value is not None]
        assert incumbent.value == max(t.value for t in earlier)
        shared = [k for k in incumbent.params if k in trial.params]
        categorical = [k for k in shared if isinstance(incumbent.distributions[k],
                                                       optuna.distributions.CategoricalDistribution)]
        changed = [k for k in categorical if trial.params[k] != incumbent.params[k]]
        assert len(changed) <= len(categorical) // 2, changed
        step = abs(math.log10(trial.params["learning_rate"]) - math.log10(incumbent.params["learning_rate"]))
        assert step < 4 * 0.1 * 4 + 1e-9  # four standard deviations of a tenth of the range's four decades


def test_a_moved_batch_size_goes_to_an_adjacent_choice() -> None:
    study = searched(make_sampler(5, "tpe-local"), 120)
    jumps = [(study.trials[t.user_attrs[LOCAL_MOVE]].params["batch_size"], t.params["batch_size"])
             for t in study.trials if LOCAL_MOVE in t.user_attrs]
    changed = [(a, b) for a, b in jumps if a != b]
    assert changed
    assert all(max(a, b) == 2 * min(a, b) for a, b in changed), changed


def test_enqueued_trials_and_trials_without_parameters_are_left_alone() -> None:
    study = optuna.create_study(direction="maximize", sampler=LocalMoves(optuna.samplers.RandomSampler(seed=0),
                                                                          seed=0, share=1.0))
    study.enqueue_trial({}, user_attrs={BASELINE: "book-2e"})
    baseline = study.ask()
    study.tell(baseline, 10.0)
    assert incumbent_of(study) is None
    study.enqueue_trial({"x": 0.9})
    fixed = study.ask()
    assert fixed.suggest_float("x", 0.0, 1.0) == 0.9
    study.tell(fixed, 1.0)
    assert LOCAL_MOVE not in study.trials[fixed.number].user_attrs
    moved = study.ask()
    assert study.trials[moved.number].user_attrs[LOCAL_MOVE] == fixed.number == moved.user_attrs[LOCAL_MOVE]
    assert abs(moved.suggest_float("x", 0.0, 1.0) - 0.9) < 0.5


def test_a_study_replays_the_same_moves_with_the_same_seed() -> None:
    first = [t.params for t in searched(make_sampler(11, "tpe-local"), 25).trials]
    again = [t.params for t in searched(make_sampler(11, "tpe-local"), 25).trials]
    assert first == again


def test_moves_climb_from_a_good_start_faster_than_tpe_draws() -> None:
    start = {"learning_rate": 10 ** -2.2, "n_hidden": 6, "batch_size": 128, "optimizer": "adam",
             "schedule": "constant", "epochs": 20, "normalization": "none", "activation": "relu"}
    with_moves = [searched(make_sampler(seed, "tpe-local"), 15, start).best_value for seed in range(8)]
    plain = [searched(make_sampler(seed, "tpe"), 15, start).best_value for seed in range(8)]
    assert statistics.mean(with_moves) > statistics.mean(plain) + 0.05, (with_moves, plain)
    assert sum(v > score(start) for v in with_moves) >= 6
    assert LOCAL_SHARE == pytest.approx(1 / 3)
