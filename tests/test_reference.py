"""The honest reference on tables: gradient-boosted trees beside the nets, and the plain lines that say what
the evaluation found (trees won; nothing beat the most frequent class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
from markupsafe import escape

from autodnn.datasets import Dataset
from autodnn.evaluate import plain_lines
from autodnn.training.reference import TITLE, applies, beats_majority

SEARCH = ("search", "--dataset", "iris", "--space", "quick", "--n-trials", "1", "--max-epochs", "2", "--seeds", "2",
          "--no-baselines", "--study", "t")


def test_a_table_gets_trees_with_the_nets_seeds_and_early_stopping_on_its_validation_split(
        run_cli, sqlite_url: str, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from autodnn.study.options import dataset_of

    result = run_cli(*SEARCH, "--storage", sqlite_url)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    evaluation = study.user_attrs["evaluation"]
    trees = evaluation["reference"]
    assert trees["title"] == TITLE and [r["seed"] for r in trees["runs"]] == evaluation["seeds"]
    assert all(e["kind"] != "reference" for e in evaluation["entries"]), "never among the configurations"
    data = dataset_of(study)
    for run in trees["runs"]:
        refit = HistGradientBoostingClassifier(early_stopping=True, random_state=run["seed"])
        refit.fit(data.x_train, data.y_train, X_val=data.x_valid, y_val=data.y_valid)
        assert run["epochs"] == refit.n_iter_, "the trees kept are chosen on the nets' validation split"
        assert run["test_accuracy"] == np.mean(refit.predict(data.x_test) == data.y_test)
    assert "trees " in result.out and TITLE in result.out
    assert plain_lines(evaluation)[0] in result.out
    shown = run_cli("show", "t", "--storage", sqlite_url)
    assert shown.code == 0 and TITLE in shown.out
    page = tmp_path / "t.html"
    assert run_cli("report", "t", "--storage", sqlite_url, "-o", page).code == 0
    html = page.read_text()
    assert TITLE in html and str(escape(plain_lines(evaluation)[0])) in html
    again = run_cli("evaluate", "t", "--storage", sqlite_url, "--seeds", "1", "--no-reference")
    assert again.code == 0, again.err
    assert "reference" not in optuna.load_study(study_name="t", storage=sqlite_url).user_attrs["evaluation"]


def test_images_get_no_trees() -> None:
    x = np.zeros((4, 12), dtype=np.float32)
    y = np.array([0, 1, 0, 1], dtype=np.int32)
    images = Dataset(name="tiny", x_train=x, y_train=y, x_valid=x, y_valid=y, x_test=x, y_test=y,
                     class_names=("a", "b"), fingerprint="f", source="test", image_shape=(2, 2, 3))
    table = Dataset(name="tiny", x_train=x, y_train=y, x_valid=x, y_valid=y, x_test=x, y_test=y,
                    class_names=("a", "b"), fingerprint="f", source="test")
    assert not applies(images) and applies(table)


def _evaluation(best: float, trees: float | None, *, beats: bool = True, spread: float = 0.005) -> dict:
    evaluation = {"entries": [{"name": "best", "test_accuracy_mean": best, "test_accuracy_std": spread}],
                  "majority": 0.525,
                  "beats_majority": beats}
    if trees is not None:
        evaluation["reference"] = {"name": "trees", "test_accuracy_mean": trees}
    return evaluation


def test_the_plain_lines_say_who_won_and_whether_anything_beat_the_most_frequent_class() -> None:
    assert plain_lines(_evaluation(0.80, 0.812))[0].startswith("Gradient-boosted trees beat the best net by 1.2")
    within = plain_lines(_evaluation(0.80, 0.812, spread=0.02))[0]
    assert within.startswith("Gradient-boosted trees score 1.2 points") and "within the seeds' spread" in within
    assert plain_lines(_evaluation(0.85, 0.81))[0].startswith("The best net beats gradient-boosted trees by 4.0")
    assert plain_lines(_evaluation(0.85, None)) == []
    tie = "The best net and gradient-boosted trees score the same test accuracy."
    assert plain_lines(_evaluation(0.85, 0.85)) == [tie]
    nothing = plain_lines(_evaluation(0.50, None, beats=False))
    assert nothing == [nothing[0]] and "most frequent class (52.5% of validation rows)" in nothing[0]


def test_beating_the_most_frequent_class_takes_more_than_the_seeds_spread() -> None:
    assert beats_majority([{"val_accuracy": 0.60}, {"val_accuracy": 0.62}], 0.55)
    assert not beats_majority([{"val_accuracy": 0.50}, {"val_accuracy": 0.62}], 0.55), "within one spread"
    assert not beats_majority([{"val_accuracy": float("nan")}], 0.55)
