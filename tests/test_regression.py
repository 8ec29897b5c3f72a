"""Regression: which targets are numbers to predict, how they are split and scaled, trained, scored and evaluated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from autodnn.datasets import load_dataset
from autodnn.datasets._targets import resolve_task
from autodnn.errors import DatasetError


@pytest.mark.parametrize(("values", "task", "expected"), [
    (np.array(["a", "b", "a"]), "auto", "classification"),
    (np.array([True, False, True]), "auto", "classification"),
    (np.array([0.5, 1.25, 3.0]), "auto", "regression"),
    (np.arange(300) % 5, "auto", "classification"),  # five codes in 300 rows
    (np.arange(300) % 25, "regression", "regression"),
    (np.arange(300) % 400, "classification", "classification"),
])
def test_the_task_follows_the_documented_rule(values: np.ndarray, task: str, expected: str) -> None:
    assert resolve_task(values, task, "t") == expected


def test_many_whole_numbers_ask_which_task_is_meant() -> None:
    with pytest.raises(DatasetError, match="300 distinct whole numbers in 300 rows.*--task regression"):
        resolve_task(np.arange(300), "auto", "t")
    # 21 values in 1,000 rows is under 5% of the rows: class codes.
    assert resolve_task(np.arange(1000) % 21, "auto", "t") == "classification"


def _table(path: Path, n: int = 400) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n)})
    frame["price"] = 1000 + 250 * frame["a"] + 100 * (frame["b"] == "x") + rng.normal(0, 20, n)
    frame.to_csv(path, index=False)
    return path


def test_a_regression_target_is_standardized_on_training_rows_and_read_back_in_its_units(tmp_path: Path) -> None:
    path = _table(tmp_path / "t.csv")
    data = load_dataset(f"csv:{path}", target="price")
    raw = pd.read_csv(path)["price"].to_numpy()
    assert data.is_regression and data.n_outputs == 1 and data.class_names == ()
    assert data.y_train.dtype == np.float32
    assert abs(float(data.y_train.mean())) < 1e-5 and float(data.y_train.std()) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(data.in_target_units(data.y_test), raw[data.test_rows], rtol=1e-6)
    # The validation and test parts span the target's range (split on its quantile bins).
    for part in (data.y_valid, data.y_test):
        assert part.min() < -1 and part.max() > 1


def test_a_regression_trains_to_the_r2_it_reports_in_the_targets_units(tmp_path: Path) -> None:
    from autodnn.config import TrialConfig
    from autodnn.training.trainer import train

    data = load_dataset(f"csv:{_table(tmp_path / 't.csv')}", target="price")
    result = train(TrialConfig(n_hidden=1, n_units=32, epochs=40, batch_size=32), data, max_epochs=40, seed=0,
                   evaluate_test=True)
    figures = result.figures
    assert result.searched == "r2" and result.score == pytest.approx(figures["val_r2"], abs=1e-4)
    assert figures["test_r2"] > 0.9, figures
    actual = data.in_target_units(data.y_test)
    # RMSE² = (1 - R²) x the split's variance, both in the target's units.
    assert figures["test_rmse"] ** 2 == pytest.approx((1 - figures["test_r2"]) * actual.var(), rel=1e-3)
    assert figures["test_mae"] <= figures["test_rmse"] and "val_r2" in result.history
    assert np.isnan(result.val_accuracy) and result.test_accuracy is None


@pytest.mark.slow
def test_a_regression_search_evaluates_the_book_and_trees_in_the_targets_units(run_cli, tmp_path: Path) -> None:
    path = _table(tmp_path / "t.csv")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    done = run_cli("search", "--dataset", f"csv:{path}", "--target", "price", "--space", "quick", "--n-trials", "2",
                   "--max-epochs", "4", "--seeds", "2", "--storage", url, "--study", "r")
    assert done.code == 0, done.err
    assert "Metric: RMSE (auto: a regression), searched as validation r2, which ranks alike." in done.out
    evaluation = optuna.load_study(study_name="r", storage=url).user_attrs["evaluation"]
    names = [entry["name"] for entry in evaluation["entries"]]
    assert names == ["best", "book-2e", "book-3e", "book-selu", "book-ch10"]
    assert evaluation["task"] == "regression" and evaluation["metric"] == "rmse"
    trees = evaluation["reference"]
    assert trees["test_rmse_mean"] < 60, "trees fit this table to about its noise (20)"
    for entry in [*evaluation["entries"], trees]:
        row = next(line for line in done.out.splitlines() if line.startswith(f"  {entry['name']:<10} test_rmse"))
        assert f"test_rmse {entry['test_rmse_mean']:.4g}" in row and f"r2 {entry['test_r2_mean']:.3f}" in row
    assert "test_accuracy" not in done.out
