"""When a trial stops: never pruned after its last epoch, stopped and kept at the search's deadline, and a
resumed search that draws new configurations instead of the first run's again."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from autodnn.config import TrialConfig
from autodnn.objective import Chance, TrialReporter
from autodnn.study.strategy import make_pruner, resumed_seed

SEARCH = ("search", "--dataset", "digits", "--space", "quick", "--max-epochs", "2", "--no-baselines", "--no-final")


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_a_pruner_that_would_stop_every_trial_never_stops_one_after_its_last_epoch() -> None:
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    reporter = TrialReporter(study.ask(), max_epochs=3)
    reporter.report(0, {"val_accuracy": 0.5})
    assert reporter.should_stop() == "pruned at epoch 1: val_accuracy 0.5000 was below the pruner's threshold"
    reporter.report(2, {"val_accuracy": 0.5})
    assert reporter.should_stop() is None


def test_hyperband_whose_rung_falls_on_the_last_epoch_keeps_the_finished_trial() -> None:
    # With --max-epochs 1, Hyperband's only rung is after epoch 1: the trial's last.
    study = optuna.create_study(study_name="last-rung", direction="maximize", pruner=make_pruner("hyperband", 1))
    for _ in range(6):
        good = study.ask()
        good.report(0.9, 1)
        assert not good.should_prune()  # asking is what records a trial at a rung
        study.tell(good, 0.9)
    poor = study.ask()
    without_budget, with_budget = TrialReporter(poor), TrialReporter(poor, max_epochs=1)
    without_budget.report(0, {"val_accuracy": 0.1})
    assert without_budget.should_stop() is not None  # the rung would prune it ...
    with_budget._epoch = 0
    assert with_budget.should_stop() is None  # ... but its training is done: it is kept


def test_hyperbands_first_rung_is_after_epoch_one() -> None:
    study = optuna.create_study(study_name="first-rung", direction="maximize", pruner=make_pruner("hyperband", 50))
    for _ in range(30):
        good = study.ask()
        reporter = TrialReporter(good, max_epochs=50)
        reporter.report(0, {"val_accuracy": 0.9})
        assert reporter.should_stop() is None
        study.tell(good, 0.9)
    stopped = []
    for _ in range(30):
        poor = study.ask()
        reporter = TrialReporter(poor, max_epochs=50)
        reporter.report(0, {"val_accuracy": 0.1})
        stopped.append(reporter.should_stop())
        study.tell(poor, state=TrialState.PRUNED)
    assert sorted(study.trials[-1].intermediate_values) == [1], "epoch 1 is reported at step 1"
    assert any(reason and reason.startswith("pruned at epoch 1:") for reason in stopped), stopped


def test_a_searched_trial_still_at_chance_after_three_epochs_is_stopped_but_a_baseline_is_not() -> None:
    study = optuna.create_study(direction="maximize", pruner=make_pruner("none"))
    chance = Chance(score=0.1, loss=2.30, noise=0.025)
    stuck = TrialReporter(study.ask(), max_epochs=50, chance=chance)
    learning = TrialReporter(study.ask(), max_epochs=50, chance=chance)
    baseline = TrialReporter(study.ask(), prune=False, max_epochs=50, chance=chance)
    for epoch in range(3):
        stuck.report(epoch, {"val_accuracy": 0.105, "val_loss": 2.31})  # within the split's noise, loss at priors
        baseline.report(epoch, {"val_accuracy": 0.105, "val_loss": 2.31})
        learning.report(epoch, {"val_accuracy": 0.1 + 0.05 * epoch, "val_loss": 2.3 - 0.2 * epoch})
        if epoch < 2:
            assert stuck.should_stop() is None
    assert "never beat chance" in stuck.should_stop() and "0.1000 (the most frequent class" in stuck.should_stop()
    assert learning.should_stop() is None and baseline.should_stop() is None


def test_on_imbalanced_classes_a_trial_that_learned_goes_on_whatever_its_accuracy() -> None:
    # 97% of one class: the constant answer scores 0.97; the priors' log loss is about 0.135.
    y_train = np.array([0] * 970 + [1] * 30)
    y_valid = np.array([0] * 291 + [1] * 9)
    chance = Chance.of(y_train, y_valid, n_classes=2)
    assert chance.score == pytest.approx(0.97)
    assert chance.loss == pytest.approx(-(0.97 * np.log(0.97) + 0.03 * np.log(0.03)), rel=1e-6)
    study = optuna.create_study(direction="maximize", pruner=make_pruner("none"))
    learned = TrialReporter(study.ask(), max_epochs=50, chance=chance)  # 97.9%, loss below the priors'
    constant = TrialReporter(study.ask(), max_epochs=50, chance=chance)  # the majority class, loss at priors
    ranked = TrialReporter(study.ask(), max_epochs=50, chance=chance)  # at the majority rate, loss falling
    for epoch in range(3):
        learned.report(epoch, {"val_accuracy": 0.979, "val_loss": 0.09})
        constant.report(epoch, {"val_accuracy": 0.97, "val_loss": 0.14})
        ranked.report(epoch, {"val_accuracy": 0.97, "val_loss": 0.14 - 0.02 * epoch})
    assert learned.should_stop() is None, "a fixed margin over the majority share would stop it"
    assert ranked.should_stop() is None, "its loss fell below the priors': it learned"
    assert "never beat chance" in constant.should_stop()


def test_at_the_deadline_the_trial_in_flight_stops_and_is_kept_with_its_curve(tmp_path: Path) -> None:
    import autodnn

    space = tmp_path / "long.yaml"
    # Without the deadline this trial would train 100,000 epochs (patience keeps early stopping away).
    space.write_text("params:\n  n_hidden: 1\n  n_units: 32\n  learning_rate: 1.0e-3\n  batch_size: 64\n"
                     "  patience: 10000\n")
    url = f"sqlite:///{tmp_path / 'd.db'}"
    start = time.monotonic()
    # 20 s: setting up (imports, data, the study) takes a few seconds, so the trial is affordable when it starts
    # (its predicted first epoch and fixed cost fit), then the clock runs out while it trains.
    study = autodnn.search(dataset="digits", space=str(space), study="d", storage=url, n_trials=3,
                           max_epochs=100_000, timeout=20.0, baselines=False)
    assert time.monotonic() - start < 90
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 1, "no trial may start after the deadline"
    trial = trials[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["reason"].startswith("stopped at the search's time limit (--timeout) after epoch ")
    epochs = len(trial.user_attrs["history"]["val_accuracy"])
    assert 1 <= epochs < 100_000
    assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
    assert trial.user_attrs["result"]["epochs"] == epochs


def test_a_resumed_study_with_the_same_seed_draws_no_configuration_again(run_cli, sqlite_url: str) -> None:
    first = run_cli(*SEARCH, "--n-trials", "3", "--seed", "0", "--storage", sqlite_url, "--study", "again")
    assert first.code == 0, first.err
    resumed = run_cli(*SEARCH, "--n-trials", "6", "--seed", "0", "--storage", sqlite_url, "--study", "again")
    assert resumed.code == 0, resumed.err
    trials = optuna.load_study(study_name="again", storage=sqlite_url).get_trials(deepcopy=False)
    assert len(trials) == 6
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(drawn)) == len(drawn), drawn


def test_the_resumed_seed_is_the_seed_for_a_new_study_and_differs_once_trials_exist() -> None:
    assert resumed_seed(7, 0) == 7
    assert resumed_seed(7, 3) == resumed_seed(7, 3)
    assert len({resumed_seed(7, n) for n in range(1, 50)} | {7}) == 50


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_first_runs_seed_would_draw_the_first_runs_configurations_again(sampler: str) -> None:
    """Why the resumed seed exists: a sampler seeded as in the first run repeats the first run's draws."""
    from autodnn.space import load_space
    from autodnn.study.strategy import make_sampler

    space = load_space("quick")

    def draws(seed: int, study: optuna.Study, n: int) -> list:
        study.sampler = make_sampler(seed, sampler)
        out = []
        for _ in range(n):
            trial = study.ask()
            space.sample(trial)
            study.tell(trial, 0.5)
            out.append(tuple(sorted(trial.params.items())))
        return out

    study = optuna.create_study(direction="maximize")
    first = draws(0, study, 3)
    assert draws(0, study, 3) == first
    assert not set(draws(resumed_seed(0, 6), study, 3)) & set(first)


def test_the_chance_rule_waits_until_some_trial_has_shown_the_data_learnable() -> None:
    from autodnn.datasets import load_dataset
    from autodnn.objective import Objective
    from autodnn.space import load_space

    objective = Objective(load_space("quick"), load_dataset("iris"), 5)
    chance = objective.chance
    study = optuna.create_study(direction="maximize")
    at_chance = {"val_accuracy": chance.score, "val_loss": chance.loss + 0.1}
    study.add_trial(optuna.trial.create_trial(value=chance.score, user_attrs={"result": at_chance}))
    assert objective._chance_rule(study, TrialConfig()) is None, "where nothing learned yet, no trial is stopped at chance"
    learned = {"val_accuracy": 0.9, "val_loss": chance.loss / 2}
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={"result": learned}))
    assert objective._chance_rule(study, TrialConfig()) == chance


def test_the_designed_starts_trials_are_never_pruned_where_a_sampled_one_is() -> None:
    from autodnn.datasets import load_dataset
    from autodnn.objective import Objective
    from autodnn.space import load_space
    from autodnn.tuning.warm_start import enqueue_warm_starts

    space = load_space("quick")
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune(), sampler=optuna.samplers.RandomSampler(0))
    assert enqueue_warm_starts(study, space, n_trials=4, kind="tables") == 1
    study.optimize(Objective(space, load_dataset("iris"), 3), n_trials=3)
    states = [(t.user_attrs.get("warm_start"), t.state) for t in study.trials]
    assert states[0] == ("small-adam", optuna.trial.TrialState.COMPLETE)
    assert all(state == optuna.trial.TrialState.PRUNED for _, state in states[1:]), states


# A digits net's epochs measured 0.01 s and, once, 0.19 s: under a second a jitter, not a cost worth a stop.
@pytest.mark.parametrize(("seconds", "limit", "stopped"), [(3.0, 1.0, True), (1.5, 1.0, False), (0.19, 0.01, False),
                                                           (1.5, 0.01, True)])
def test_a_sampled_trial_whose_measured_epochs_cost_twice_its_allowance_is_stopped_from_its_second_epoch(
        monkeypatch: pytest.MonkeyPatch, seconds: float, limit: float, stopped: bool) -> None:
    from autodnn import objective

    # Epochs are timed from one report to the next: the first epoch (building, compiling, the LR finder before
    # it) is never judged on its time.
    clock = iter([0.0, seconds])
    monkeypatch.setattr(objective.time, "monotonic", lambda: next(clock))
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    reporter = TrialReporter(study.ask(), max_epochs=10, cost_limit=limit)
    reporter.report(0, {"val_accuracy": 0.5})
    assert reporter.should_stop() is None
    reporter.report(1, {"val_accuracy": 0.6})
    said = reporter.should_stop()
    assert (said is not None) == stopped
    if stopped:
        assert said.startswith(f"pruned at epoch 2: too slow: its epochs take {seconds:g} s, more than 2 x the {limit:g} s")


def test_a_baseline_or_a_trial_without_an_allowance_is_never_stopped_for_its_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn import objective

    clock = iter(float(t) for t in range(0, 1000, 50))
    monkeypatch.setattr(objective.time, "monotonic", lambda: next(clock))
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    for reporter in (TrialReporter(study.ask(), max_epochs=10, cost_limit=1.0, prune=False),
                     TrialReporter(study.ask(), max_epochs=10)):
        for epoch in range(4):
            reporter.report(epoch, {"val_accuracy": 0.5})
            assert reporter.should_stop() is None
