"""How the final evaluation picks the best configuration: on small validation sets, among the finalists and the
book's baselines by cross-validation; elsewhere against the baselines trained with the same seeds; on validation
only."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from autodnn.config import SMALL_VALIDATION, TrialConfig
from autodnn.evaluate._choice import (
    against_the_book,
    choose_best,
    chosen_baseline,
    contenders,
    finalists,
    searched_entry,
)
from autodnn.study.verdict import plain_lines, verdict_line


def _study(values: dict[int, float]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for units, value in values.items():
        config = TrialConfig(n_units=units).to_dict()
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"config": config}))
    study.add_trial(optuna.trial.create_trial(value=0.99, user_attrs={"config": TrialConfig().to_dict(),
                                                                      "baseline": "book-2e"}))
    return study


def _fake_retrain(calls: list[int]):
    """Stands in for training the chosen entry with every seed: records which trial trained."""

    def retrain(entry: dict) -> list[bytes]:
        calls.append(entry["trial_number"])
        entry["runs"] = [{"val_accuracy": 0.5, "val_loss": 1.0, "test_accuracy": 0.5}] * 2
        return [b"model"] * 2

    return retrain


def _cross_validated(study: optuna.Study, cv: dict[int, tuple[float, float]]) -> tuple[list[dict], list[dict]]:
    """The study's entries and contenders on 144 validation rows, each contender given the mean (validation
    accuracy, loss) over its folds from ``cv`` (by trial number) as :func:`cross_validate` would store it."""
    entries = [searched_entry(study.trials[1]), {"name": "book-2e", "kind": "baseline", "trial_number": 4,
                                         "config": TrialConfig().to_dict()}]
    candidates = contenders(study, entries, 144)
    for candidate in candidates:
        accuracy, loss = cv[candidate["trial_number"]]
        candidate["cv"] = {"folds": 5, "runs": [], "val_accuracy_mean": accuracy, "val_loss_mean": loss}
    return entries, candidates


def test_finalists_are_the_top_searched_trials_with_distinct_configurations() -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93, 256: 0.80})
    assert [t.number for t in finalists(study)] == [1, 2, 0]  # the baseline (0.99) is not a finalist


def test_contenders_are_the_finalists_and_the_baselines_on_small_validation_only() -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93, 256: 0.80})
    entries = [searched_entry(study.trials[1]), {"name": "book-2e", "kind": "baseline", "trial_number": 4, "config": {}}]
    assert [c["name"] for c in contenders(study, entries, 144)] == ["trial 1", "trial 2", "trial 0", "book-2e"]
    assert contenders(study, entries, SMALL_VALIDATION) == []
    alone = _study({32: 0.90})
    assert contenders(alone, entries[:1], 144) == [], "one configuration: nothing to choose between"


def test_on_small_validation_the_best_cross_validated_finalist_is_retrained_alone() -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93, 256: 0.80})
    entries, candidates = _cross_validated(study, {0: (0.91, 0.3), 1: (0.92, 0.3), 2: (0.94, 0.4), 4: (0.90, 0.2)})
    calls: list[int] = []
    files, selection = choose_best(entries, candidates, 144, _fake_retrain(calls), "val_accuracy")
    # Trial 1 had the search's best single run; over the folds trial 2 validates best.
    assert calls == [2] and entries[0]["trial_number"] == 2 and entries[0]["name"] == "best"
    assert entries[0]["cv"]["val_accuracy_mean"] == 0.94 and files == [b"model"] * 2
    assert [f["name"] for f in selection["finalists"]] == ["trial 2", "trial 1", "trial 0", "book-2e"]
    assert selection["chosen"] == 2 and selection["folds"] == 5 and "baseline" not in selection
    assert "5-fold cross-validation" in selection["rule"] and "144 rows" in selection["rule"]
    assert "test split was not used" in selection["rule"]


def test_equal_cross_validated_accuracy_is_settled_by_the_lower_validation_loss() -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93})
    entries, candidates = _cross_validated(study, {0: (0.93, 0.5), 1: (0.93, 0.2), 2: (0.93, float("nan")),
                                                   4: (0.93, 0.3)})
    choose_best(entries, candidates, 144, _fake_retrain([]), "val_accuracy")
    assert entries[0]["trial_number"] == 1


def test_a_baseline_that_cross_validates_best_is_named_and_no_searched_trial_is_retrained() -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93})
    entries, candidates = _cross_validated(study, {0: (0.91, 0.3), 1: (0.92, 0.3), 2: (0.90, 0.4), 4: (0.95, 0.3)})
    calls: list[int] = []
    files, selection = choose_best(entries, candidates, 144, _fake_retrain(calls), "val_accuracy")
    assert calls == [] and files == []
    assert selection["baseline"] == "book-2e" and selection["chosen"] == 4
    assert selection["searched_best"] == {"trial_number": 1, "val_accuracy_mean": 0.92}


@pytest.mark.parametrize("networks", [[None, b"2e-b"], [None, None]])
def test_a_chosen_baseline_is_the_best_unless_every_run_of_it_was_reused_with_no_network(networks: list) -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93})
    entries, candidates = _cross_validated(study, {0: (0.91, 0.3), 1: (0.92, 0.3), 2: (0.90, 0.4), 4: (0.95, 0.3)})
    _, selection = choose_best(entries, candidates, 144, _fake_retrain([]), "val_accuracy")
    entries[1]["runs"] = [{"seed": 1, "val_accuracy": 0.95, "test_accuracy": 0.9}] * 2
    files = chosen_baseline(entries, candidates, selection, {"book-2e": networks}, "val_accuracy")
    if any(networks):
        assert files == networks and entries[0]["baseline"] == "book-2e" and selection["baseline"] == "book-2e"
    else:  # nothing to keep of book-2e: the searched trial of best mean over the folds is named for retraining
        assert files is None and entries[0]["trial_number"] == 1 and entries[0]["name"] == "best"
        assert "baseline" not in selection and selection["chosen"] == 1
        assert "left no network to keep" in selection["rule"] and "(trial 1)" in selection["rule"]


@pytest.mark.parametrize("n_valid", [SMALL_VALIDATION, 5000])
def test_on_large_validation_the_searchs_best_is_evaluated_alone(n_valid: int) -> None:
    study = _study({32: 0.90, 64: 0.95, 128: 0.93})
    entries = [searched_entry(study.trials[1])]
    calls: list[int] = []
    _, selection = choose_best(entries, contenders(study, entries, n_valid), n_valid, _fake_retrain(calls),
                                "val_accuracy")
    assert calls == [1] and entries[0]["trial_number"] == 1
    assert selection["finalists"] == [] and selection["rule"] == "the search's trial of best validation accuracy"


def test_the_cli_says_how_the_winner_was_chosen_and_shows_the_folds_by_validation(run_cli, sqlite_url: str) -> None:
    result = run_cli("search", "--dataset", "digits", "--space", "quick", "--max-epochs", "3", "--no-baselines",
                     "--n-trials", "4", "--pruner", "none", "--seeds", "1", "--storage", sqlite_url, "--study", "s")
    assert result.code == 0, result.err
    assert "Validation has 144 rows, too few to choose on" in result.out
    assert "The best configuration is the one of best mean validation accuracy over 5-fold" in result.out
    fold_lines = [line for line in result.out.splitlines() if re.match(r"\s+trial \d+ fold [1-5]/5 seed", line)]
    assert len(fold_lines) == 3 * 5 and all("val_accuracy" in line and "test" not in line for line in fold_lines)
    evaluation = optuna.load_study(study_name="s", storage=sqlite_url).user_attrs["evaluation"]
    assert evaluation["entries"][0]["trial_number"] == evaluation["selection"]["chosen"]
    cv = evaluation["entries"][0]["cv"]
    assert [run["fold"] for run in cv["runs"]] == [1, 2, 3, 4, 5]
    assert cv["val_accuracy_mean"] == pytest.approx(sum(r["val_accuracy"] for r in cv["runs"]) / 5)
    html = sqlite_url.replace("sqlite:///", "") + ".html"
    report = run_cli("report", "s", "--storage", sqlite_url, "-o", html)
    assert report.code == 0, report.err
    text = re.sub(r"<[^>]+>", " ", Path(html).read_text())
    table = text[text.index("How the best was chosen"):]
    chosen = f"trial {evaluation['selection']['chosen']}"
    assert re.search(rf"{chosen}\s+0\.\d+\s+\d\.\d+\s+chosen", table), table[:400]
    assert all(f"trial {f['trial_number']}" in table for f in evaluation["selection"]["finalists"])


def test_the_kept_network_is_the_seed_of_median_validation_accuracy_whatever_the_test_says() -> None:
    from autodnn.evaluate import median_run

    validation = [0.91, 0.95, 0.93]  # the median is run 2's
    test = [0.85, 0.80, 0.99]  # ranked otherwise: its median is run 0's
    assert median_run(validation) == 2 and median_run(test) == 0
    assert median_run([0.9, 0.8, 0.95, 0.85]) == 3, "of an even number, the lower of the middle two"
    assert median_run([float("nan"), 0.7, None]) == 1 and median_run([None, float("nan")]) is None


def _run(val: float, test: float, seed: int, loss: float = 0.3) -> dict:
    return {"seed": seed, "val_accuracy": val, "val_loss": loss, "test_accuracy": test}


def _evaluated(best_val: float, book_val: dict[str, float]) -> list[dict]:
    """The best and two baselines, each with two seeds; every test figure ranks opposite to validation."""
    entries = [{"name": "best", "kind": "best", "trial_number": 5,
                "runs": [_run(best_val, 1 - best_val, s) for s in (1, 2)]}]
    for number, (name, val) in enumerate(book_val.items()):
        entries.append({"name": name, "kind": "baseline", "trial_number": number,
                        "runs": [_run(val, 1 - val, s) for s in (1, 2)], "test_accuracy_mean": 1 - val})
    return entries


def test_a_book_baseline_that_validates_better_than_the_searched_best_becomes_the_best() -> None:
    entries = _evaluated(0.90, {"book-2e": 0.93, "book-selu": 0.95})
    book_files = {"book-2e": [b"2e-a", b"2e-b"], "book-selu": [None, b"selu-b"]}
    selection: dict = {"rule": "the search's trial of best validation accuracy", "finalists": []}
    files = against_the_book(entries, [b"searched"] * 2, book_files, "val_accuracy", selection)
    best = entries[0]
    assert best["baseline"] == "book-selu" and best["name"] == "best" and best["kind"] == "best"
    assert best["runs"] == entries[2]["runs"] and best["trial_number"] == entries[2]["trial_number"]
    assert files == [None, b"selu-b"], "the chosen baseline's networks, its reused search run having none"
    assert selection["baseline"] == "book-selu" and selection["searched_best"]["trial_number"] == 5
    assert "test split was not used" in selection["rule"]
    evaluation = {"entries": entries, "metric": "accuracy", "task": "classification"}
    assert plain_lines(evaluation)[0].startswith("The search found nothing better than the book's book-selu")
    # The verdict compares with the strongest of the other baselines, never with the best's own copy.
    assert "strongest other book baseline, book-2e" in verdict_line(evaluation)


@pytest.mark.parametrize("book_val", [0.90, 0.85])
def test_the_searched_best_stays_where_no_baseline_validates_better(book_val: float) -> None:
    entries = _evaluated(0.90, {"book-2e": book_val})
    selection: dict = {"rule": "r", "finalists": []}
    files = against_the_book(entries, [b"searched"] * 2, {"book-2e": [b"a", b"b"]}, "val_accuracy", selection)
    assert files == [b"searched"] * 2 and "baseline" not in entries[0] and selection == {"rule": "r", "finalists": []}


def test_a_validation_tie_goes_to_the_lower_validation_loss() -> None:
    entries = _evaluated(0.90, {"book-2e": 0.90})
    entries[1]["runs"] = [{**r, "val_loss": 0.1} for r in entries[1]["runs"]]
    against_the_book(entries, [b"s"] * 2, {"book-2e": [b"a", b"b"]}, "val_accuracy", {"rule": "r", "finalists": []})
    assert entries[0].get("baseline") == "book-2e"


def test_where_every_searched_configuration_trains_badly_the_best_is_the_book_configuration_and_says_so(
        run_cli, tmp_path) -> None:
    space = tmp_path / "hopeless.yaml"
    # One layer of 4 units at a learning rate too small to move in 3 epochs: the book's baselines (LR finder on)
    # validate better than anything this space holds.
    space.write_text("name: hopeless\nparams:\n  n_hidden: 1\n  n_units: 4\n  optimizer: sgd\n"
                     "  learning_rate: 1.0e-7\n  batch_size: {choices: [16, 32]}\n")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    result = run_cli("search", "--dataset", "iris", "--space", space, "--max-epochs", "3", "--n-trials", "2",
                     "--pruner", "none", "--seeds", "2", "--timeout", "none", "--no-reference", "--storage", storage,
                     "--study", "h")
    assert result.code == 0, result.err
    evaluation = optuna.load_study(study_name="h", storage=storage).user_attrs["evaluation"]
    best, book = evaluation["entries"][0], {e["name"]: e for e in evaluation["entries"][1:]}
    chosen = best["baseline"]
    assert best["runs"] == book[chosen]["runs"] and evaluation["selection"]["baseline"] == chosen
    searched = evaluation["selection"]["searched_best"]["val_accuracy_mean"]
    ranked = evaluation["selection"]["finalists"]  # iris has 12 validation rows: chosen by cross-validation
    assert ranked[0]["name"] == chosen and ranked[0]["val_accuracy_mean"] > searched, "it beat the search's pick"
    assert f"The search found nothing better than the book's {chosen} on validation" in result.out
    assert "strongest other book baseline" in result.out
    assert re.search(r"5-fold cross-validation of the training and validation rows among the search's (top \d|best) "
                     rf"and the book's baselines \({chosen}\)", result.out)
    report = run_cli("report", "h", "--storage", storage, "-o", tmp_path / "r.html")
    assert report.code == 0, report.err
    assert "(nothing searched did better on validation)" in (tmp_path / "r.html").read_text()
