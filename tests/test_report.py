"""The HTML report: content, escaping, robustness and speed, from hand-built studies (no Keras)."""

from __future__ import annotations

import html
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import REPO
from markupsafe import escape
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from autodnn.defaults import ASSUMPTIONS, PUBLISHED_CIFAR10, TABLE_11_3, TABLE_11_4, book_baselines
from autodnn.errors import UsageError
from autodnn.report import gather, render, write_report

optuna.logging.set_verbosity(optuna.logging.ERROR)

XSS = "<script>alert(1)</script>"
SEEDS = (0, 1, 2)
#: Test accuracy per seed of each evaluated configuration.
TEST_ACCURACY = {
    "best": (0.962, 0.955, 0.968),
    "book-2e": (0.921, 0.934, 0.915),
    "book-3e": (0.931, 0.925, 0.940),
    "book-selu": (0.902, 0.911, 0.905),
}
TITLES = {
    "best": "Best configuration found",
    "book-2e": "Book defaults, 2nd edition (Table 11-3)",
    "book-3e": "Book defaults, 3rd edition (Table 11-3)",
    "book-selu": "Self-normalizing net (Table 11-4, 3rd edition)",
}
DISTRIBUTIONS = {
    "n_hidden": IntDistribution(1, 30),
    "learning_rate": FloatDistribution(1e-5, 1e-1, log=True),
    "activation": CategoricalDistribution(["relu", "elu", "swish", "selu"]),
    "optimizer": CategoricalDistribution(["sgd", "nesterov", "adam", "nadam"]),
    "momentum": FloatDistribution(0.5, 0.99),
}


def _history(rng: random.Random, top: float, epochs: int) -> dict[str, list[float]]:
    accuracy = [top * (1 - math.exp(-(e + 1) / 3)) + rng.uniform(-0.01, 0.01) for e in range(epochs)]
    loss = [2.3 * math.exp(-(e + 1) / 4) + 0.1 + rng.uniform(0, 0.02) for e in range(epochs)]
    return {"loss": [v * 0.9 for v in loss], "accuracy": [min(1.0, a + 0.02) for a in accuracy],
            "val_loss": loss, "val_accuracy": accuracy, "learning_rate": [1e-3] * epochs}


def _lr_finder() -> dict[str, Any]:
    rates = [1e-5 * 1.05 ** i for i in range(200)]
    losses = [2.3 - 1.5 * math.exp(-((math.log10(r) + 2) ** 2)) + (0 if r < 0.1 else 5 * (r - 0.1)) for r in rates]
    return {"learning_rates": rates, "losses": losses, "smoothed": losses, "suggestion": 1e-3, "turning_point": 1e-2,
            "diverged": True, "iterations": len(rates), "loss_decreased": True}


def _trial(rng: random.Random, number: int, *, state: TrialState = TrialState.COMPLETE, top: float = 0.9,
           epochs: int = 12, baseline: str | None = None, reason: str = "", params: dict[str, Any] | None = None,
           system_attrs: dict[str, Any] | None = None, lr_finder: bool = False) -> optuna.trial.FrozenTrial:
    if params is None:
        optimizer = rng.choice(["sgd", "nesterov", "adam", "nadam"])
        params = {"n_hidden": rng.randint(1, 30), "learning_rate": 10 ** rng.uniform(-5, -1),
                  "activation": rng.choice(["relu", "elu", "swish", "selu"]), "optimizer": optimizer}
        if optimizer == "nesterov":
            params["momentum"] = rng.uniform(0.5, 0.99)
    history = _history(rng, top, epochs) if state in (TrialState.COMPLETE, TrialState.PRUNED) else {}
    config = {k: v for k, v in params.items() if k in DISTRIBUTIONS}
    if baseline:
        config = next(b.config.to_dict() for b in book_baselines() if b.name == baseline)
    attrs: dict[str, Any] = {"config": config, "seed": number, "epoch_times": [0.8 + rng.random() / 5] * epochs}
    if history:
        attrs["history"] = history
        attrs["result"] = {"val_accuracy": max(history["val_accuracy"]), "epochs": epochs, "best_epoch": epochs,
                           "learning_rate": 1e-3, "stopped": "early_stopping"}
    if baseline:
        attrs["baseline"] = baseline
        attrs["title"] = TITLES[baseline]
    if reason:
        attrs["reason"] = reason
    if lr_finder:
        attrs["lr_finder"] = _lr_finder()
    trial = create_trial(
        state=state,
        value=max(history["val_accuracy"]) if state == TrialState.COMPLETE else None,
        params=params,
        distributions={k: DISTRIBUTIONS.get(k, FloatDistribution(0, 1)) for k in params},
        user_attrs=attrs,
        system_attrs=system_attrs or {},
        intermediate_values={e: v for e, v in enumerate(history.get("val_accuracy", []))},
    )
    start = datetime(2025, 1, 1, 12, 0) + timedelta(minutes=2 * number)
    trial.datetime_start = start
    if state not in (TrialState.RUNNING, TrialState.WAITING):
        trial.datetime_complete = start + timedelta(seconds=epochs * 0.9 + 1)
    return trial


def _evaluation(rng: random.Random, best_trial: int) -> dict[str, Any]:
    baselines = {b.name: b for b in book_baselines()}
    entries = []
    for name, accuracies in TEST_ACCURACY.items():
        config = baselines[name].config.to_dict() if name in baselines else {
            "n_hidden": 8, "n_units": 120, "activation": "swish", "optimizer": "nadam", "learning_rate": 2e-3,
            "normalization": "batch_norm_before", "schedule": "1cycle", "dropout": 0.1}
        runs = [{"seed": seed, "test_accuracy": acc, "test_loss": 1 - acc, "val_accuracy": acc + 0.005,
                 "epochs": 20 + seed, "seconds": 30.0 + seed, "mc_test_accuracy": None,
                 "history": _history(rng, acc, 20 + seed)} for seed, acc in zip(SEEDS, accuracies, strict=True)]
        entries.append({"name": name, "title": TITLES[name], "kind": "best" if name == "best" else "baseline",
                        "trial_number": best_trial if name == "best" else None, "config": config, "runs": runs})
    return {"seeds": list(SEEDS), "max_epochs": 50, "entries": entries}


def make_study(name: str = "demo", *, storage: str | None = None, evaluation: bool = True, dataset: str = "digits",
               n_search: int = 6, seed: int = 0, param: str | None = None, engine: str | None = None) -> optuna.Study:
    """A study as autodnn writes one: baselines, complete / pruned / failed / retried trials, an evaluation.

    Args:
        name: Study name.
        storage: Storage URL; None keeps it in memory.
        evaluation: Whether to store a final evaluation.
        dataset: Dataset name recorded in the study.
        n_search: Searched complete trials (the pruned and failed ones come on top).
        seed: Seeds the made-up numbers.
        param: An extra parameter name (for escaping tests).
        engine: ``settings.engine``, when given.
    """
    rng = random.Random(seed)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr("dataset", {"name": dataset, "fingerprint": "3f2a9c1d0b7e4f55",
                                    "sizes": {"train": 1293, "valid": 144, "test": 360}, "n_features": 64,
                                    "n_classes": 10, "class_names": [str(i) for i in range(10)],
                                    "source": "sklearn", "scaling": "standardize"})
    study.set_user_attr("space", {"name": "quick", "description": "A small space for tests.",
                                  "params": {"n_hidden": {"low": 1, "high": 30}}, "constraints": []})
    study.set_user_attr("space_digest", "0123456789abcdef")
    study.set_user_attr("environment", {"backend": "jax", "devices": ["cpu:0"], "python": "3.11.9",
                                        "platform": "Linux-6.1", "cpu_count": 2,
                                        "versions": {"keras": "3.6.0", "optuna": "4.1.0", "jax": "0.4.35"}})
    settings = {"n_trials": 20, "max_epochs": 50, "seed": 0, "valid_fraction": 0.1, "mc_samples": 0,
                "dataset_spec": dataset}
    if engine:
        settings["engine"] = engine
    study.set_user_attr("settings", settings)
    trials = []
    for mark, top in (("book-2e", 0.91), ("book-3e", 0.92), ("book-selu", 0.89)):
        # As autodnn enqueues them: no sampled parameters, the configuration in the attributes.
        trials.append(_trial(rng, len(trials), top=top, baseline=mark, lr_finder=True, params={}))
    best_number = len(trials)
    best_params = {"n_hidden": 8, "learning_rate": 2e-3, "activation": "swish", "optimizer": "nadam"}
    if param:
        best_params[param] = 0.5
    trials.append(_trial(rng, best_number, top=0.975, epochs=15, lr_finder=True, params=best_params))
    for _ in range(n_search - 1):
        trials.append(_trial(rng, len(trials), top=rng.uniform(0.6, 0.94), epochs=rng.randint(6, 20)))
    for at in (3, 4):
        trials.append(_trial(rng, len(trials), state=TrialState.PRUNED, top=0.5, epochs=at,
                             reason=f"pruned at epoch {at}: val_accuracy 0.4123 was below the pruner's threshold"))
    failed = len(trials)
    trials.append(_trial(rng, failed, state=TrialState.FAIL, epochs=0,
                         reason="FloatingPointError: NaN loss at epoch 2"))
    trials.append(_trial(rng, len(trials), top=0.88, system_attrs={"failed_trial": failed}))
    study.add_trials(trials)
    if evaluation:
        study.set_user_attr("evaluation", _evaluation(rng, best_number))
    return study


def report_of(*studies: optuna.Study) -> str:
    return render([gather(s) for s in studies])


def trials_table(page: str, index: int = 0) -> str:
    start = [i for i in range(len(page)) if page.startswith('class="sortable trials"', i)][index]
    return page[start:page.index("</table>", start)]


def expected_difference(baseline: str) -> tuple[float, float]:
    diffs = [100 * (a - b) for a, b in zip(TEST_ACCURACY["best"], TEST_ACCURACY[baseline], strict=True)]
    return statistics.fmean(diffs), statistics.stdev(diffs)


def test_headline_names_the_winner_and_the_paired_difference() -> None:
    data = gather(make_study())
    page = render([data])
    diff, spread = expected_difference("book-3e")
    verdict = (f"The best configuration found beats the 3rd-edition defaults by {diff:.1f} ± {spread:.1f} points "
               "of test accuracy (mean over 3 seeds).")
    assert data.headline.verdict == verdict
    assert verdict in html.unescape(page)
    assert data.headline.winner.name == "best"
    # Baseline trials carry no sampled parameters; importances come from the searched trials alone.
    assert data.search.importances and len(data.search.searched) == len(data.search.values) - 3
    best = TEST_ACCURACY["best"]
    assert f"{100 * statistics.fmean(best):.1f} ± {100 * statistics.stdev(best):.1f}%" in page
    for name in ("book-2e", "book-selu"):
        d, s = expected_difference(name)
        assert f"{d:+.1f} ± {s:.1f}" in page
    assert "autodnn evaluate" not in page


def test_the_report_says_which_book_baselines_the_budget_could_not_pay_for() -> None:
    study = make_study()
    page = " ".join(html.unescape(render([gather(study)])).split())
    assert "Book baseline" not in page and "search for deep dense networks" in page and "chapter 14" not in page
    study.set_user_attr("space", {**study.user_attrs["space"], "params": {"family": {"value": "conv"}}})
    page = " ".join(html.unescape(render([gather(study)])).split())
    assert "search for deep convolutional networks" in page and "and chapter 14's CNN" in page
    line = ("book-cnn is not trained: its 3 trainings are predicted at 3h31m on this machine, and the baselines would "
            "take more than half of the 2h budget; give --timeout 8h02m or more to compare with it")
    study.set_user_attr("baselines_left_out", [line])
    data = gather(study)
    assert data.left_out == [line]
    assert f"Book baseline {line}." in html.unescape(render([data]))


def test_the_report_says_which_book_baselines_were_reused_from_another_study() -> None:
    study = make_study()
    assert "was reused from study" not in render([gather(study)])
    book_2e = next(t for t in study.trials if t.user_attrs.get("baseline") == "book-2e")
    study.add_trial(create_trial(value=book_2e.value, params={}, distributions={},
                                 user_attrs={**book_2e.user_attrs, "reused_from": {"study": "cifar10-default", "trial": 4}}))
    data = gather(study)
    assert data.reused == {"book-2e": "cifar10-default"}
    page = " ".join(html.unescape(render([data])).split())
    assert "Book baseline book-2e was reused from study 'cifar10-default': the same data, backend" in page


def test_verdict_says_when_the_book_wins() -> None:
    study = make_study()
    evaluation = study.user_attrs["evaluation"]
    for entry in evaluation["entries"]:
        if entry["name"] == "book-3e":
            for run in entry["runs"]:
                run["test_accuracy"] = 0.99
    study.set_user_attr("evaluation", evaluation)
    data = gather(study)
    assert data.headline.winner.name == "book-3e"
    assert data.headline.verdict.startswith("The best configuration found falls short of the 3rd-edition defaults")


def test_without_evaluation_the_headline_uses_validation_accuracy() -> None:
    study = make_study(evaluation=False)
    data = gather(study)
    page = render([data])
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE and not t.user_attrs.get("baseline")),
               key=lambda t: t.value)
    third = next(t for t in study.trials if t.user_attrs.get("baseline") == "book-3e")
    diff = 100 * (best.value - third.value)
    assert not data.headline.evaluated
    assert data.headline.verdict == (f"On validation data, the best trial of the search (#{best.number}) beats the "
                                     f"3rd-edition defaults by {diff:.1f} points of validation accuracy.")
    assert "No final evaluation yet" in page
    assert "autodnn evaluate demo" in page
    assert f"{100 * third.value:.1f}%" in page


def test_defaults_table_holds_the_book_cells_verbatim_and_the_assumptions() -> None:
    page = report_of(make_study())
    for table in (TABLE_11_3, TABLE_11_4):
        for row, cells in table.items():
            assert escape(row) in page
            for cell in cells.values():
                assert escape(cell) in page, cell
    for key, text in ASSUMPTIONS.items():
        assert escape(text) in page, key
    assert "Swish" in page and "Nadam (β₁ 0.9" in page and "8 × 120" in page  # the best configuration, in words


def test_a_configuration_s_own_epochs_are_named_with_its_schedule() -> None:
    from autodnn.report._html import describe_config

    own = describe_config({"schedule": "cosine", "epochs": 20})["Learning rate schedule"]
    assert own.endswith(", over 20 epochs") and own != describe_config({"schedule": "cosine"})["Learning rate schedule"]
    assert "over" not in describe_config({"schedule": "cosine", "epochs": None})["Learning rate schedule"]


def test_trials_table_has_one_row_per_trial_with_reasons() -> None:
    study = make_study()
    page = report_of(study)
    table = trials_table(page)
    assert table.count("<tr>") == len(study.trials) + 1  # plus the header
    assert "pruned at epoch 3: val_accuracy 0.4123 was below the pruner&#39;s threshold" in table
    assert "FloatingPointError: NaN loss at epoch 2" in table
    failed = next(t.number for t in study.trials if t.state == TrialState.FAIL)
    assert f"#{failed}</td>" in table  # the retry names the trial it retries
    assert table.count('class="tag baseline"') == 3


def test_compute_counts_and_estimates_epochs_saved() -> None:
    data = gather(make_study())
    compute = data.compute
    assert (compute.counts["COMPLETE"], compute.counts["PRUNED"], compute.counts["FAIL"]) == (10, 2, 1)
    median = statistics.median(t.epochs for t in data.trials if t.state == "COMPLETE")
    assert compute.epochs_saved == pytest.approx((median - 3) + (median - 4))
    assert compute.epochs_saved_max == (50 - 3) + (50 - 4)
    assert compute.epoch_seconds is not None and 0.8 <= compute.epoch_seconds <= 1.0


@pytest.mark.parametrize("case", ["empty", "all-failed", "one-trial", "running", "nan-loss"])
def test_renders_small_and_degenerate_studies(case: str) -> None:
    study = optuna.create_study(study_name=case, direction="maximize")
    rng = random.Random(0)
    if case == "all-failed":
        study.add_trials([_trial(rng, i, state=TrialState.FAIL, reason=f"MemoryError: trial {i}") for i in range(3)])
    elif case == "one-trial":
        study.add_trials([_trial(rng, 0, lr_finder=True)])
    elif case == "running":
        study.add_trials([_trial(rng, 0), _trial(rng, 1, state=TrialState.RUNNING)])
    elif case == "nan-loss":
        broken = _trial(rng, 1, state=TrialState.PRUNED, epochs=3, reason="pruned: the loss became NaN at epoch 3")
        broken.user_attrs["history"]["val_loss"][-1] = float("nan")
        broken.user_attrs["lr_finder"] = {**_lr_finder(), "losses": [float("nan"), float("inf")] * 100}
        study.add_trials([_trial(rng, 0), broken])
    data = gather(study)
    page = render([data])
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert f"Study {case}" in page
    if case in ("empty", "all-failed"):
        assert data.headline.verdict == "No trial has completed yet, so there is no result to compare."
        assert "No complete trial yet" in page
    if case == "empty":
        assert "The study has no trials yet." in page
    if case == "all-failed":
        assert "MemoryError: trial 2" in page
        assert trials_table(page).count("<tr>") == 4
    if case == "nan-loss":
        payload = page.split('id="autodnn-figures">', 1)[1].split("</script>", 1)[0]
        assert "NaN" not in payload and "Infinity" not in payload
        json.loads(payload)
    if case == "one-trial":
        assert data.headline.best is not None and "no book default was measured" in data.headline.verdict
        assert "Parameter importances need at least 2 complete searched trials." in page
        assert "Learning-rate finder of trial #0" in page


def test_many_trials_render_quickly() -> None:
    rng = random.Random(1)
    study = optuna.create_study(study_name="many", direction="maximize")
    trials = []
    for i in range(1000):
        pruned = rng.random() < 0.4
        trials.append(_trial(rng, i, state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                             top=rng.uniform(0.5, 0.97), epochs=rng.randint(3, 30)))
    study.add_trials(trials)
    start = time.perf_counter()
    data = gather(study)
    page = render([data])
    seconds = time.perf_counter() - start
    assert trials_table(page).count("<tr>") == 1001
    assert data.search.importances
    assert seconds < 10, f"1,000 trials took {seconds:.1f} s"


def test_user_text_is_escaped_everywhere() -> None:
    study = make_study(XSS, param=XSS)
    evaluation = study.user_attrs["evaluation"]
    evaluation["entries"][1]["title"] = XSS
    study.set_user_attr("evaluation", evaluation)
    page = report_of(study)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "alert(1)</script>" not in page
    payload = page.split('id="autodnn-figures">', 1)[1].split("</script>", 1)[0]
    assert "<" not in payload and ">" not in payload
    figures = json.loads(payload)
    assert any(XSS in json.dumps(fig) or "&lt;script&gt;" in json.dumps(fig) for fig in figures.values())
    assert page.count("<script") == 3  # plotly.js, the figures' JSON, the page's own code


def test_plotly_js_is_embedded_exactly_once_and_nothing_is_fetched() -> None:
    import plotly.offline

    page = report_of(make_study(), make_study("other", seed=1))
    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle[:200]) == 1
    own = page.replace(bundle, "")
    assert "src=" not in own and "<link rel=\"stylesheet\"" not in own and "@import" not in own


def test_two_studies_side_by_side(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'both.db'}"
    make_study("alpha", storage=url, engine="fit")
    make_study("beta", storage=url, seed=3, evaluation=False, dataset="cifar10", engine="tf.data")
    path = write_report(["alpha", "beta"], storage=url)
    assert path == Path("reports/alpha+beta.html")
    page = path.read_text(encoding="utf-8")
    comparison = page.split('id="comparison"', 1)[1].split("</section>", 1)[0]
    assert comparison.index("alpha") < comparison.index("beta")
    assert "<th>engine</th>" in comparison and "tf.data" in comparison
    assert comparison.count("<tr>") == 3
    assert 'id="s0-headline"' in page and 'id="s1-headline"' in page
    assert trials_table(page, 1).count("<tr>") == trials_table(page, 0).count("<tr>")
    # CIFAR-10 gets the author's published numbers, labelled as validation accuracy
    assert page.count("The author's published exercise-8 results (CIFAR-10, validation accuracy)") == 1
    assert all(f"{100 * row['val_accuracy']:.1f}%" in page for row in PUBLISHED_CIFAR10)


def test_report_from_the_sqlite_file_alone(workdir: Path) -> None:
    (workdir / "studies").mkdir()
    make_study("s", storage="sqlite:///studies/s.db")
    path = write_report(["s"])  # default storage and output
    assert path == Path("reports/s.html") and path.is_file()
    url = f"sqlite:///{workdir / 'studies' / 's.db'}"
    other = write_report(["s"], storage=url, output=workdir / "elsewhere.html")
    page = other.read_text(encoding="utf-8")
    assert "Study s" in page and "beats the 3rd-edition defaults" in page
    assert oct(other.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("where", ["under-a-file", "missing-folder", "a-folder"])
def test_unwritable_output_is_a_usage_error_before_any_work(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    target = {"under-a-file": blocker / "r.html", "missing-folder": tmp_path / "nope" / "r.html",
              "a-folder": tmp_path}[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # The storage does not exist: the output must be refused before the study is even looked for.
    with pytest.raises(UsageError, match=r"cannot write report to .*; choose another -o") as info:
        write_report(["s"], storage=f"sqlite:///{tmp_path / 'missing.db'}", output=target)
    assert str(target) in str(info.value)
    assert {"under-a-file": "not a folder", "missing-folder": "does not exist", "a-folder": "is a folder"}[where] \
        in str(info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_multi_objective_study_is_refused() -> None:
    study = optuna.create_study(study_name="two", directions=["maximize", "minimize"])
    with pytest.raises(UsageError, match="2 objectives"):
        gather(study)


def test_missing_study_is_a_clear_error(tmp_path: Path) -> None:
    from autodnn.errors import StudyError

    with pytest.raises(StudyError, match="no study database"):
        write_report(["ghost"], storage=f"sqlite:///{tmp_path / 'ghost.db'}", output=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_import_loads_no_deep_learning_framework() -> None:
    code = ("import sys, json, autodnn.report; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not loaded & {"keras", "tensorflow", "jax", "torch"}


def test_the_fast_trial_reader_returns_what_optuna_reads(tmp_path: Path) -> None:
    from autodnn.study._tables import trials_from_tables
    from autodnn.study.records import read_trials

    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = optuna.create_study(study_name="r", storage=url, direction="maximize")
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "n": IntDistribution(1, 30),
             "norm": CategoricalDistribution([None, "batch_norm_after", 0.5])}
    rng = random.Random(0)
    for i in range(40):
        state = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL][i % 3]
        params = {"lr": 10 ** rng.uniform(-4, -1), "n": rng.randint(1, 30), "norm": rng.choice([None, "batch_norm_after", 0.5])}
        curve = {k: rng.random() for k in range(rng.randint(0, 5))}
        if i == 7:
            curve[5] = float("nan")
        study.add_trial(create_trial(
            state=state, value=rng.random() if state == TrialState.COMPLETE else None, params=params,
            distributions=dists, intermediate_values=curve,
            user_attrs={"config": {"n_hidden": params["n"], "x": [1, 2.5, None]}, "baseline": "book-3e" if i == 3 else None},
            system_attrs={"failed_trial": i - 1} if i % 5 == 0 and i else {}))
    running = study.ask({"lr": dists["lr"]})
    running.set_user_attr("worker", "host:1")
    expected = optuna.load_study(study_name="r", storage=url).get_trials(deepcopy=False)
    reloaded = optuna.load_study(study_name="r", storage=url)
    got = trials_from_tables(optuna.storages.RDBStorage(url), reloaded._study_id)  # the fast path itself
    assert [t.number for t in read_trials(reloaded)] == [t.number for t in got]
    assert len(got) == len(expected) == 41
    for a, b in zip(got, expected):
        assert (a.number, a.state, a.params, a.distributions, a.user_attrs, a.system_attrs) == \
               (b.number, b.state, b.params, b.distributions, b.user_attrs, b.system_attrs)
        assert a.value == b.value and a.datetime_start == b.datetime_start
        assert a.datetime_complete == b.datetime_complete and a._trial_id == b._trial_id
        assert {k: ("nan" if math.isnan(v) else v) for k, v in a.intermediate_values.items()} == \
               {k: ("nan" if math.isnan(v) else v) for k, v in b.intermediate_values.items()}
