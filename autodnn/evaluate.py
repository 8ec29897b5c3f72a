"""Final evaluation: retrain the best configuration and the book's defaults with several seeds, test once.

The search picks configurations by validation accuracy and never reads the test split to choose. Each
retrained network is tested once; mean and spread go into the study (``evaluation`` attribute) for the
report. A book baseline's own search run was tested at its end and counts as its first seed here: it is a
fixed configuration that nobody chose by its score, so its test accuracy is as unbiased as a retrained one's,
and the evaluation trains each baseline one time fewer.
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
from optuna.trial import FrozenTrial, TrialState

from autodnn.config import DEFAULT_MC_SAMPLES, SMALL_VALIDATION, TrialConfig
from autodnn.errors import SearchFailed, UsageError
from autodnn.study.options import dataset_of, stored_options
from autodnn.study.records import baseline_trials, best_trial, is_baseline
from autodnn.study.trial_record import BASELINE, CONFIG, TEST_RUN, TITLE

#: Seeds of the final evaluation start here above the search's seed, so that no retrained run repeats a
#: searched one.
SEED_OFFSET = 10_000
#: Below :data:`autodnn.config.SMALL_VALIDATION` validation rows one row moves validation accuracy by a tenth
#: of a point or more, and the search's pick (one training run each) among its top trials is mostly the luck of
#: the seed: the final evaluation then retrains the top ``FINALISTS`` with every seed and keeps the one with the
#: best mean validation accuracy (lower mean validation loss on a tie). The test split is never used to choose.
FINALISTS = 3


def finalists(study: optuna.Study, n: int = FINALISTS) -> list[FrozenTrial]:
    """The ``n`` complete searched trials of highest validation accuracy, distinct configurations, best first."""
    ranked = sorted((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                     if not is_baseline(t) and t.value is not None and CONFIG in t.user_attrs),
                    key=lambda t: (-t.value, t.number))
    chosen: list[FrozenTrial] = []
    for trial in ranked:
        if all(trial.user_attrs[CONFIG] != other.user_attrs[CONFIG] for other in chosen):
            chosen.append(trial)
        if len(chosen) == n:
            break
    return chosen


def _entry(trial: FrozenTrial) -> dict[str, Any]:
    return {"name": "best", "title": f"Best found (trial {trial.number})", "kind": "best",
            "trial_number": trial.number, "config": trial.user_attrs[CONFIG]}


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
    entries = [_entry(best)]
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
        entries.append(entry)
    return entries


def evaluate(
    study: optuna.Study,
    *,
    seeds: int = 3,
    max_epochs: int | None = None,
    on_run: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    reference: bool | None = None,
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
    from autodnn.export import keep_model, model_bytes
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

    def retrain(entry: dict[str, Any], *, keep: bool, reused: dict[str, Any] | None = None) -> list[bytes]:
        """Trains ``entry`` with every seed into ``entry["runs"]``; returns each network as a .keras file.

        ``reused``, a run the search already tested, counts as the first seed (for a baseline, never kept).
        """
        config = TrialConfig.from_dict(entry["config"])
        entry["runs"], files = ([reused] if reused else []), []
        if reused and on_run is not None:
            on_run(entry, reused)
        for i in range(len(entry["runs"]), seeds):
            start = time.perf_counter()
            result = train(config, dataset, max_epochs=budget, seed=base_seed + i, evaluate_test=True,
                           mc_samples=mc_samples if config.has_dropout else 0, keep_model=keep)
            if keep:
                # Saved at once: the next training clears Keras' session, and with it this network's state.
                files.append(model_bytes(result.model))
                result.model = None
            run = result.evaluation_run(base_seed + i, time.perf_counter() - start)
            entry["runs"].append(run)
            if on_run is not None:
                on_run(entry, run)
        entry.update(summarize(entry["runs"]))
        return files

    files, selection = _choose_best(study, entries, dataset.sizes["valid"], retrain)
    reusable = budget == int(options.get("max_epochs", 50))
    for entry in entries[1:]:
        retrain(entry, keep=False, reused=entry.pop("search_run", None) if reusable else None)
    majority = reference_module.majority_share(dataset)
    evaluation = {"seeds": [base_seed + i for i in range(seeds)], "max_epochs": budget, "entries": entries,
                  "mc_samples": mc_samples, "model": None, "selection": selection, "majority": majority,
                  "majority_spread": reference_module.seed_spread(entries[0]["runs"]),
                  "beats_majority": reference_module.beats_majority(entries, majority)}
    wanted = options.get("reference", True) if reference is None else reference
    if wanted and reference_module.applies(dataset):
        trees: dict[str, Any] = {"name": reference_module.NAME, "title": reference_module.TITLE,
                                 "kind": "reference", "runs": []}
        for i in range(seeds):
            trees["runs"].append(reference_module.train_trees(dataset, base_seed + i))
            if on_run is not None:
                on_run(trees, trees["runs"][-1])
        trees.update(summarize(trees["runs"]))
        evaluation["reference"] = trees
    best = entries[0]
    kept = median_run([run["val_accuracy"] for run in best["runs"]])
    try:
        if kept is not None:
            run = best["runs"][kept]
            evaluation["model"] = keep_model(study, files[kept], {
                "trial_number": best["trial_number"], "seed": run["seed"], "test_accuracy": run["test_accuracy"],
                "test_accuracy_mean": best.get("test_accuracy_mean"), "n_seeds": len(best["runs"])})
    finally:
        # The trainings took minutes: store their results even when the database refused the model.
        study.set_user_attr("evaluation", evaluation)
    return evaluation


def _choose_best(study: optuna.Study, entries: list[dict[str, Any]], n_valid: int,
                 retrain: Callable[..., list[bytes]]) -> tuple[list[bytes], dict[str, Any]]:
    """Trains the best entry (``entries[0]``), or picks it among the finalists where validation is small.

    Returns:
        The kept networks of the chosen entry's seeds, and how it was chosen (stored as ``selection``).
    """
    candidates = finalists(study) if n_valid < SMALL_VALIDATION else []
    if len(candidates) < 2:
        return retrain(entries[0], keep=True), {
            "rule": "the search's trial of best validation accuracy", "n_valid": n_valid, "finalists": []}
    results = []
    for trial in candidates:
        entry = {**_entry(trial), "name": f"trial {trial.number}"}  # named as a finalist until chosen
        results.append((entry, retrain(entry, keep=True)))
    summary = [{"trial_number": entry["trial_number"],
                "val_accuracy_mean": statistics.fmean(r["val_accuracy"] for r in entry["runs"]),
                "val_loss_mean": statistics.fmean(r["val_loss"] for r in entry["runs"])} for entry, _ in results]

    def key(i: int) -> tuple[float, float]:
        loss = summary[i]["val_loss_mean"]
        return (-summary[i]["val_accuracy_mean"], loss if math.isfinite(loss) else math.inf)

    chosen = min(range(len(results)), key=key)
    entries[0] = {**results[chosen][0], "name": "best"}
    rule = (f"the one of best mean validation accuracy over the seeds among the search's top {len(results)} (trial "
            f"{entries[0]['trial_number']}): validation has {n_valid} rows, under {SMALL_VALIDATION}, too few for "
            "one run each to tell them apart; the test split was not used to choose")
    return results[chosen][1], {"rule": rule, "n_valid": n_valid, "finalists": summary,
                                "chosen": entries[0]["trial_number"]}


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
    for key in ("test_accuracy", "test_loss", "mc_test_accuracy", "epochs", "seconds"):
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            continue
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def plain_lines(evaluation: dict[str, Any]) -> list[str]:
    """What the evaluation says plainly, the same in the command's output and the report.

    First, where trees were trained, how they compare with the best net on mean test accuracy: "beat" only
    where their lead exceeds the spread of the best's test accuracy across its seeds. Then, where the
    evaluation found that no configuration beat always answering the most frequent class (``majority``, its
    share of validation rows) by more than the seeds' spread, a line that says so.
    """
    lines = []
    best, trees = evaluation["entries"][0], evaluation.get("reference")
    best_mean, best_std = _mean_std(best)
    trees_mean = _mean_std(trees)[0] if trees else None
    if trees_mean is not None and best_mean is not None:
        gap = 100 * (trees_mean - best_mean)
        spread = 100 * (best_std or 0.0)
        if gap > spread:
            lines.append(f"Gradient-boosted trees beat the best net by {gap:.1f} points of test accuracy, more than "
                         f"the seeds' spread (± {spread:.1f}): on this table a neural net was not worth it.")
        elif abs(gap) < 0.05:
            lines.append("The best net and gradient-boosted trees score the same test accuracy.")
        elif gap > 0:
            lines.append(f"Gradient-boosted trees score {gap:.1f} points of test accuracy above the best net, within "
                         f"the seeds' spread (± {spread:.1f}): the net did no better than trees here.")
        else:
            lines.append(f"The best net beats gradient-boosted trees by {-gap:.1f} points of test accuracy.")
    majority = evaluation.get("majority")
    if majority is not None and not evaluation.get("beats_majority", True):
        lines.append(f"No network beat always answering the most frequent class ({100 * majority:.1f}% of "
                     "validation rows) beyond the seeds' spread: nothing here learned more than the class shares.")
    return lines


def _mean_std(entry: dict[str, Any]) -> tuple[float | None, float | None]:
    """Mean and spread of an entry's test accuracy: its summary, or its runs' where it has none."""
    if entry.get("test_accuracy_mean") is not None:
        return entry["test_accuracy_mean"], entry.get("test_accuracy_std")
    values = [r["test_accuracy"] for r in entry.get("runs") or () if isinstance(r.get("test_accuracy"), (int, float))
              and math.isfinite(r["test_accuracy"])]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
