"""KerasTuner as a second engine, and the strategy options of autodnn's own: sampler, pruner, LR finder in
every trial, and the epoch budget."""

from __future__ import annotations

from pathlib import Path

import keras_tuner as kt
import numpy as np
import optuna
import pytest
from conftest import assert_user_error
from optuna.trial import TrialState

from autodnn.engines import KerasTunerSpace
from autodnn.space import load_space, space_from_dict
from autodnn.study.trial_record import EPOCH_TIMES, MEASURED, PREDICTED, SEED, steady_epoch_seconds

SPACE = {
    "name": "conditional",
    "params": {
        "n_hidden": {"low": 1, "high": 2},
        "n_units": {"low": 16, "high": 64, "log": True},
        "activation": {"choices": ["relu", "leaky_relu", "selu"]},
        "activation_alpha": {"low": 0.01, "high": 0.3, "log": True, "when": {"activation": "leaky_relu"}},
        "normalization": {"choices": ["none", "batch_norm_after"]},
        "bn_momentum": {"choices": [0.9, 0.99], "when": {"normalization": "batch_norm_after"}},
        "max_norm": {"choices": [None, 1.0, 3.0]},
        "optimizer": {"choices": ["sgd", "nesterov", "adam"]},
        "momentum": {"low": 0.8, "high": 0.99, "when": {"optimizer": "nesterov"}},
        "learning_rate": {"low": 1.0e-3, "high": 1.0e-1, "log": True},
        "batch_size": 64,
        "patience": 3,
    },
    "constraints": [{"if": {"activation": "selu"}, "then": {"normalization": "none", "max_norm": None}}],
}
TINY = ("params:\n  n_hidden: {low: 1, high: 2}\n  n_units: {low: 16, high: 48, log: true}\n"
        "  activation: {choices: [relu, elu]}\n  optimizer: {choices: [sgd, nesterov, adam]}\n"
        "  momentum: {low: 0.8, high: 0.95, when: {optimizer: nesterov}}\n"
        "  learning_rate: {low: 1.0e-3, high: 3.0e-2, log: true}\n  batch_size: 64\n  patience: 3\n")


def declared(space_dict: dict) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    KerasTunerSpace(space_from_dict(space_dict)).declare(hp)
    return hp


def test_the_space_becomes_kerastuner_hyperparameters_with_their_conditions() -> None:
    hp = declared(SPACE)
    by_name = {p.name: p for p in hp.space}
    assert set(by_name) == {k for k, v in SPACE["params"].items() if isinstance(v, dict)}
    assert isinstance(by_name["n_units"], kt.engine.hyperparameters.Int) and by_name["n_units"].sampling == "log"
    assert isinstance(by_name["learning_rate"], kt.engine.hyperparameters.Float)
    assert by_name["learning_rate"].sampling == "log"
    assert (by_name["n_units"].min_value, by_name["n_units"].max_value) == (16, 64)
    # Conditional parameters sit in KerasTuner's conditional scope of their parent, with the parent's values.
    alpha = by_name["activation_alpha"]
    assert [(c.name, c.values) for c in alpha.conditions] == [("activation", ["leaky_relu"])]
    assert [(c.name, c.values) for c in by_name["momentum"].conditions] == [("optimizer", ["nesterov"])]
    assert by_name["n_hidden"].conditions == []
    # null among the choices: KerasTuner takes one type, so the choices travel as JSON text.
    assert by_name["max_norm"].values == ["null", "1.0", "3.0"]
    assert by_name["bn_momentum"].values == [0.9, 0.99]


def test_a_condition_on_a_fixed_parameter_is_decided_at_translation() -> None:
    space = {"params": {"optimizer": "nesterov", "momentum": {"low": 0.8, "high": 0.9, "when": {"optimizer": "nesterov"}},
                        "beta_1": {"choices": [0.9, 0.95], "when": {"optimizer": "adam"}}}}
    names = {p.name: p for p in declared(space).space}
    assert set(names) == {"momentum"} and names["momentum"].conditions == []


@pytest.mark.parametrize("seed", range(8))
def test_oracle_values_sample_the_same_config_an_optuna_trial_with_those_values_would(seed: int) -> None:
    space = space_from_dict(SPACE)
    translated = KerasTunerSpace(space)
    oracle = kt.oracles.RandomSearchOracle(kt.Objective("val_accuracy", "max"), max_trials=10, seed=seed)
    hp = kt.HyperParameters()
    translated.declare(hp)
    oracle.update_space(hp)
    values = oracle.populate_space(f"t{seed}")["values"]
    config, params, distributions = translated.sample(values)
    # The parameters recorded are what Optuna would have sampled: replaying them through FixedTrial gives the
    # same configuration, and each lies inside its distribution.
    assert space.sample(optuna.trial.FixedTrial(params)) == config
    for name, value in params.items():
        assert distributions[name]._contains(distributions[name].to_internal_repr(value)), (name, value)
    if config.activation != "leaky_relu":
        assert "activation_alpha" not in params
    if config.activation == "selu":
        assert config.normalization == "none" and config.max_norm is None
    assert config.max_norm in (None, 1.0, 3.0)


def test_a_kerastuner_random_search_records_each_trial_in_the_optuna_study(run_cli, sqlite_url,
                                                                           tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    result = run_cli("search", "--dataset", "digits", "--space", space, "--engine", "keras-tuner",
                     "--strategy", "random", "--n-trials", "3", "--max-epochs", "2", "--no-baselines",
                     "--no-final", "--storage", sqlite_url, "--study", "kt")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="kt", storage=sqlite_url)
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        assert trial.user_attrs["engine"]["name"] == "keras-tuner"
        assert trial.user_attrs["engine"]["strategy"] == "random"
        assert set(trial.params) >= {"n_hidden", "n_units", "activation", "optimizer", "learning_rate"}
        assert ("momentum" in trial.params) == (trial.params["optimizer"] == "nesterov")
        assert trial.value == pytest.approx(trial.user_attrs["result"]["val_accuracy"])
        assert len(trial.intermediate_values) == trial.user_attrs["result"]["epochs"]
        assert trial.datetime_complete >= trial.datetime_start
        config = trial.user_attrs["config"]
        assert (config["n_hidden"], config["activation"]) == (trial.params["n_hidden"], trial.params["activation"])
        # The same record as the objective's trials: measured and predicted cost, for the cost model and report.
        times = trial.user_attrs[EPOCH_TIMES]
        assert len(times) == 2 and all(seconds > 0 for seconds in times)
        assert trial.user_attrs[MEASURED] == pytest.approx(steady_epoch_seconds(times))
        assert trial.user_attrs[PREDICTED] > 0 and trial.user_attrs[SEED] >= 0
    assert study.user_attrs["settings"]["engine"] == "keras-tuner"
    assert study.user_attrs["settings"]["strategy"] == "random"
    assert len({t.user_attrs["engine"]["trial_id"] for t in trials}) == 3
    shown = run_cli("show", "kt", "--storage", sqlite_url)
    assert shown.code == 0 and "Best trial" in shown.out
    # The same study cannot be continued by another engine: the comparison would be meaningless.
    other = run_cli("search", "--dataset", "digits", "--space", space, "--n-trials", "4", "--max-epochs", "2",
                    "--no-baselines", "--no-final", "--storage", sqlite_url, "--study", "kt")
    assert_user_error(other, "keras-tuner (random)", "--force")
    assert len(optuna.load_study(study_name="kt", storage=sqlite_url).trials) == 3


@pytest.mark.slow
def test_kerastuner_hyperband_trains_its_brackets_epochs_and_baselines_come_first(run_cli, sqlite_url,
                                                                                 tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY.replace("patience: 3", "patience: 50"))
    result = run_cli("search", "--dataset", "digits", "--space", space, "--engine", "keras-tuner",
                     "--n-trials", "5", "--max-epochs", "4", "--no-final", "--storage", sqlite_url,
                     "--study", "hb")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="hb", storage=sqlite_url)
    trials = study.get_trials(deepcopy=False)
    baselines = [t for t in trials if "baseline" in t.user_attrs]
    searched = [t for t in trials if "baseline" not in t.user_attrs]
    assert trials[: len(baselines)] == baselines and len(baselines) == 3
    assert len([t for t in searched if t.state == TrialState.COMPLETE]) == 5
    budgets = [t.user_attrs["engine"]["epochs"] for t in searched]
    # Hyperband with factor 3 and 4 epochs: its first bracket trains 2-epoch trials; each trains its bracket's
    # epochs (no early stop with patience 50).
    assert all(1 <= b <= 4 for b in budgets) and min(budgets) < 4
    for trial, budget in zip(searched, budgets):
        assert trial.user_attrs["result"]["epochs"] == budget


def test_kerastuner_refuses_several_workers(run_cli, sqlite_url) -> None:
    result = run_cli("search", "--engine", "keras-tuner", "--workers", "2", "--storage", sqlite_url)
    assert_user_error(result, "--engine keras-tuner", "--workers")


def test_the_epoch_budget_stops_the_search_once_it_is_spent(run_cli, sqlite_url, tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY.replace("patience: 3", "patience: 50"))
    result = run_cli("search", "--dataset", "digits", "--space", space, "--n-trials", "100", "--max-epochs", "2",
                     "--epoch-budget", "5", "--sampler", "random", "--pruner", "none", "--no-baselines",
                     "--no-final", "--storage", sqlite_url, "--study", "eb")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="eb", storage=sqlite_url)
    epochs = [t.user_attrs["result"]["epochs"] for t in study.trials]
    assert epochs == [2, 2, 2]  # 4 < 5 epochs after two trials, so a third starts; then 6 >= 5
    assert study.user_attrs["settings"]["sampler"] == "random"
    assert study.user_attrs["settings"]["epoch_budget"] == 5


def test_sampler_and_pruner_options_reach_the_study(monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.study.strategy import make_pruner, make_sampler

    assert isinstance(make_sampler(0, "random"), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler(0, "tpe"), optuna.samplers.TPESampler)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", max_epochs=9), optuna.pruners.HyperbandPruner)


def test_hyperband_pruner_stops_trials_at_its_rungs_and_keeps_the_best() -> None:
    from autodnn.study.strategy import make_pruner

    # Hyperband puts a trial in a bracket by hashing the study's name and the trial's number: a fixed name.
    study = optuna.create_study(study_name="rungs", direction="maximize",
                                pruner=make_pruner("hyperband", max_epochs=9), sampler=optuna.samplers.RandomSampler(0))
    levels = np.random.default_rng(0).uniform(size=30)
    stopped, completed = [], []
    for level in levels:
        trial = study.ask()
        for epoch in range(9):
            trial.report(float(level), epoch)
            if trial.should_prune():
                stopped.append(epoch)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            completed.append(level)
            study.tell(trial, float(level))
    # Reduction factor 3 from epoch 1: rungs after epochs 1 and 3 (steps are 0-based); 9 is the end.
    assert set(stopped) <= {1, 3}
    assert len(stopped) >= len(levels) // 3
    assert max(levels) in completed


@pytest.mark.parametrize("kind", ["hyperband", "halving", "median"])
def test_asking_the_pruner_only_where_it_may_decide_changes_no_decision(kind: str) -> None:
    from autodnn.study.strategy import make_pruner, may_prune_at

    rng = np.random.default_rng(1)
    curves = [np.sort(rng.uniform(size=27)) * rng.uniform() for _ in range(40)]

    def stops(ask_everywhere: bool) -> list[int | None]:
        study = optuna.create_study(study_name="same", direction="maximize", pruner=make_pruner(kind, 27))
        out = []
        for curve in curves:
            trial = study.ask()
            for step, value in enumerate(curve):
                trial.report(float(value), step)
                if (ask_everywhere or may_prune_at(study.pruner, step)) and trial.should_prune():
                    out.append(step)
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    break
            else:
                out.append(None)
                study.tell(trial, float(curve[-1]))
        return out

    everywhere = stops(True)
    assert stops(False) == everywhere
    assert any(step is not None for step in everywhere)


def test_lr_finder_in_every_trial_overrides_the_space(run_cli, sqlite_url, tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    result = run_cli("search", "--dataset", "digits", "--space", space, "--n-trials", "2", "--max-epochs", "1",
                     "--lr-finder", "--no-baselines", "--no-final", "--storage", sqlite_url, "--study", "lf")
    assert result.code == 0, result.err
    for trial in optuna.load_study(study_name="lf", storage=sqlite_url).trials:
        assert trial.user_attrs["config"]["lr_finder"] is True
        finder = trial.user_attrs["lr_finder"]
        assert trial.user_attrs["result"]["learning_rate"] == pytest.approx(finder["suggestion"])


def test_quick_space_translates_completely() -> None:
    hp = kt.HyperParameters()
    KerasTunerSpace(load_space("default")).declare(hp)
    assert {p.name for p in hp.space} == set(load_space("default").searched)


@pytest.mark.slow
def test_a_hyperband_pruned_search_says_so_in_show_and_report(run_cli, sqlite_url, tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY.replace("patience: 3", "patience: 50"))
    result = run_cli("search", "--dataset", "digits", "--space", space, "--n-trials", "8", "--max-epochs", "4",
                     "--pruner", "hyperband", "--no-baselines", "--no-warm-start", "--no-final", "--storage", sqlite_url,
                     "--study", "hb")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="hb", storage=sqlite_url)
    assert study.user_attrs["settings"]["pruner"] == "hyperband"
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    # Rungs after epochs 1 and 3 (1-based steps 1 and 3): a trial stops there or runs on.
    assert pruned and all(t.user_attrs["result"]["epochs"] in (1, 3) for t in pruned)
    shown = run_cli("show", "hb", "--storage", sqlite_url)
    assert "optuna (tpe-local, hyperband pruner)" in shown.out
    out = tmp_path / "hb.html"
    assert run_cli("report", "hb", "--storage", sqlite_url, "-o", out).code == 0
    page = out.read_text()
    assert "hyperband pruner" in page and "at a Hyperband rung" in page
