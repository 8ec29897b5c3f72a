"""What a study optimizes: the metrics, the rule of ``--metric auto``, class weights and chance per metric."""

from __future__ import annotations

import numpy as np
import pytest

from autodnn.errors import ConfigError
from autodnn.metrics import class_weights, classification_figures, default_metric, regression_figures, resolve


def test_auto_picks_balanced_accuracy_only_for_a_rare_class() -> None:
    ten_even = np.repeat(np.arange(10), [97, 100, 100, 100, 100, 100, 100, 100, 100, 103])
    assert default_metric("classification", ten_even, 10)[0] == "accuracy", "9.7% of ten classes is not rare"
    rare = np.array([0] * 940 + [1] * 60)
    name, why = default_metric("classification", rare, 2)
    assert name == "balanced_accuracy" and "6.0%" in why
    assert default_metric("classification", np.array([0] * 850 + [1] * 150), 2)[0] == "accuracy"
    assert default_metric("regression", np.zeros(3), 0)[0] == "rmse"


def test_resolve_names_the_choice_and_refuses_the_other_tasks_metrics() -> None:
    rare = np.array([0] * 940 + [1] * 60)
    metric, weighting, line = resolve("auto", "auto", "classification", rare, 2)
    assert (metric, weighting) == ("balanced_accuracy", "balanced")
    assert line.startswith("Metric: balanced accuracy (auto: the rarest class holds 6.0%")
    assert resolve("roc_auc", "none", "classification", rare, 2)[:2] == ("roc_auc", "none")
    assert resolve("mae", "auto", "regression", np.zeros(3), 0)[2].endswith("searched as validation mae skill, "
                                                                              "which ranks alike.")
    with pytest.raises(ConfigError, match="--metric rmse measures a regression"):
        resolve("rmse", "auto", "classification", rare, 2)
    with pytest.raises(ConfigError, match="--metric roc_auc measures a classification"):
        resolve("roc_auc", "auto", "regression", np.zeros(3), 0)


def test_balanced_weights_make_every_class_weigh_the_same() -> None:
    y = np.array([0] * 90 + [1] * 10)
    weights = class_weights(y, 3)
    assert weights[2] == 0 and weights[0] * 90 == pytest.approx(weights[1] * 10) == pytest.approx(50)


def test_classification_figures_and_the_log_loss_skill() -> None:
    y = np.array([0, 0, 0, 1])
    priors = np.array([0.75, 0.25])
    constant = np.tile(priors, (4, 1))
    at_chance = classification_figures(y, constant, priors)
    assert at_chance["accuracy"] == 0.75 and at_chance["balanced_accuracy"] == 0.5
    assert at_chance["roc_auc"] == 0.5 and at_chance["log_loss_skill"] == pytest.approx(0.0)
    perfect = classification_figures(y, np.eye(2)[y] * 0.98 + 0.01, priors)
    assert perfect["balanced_accuracy"] == 1.0 and perfect["f1_macro"] == 1.0 and perfect["roc_auc"] == 1.0
    assert perfect["log_loss_skill"] > 0.9
    assert np.isnan(classification_figures(y, np.full((4, 2), np.nan), priors)["accuracy"])


def test_regression_figures_in_the_targets_units() -> None:
    actual = np.array([10.0, 20.0, 30.0, 40.0])
    figures = regression_figures(actual, actual + np.array([1.0, -1.0, 1.0, -1.0]), float(np.median(actual)))
    assert figures["rmse"] == 1.0 and figures["mae"] == 1.0
    assert figures["r2"] == pytest.approx(1 - 4 / 500)
    assert figures["mae_skill"] == pytest.approx(1 - 1 / 10)


def test_chance_is_the_constant_answers_score_for_the_searched_metric() -> None:
    from autodnn.study.chance import Chance

    y_train = np.array([0] * 97 + [1] * 3)
    y_valid = np.array([0] * 194 + [1] * 6)
    accuracy = Chance.of(y_train, y_valid, 2)
    assert accuracy.score == pytest.approx(0.97) and accuracy.noise > 0
    balanced = Chance.of(y_train, y_valid, 2, "balanced_accuracy")
    assert balanced.score == 0.5
    # A trial at 0.97 accuracy that found most of the rare class has learned under balanced accuracy.
    assert balanced.learned(0.8, balanced.loss + 1) and not balanced.learned(0.5, balanced.loss + 1)
    assert Chance.of(y_train, y_valid, 2, "log_loss_skill").score == pytest.approx(0.0, abs=0.05)


def test_the_weighted_loss_is_kerass_class_weight() -> None:
    import keras

    from autodnn.training.losses import WeightedCrossEntropy

    y = np.array([0, 1, 1, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]], dtype="float32")
    weights = [2.0, 0.5, 1.0]
    plain = keras.losses.sparse_categorical_crossentropy(y, p)
    expected = float(np.mean(np.asarray(plain) * np.take(weights, y)))
    assert float(WeightedCrossEntropy(weights)(y, p)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_a_rare_class_is_searched_on_balanced_accuracy_and_never_stopped_at_chance_once_learned(
        run_cli, tmp_path) -> None:
    import optuna
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 1500
    x = rng.normal(size=(n, 4))
    rare = rng.random(n) < 1 / (1 + np.exp(-(2.5 * x[:, 0] - 1.5 * x[:, 1] - 4.5)))
    frame = pd.DataFrame(x, columns=list("abcd")).assign(y=np.where(rare, "rare", "common"))
    frame.to_csv(tmp_path / "rare.csv", index=False)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    done = run_cli("search", "--dataset", f"csv:{tmp_path / 'rare.csv'}", "--target", "y", "--space", "quick",
                   "--n-trials", "5", "--max-epochs", "8", "--seeds", "2", "--no-reference", "--storage", url,
                   "--study", "r")
    assert done.code == 0, done.err
    assert "Metric: balanced accuracy (auto: the rarest class holds" in done.out
    study = optuna.load_study(study_name="r", storage=url)
    assert study.metric_names == ["val_balanced_accuracy"]
    for trial in study.trials:
        curve = trial.user_attrs.get("history", {}).get("val_balanced_accuracy", [])
        if "never beat chance" in trial.user_attrs.get("reason", ""):
            assert max(curve, default=0.5) <= 0.5 + 1e-9, (trial.number, curve)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.value == pytest.approx(trial.user_attrs["result"]["val_balanced_accuracy"])
    best = study.user_attrs["evaluation"]["entries"][0]
    assert best["test_balanced_accuracy_mean"] >= 0.65
    assert f"test_balanced_accuracy {100 * best['test_balanced_accuracy_mean']:5.1f}%" in done.out


def test_under_class_weights_chance_is_the_weighted_loss_of_the_best_constant() -> None:
    from autodnn.study.chance import Chance

    y_train = np.array([0] * 97 + [1] * 3)
    y_valid = np.array([0] * 194 + [1] * 6)
    weights = class_weights(y_train, 2)
    weighted = Chance.of(y_train, y_valid, 2, "balanced_accuracy", weights)
    # Balanced weights make the best constant answer even odds: every row's weighted loss is its weight x log 2.
    assert weighted.loss == pytest.approx(np.log(2) * np.mean(weights[y_valid]))
    plain = Chance.of(y_train, y_valid, 2, "balanced_accuracy")
    assert plain.loss < 0.2 < weighted.loss, "the priors' unweighted log loss is no level for a weighted loss"
