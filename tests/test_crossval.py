"""Cross-validation on small data: the folds of a dataset, and candidates trained and scored on them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.datasets import folds, load_dataset
from autodnn.training.crossval import cross_validate, rank_key


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris")


def test_the_folds_partition_the_training_and_validation_rows_by_class_and_leave_the_test_split(iris) -> None:
    parts = folds(iris, 5, seed=3)
    rows = np.concatenate([iris.x_train, iris.x_valid])
    assert len(parts) == 5 and len({p.fingerprint for p in parts}) == 5
    held_out = np.concatenate([p.x_valid for p in parts])
    assert sorted(map(tuple, held_out)) == sorted(map(tuple, rows)), "every row held out exactly once"
    for part in parts:
        assert len(part.x_train) + len(part.x_valid) == len(rows)
        assert part.x_test is iris.x_test and part.y_test is iris.y_test
        # Stratified: each class's share of a fold's held-out rows is its share of all rows, within one row.
        labels = np.concatenate([iris.y_train, iris.y_valid])
        expected = np.bincount(labels) / len(labels) * len(part.y_valid)
        assert np.all(np.abs(np.bincount(part.y_valid, minlength=3) - expected) <= 1)
    assert [p.fingerprint for p in folds(iris, 5, seed=3)] == [p.fingerprint for p in parts]
    assert not np.array_equal(folds(iris, 5, seed=4)[0].x_valid, parts[0].x_valid), "the seed shuffles"


def test_a_regression_is_folded_without_strata_and_too_many_folds_are_refused() -> None:
    diabetes = load_dataset("diabetes")
    assert diabetes.is_regression
    parts = folds(diabetes, 4)
    assert sum(len(p.y_valid) for p in parts) == diabetes.sizes["train"] + diabetes.sizes["valid"]
    with pytest.raises(ValueError, match="folds"):
        folds(dataclasses.replace(diabetes, x_train=diabetes.x_train[:1], y_train=diabetes.y_train[:1],
                                  x_valid=diabetes.x_valid[:1], y_valid=diabetes.y_valid[:1]), 3)


def test_each_candidate_trains_once_a_fold_with_the_folds_seeds_and_never_reads_the_test_split(iris) -> None:
    # A test split of NaN: any figure read from it would be NaN.
    blind = dataclasses.replace(iris, x_test=np.full_like(iris.x_test, np.nan))
    good = {"name": "good", "config": TrialConfig(n_hidden=1, n_units=32, optimizer="adam",
                                                 learning_rate=0.01, lr_finder=False).to_dict()}
    stuck = {"name": "stuck", "config": TrialConfig(n_hidden=1, n_units=4, optimizer="sgd",
                                                  learning_rate=1e-7, lr_finder=False).to_dict()}
    seen: list[tuple[str, int]] = []
    cross_validate([good, stuck], blind, score="val_accuracy", max_epochs=5, seed=100, folds=3,
                   callbacks={"on_run": lambda entry, run: seen.append((entry["name"], run["seed"]))})
    assert seen == [(f"{name} fold {i}/3", 99 + i) for name in ("good", "stuck") for i in (1, 2, 3)]
    for candidate in (good, stuck):
        runs = candidate["cv"]["runs"]
        assert [r["fold"] for r in runs] == [1, 2, 3] and all(np.isfinite(r["val_accuracy"]) for r in runs)
        assert candidate["cv"]["val_accuracy_mean"] == pytest.approx(np.mean([r["val_accuracy"] for r in runs]))
        assert not any(key.startswith("test") for run in runs for key in run)
    assert good["cv"]["val_accuracy_mean"] > stuck["cv"]["val_accuracy_mean"]
    assert min([stuck, good], key=lambda c: rank_key(c, "val_accuracy")) is good


def test_a_candidate_that_diverges_on_one_fold_ranks_last_whatever_its_other_folds(
        iris, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from autodnn.training import trainer

    def fake_train(config, dataset, *, seed, **_):
        broken = config.n_units == 8 and seed == 2  # the 8-unit net diverges on the third fold
        score = math.nan if broken else (0.99 if config.n_units == 8 else 0.80)
        return SimpleNamespace(score=score, val_loss=math.nan if broken else 0.5, epochs=3)

    monkeypatch.setattr(trainer, "train", fake_train)
    fragile = {"name": "fragile", "config": TrialConfig(n_units=8).to_dict()}
    steady = {"name": "steady", "config": TrialConfig(n_units=16).to_dict()}
    cross_validate([fragile, steady], iris, score="val_accuracy", max_epochs=3, seed=0, folds=4)
    assert math.isnan(fragile["cv"]["val_accuracy_mean"]) and steady["cv"]["val_accuracy_mean"] == pytest.approx(0.8)
    assert min([fragile, steady], key=lambda c: rank_key(c, "val_accuracy")) is steady
