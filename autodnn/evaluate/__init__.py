"""Final evaluation: retrain the best configuration and the book's defaults with several seeds, test once.

The search picks configurations by their validation score (the study's metric, :mod:`autodnn.metrics`) and
never reads the test split to choose; how the evaluation chooses the best is :mod:`autodnn.evaluate._choice`. Each
retrained network is tested once; mean and spread go into the study (``evaluation`` attribute) for the
report. A book baseline's own search run was tested at its end and counts as its first seed here: it is a
fixed configuration that nobody chose by its score, so its test accuracy is as unbiased as a retrained one's,
and the evaluation trains each baseline one time fewer. A baseline reused from another study of the same data and
settings (:mod:`autodnn.study.reuse`) brings that study's evaluation runs too, and only the seeds it lacks train.
On a validation split under ``SMALL_VALIDATION`` rows the best is chosen by cross-validation among the
search's top few and the baselines (:mod:`autodnn.training.crossval`), then retrained with every seed.
It also keeps the best configuration's trained network, of the seed of median validation accuracy (never
chosen by a test figure), in the study's database (:mod:`autodnn.export`), for ``autodnn export``.
On a table it also trains gradient-boosted trees with the same seeds (:mod:`autodnn.training.reference`), kept
beside the entries as ``reference``: never chosen as best, never a baseline of the book.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from autodnn.config import DEFAULT_MC_SAMPLES, TrialConfig
from autodnn.errors import SearchFailed, UsageError
from autodnn.evaluate._choice import (  # noqa: F401 - the rules of the choice, read by the budget and the CLI
    FINALISTS,
    against_the_book,
    as_best,
    choose_best,
    chosen_baseline,
    contenders,
    finalists,
    searched_entry,
)
from autodnn.metrics import searched_of
from autodnn.study.chance import Chance
from autodnn.study.options import dataset_of, stored_options
from autodnn.study.records import baseline_trials, best_trial, is_baseline
from autodnn.study.reuse import REUSED, reused_evaluation_runs
from autodnn.study.trial_record import BASELINE, CONFIG, TEST_RUN, TITLE
from autodnn.study.verdict import (  # noqa: F401 - how an evaluation is told, read by the CLI and the report
    headline_metric,
    in_points,
    lower_is_better,
    paired_difference,
    plain_lines,
    strongest_baseline,
    verdict_line,
)
from autodnn.training.crossval import FOLDS, EpochRelay, cross_validate

#: Seeds of the final evaluation start here above the search's seed, so that no retrained run repeats a
#: searched one.
SEED_OFFSET = 10_000


def evaluation_entries(study: optuna.Study) -> list[dict[str, Any]]:
    """The configurations to evaluate: the best searched trial first, then every baseline of the study.

    A baseline whose search run completed and was tested carries that run as ``search_run``; one the search
    did not reach (still queued at its deadline) is evaluated all the same.

    Raises:
        SearchFailed: No searched trial has completed yet.
    """
    best = best_trial(study)
    if best is None:
        raise SearchFailed(f"study '{study.study_name}' has no completed trial to evaluate yet; run 'autodnn search'")
    entries = [searched_entry(best)]
    # A baseline still queued when the search's time ran out is trained here, with every seed.
    trained = baseline_trials(study)
    names = {t.user_attrs[BASELINE] for t in trained}
    queued = [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
              if is_baseline(t) and CONFIG in t.user_attrs and t.user_attrs[BASELINE] not in names]
    for trial in [*trained, *queued]:
        entry = {"name": trial.user_attrs[BASELINE], "title": trial.user_attrs.get(TITLE, ""),
                 "kind": "baseline", "trial_number": trial.number, "config": trial.user_attrs[CONFIG]}
        if trial.state == TrialState.COMPLETE and trial.user_attrs.get(TEST_RUN):
            entry["search_run"] = {**trial.user_attrs[TEST_RUN], "search_trial": trial.number}
        if trial.user_attrs.get(REUSED):
            entry["reused_from"] = trial.user_attrs[REUSED]["study"]
            entry["title"] += f" (reused from study '{entry['reused_from']}')"
        entries.append(entry)
    return entries


def evaluate(
    study: optuna.Study,
    *,
    seeds: int = 3,
    max_epochs: int | None = None,
    on_run: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    reference: bool | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_start: Callable[[dict[str, Any], int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any], int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Retrains each entry of :func:`evaluation_entries` with ``seeds`` seeds and tests each network once.

    Args:
        study: A study made by ``autodnn search``.
        seeds: Trainings per configuration; mean and standard deviation are taken over them.
        max_epochs: Epoch budget; defaults to the study's own, so every network has the same budget.
        on_run: Called with (entry, run) after each training, e.g. to print progress.
        reference: Also train gradient-boosted trees with the same seeds on a table
            (:mod:`autodnn.training.reference`), stored as ``reference`` beside the entries, never among them;
            None follows the study's ``--no-reference``.
        on_plan: Called first with the number of runs the evaluation will train or reuse (each one then reaches
            ``on_run``), e.g. to size a progress bar (:class:`autodnn.progress.EvaluationProgress`).
        on_start: Called with (entry, seed, most epochs) as a network's training starts.
        on_epoch: Called with (entry, seed, 0-based epoch, that epoch's metrics) as each epoch ends.

    Returns:
        The evaluation, as stored in the study's ``evaluation`` attribute. Its ``model`` key records the
        best configuration's network kept in the study's database: of the seed of median validation
        accuracy (:func:`median_run`), a typical run rather than the luckiest, chosen without the test split
        (:func:`autodnn.export.kept_model`).

    Raises:
        UsageError: ``seeds`` < 1.
        StudyError: Nothing to evaluate, the dataset no longer matches the study's fingerprint, or the
            database refused the kept model (the evaluation is stored all the same).
    """
    from autodnn.export import columns_bytes, keep_model, model_bytes
    from autodnn.training import reference as reference_module
    from autodnn.training.trainer import train

    if seeds < 1:
        raise UsageError(f"--seeds must be >= 1, but got {seeds}")
    entries = evaluation_entries(study)
    dataset = dataset_of(study)
    options = stored_options(study)
    budget = max_epochs or int(options.get("max_epochs", 50))
    mc_samples = int(options.get("mc_samples", 0)) or DEFAULT_MC_SAMPLES
    base_seed = int(options.get("seed", 0)) + SEED_OFFSET

    wanted_seeds = [base_seed + i for i in range(seeds)]

    def retrain(entry: dict[str, Any], *, reused: list[dict[str, Any]] | tuple[()] = ()) -> list[bytes | None]:
        """Trains ``entry`` until it has a run for every seed into ``entry["runs"]``; returns each run's network as a
        .keras file.

        ``reused`` runs count first: a baseline's search run, tested at its end, as its first seed, and the runs
        of another study's evaluation of a reused baseline as theirs; their networks are gone (None).
        """
        config = TrialConfig.from_dict(entry["config"])
        entry["runs"] = list(reused)
        files: list[bytes | None] = [None] * len(entry["runs"])  # one a run; None for a run not kept
        entry_predictions: list[list[float] | None] = [None] * len(entry["runs"])
        for run in entry["runs"]:
            if on_run is not None:
                on_run(entry, run)
        held = {run.get("seed") for run in entry["runs"]}
        missing = [seed for seed in wanted_seeds if seed not in held]
        for seed in missing[len(missing) - max(0, seeds - len(entry["runs"])):]:
            start = time.perf_counter()
            if on_start is not None:
                on_start(entry, seed, config.trained_epochs(budget))
            relay = EpochRelay(entry, seed, on_epoch) if on_epoch is not None else None
            result = train(config, dataset, max_epochs=budget, seed=seed, evaluate_test=True,
                           mc_samples=mc_samples if config.has_dropout else 0, keep_model=True,
                           metric=options.get("metric"), reporter=relay)
            # Saved at once: the next training clears Keras' session, and with it this network's state.
            files.append(model_bytes(result.model, dataset))
            entry_predictions.append(test_predictions(result.model, dataset) if dataset.is_regression else None)
            result.model = None
            run = result.evaluation_run(seed, time.perf_counter() - start)
            entry["runs"].append(run)
            if on_run is not None:
                on_run(entry, run)
        entry.update(summarize(entry["runs"]))
        if any(p is not None for p in entry_predictions):
            entry[PREDICTIONS] = entry_predictions  # taken out below, once the kept seed is known
        return files

    metric = options.get("metric") or ("rmse" if dataset.is_regression else "accuracy")
    score = f"val_{searched_of(dataset.task, metric)}"
    wanted = options.get("reference", True) if reference is None else reference
    trees_wanted = wanted and reference_module.applies(dataset)
    for entry in entries[1:] if options.get("class_weight") else []:  # the baselines train with the study's weights
        entry["config"] = {**entry["config"], "class_weight": options["class_weight"]}
    candidates = contenders(study, entries, dataset.sizes["valid"])
    planned = (len(entries) + int(trees_wanted)) * seeds + len(candidates) * FOLDS
    if on_plan is not None:
        on_plan(planned)
    if candidates:
        cross_validate(candidates, dataset, score=score, max_epochs=budget, seed=base_seed,
                       metric=options.get("metric"),
                       callbacks={"on_start": on_start, "on_epoch": on_epoch, "on_run": on_run})
    files, selection = choose_best(entries, candidates, dataset.sizes["valid"], retrain, score)
    if on_plan is not None and selection.get("baseline"):
        on_plan(planned - seeds)  # the chosen baseline trains as one: the best's seeds are not trained
    reusable = budget == int(options.get("max_epochs", 50))
    book_files = {}
    for entry in entries[1:]:
        search_run = entry.pop("search_run", None) if reusable else None
        trial = study.get_trials(deepcopy=False)[entry["trial_number"]]
        book_files[entry["name"]] = retrain(entry, reused=[
            *([search_run] if search_run else []),
            *(reused_evaluation_runs(trial, wanted_seeds, budget, mc_samples) if search_run else [])])
    if selection.get("baseline"):
        files = chosen_baseline(entries, candidates, selection, book_files, score)
        if files is None:  # the baseline left no network: the searched candidate next in line trains instead
            if on_plan is not None:
                on_plan(planned)
            files = retrain(entries[0])
    elif not candidates:
        files = against_the_book(entries, files, book_files, score, selection)
    chance = Chance.of_dataset(dataset, metric)
    majority = chance.score if chance is not None else reference_module.majority_share(dataset)
    evaluation = {"seeds": [base_seed + i for i in range(seeds)], "max_epochs": budget, "entries": entries,
                  "mc_samples": mc_samples, "model": None, "selection": selection, "majority": majority,
                  "majority_spread": reference_module.seed_spread(entries[0]["runs"], score),
                  "beats_majority": reference_module.beats_majority(entries, majority, score),
                  "task": dataset.task, "metric": metric}
    if dataset.is_regression:
        evaluation["target"] = {"name": dataset.target_name, "mean": dataset.target_mean, "std": dataset.target_std}
    if trees_wanted:
        trees: dict[str, Any] = {"name": reference_module.NAME, "title": reference_module.TITLE,
                                 "kind": "reference", "runs": []}
        for i in range(seeds):
            trees["runs"].append(reference_module.train_trees(dataset, base_seed + i,
                                                              balanced=options.get("class_weight") == "balanced"))
            if on_run is not None:
                on_run(trees, trees["runs"][-1])
        trees.update(summarize(trees["runs"]))
        evaluation["reference"] = trees
    best = entries[0]
    kept = median_run([run[score] if files[i] is not None else None for i, run in enumerate(best["runs"])])
    headline = headline_metric(evaluation)
    try:
        predicted = best.pop(PREDICTIONS, None)
        for entry in entries[1:]:
            entry.pop(PREDICTIONS, None)
        if kept is not None and predicted and predicted[kept] is not None:
            evaluation["predictions"] = {
                "trial_number": best["trial_number"], "seed": best["runs"][kept]["seed"],
                "actual": sample(dataset.in_target_units(dataset.y_test).tolist()),
                "predicted": sample(predicted[kept]), "n_rows": len(dataset.y_test)}
        if kept is not None:
            run = best["runs"][kept]
            evaluation["model"] = keep_model(study, files[kept], {
                "trial_number": best["trial_number"], "seed": run["seed"], "metric": headline,
                headline: run[headline], f"{headline}_mean": best.get(f"{headline}_mean"),
                "n_seeds": len(best["runs"])}, columns=columns_bytes(dataset))
    finally:
        # The trainings took minutes: store their results even when the database refused the model.
        study.set_user_attr("evaluation", evaluation)
    return evaluation


#: Where a regression's kept entry holds its seeds' test predictions until the kept seed is known.
PREDICTIONS = "test_predictions"
#: Most test rows of a regression whose predictions the evaluation stores for the report's plots (an even sample).
MAX_POINTS = 5_000


def test_predictions(model: Any, dataset: Any) -> list[float]:
    """A regression network's test predictions in the target's units (NaN stays NaN)."""
    from autodnn.training.scoring import predict

    return [float(v) for v in predict(model, dataset, "test")]


def sample(values: list[float]) -> list[float]:
    """At most :data:`MAX_POINTS` of ``values``, evenly spread, in order."""
    n = len(values)
    if n <= MAX_POINTS:
        return list(values)
    return [values[i] for i in sorted({int(i * n / MAX_POINTS) for i in range(MAX_POINTS)})]


def median_run(values: list[float | None]) -> int | None:
    """Index of the run of median value among the finite values (of an even number, the lower of the middle
    two; of equal values, the first run): the typical run of a configuration, not its luckiest.

    Returns:
        The index, or None when no value is a finite number (every seed diverged).
    """
    finite = sorted((v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v))
    if not finite:
        return None
    return finite[(len(finite) - 1) // 2][1]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation of each metric over runs (spread 0 for a single run)."""
    out: dict[str, Any] = {}
    keys = dict.fromkeys(k for run in runs for k in run if k.startswith(("test_", "mc_test_")))
    for key in (*keys, "epochs", "seconds"):
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if not values:
            continue
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
