"""The honest reference on tables: gradient-boosted trees beside the nets, and the plain lines that say what
the evaluation found (trees won; nothing beat the most frequent class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from markupsafe import escape

from autodnn.cli._output import evaluation_table
from autodnn.datasets import Dataset
from autodnn.evaluate import plain_lines
from autodnn.training.reference import (
    TITLE,
    applies,
    beats_majority,
    estimated_seconds,
    majority_share,
    seed_spread,
)

SEARCH = ("search", "--dataset", "iris", "--space", "quick", "--n-trials", "1", "--max-epochs", "2", "--seeds", "2",
          "--no-baselines", "--study", "t")
TREES_WIN = "Gradient-boosted trees beat the best net by"
NOTHING = "No network beat always answering the most frequent class"


def test_a_table_gets_trees_with_the_nets_seeds_and_early_stopping_on_its_validation_split(
        run_cli, sqlite_url: str, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from autodnn.study.options import dataset_of

    result = run_cli(*SEARCH, "--storage", sqlite_url)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    evaluation = study.user_attrs["evaluation"]
    trees = evaluation["reference"]
    assert trees["kind"] == "reference" and trees["title"] == TITLE
    assert len(trees["runs"]) == 2 and [r["seed"] for r in trees["runs"]] == evaluation["seeds"]
    assert [r["seed"] for r in evaluation["entries"][0]["runs"]] == evaluation["seeds"], "the nets' seeds"
    assert all(e["kind"] != "reference" for e in evaluation["entries"]), "never among the configurations"
    assert {"test_accuracy_mean", "test_accuracy_std", "epochs_mean", "seconds_mean"} <= set(trees)
    data = dataset_of(study)
    for run in trees["runs"]:
        assert {"val_accuracy", "val_loss", "test_accuracy", "seconds", "iterations"} <= set(run)
        refit = HistGradientBoostingClassifier(early_stopping=True, random_state=run["seed"])
        refit.fit(data.x_train, data.y_train, X_val=data.x_valid, y_val=data.y_valid)
        assert run["iterations"] == refit.n_iter_, "the rounds kept are chosen on the nets' validation split"
        assert run["val_accuracy"] == np.mean(refit.predict(data.x_valid) == data.y_valid)
        assert run["test_accuracy"] == np.mean(refit.predict(data.x_test) == data.y_test)
    assert evaluation["majority"] == pytest.approx(np.bincount(data.y_valid).max() / len(data.y_valid))
    assert "trees " in result.out and TITLE in result.out
    assert plain_lines(evaluation)[0] in result.out
    shown = run_cli("show", "t", "--storage", sqlite_url)
    assert shown.code == 0 and TITLE in shown.out and plain_lines(evaluation)[0] in shown.out
    page = tmp_path / "t.html"
    assert run_cli("report", "t", "--storage", sqlite_url, "-o", page).code == 0
    html = page.read_text()
    assert TITLE in html and str(escape(plain_lines(evaluation)[0])) in html

    def has_trees() -> bool:
        return "reference" in optuna.load_study(study_name="t", storage=sqlite_url).user_attrs["evaluation"]

    again = run_cli("evaluate", "t", "--storage", sqlite_url, "--seeds", "1", "--no-reference")
    assert again.code == 0, again.err
    assert not has_trees() and TITLE not in again.out
    resumed = run_cli(*SEARCH, "--storage", sqlite_url, "--seeds", "1", "--no-reference")
    assert resumed.code == 0, resumed.err
    assert not has_trees(), "a resumed search's --no-reference is stored and followed"
    assert run_cli("evaluate", "t", "--storage", sqlite_url, "--seeds", "1").code == 0
    assert not has_trees(), "evaluate follows the study's --no-reference"


def _dataset(y_valid: list[int], **kwargs: Any) -> Dataset:
    x = np.zeros((len(y_valid), 12), dtype=np.float32)
    y = np.array(y_valid, dtype=np.int32)
    return Dataset(name="tiny", x_train=x, y_train=np.zeros_like(y), x_valid=x, y_valid=y, x_test=x, y_test=y,
                   class_names=("a", "b"), fingerprint="f", source="test", **kwargs)


def test_images_get_no_trees() -> None:
    assert not applies(_dataset([0, 1, 0, 1], image_shape=(2, 2, 3)))
    assert applies(_dataset([0, 1, 0, 1]))


def test_the_majority_share_is_that_of_the_validation_labels() -> None:
    # Training holds class 0 only; validation is mostly class 1, whose share is the bar.
    assert majority_share(_dataset([1, 1, 1, 0])) == 0.75


def _entry(name: str, val: tuple[float, ...], test: tuple[float, ...] = ()) -> dict[str, Any]:
    test = test or val
    return {"name": name, "kind": "best" if name == "best" else "baseline", "title": name,
            "runs": [{"seed": i, "val_accuracy": v, "test_accuracy": t, "epochs": 3, "seconds": 1.0}
                     for i, (v, t) in enumerate(zip(val, test, strict=True))]}


def test_beating_the_most_frequent_class_takes_more_than_the_spread_of_the_best_s_seeds() -> None:
    assert seed_spread([{"val_accuracy": 0.5}, {"val_accuracy": 0.7}]) == pytest.approx(0.1414, abs=1e-4)
    assert seed_spread([{"val_accuracy": 0.5}]) == 0.0
    assert beats_majority([_entry("best", (0.60, 0.62))], 0.55)
    assert not beats_majority([_entry("best", (0.50, 0.62))], 0.55), "mean 0.56 is within the best's spread"
    # A baseline counts too, against the best's spread.
    assert beats_majority([_entry("best", (0.55, 0.56)), _entry("book-3e", (0.70, 0.71))], 0.55)
    assert not beats_majority([_entry("best", (float("nan"),))], 0.55)


def _evaluation(best: float, trees: float | None, *, beats: bool = True, spread: float = 0.005) -> dict:
    evaluation: dict[str, Any] = {
        "entries": [{"name": "best", "test_accuracy_mean": best, "test_accuracy_std": spread}],
        "majority": 0.525, "beats_majority": beats}
    if trees is not None:
        evaluation["reference"] = {"name": "trees", "test_accuracy_mean": trees}
    return evaluation


def test_the_plain_lines_say_who_won_and_whether_anything_beat_the_most_frequent_class() -> None:
    won = plain_lines(_evaluation(0.80, 0.812))
    assert len(won) == 1 and won[0].startswith(f"{TREES_WIN} 1.2 points")
    within = plain_lines(_evaluation(0.80, 0.812, spread=0.02))[0]
    assert within.startswith("Gradient-boosted trees score 1.2 points") and "within the seeds' spread" in within
    lost = plain_lines(_evaluation(0.85, 0.81))
    assert lost == ["The best net beats gradient-boosted trees by 4.0 points of test accuracy."]
    assert not any(TREES_WIN in line for line in lost)
    assert plain_lines(_evaluation(0.85, None)) == []
    tie = "The best net and gradient-boosted trees score the same test accuracy."
    assert plain_lines(_evaluation(0.85, 0.85)) == [tie]
    nothing = plain_lines(_evaluation(0.50, None, beats=False))
    assert len(nothing) == 1 and nothing[0].startswith(NOTHING)
    assert "(52.5% of validation rows)" in nothing[0]


def _record(best_val: tuple[float, ...], best_test: tuple[float, ...], trees_test: tuple[float, ...],
            majority: float) -> dict[str, Any]:
    """An evaluation as :func:`autodnn.evaluate.evaluate` stores one, built by hand."""
    from autodnn.evaluate import summarize

    best = _entry("best", best_val, best_test)
    best.update(trial_number=0, title="Best found (trial 0)", config={"n_hidden": 2, "n_units": 16})
    best.update(summarize(best["runs"]))
    trees = {"name": "trees", "title": TITLE, "kind": "reference",
             "runs": [{**r, "test_accuracy": t, "val_loss": 0.5, "test_loss": 0.5, "iterations": 30, "epochs": 30}
                      for r, t in zip(_entry("trees", best_val)["runs"], trees_test, strict=True)]}
    trees.update(summarize(trees["runs"]))
    return {"seeds": [0, 1], "max_epochs": 2, "entries": [best], "reference": trees, "majority": majority,
            "majority_spread": seed_spread(best["runs"]), "beats_majority": beats_majority([best], majority),
            "mc_samples": 0, "model": None, "selection": {"rule": "", "n_valid": 30, "finalists": []}}


def test_the_final_table_shows_the_trees_row_and_says_when_trees_win() -> None:
    trees_win = evaluation_table(_record((0.90, 0.91), (0.80, 0.81), (0.90, 0.90), majority=0.40))
    assert "trees      test_accuracy  90.0% ± 0.0  rounds  30.0" in trees_win and TITLE in trees_win
    assert "best is -9.5 points" in trees_win
    assert f"{TREES_WIN} 9.5 points" in trees_win and NOTHING not in trees_win
    net_wins = evaluation_table(_record((0.90, 0.91), (0.95, 0.96), (0.90, 0.90), majority=0.40))
    assert "best is +5.5 points" in net_wins and TREES_WIN not in net_wins
    nothing = evaluation_table(_record((0.50, 0.56), (0.50, 0.56), (0.50, 0.50), majority=0.525))
    assert NOTHING in nothing and "(52.5% of validation rows)" in nothing


def test_the_report_shows_the_trees_row_and_the_plain_lines_from_the_study_alone() -> None:
    from test_report import make_study

    from autodnn.report import gather, render

    study = make_study(dataset="iris")
    evaluation = study.user_attrs["evaluation"]
    record = _record((0.5, 0.56), (0.5, 0.56), (0.99, 0.99), majority=0.525)
    study.set_user_attr("evaluation", {**evaluation, "reference": record["reference"], "majority": 0.525,
                                       "beats_majority": False})
    data = gather(study)
    page = render([data])
    assert data.reference is not None and data.reference.mean == pytest.approx(0.99)
    assert '<tr class="reference"><td>' + TITLE in page
    assert data.plain[0].startswith(TREES_WIN) and str(escape(data.plain[0])) in page
    assert data.plain[1].startswith(NOTHING) and str(escape(data.plain[1])) in page
    assert all(c.baseline.name != "trees" for c in data.headline.comparisons), "never a baseline of the book"
    assert data.headline.best.name == "best"
    plain = make_study(dataset="iris")
    untouched = gather(plain)
    assert untouched.reference is None and untouched.plain == []
    assert data.headline.verdict == untouched.headline.verdict, "the headline against the book stays as it was"


def test_the_time_budget_counts_the_trees_on_tables_only() -> None:
    from autodnn.tuning.budget import TimeBudget

    study = optuna.create_study(direction="maximize")
    table = _dataset([0, 1] * 500)
    images = _dataset([0, 1] * 500, image_shape=(2, 2, 3))
    without = TimeBudget(total=600.0, seeds=3, max_epochs=5).evaluation_seconds(study, table)
    with_trees = TimeBudget(total=600.0, seeds=3, max_epochs=5, reference=True).evaluation_seconds(study, table)
    assert with_trees - without == pytest.approx(3 * estimated_seconds(1000, 12, 2))
    assert TimeBudget(total=600.0, seeds=3, max_epochs=5, reference=True).evaluation_seconds(study, images) == without
    assert estimated_seconds(1000, 12, 2) < 5, "trees on a small table take seconds"
    assert estimated_seconds(1000, 12, 10) > estimated_seconds(1000, 12, 2), "one tree a class each round"


def test_the_command_and_the_report_tell_one_verdict_against_the_strongest_baseline() -> None:
    from autodnn.report._measures import measure_of
    from autodnn.report._scores import headline
    from autodnn.study.verdict import paired_difference, verdict_line

    def entry(name: str, runs: dict[int, float]) -> dict[str, Any]:
        made = {"name": name, "title": name, "kind": "best" if name == "best" else "baseline",
                "runs": [{"seed": s, "test_accuracy": v, "epochs": 5, "seconds": 1.0} for s, v in runs.items()]}
        from autodnn.evaluate import summarize

        return {**made, **summarize(made["runs"])}

    # A baseline's first run is its search run (its own seed); only the retrained seeds pair with the best's.
    best = entry("best", {10: 0.90, 11: 0.92, 12: 0.91})
    weak = entry("book-3e", {2: 0.70, 11: 0.72, 12: 0.71})
    strong = entry("book-2e", {1: 0.95, 11: 0.88, 12: 0.89})
    assert paired_difference(best, strong, "test_accuracy") == (pytest.approx(0.03), pytest.approx(0.02 ** 0.5 / 10), 2)
    evaluation = {"entries": [best, weak, strong], "seeds": [10, 11, 12], "task": "classification",
                  "metric": "accuracy"}
    line = verdict_line(evaluation)
    assert line == ("Against the strongest book baseline, book-2e: best minus it +3.0 ± 1.4 points of test "
                    "accuracy (paired over 2 seeds); the best is ahead.")
    table = evaluation_table(evaluation)
    assert line in table and "book-2e    test_accuracy  90.7% ± 3.8" in table and "best is +3.0 points" in table
    report = headline([best, weak, strong], [10, 11, 12], None, {}, measure_of("classification", "accuracy",
                                                                               evaluated=True))
    assert report.verdict.startswith("The best configuration found beats the 2nd-edition defaults by 3.0")
