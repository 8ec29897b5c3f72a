"""The designed start: warm-start configurations projected onto a space and trained first, as searched trials."""

from __future__ import annotations

import optuna
import pytest

from autodnn.space import load_space, space_from_dict
from autodnn.tuning.warm_start import SHARE, WARM_STARTS, designed_start, enqueue_warm_starts, project

SEARCH = ("search", "--dataset", "digits", "--space", "quick", "--max-epochs", "2", "--no-baselines", "--no-final")


def test_a_warm_start_is_clipped_to_the_space_and_leaves_what_the_space_lacks_to_the_sampler() -> None:
    wide = next(w for w in WARM_STARTS if w.name == "wide-bn-adamw")
    params = project(load_space("quick"), wide.values)
    # quick: 1-3 layers of 16-256 units, relu/elu/swish, no adamw, batch size fixed at 64.
    assert params == {"n_hidden": 3, "n_units": 256, "activation": "relu", "learning_rate": 1.0e-3}


def test_conditional_parameters_are_set_only_where_their_condition_holds() -> None:
    space = space_from_dict({"name": "c", "params": {
        "optimizer": {"choices": ["sgd", "nesterov", "adam"]},
        "momentum": {"low": 0.8, "high": 0.99, "when": {"optimizer": "nesterov"}},
        "beta_1": {"choices": [0.9, 0.95], "when": {"optimizer": "adam"}},
        "max_norm": {"choices": [None, 1.0]},
    }})
    params = project(space, {"optimizer": "adam", "momentum": 0.9, "beta_1": 0.9, "max_norm": None})
    assert params == {"optimizer": "adam", "beta_1": 0.9, "max_norm": None}
    assert project(space, {"optimizer": "adamw", "beta_1": 0.9}) == {}


class _Given:
    """A trial that answers with the given values and, for the rest, a range's low end or the first choice."""

    def __init__(self, params: dict) -> None:
        self.params = params

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return self.params.get(name, low)

    def suggest_float(self, name, low, high, *, step=None, log=False):
        return self.params.get(name, low)

    def suggest_categorical(self, name, choices):
        return self.params.get(name, choices[0])


@pytest.mark.parametrize("name", ["default", "quick", "exercise8", "selu"])
def test_every_warm_start_samples_a_valid_configuration_in_every_bundled_space(name: str) -> None:
    space = load_space(name)
    constrained = {key for c in space.constraints for key in c.then}
    for start in WARM_STARTS:
        params = project(space, start.values)
        config = space.sample(_Given(params))  # validates the configuration
        for key, value in params.items():
            assert getattr(config, key) == value or key in constrained, (start.name, key)


@pytest.mark.slow
def test_the_search_trains_the_warm_starts_first_then_searches(run_cli, sqlite_url: str) -> None:
    result = run_cli(*SEARCH, "--n-trials", "8", "--storage", sqlite_url, "--study", "w")
    assert result.code == 0, result.err
    assert "(warm start small-adam)" in result.out and "(warm start relu-mlp)" in result.out, "a table's start"
    trials = optuna.load_study(study_name="w", storage=sqlite_url).get_trials(deepcopy=False)
    warm = [t for t in trials if "warm_start" in t.user_attrs]
    assert len(warm) == int(8 * SHARE) == 2
    assert [t.number for t in warm] == [0, 1]
    assert [t.user_attrs["warm_start"] for t in warm] == ["small-adam", "relu-mlp"]
    space = load_space("quick")
    for trial in warm:
        start = next(w for w in WARM_STARTS if w.name == trial.user_attrs["warm_start"])
        expected = project(space, start.values)
        assert {k: trial.params[k] for k in expected} == pytest.approx(expected)
    again = run_cli(*SEARCH, "--n-trials", "9", "--storage", sqlite_url, "--study", "w")
    assert again.code == 0, again.err
    resumed = optuna.load_study(study_name="w", storage=sqlite_url).get_trials(deepcopy=False)
    assert sum("warm_start" in t.user_attrs for t in resumed) == 2, "a resumed search enqueues none again"


@pytest.mark.slow
def test_no_warm_start_and_random_search_start_from_the_sampler_alone(run_cli, sqlite_url: str) -> None:
    for study, flags in (("off", ["--no-warm-start"]), ("random", ["--sampler", "random"])):
        result = run_cli(*SEARCH, "--n-trials", "4", "--storage", sqlite_url, "--study", study, *flags)
        assert result.code == 0, result.err
        trials = optuna.load_study(study_name=study, storage=sqlite_url).get_trials(deepcopy=False)
        assert not any("warm_start" in t.user_attrs for t in trials)


@pytest.mark.parametrize(("n_train", "batch"), [(45_000, 256), (1_293, 64), (409, 16), (50, 16), (None, 256)])
def test_on_small_data_a_warm_starts_batch_shrinks_to_sixteen_steps_an_epoch(n_train, batch) -> None:
    from autodnn.tuning.warm_start import fitted

    wide = next(start for start in WARM_STARTS if start.name == "wide-bn-adamw")
    assert wide.values["batch_size"] == 256
    assert fitted(wide.values, n_train)["batch_size"] == batch
    assert project(load_space("default"), fitted(wide.values, n_train))["batch_size"] == batch


def test_tables_and_images_get_their_own_designed_start_in_order() -> None:
    assert [s.name for s in designed_start("tables")] == ["small-adam", "relu-mlp", "swish-bn-long"]
    assert [s.name for s in designed_start("images")] == ["small-adam", "wide-bn-adamw", "deep-swish-1cycle"]
    for kind in ("tables", "images"):
        study = optuna.create_study(direction="maximize")
        assert enqueue_warm_starts(study, load_space("default"), 100, n_train=45_000, kind=kind) == 3
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        assert [t.user_attrs["warm_start"] for t in waiting] == [s.name for s in designed_start(kind)]


def test_a_convolutional_space_starts_from_its_own_convnet_shortened_to_the_epochs_the_budget_gives() -> None:
    from autodnn.config import TrialConfig

    (convnet,) = designed_start("conv")
    space = load_space("conv")
    params = project(space, convnet.values)
    # Every value the start sets lies inside the conv space, so the search trains it as designed.
    assert {k: convnet.values[k] for k in params} == params
    assert set(params) >= {"conv_filters", "conv_groups", "conv_blocks", "learning_rate", "schedule", "epochs"}
    given: list[TrialConfig] = []

    def three(config: TrialConfig) -> int:
        given.append(config)
        return 3

    study = optuna.create_study(direction="maximize")
    assert enqueue_warm_starts(study, space, 100, n_train=45_000, kind="conv", epochs=three) == 1
    (waiting,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert waiting.system_attrs["fixed_params"]["epochs"] == 3 and waiting.user_attrs["warm_start"] == convnet.name
    assert given[0].family == "conv" and given[0].epochs == convnet.values["epochs"]


def test_every_warm_start_says_where_its_figures_come_from() -> None:
    for start in WARM_STARTS:
        assert "validation" in start.why and "test" not in start.why, start.name
