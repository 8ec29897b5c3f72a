"""The report of a regression: told in test RMSE with MAE and R² beside, the chapter-10 baseline, learning curves
of R², and the kept network's predictions against the actual targets, from a real small study."""

from __future__ import annotations

import html
import json
import math
import re
import statistics
from typing import Any

import numpy as np
import optuna
import pytest
from markupsafe import escape

from autodnn.defaults import CHAPTER_10, book_baselines
from autodnn.report import gather, render, write_report
from autodnn.report._scores import BASELINE_TITLES, headline

optuna.logging.set_verbosity(optuna.logging.ERROR)

STUDY = "diabetes-report"


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, str]:
    """A searched and evaluated regression study (diabetes, 2 trials of 3 epochs, 2 seeds) and its storage."""
    import autodnn
    from autodnn.evaluate import evaluate

    url = f"sqlite:///{tmp_path_factory.mktemp('regression') / 'study.db'}"
    study = autodnn.search(dataset="diabetes", space="quick", n_trials=2, max_epochs=3, study=STUDY, storage=url,
                           progress=False)
    evaluate(study, seeds=2)
    return optuna.load_study(study_name=STUDY, storage=url), url


@pytest.fixture(scope="module")
def page(regression: tuple[optuna.Study, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report as ``autodnn report`` writes it."""
    _, url = regression
    path = write_report([STUDY], storage=url, output=tmp_path_factory.mktemp("out") / "report.html")
    return path.read_text(encoding="utf-8")


def units(value: float, std: float | None = None) -> str:
    """A figure in the target's units as the report writes it: 4 significant digits, the spread alike."""
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}" + (f" ± {std:,.{digits}f}" if std is not None else "")


def section(page: str, name: str) -> str:
    return page.split(f'<section id="s0-{name}">', 1)[1].split("</section>", 1)[0]


def figures(page: str) -> dict[str, Any]:
    return json.loads(page.split('id="autodnn-figures">', 1)[1].split("</script>", 1)[0])


def row(page: str, title: str) -> list[str]:
    """The cells' text of the headline table's row of ``title``."""
    table = section(page, "headline").split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    found = table.split(f"<td>{escape(title)}</td>", 1)[1].split("</tr>", 1)[0]
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in found.split("</td>")[:-1]]


def test_the_headline_table_shows_test_rmse_mae_and_r2_of_every_configuration(
        regression: tuple[optuna.Study, str], page: str) -> None:
    evaluation = regression[0].user_attrs["evaluation"]
    assert evaluation["task"] == "regression"
    names = [entry["name"] for entry in evaluation["entries"]]
    assert names[0] == "best" and {"book-2e", "book-3e", "book-selu", "book-ch10"} <= set(names)
    for entry in [*evaluation["entries"], evaluation["reference"]]:
        cells = row(page, entry["title"])
        # trial, RMSE, best minus this, MAE, R², epochs, seconds
        assert cells[1] == units(entry["test_rmse_mean"], entry["test_rmse_std"]), entry["name"]
        assert cells[3] == units(entry["test_mae_mean"], entry["test_mae_std"]), entry["name"]
        assert cells[4] == f"{entry['test_r2_mean']:.3f} ± {entry['test_r2_std']:.3f}", entry["name"]
    header = section(page, "headline").split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert ">test RMSE (mean ± std)<" in header and ">test MAE (mean ± std)<" in header
    assert ">test R² (mean ± std)<" in header and "(test RMSE; % of this)" in header


def test_differences_are_in_the_target_s_units_and_in_percent_of_the_baseline(
        regression: tuple[optuna.Study, str], page: str) -> None:
    evaluation = regression[0].user_attrs["evaluation"]
    best = {run["seed"]: run["test_rmse"] for run in evaluation["entries"][0]["runs"]}
    for entry in evaluation["entries"][1:]:
        theirs = {run["seed"]: run["test_rmse"] for run in entry["runs"] if run["seed"] in best}
        diffs = [best[seed] - rmse for seed, rmse in theirs.items()]
        difference = statistics.fmean(diffs)
        relative = 100 * difference / statistics.fmean(theirs.values())
        shown = row(page, entry["title"])[2]
        number, spread, percent = re.fullmatch(r"([+-][\d,.]+)(?: ± ([\d,.]+))? \(([+-][\d.]+)%\)", shown).groups()
        digits = len(number.split(".")[1]) if "." in number else 0
        assert float(number.replace(",", "")) == pytest.approx(difference, abs=0.51 * 10 ** -digits)
        assert float(percent) == pytest.approx(relative, abs=0.051)
        assert (spread is not None) == (len(diffs) > 1)
    trees = evaluation["reference"]
    gap = evaluation["entries"][0]["test_rmse_mean"] - trees["test_rmse_mean"]
    assert row(page, trees["title"])[2].endswith(f"({100 * gap / trees['test_rmse_mean']:+.1f}%)")


def test_the_verdict_is_told_in_rmse_and_the_headline_never_speaks_of_accuracy(
        regression: tuple[optuna.Study, str], page: str) -> None:
    study = regression[0]
    data = gather(study)
    evaluation = study.user_attrs["evaluation"]
    verdict = data.headline.verdict
    assert data.headline.metric == "test RMSE" and data.headline.measure.lower_is_better
    from autodnn.report._scores import BASELINE_PHRASES
    from autodnn.study.verdict import strongest_baseline

    # Where the best is a book configuration (nothing searched did better on validation), the verdict says so and
    # compares with the strongest of the other baselines.
    own = evaluation["entries"][0].get("baseline")
    strongest = strongest_baseline([e for e in evaluation["entries"] if e["name"] != own], "test_rmse")
    subject = f"The best configuration, {BASELINE_PHRASES[own]} (nothing searched" if own else "The best configuration found "
    assert verdict.startswith(subject) and BASELINE_PHRASES[strongest["name"]] in verdict
    assert "on test RMSE" in verdict and re.search(r"(mean|paired) over (1 of )?2 seeds", verdict)
    best = {run["seed"]: run["test_rmse"] for run in evaluation["entries"][0]["runs"]}
    third = strongest
    diffs = [best[run["seed"]] - run["test_rmse"] for run in third["runs"] if run["seed"] in best]
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    if abs(statistics.fmean(diffs)) > spread:
        assert (" beats " in verdict) == (statistics.fmean(diffs) < 0), "lower RMSE is better"
    headline_html = section(page, "headline")
    assert f'<p class="verdict">{escape(verdict)}</p>' in headline_html
    assert "accuracy" not in html.unescape(headline_html).lower()
    winner = min((e for e in evaluation["entries"]), key=lambda e: e["test_rmse_mean"])
    assert data.headline.winner.name == winner["name"], "the winner has the lowest RMSE"


def test_the_chapter_10_baseline_has_its_row_and_its_description(regression: tuple[optuna.Study, str],
                                                                  page: str) -> None:
    entry = next(e for e in regression[0].user_attrs["evaluation"]["entries"] if e["name"] == "book-ch10")
    assert entry["title"] == CHAPTER_10.title
    assert row(page, CHAPTER_10.title)[1] == units(entry["test_rmse_mean"], entry["test_rmse_std"])
    assert "vs book-ch10" in section(page, "headline")
    assert "chapter 10's <code>build_model</code> defaults (book-ch10)" in section(page, "defaults")
    assert "depth × width 1 × 30" in section(page, "defaults")
    assert BASELINE_TITLES["book-ch10"] == CHAPTER_10.title
    assert set(BASELINE_TITLES) == {b.name for b in book_baselines(regression=True)}


def test_predicted_against_actual_and_residuals_of_the_kept_network(regression: tuple[optuna.Study, str],
                                                                     page: str) -> None:
    from autodnn.study.options import dataset_of

    study = regression[0]
    evaluation = study.user_attrs["evaluation"]
    dataset = dataset_of(study)
    drawn = figures(page)
    points = drawn["s0-predicted"]["data"][1]
    actual, predicted = np.array(points["x"]), np.array(points["y"])
    assert len(actual) == len(dataset.y_test)
    np.testing.assert_allclose(actual, dataset.in_target_units(dataset.y_test), rtol=1e-9)
    kept = next(r for r in evaluation["entries"][0]["runs"] if r["seed"] == evaluation["model"]["seed"])
    rmse = float(np.sqrt(np.mean((actual - predicted) ** 2)))
    assert rmse == pytest.approx(kept["test_rmse"], rel=1e-3), "the plotted predictions are the kept run's"
    assert float(np.mean(np.abs(actual - predicted))) == pytest.approx(kept["test_mae"], rel=1e-3)
    diagonal = drawn["s0-predicted"]["data"][0]
    assert diagonal["x"] == diagonal["y"] and diagonal["x"][0] <= min(actual.min(), predicted.min())
    assert drawn["s0-predicted"]["layout"]["xaxis"]["title"]["text"] == f"actual {evaluation['target']['name']}"
    residuals = drawn["s0-residuals"]["data"][1]
    np.testing.assert_allclose(residuals["x"], predicted)
    np.testing.assert_allclose(residuals["y"], actual - predicted, atol=1e-9)
    text = re.sub(r"\s+", " ", html.unescape(section(page, "predictions")))
    assert f"RMSE is {units(rmse)}" in text and f"recorded a test RMSE of {units(kept['test_rmse'])}" in text
    assert "Predictions" in page.split("<main>", 1)[0], "listed in the table of contents"


def test_curves_and_search_figures_are_labelled_with_the_regression_s_metric(
        regression: tuple[optuna.Study, str], page: str) -> None:
    study = regression[0]
    assert study.metric_names == ["val_r2"]
    drawn = figures(page)
    curves = drawn["s0-curves"]
    assert curves["layout"]["yaxis"]["title"]["text"].startswith("validation R²")
    first = study.user_attrs["evaluation"]["entries"][0]["runs"][0]["history"]["val_r2"]
    assert curves["data"][0]["y"] == pytest.approx(first)
    assert "val_r2" in drawn["s0-history"]["layout"]["yaxis"]["title"]["text"]
    assert "tickformat" not in drawn["s0-history"]["layout"]["yaxis"], "R² is no percentage"
    values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    trials = page.split('class="sortable trials"', 1)[1].split("</table>", 1)[0]
    for value in values:
        assert f'data-v="{value}">{value:.4f}</td>' in trials
    visible = re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL)
    assert "accuracy" not in visible.lower() and "nan" not in re.sub(r"<[^>]+>", " ", visible).lower().split()


def test_an_evaluation_without_stored_predictions_leaves_the_plots_out_with_one_line(
        regression: tuple[optuna.Study, str]) -> None:
    from autodnn.report._predictions import gather_predictions

    study = regression[0]
    evaluation = {k: v for k, v in study.user_attrs["evaluation"].items() if k != "predictions"}
    predictions, note = gather_predictions(study, evaluation, "regression")
    assert predictions is None
    assert note == ("The predicted-against-actual and residuals plots are left out: it ran before test predictions "
                    f"were stored; run 'autodnn evaluate {study.study_name}' again.")
    assert gather_predictions(study, evaluation, "classification") == (None, "")


def _entry(name: str, rmse: tuple[float, ...], seeds: tuple[int, ...] = (0, 1)) -> dict[str, Any]:
    return {"name": name, "title": name, "kind": "best" if name == "best" else "baseline",
            "runs": [{"seed": s, "test_rmse": r, "test_mae": 0.8 * r, "test_r2": 1 - r / 100, "epochs": 3, "seconds": 1.0}
                     for s, r in zip(seeds, rmse, strict=True)]}


def test_the_regression_verdict_from_hand_built_entries() -> None:
    from autodnn.report._measures import measure_of

    measure = measure_of("regression", "rmse", evaluated=True)
    beats = headline([_entry("best", (40.0, 42.0)), _entry("book-3e", (50.0, 51.0))], [0, 1], None, {}, measure)
    assert beats.verdict == ("The best configuration found beats the 3rd-edition defaults on test RMSE by "
                             "9.50 ± 0.71 (18.8% lower; mean over 2 seeds).")
    assert beats.comparisons[0].relative == pytest.approx(100 * -9.5 / 50.5)
    assert measure.tone(beats.comparisons[0].difference) == "pos"
    short = headline([_entry("best", (60.0, 62.0)), _entry("book-ch10", (50.0, 51.0))], [0, 1], None, {}, measure)
    assert short.verdict.startswith("The best configuration found falls short of chapter 10's regression defaults "
                                    "on test RMSE by 10.50")
    assert short.winner.name == "book-ch10" and measure.tone(short.comparisons[0].difference) == "neg"
    level = headline([_entry("best", (40.0, 50.0)), _entry("book-3e", (45.0, 44.0))], [0, 1], None, {}, measure)
    assert level.verdict.startswith("The best configuration found and the 3rd-edition defaults are level on test RMSE")
    assert level.verdict.endswith("within the spread between seeds.")
    assert beats.scores[0].figure("test_mae") == (pytest.approx(32.8), pytest.approx(statistics.stdev([32.0, 33.6])))


def test_before_the_evaluation_the_headline_is_told_in_validation_rmse(regression: tuple[optuna.Study, str]) -> None:
    from autodnn.study.trial_record import BASELINE, RESULT

    storage = optuna.storages.InMemoryStorage()
    optuna.copy_study(from_study_name=STUDY, from_storage=regression[1], to_storage=storage, to_study_name="copy")
    study = optuna.load_study(study_name="copy", storage=storage)
    study.set_user_attr("evaluation", {})
    data = gather(study)
    page = render([data])
    searched = [t for t in study.trials if t.value is not None and not t.user_attrs.get(BASELINE)]
    best = max(searched, key=lambda t: t.value)
    assert data.headline.metric == "validation RMSE" and not data.headline.evaluated
    assert data.headline.best.values == [best.user_attrs[RESULT]["val_rmse"]]
    assert data.headline.best.figure("val_r2")[0] == pytest.approx(best.value), "R² is what the search maximized"
    assert data.headline.verdict.startswith(f"On validation data, the best trial of the search (#{best.number}) ")
    assert "on validation RMSE" in data.headline.verdict
    assert "accuracy" not in html.unescape(section(page, "headline")).lower()
    assert data.predictions is None and data.predictions_note.startswith("No final evaluation yet")
    assert escape(data.predictions_note) in section(page, "predictions")
