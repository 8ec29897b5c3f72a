"""Search spaces: the YAML format, its validation messages, and what sampling produces."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import optuna
import pytest

from autodnn.config import TrialConfig, field_names
from autodnn.errors import ConfigError
from autodnn.space import SPACES_DIR, load_space, space_from_dict, space_from_stored

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample_many(space, n: int, seed: int = 0) -> list[tuple[dict, TrialConfig]]:
    """Samples ``n`` configurations with a seeded random sampler; returns (trial params, config) pairs."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        config = space.sample(trial)
        out.append((dict(trial.params), config))
        study.tell(trial, 0.0)
    return out


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["quick", "default", "selu", "exercise8"])
def test_bundled_spaces_load_and_sample_valid_configs(name: str) -> None:
    space = load_space(name)
    assert space.name == name
    for _, config in sample_many(space, 50):
        assert isinstance(config, TrialConfig)


def test_space_is_found_by_name_or_by_path() -> None:
    assert load_space("quick").digest == load_space(SPACES_DIR / "quick.yaml").digest


def test_default_space_samples_every_chapter_11_dimension() -> None:
    samples = sample_many(load_space("default"), 400)
    seen: dict[str, set] = defaultdict(set)
    for _, config in samples:
        for key, value in config.to_dict().items():
            seen[key].add(repr(value))
    for dimension in ("n_hidden", "n_units", "first_layer_factor", "activation", "activation_alpha", "elu_alpha", "swish_beta",
                      "initializer", "init_distribution", "init_mode", "normalization", "bn_momentum", "dropout",
                      "dropout_placement", "dropout_top_k", "alpha_dropout", "max_norm", "l1", "l2",
                      "weight_decay", "clipnorm", "clipvalue", "optimizer", "learning_rate", "lr_finder",
                      "momentum", "rho", "beta_1", "beta_2", "schedule", "decay_epochs", "plateau_factor",
                      "plateau_patience", "batch_size"):
        assert len(seen[dimension]) > 1, f"{dimension} never varies"
    activations = {eval(v) for v in seen["activation"]}
    assert activations == {"relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish", "mish",
                           "tanh", "sigmoid"}
    assert {eval(v) for v in seen["optimizer"]} == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
                                                     "adamax", "nadam", "adamw"}
    assert {eval(v) for v in seen["schedule"]} == {"constant", "power", "exponential", "piecewise", "performance",
                                                    "1cycle", "cosine"}
    assert max(c.n_hidden for _, c in samples) >= 25
    assert max(c.n_units for _, c in samples) > 512


def test_conditional_parameters_are_sampled_only_under_their_condition() -> None:
    for params, config in sample_many(load_space("default"), 300):
        assert ("momentum" in params) == (config.optimizer in ("momentum", "nesterov"))
        assert ("activation_alpha" in params) == (config.activation == "leaky_relu")
        assert ("rho" in params) == (config.optimizer == "rmsprop")
        assert ("weight_decay" in params) == (config.optimizer == "adamw")
        assert ("bn_momentum" in params) == (config.normalization != "none")
        assert config.clipnorm is None or config.clipvalue is None


def test_selu_constraints_hold_in_every_sample() -> None:
    selu_seen = 0
    for params, config in sample_many(load_space("default"), 400):
        if config.activation == "selu":
            selu_seen += 1
            assert config.initializer == "lecun" and config.init_distribution == "normal"
            assert config.normalization == "none"
            assert config.dropout == 0 and config.l1 == 0 and config.l2 == 0 and config.max_norm is None
            assert "normalization" not in params, "a fixed value must not be sampled"
        else:
            assert config.alpha_dropout == 0, "alpha dropout only under SELU"
    assert selu_seen > 10


def test_adam_family_uses_weight_decay_not_l2() -> None:
    for _, config in sample_many(load_space("default"), 200):
        if config.optimizer in ("adam", "adamax", "nadam", "adamw"):
            assert config.l2 == 0


def test_exercise8_fixes_depth_and_width() -> None:
    for _, config in sample_many(load_space("exercise8"), 30):
        assert (config.n_hidden, config.n_units) == (20, 100)


def test_learning_rate_finder_keyword(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, "params:\n  learning_rate: finder\n"))
    (_, config), = sample_many(space, 1)
    assert config.lr_finder is True


def test_same_seed_samples_the_same_configurations() -> None:
    space = load_space("default")

    def run(seed: int) -> list[dict]:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        configs = []
        for i in range(15):
            trial = study.ask()
            configs.append(space.sample(trial).to_dict())
            study.tell(trial, float(i % 4))
        return configs

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_stored_form_round_trips() -> None:
    for name in ("quick", "default", "selu", "exercise8"):
        space = load_space(name)
        again = space_from_stored(space.to_dict())
        assert again.digest == space.digest
        assert again.to_dict()["params"] == space.to_dict()["params"]


def test_fixed_trial_sampling_uses_given_values() -> None:
    space = load_space("quick")
    trial = optuna.trial.FixedTrial({"n_hidden": 2, "n_units": 64, "activation": "elu", "optimizer": "nesterov",
                                     "momentum": 0.9, "learning_rate": 0.01})
    config = space.sample(trial)
    assert (config.n_hidden, config.n_units, config.activation, config.optimizer) == (2, 64, "elu", "nesterov")
    assert config.batch_size == 64 and config.patience == 5


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("params:\n  n_hiden: 3\n", ["params.n_hiden", "Did you mean 'n_hidden'"]),
        ("params:\n  n_hidden: {low: 5, high: 2}\n", ["params.n_hidden", "low (5) must be <= high (2)"]),
        ("params:\n  learning_rate: {low: 0.0, high: 0.1, log: true}\n", ["params.learning_rate"]),
        ("params:\n  learning_rate: {low: 1e-4, high: 0.1}\n", ["params.learning_rate.low", "1.0e-4"]),
        ("params:\n  n_units: {low: 8, high: 64, log: true, step: 8}\n", ["'step' and 'log: true'"]),
        ("params:\n  activation: {choices: [relu, swishh]}\n", ["params.activation.choices[1]", "Did you mean 'swish'"]),
        ("params:\n  n_hidden: {low: 1.5, high: 3}\n", ["params.n_hidden.low", "whole number"]),
        ("params:\n  dropout: {low: 0.0, high: 1.5}\n", ["params.dropout.high", "[0, 1)"]),
        ("params:\n  momentum: {low: 0.5, high: 0.9, when: {optimizer: sgd}}\n  optimizer: sgd\n",
         ["params.momentum.when.optimizer", "listed before"]),
        ("params:\n  activation: {choices: [relu]}\nconstraints:\n  - if: {activation: relu}\n    then: {initializr: he}\n",
         ["constraints[0].then", "Did you mean 'initializer'"]),
        ("params: {}\n", ["params: must be a non-empty mapping"]),
        (("params:\n  l2: {choices: [0.0, 0.01]}\n  optimizer: {choices: [sgd, adam]}\nconstraints:\n"
          "  - if: {optimizer: adam}\n    then: {l2: 0.0}\n"), ["constraints[0].then.l2", "list it after them"]),
        ("paramz:\n  n_hidden: 2\n", ["'paramz' is not a top-level key"]),
        ("params:\n  activation: {low: 1, high: 2}\n", ["params.activation", "not a range"]),
        ("params:\n  n_hidden: {log: true}\n", ["params.n_hidden", "'low' and 'high'"]),
        ("params:\n  optimizer: adamm\n", ["params.optimizer", "Did you mean 'adam'"]),
        ("params:\n  batch_size: 0\n", ["params.batch_size", "batch_size must be in [1, inf)"]),
    ],
)
def test_invalid_spaces_name_file_key_path_and_fix(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_space(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "params:\n  n_hidden: {low: 5, high: 2}\n  activation: {choices: [reluu]}\n")
    with pytest.raises(ConfigError, match=r"params.n_hidden.*params.activation"):
        load_space(path)


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "params:\n  n_hidden: {low: 1, high: 2\n  n_units: 3\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+, column \d+"):
        load_space(path)


def test_missing_space_lists_bundled_ones() -> None:
    with pytest.raises(ConfigError, match=r"'nope' not found.*quick"):
        load_space("nope")


def test_space_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError, match="a search space is a mapping"):
        space_from_dict(["n_hidden"])


def test_config_round_trips_and_rejects_unknown_fields() -> None:
    config = TrialConfig(n_hidden=3, piecewise_epochs=(2, 4), piecewise_factors=(1.0, 0.1, 0.01))
    assert TrialConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="Did you mean 'n_units'"):
        TrialConfig.from_dict({"n_unit": 3})
    assert set(config.to_dict()) == set(field_names())


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"optimizer": "adem"}, "Did you mean 'adam'"),
        ({"piecewise_factors": (1.0,)}, "piecewise_factors needs one more value"),
        ({"max_norm": -1.0}, "max_norm must be a positive number or null"),
        ({"rrelu_lower": 0.5, "rrelu_upper": 0.1}, "rrelu_lower (0.5) must be <= rrelu_upper (0.1)"),
        ({"n_hidden": 2.5}, "n_hidden must be a whole number"),
        ({"clipnorm": 1.0, "clipvalue": 1.0}, "clipnorm (1.0) and clipvalue (1.0) exclude each other"),
        ({"momentum_max": 1.2}, "momentum_max must be in [0, 1)"),
    ],
)
def test_config_validation_messages(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrialConfig(**changes)
    assert fragment in str(info.value)


def test_the_whole_number_fields_are_those_whose_type_is_int() -> None:
    from autodnn.config import field_type
    from autodnn.config._values import _INTEGERS, _RANGES

    assert {name for name in field_names() if field_type(name) is int and name in _RANGES} == _INTEGERS
