"""The time budget of a search command: the final evaluation's share is estimated from what the study measured,
and the search stops in time for it; a baseline's tested search run counts as one of its evaluation seeds."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from autodnn.config import TrialConfig
from autodnn.evaluate import FINALISTS, FOLDS
from autodnn.tuning.budget import MIN_SEARCH_SHARE, SEED_SPREAD, TimeBudget, clock, epoch_share


class _Data:
    """The shape of a dataset, all the budget reads of one."""

    def __init__(self, n_train: int = 10_000, n_valid: int = 2_000) -> None:
        self.x_train = np.zeros((n_train, 64), dtype=np.float32)
        self.y_valid = np.zeros(n_valid, dtype=np.int32)
        self.x_test = np.zeros((n_valid, 64), dtype=np.float32)
        self.n_features, self.n_classes, self.n_outputs = 64, 10, 10


def _trial(seconds: float, value: float, epochs: int = 10, **attrs) -> optuna.trial.FrozenTrial:
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    config = attrs.pop("config", TrialConfig(n_units=64).to_dict())
    return optuna.trial.FrozenTrial(
        number=0, trial_id=0, state=TrialState.COMPLETE, value=value, values=None, datetime_start=start,
        datetime_complete=start + dt.timedelta(seconds=seconds), params={}, distributions={},
        user_attrs={"config": config, "result": {"epochs": epochs}, **attrs}, system_attrs={},
        intermediate_values={})


def _study(*trials: optuna.trial.FrozenTrial) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for trial in trials:
        study.add_trial(trial)
    return study


def test_measured_trainings_make_the_estimate_a_tested_baseline_one_seed_fewer() -> None:
    study = _study(_trial(60.0, 0.90, baseline="book-2e", test_run={"seed": 5, "test_accuracy": 0.9}),
                   _trial(40.0, 0.85, baseline="book-3e"),  # not tested: all three seeds to train
                   _trial(20.0, 0.95))
    budget = TimeBudget(total=3600.0, seeds=3, max_epochs=20, reload=7.0)
    estimate = budget.evaluation_seconds(study, _Data())
    # book-2e: 2 more seeds of 60 s; book-3e: 3 of 40 s; the best: 3 of 20 s, each seed up to SEED_SPREAD
    # longer than its search run; plus reading the data again and the fixed overhead.
    assert estimate == pytest.approx(SEED_SPREAD * (2 * 60 + 3 * 40 + 3 * 20) + 7.0 + 10.0)
    assert TimeBudget(total=3600.0, seeds=0, max_epochs=20).evaluation_seconds(study, _Data()) == 0.0


def test_on_small_validation_the_cross_validation_of_the_finalists_and_the_baselines_is_counted() -> None:
    study = _study(_trial(60.0, 0.90, baseline="book-2e", test_run={"seed": 5, "test_accuracy": 0.9}),
                   _trial(40.0, 0.85, baseline="book-3e"), _trial(20.0, 0.95))
    budget = TimeBudget(total=3600.0, seeds=3, max_epochs=20)
    small = budget.evaluation_seconds(study, _Data(n_valid=200))
    large = budget.evaluation_seconds(study, _Data(n_valid=5000))
    # A run a fold for each of the FINALISTS (priced as the best) and each baseline, whatever seeds it reuses.
    assert small - large == pytest.approx(FOLDS * SEED_SPREAD * (FINALISTS * 20 + 60 + 40))
    said = "(3 seed(s) of the best and of each book baseline, after 5-fold cross-validation of the top 3 and the " \
           "baselines to choose it)"
    assert said in budget.describe(study, _Data(n_valid=200)) and said not in budget.describe(study, _Data())


def test_the_search_deadline_leaves_the_evaluation_its_share_but_never_less_than_a_quarter_to_search() -> None:
    study = _study(_trial(100.0, 0.95, epoch_seconds=5.0))
    budget = TimeBudget(total=1000.0, seeds=3, max_epochs=20, start=time.monotonic())
    evaluation = 3 * SEED_SPREAD * 100.0 + 10.0  # the best's three seeds, each up to SEED_SPREAD above its run
    assert budget.search_deadline(study, _Data()) == pytest.approx(budget.start + 1000.0 - evaluation)
    tight = TimeBudget(total=400.0, seeds=3, max_epochs=20, start=budget.start)
    assert tight.search_deadline(study, _Data()) == pytest.approx(tight.start + MIN_SEARCH_SHARE * 400.0)
    assert "will overrun" in tight.describe(study, _Data())
    assert f"--timeout {clock(2 * evaluation)}" in tight.describe(study, _Data())
    assert f"the search about {clock(1000.0 - evaluation)[:3]}" in budget.describe(study, _Data())
    unmeasured = _study(_trial(100.0, 0.95))
    assert "before any epoch is measured" in budget.describe(unmeasured, _Data())
    assert "overrun" not in budget.describe(unmeasured, _Data())


def test_untrained_configurations_are_predicted_for_the_epochs_trials_train_before_early_stopping() -> None:
    waiting = optuna.create_study(direction="maximize")
    waiting.enqueue_trial({}, user_attrs={"baseline": "book-2e", "config": TrialConfig(n_units=64).to_dict()})
    before = TimeBudget(total=3600.0, seeds=1, max_epochs=40).evaluation_seconds(waiting, _Data())
    waiting.add_trial(_trial(5.0, 0.5, epochs=10))  # a complete trial stopped early at a quarter of the budget
    assert epoch_share(waiting.get_trials(), 40) == 0.25
    after = TimeBudget(total=3600.0, seeds=1, max_epochs=40).evaluation_seconds(waiting, _Data())
    assert after < before


@pytest.mark.parametrize(("seconds", "text"), [(45, "45s"), (600, "10m"), (750, "12m30s"), (5400, "1h30m")])
def test_durations_are_written_as_timeout_reads_them(seconds: float, text: str) -> None:
    from autodnn.cli._parser import duration

    assert clock(seconds) == text and duration(text) == seconds


BUDGETED = ("search", "--dataset", "iris", "--space", "quick", "--study", "b", "--timeout", "75", "--seeds", "2",
            "--max-epochs", "8")


def test_baselines_reuse_a_completed_search_run_and_retrain_one_the_deadline_cut(run_cli, sqlite_url) -> None:
    result = run_cli(*BUDGETED, "--storage", sqlite_url)
    assert result.code == 0, result.err
    assert "Time budget 1m15s: the final evaluation (2 seed(s)" in result.out
    study = optuna.load_study(study_name="b", storage=sqlite_url)
    evaluation = study.user_attrs["evaluation"]
    baselines = {t.user_attrs["baseline"]: t for t in study.trials if "baseline" in t.user_attrs}
    for entry in evaluation["entries"]:
        assert len(entry["runs"]) == 2
        # A best that is a baseline's configuration (it validated better than anything searched) is its runs.
        trial = baselines.get(entry.get("baseline") or entry["name"]) \
            if entry["kind"] == "baseline" or entry.get("baseline") else None
        if trial is not None and trial.state == TrialState.COMPLETE and "test_run" in trial.user_attrs:
            # Its tested search run counts as its first seed; only the second is trained again.
            assert entry["runs"][0]["search_trial"] == trial.number
            assert entry["runs"][0]["test_accuracy"] == trial.user_attrs["test_run"]["test_accuracy"]
            assert "search_trial" not in entry["runs"][1]
            assert "test_accuracy" not in trial.user_attrs["result"], "the search's results hold no test score"
        else:
            # The best, and a baseline the deadline cut (pruned, or still queued): retrained with every seed.
            assert all("search_trial" not in run for run in entry["runs"])


@pytest.mark.slow
def test_the_whole_command_ends_within_its_timeout(run_cli, sqlite_url) -> None:
    start = time.monotonic()
    result = run_cli(*BUDGETED, "--storage", sqlite_url)
    elapsed = time.monotonic() - start
    assert result.code == 0, result.err
    assert elapsed < 75 + 10, f"the command took {elapsed:.0f} s of a 75-s budget"


def test_the_fixed_cost_of_a_trial_is_its_wall_time_less_its_epochs_at_the_steady_rate() -> None:
    from autodnn.study import cost

    assert cost.fixed_seconds(_study().trials) == cost.FIXED_SECONDS  # nothing measured yet: the prior
    study = _study(_trial(10.0, 0.9, epoch_times=[3.0, 1.0, 1.0]), _trial(4.0, 0.8, epoch_times=[1.5, 0.5]))
    # 10 s less 3 steady epochs of 1 s; 4 s less 2 of 0.5 s: the median of 7 and 3.
    assert cost.fixed_seconds(study.trials) == pytest.approx(5.0)


def test_under_a_deadline_the_search_grows_its_cost_cheapest_first() -> None:
    from autodnn.datasets import load_dataset
    from autodnn.objective import COST_GROWTH, FRONTIER_REFUSALS, Objective
    from autodnn.space import load_space
    from autodnn.study.deadline import Deadline
    from autodnn.study.records import finished_count
    from autodnn.study.trial_record import MEASURED, NOT_STARTED, PREDICTED

    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(1.0, 0.9, **{MEASURED: 0.001}))
    objective = Objective(load_space("quick"), load_dataset("iris"), 5, deadline=Deadline.after(3600))
    huge, small = TrialConfig(n_hidden=8, n_units=1024), TrialConfig(n_hidden=1, n_units=16)
    for _ in range(FRONTIER_REFUSALS - 1):
        trial = study.ask()
        with pytest.raises(optuna.TrialPruned, match=f"more than {COST_GROWTH:g} x those of the priciest"):
            objective._check_affordable(trial, huge, sampled=True)
        assert trial.user_attrs[NOT_STARTED] is True
        study.tell(trial, state=TrialState.PRUNED)
    assert finished_count(study) == 1, "trials not started do not count toward --n-trials"
    objective._check_affordable(study.ask(), huge, sampled=False)  # a warm start or a baseline always starts
    objective._check_affordable(study.ask(), small, sampled=True)
    for _ in range(FRONTIER_REFUSALS):
        with pytest.raises(optuna.TrialPruned):
            objective._check_affordable(study.ask(), huge, sampled=True)
    assert objective._growth == 2 * COST_GROWTH, "ten refusals in a row double the allowed growth"
    unbounded = study.ask()  # without a deadline nothing is refused; the prediction is still recorded
    predicted = Objective(load_space("quick"), load_dataset("iris"), 5)._check_affordable(unbounded, huge, sampled=True)
    assert predicted > 0 and unbounded.user_attrs[PREDICTED] == predicted


def test_a_sampled_trial_the_deadline_would_cut_before_its_fewest_epochs_is_not_started() -> None:
    from autodnn.datasets import load_dataset
    from autodnn.objective import Objective
    from autodnn.space import load_space
    from autodnn.study import cost
    from autodnn.study.deadline import Deadline
    from autodnn.study.trial_record import MEASURED, NOT_STARTED

    iris = load_dataset("iris")
    config = TrialConfig(n_hidden=1, n_units=16, epochs=10, patience=10)
    study = _study(_trial(1.0, 0.9, config=config.to_dict(), **{MEASURED: 0.01}))  # the machine's rate measured
    rates = cost.calibrate(study.trials, iris.n_features, iris.n_outputs, len(iris.x_train))
    epoch = cost.predict_epoch_seconds(config, iris.n_features, iris.n_outputs, len(iris.x_train), rates)
    fixed = cost.fixed_seconds(study.trials)
    left = fixed + 5.5 * epoch  # pays for a first epoch, not for ten

    class Frozen(Deadline):  # a clock that does not run while the test does
        def __init__(self, seconds: float) -> None:
            super().__init__(end=0.0)
            self.seconds = seconds

        def left(self) -> float:
            return self.seconds

    def check(target: optuna.Study, trial_config: TrialConfig, *, sampled: bool = True, budget: int = 50,
              seconds: float = left) -> optuna.trial.Trial:
        trial = target.ask()
        try:
            Objective(load_space("quick"), iris, budget, deadline=Frozen(seconds))._check_affordable(
                trial, trial_config, sampled=sampled)
        finally:
            target.tell(trial, state=TrialState.PRUNED)
        return trial

    for trial_config, fewest in ((config, 10), (config.replace(epochs=None, patience=6), 7)):
        with pytest.raises(optuna.TrialPruned, match=f"not started: the {fewest} epochs it trains at least "):
            check(study, trial_config)
    for trial_config in (config.replace(epochs=5), config.replace(epochs=None, patience=3)):  # 5 and 4 epochs
        assert NOT_STARTED not in check(study, trial_config).user_attrs
    # The designed start and the baselines, planned by the budget, need their first epoch only; so does any
    # trial before the machine's rate is measured, when the deadline is the priors' upper bound.
    assert NOT_STARTED not in check(study, config, sampled=False).user_attrs
    assert NOT_STARTED not in check(optuna.create_study(direction="maximize"), config).user_attrs
    with pytest.raises(optuna.TrialPruned, match="not started: its first epoch would take about "):
        check(study, config, sampled=False, seconds=fixed + 0.5 * epoch)


def test_a_baseline_the_search_did_not_reach_is_evaluated_all_the_same() -> None:
    from autodnn.evaluate import evaluation_entries

    study = _study(_trial(60.0, 0.90, baseline="book-2e", test_run={"seed": 5, "test_accuracy": 0.9}),
                   _trial(20.0, 0.95))
    study.enqueue_trial({}, user_attrs={"baseline": "book-selu", "config": TrialConfig(n_units=64).to_dict()})
    entries = evaluation_entries(study)
    assert [e["name"] for e in entries] == ["best", "book-2e", "book-selu"]
    assert "search_run" in entries[1] and "search_run" not in entries[2]


def test_mc_dropout_passes_of_the_evaluation_are_in_its_estimate() -> None:
    plain = _study(_trial(20.0, 0.95, epoch_seconds=1.0))
    dropout = _study(_trial(20.0, 0.95, epoch_seconds=1.0, config=TrialConfig(n_units=64, dropout=0.3).to_dict()))
    budget = TimeBudget(total=3600.0, seeds=1, max_epochs=20)
    assert budget.evaluation_seconds(dropout, _Data()) > budget.evaluation_seconds(plain, _Data())


def test_the_default_budget_grows_with_the_data_and_says_why() -> None:
    from autodnn.tuning.budget import default_seconds

    small = _Data(n_train=1_000)
    small.image_shape = None
    assert default_seconds(small) == (300.0, ("auto: a table of 1,000 training rows x 64 features, under "
                                              "100,000 cells"))
    middle = _Data(n_train=10_000)
    middle.image_shape = None
    assert default_seconds(middle)[0] == 900.0
    large = _Data(n_train=20_000)
    large.image_shape = None
    assert default_seconds(large) == (1800.0, "auto: 1,280,000 training cells")
    images = _Data(n_train=1_000)
    images.image_shape = (8, 8, 1)
    assert default_seconds(images) == (1800.0, "auto: images")
    cifar = _Data(n_train=45_000)
    cifar.image_shape, cifar.n_features = (32, 32, 3), 3072
    assert default_seconds(cifar) == (3600.0, "auto: images, 45,000 training rows x 3,072 features, over 50M cells")


def test_a_budget_that_ends_before_a_searched_configuration_says_what_took_it_and_what_to_give() -> None:
    from autodnn.cli._output import nothing_searched_line

    study = _study(_trial(357.0, 0.53, baseline="book-2e"))  # CIFAR-10's conv space in 30 minutes on 2 cores
    line = nothing_searched_line(study, 1800.0, "sqlite:///studies/c.db")
    assert line.startswith("the 30m budget ended before any searched configuration completed")
    assert "book-2e took 5m57s" in line and "sqlite:///studies/c.db" in line and "longer --timeout" in line
    assert line.endswith("fewer --seeds or --no-baselines")
    assert nothing_searched_line(_study(), 1800.0, "u").endswith("or with fewer --seeds")  # no baseline trained


def test_a_search_whose_budget_trains_nothing_of_its_own_ends_with_that_line_and_keeps_its_study(
        run_cli, workdir) -> None:
    result = run_cli("search", "--dataset", "iris", "--space", "quick", "--timeout", "2", "--study", "short")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.strip()]
    assert errors[-1].startswith("Error: the 2s budget ended before any searched configuration completed")
    assert "Traceback" not in result.err and "run 'autodnn search'" not in result.err
    assert (workdir / "studies" / "short.db").exists()


class _Cifar:
    x_train = np.zeros((45_000, 1), dtype=np.float32)
    y_valid, x_test = np.zeros(5_000), np.zeros((10_000, 1), dtype=np.float32)
    n_features, n_outputs, image_shape = 3072, 10, (32, 32, 3)


def test_a_conv_studys_baselines_are_admitted_in_order_while_every_seed_of_them_fits_half_the_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.defaults import BOOK_CNN, book_baselines

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # a conv study on 2 CPU cores: the convnet prior of TensorFlow
    study = optuna.create_study(direction="maximize")
    offered = (*book_baselines(), BOOK_CNN)

    def decided(hours: float) -> dict[str, str | None]:
        gate = TimeBudget(total=hours * 3600.0, seeds=3, max_epochs=50).baseline_gate(study, _Cifar())
        admitted = gate.plan(offered)
        decisions = {b.name: gate(b.name, b.config) for b in offered}
        assert admitted <= 0.5 * hours * 3600.0 and (admitted > 0) == any(w is None for w in decisions.values())
        return decisions

    # Each dense baseline is three seeds of 50 epochs at about 7.4 s (its prior): about 19 minutes.
    half_hour = decided(0.5)
    assert all(half_hour.values())
    assert half_hour["book-2e"].startswith("book-2e is not trained: its 3 trainings are predicted at 18m")
    assert "more than half of the 30m budget; give --timeout 37m" in half_hour["book-2e"]
    # A budget that pays for book-3e pays for book-2e before it too.
    assert "give --timeout 1h14m or more" in half_hour["book-3e"]
    hour = decided(1.0)
    assert hour["book-2e"] is None and hour["book-3e"] and hour["book-selu"]
    assert "give --timeout 1h14m or more" in hour["book-3e"]  # with book-2e's trainings
    two_hours = decided(2.0)
    assert [name for name, why in two_hours.items() if why is None] == ["book-2e", "book-3e", "book-selu"]
    assert two_hours["book-cnn"].startswith("book-cnn is not trained: its 3 trainings are predicted at 8h")
    assert all(why is None for why in decided(24.0).values())
    # Judged once: asking again gives the same answer without counting its seconds twice.
    gate = TimeBudget(total=3600.0, seeds=3, max_epochs=50).baseline_gate(study, _Cifar())
    first = gate.plan(offered)
    assert gate.plan(offered) == first and gate("book-2e", offered[0].config) is None


def test_a_baseline_another_study_trained_costs_a_conv_studys_gate_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.defaults import BOOK_CNN, book_baselines
    from autodnn.study.reuse import SAME
    from autodnn.study.trial_record import BASELINE, CONFIG, TEST_RUN
    from autodnn.tuning.run import to_train

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    offered = (*book_baselines(), BOOK_CNN)

    def made(name: str, fingerprint: str = "cifar") -> optuna.Study:
        study = optuna.create_study(study_name=name, storage=url, direction="maximize")
        attrs = {"dataset": {"fingerprint": fingerprint}, "environment": {"backend": "tensorflow", "precision": None},
                 "settings": {key: 0 for key in SAME}}
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        return study

    made("dense").add_trial(optuna.trial.create_trial(value=0.5, user_attrs={
        BASELINE: "book-2e", CONFIG: offered[0].config.to_dict(), TEST_RUN: {"seed": 0, "test_accuracy": 0.5}}))
    conv = made("conv")
    assert [b.name for b in to_train(conv, offered)] == ["book-3e", "book-selu", "book-cnn"]
    assert len(to_train(made("other", fingerprint="mnist"), offered)) == 4, "other data reuses nothing"
    gate = TimeBudget(total=3600.0, seeds=3, max_epochs=50).baseline_gate(conv, _Cifar())
    gate.plan(to_train(conv, offered))  # an hour pays for one dense baseline: the one after the reused one
    assert gate("book-3e", offered[1].config) is None
    assert "give --timeout 1h14m or more" in gate("book-selu", offered[2].config)


def test_a_convolutional_start_shortens_its_epochs_to_what_the_budget_leaves_after_the_baselines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.tuning.budget import MIN_START_EPOCHS, START_SHARE
    from autodnn.tuning.warm_start import designed_start

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    study = optuna.create_study(direction="maximize")
    config = TrialConfig.from_dict(designed_start("conv")[0].values)
    budget = TimeBudget(total=3600.0, seeds=3, max_epochs=50)
    epoch = budget.epoch_seconds(study, _Cifar(), config)
    runs = 4  # its search run and three seeds
    expected = int((START_SHARE * 3600.0 / runs - 3.0) / epoch)  # 3 s besides the epochs before any is measured
    assert MIN_START_EPOCHS < expected < config.epochs
    assert budget.start_epochs(study, _Cifar(), config) == expected
    assert budget.start_epochs(study, _Cifar(), config, reserved=1000.0) < expected
    assert budget.start_epochs(study, _Cifar(), config, reserved=3590.0) == MIN_START_EPOCHS
    assert TimeBudget(total=12 * 3600.0, seeds=3, max_epochs=50).start_epochs(study, _Cifar(), config) == config.epochs


def test_before_anything_ran_a_conv_study_without_baselines_estimates_its_evaluation_at_its_designed_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.space import load_space
    from autodnn.tuning.warm_start import designed_start, enqueue_warm_starts

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("space", load_space("conv").to_dict())
    budget = TimeBudget(total=1800.0, seeds=3, max_epochs=50)
    nothing = budget.evaluation_seconds(study, _Cifar())
    enqueue_warm_starts(study, load_space("conv"), 100, n_train=45_000, kind="conv")
    start = TrialConfig.from_dict(designed_start("conv")[0].values)
    one = budget.one_training_seconds(study, _Cifar(), start)
    assert nothing < 60.0 < one  # a first estimate of seconds would leave the search all of the budget
    assert budget.evaluation_seconds(study, _Cifar()) == pytest.approx(nothing - 3 * 3.0 + 3 * one)
    assert "the final evaluation (3 seed(s) of the best) is estimated at" in budget.describe(study, _Cifar())


def test_a_conv_study_enqueues_the_baselines_its_gate_admits_and_says_why_of_the_others() -> None:
    from autodnn.space import load_space
    from autodnn.study.trial_record import BASELINE
    from autodnn.tuning import enqueue_baselines

    study = optuna.create_study(direction="maximize")
    left_out: list[str] = []
    added = enqueue_baselines(study, load_space("conv"), left_out=left_out,
                              dear=lambda name, config: f"{name} is not trained" if config.family == "conv" else None)
    queued = [t.user_attrs[BASELINE] for t in study.get_trials(deepcopy=False)]
    assert queued == ["book-2e", "book-3e", "book-selu"] and added == 3
    assert left_out == ["book-cnn is not trained"]
    enqueue_baselines(study, load_space("conv"))  # a resumed study with a budget that pays for it
    assert [t.user_attrs[BASELINE] for t in study.get_trials(deepcopy=False)][-1] == "book-cnn"
