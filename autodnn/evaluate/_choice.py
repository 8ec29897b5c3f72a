"""How the final evaluation chooses the best configuration, on validation only.

On a validation split under :data:`autodnn.config.SMALL_VALIDATION` rows the search's top few (:func:`finalists`)
and the book's baselines are cross-validated (:mod:`autodnn.training.crossval`) and the best of them is retrained;
elsewhere the search's best is retrained and a baseline of better mean validation over the same seeds takes its
place (:func:`against_the_book`). The test split chooses nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodnn.config import SMALL_VALIDATION
from autodnn.study.records import is_baseline
from autodnn.study.trial_record import CONFIG
from autodnn.training.crossval import FOLDS, better_first, rank_key

#: Below :data:`autodnn.config.SMALL_VALIDATION` validation rows one row moves validation accuracy by a tenth


#: of a point or more, and the search's pick (one training run each) among its top trials is mostly the luck of


#: the seed and of the split: the final evaluation then cross-validates the top ``FINALISTS`` and the book's


#: baselines (:mod:`autodnn.training.crossval`) and keeps the one of best mean validation figure over the folds (lower


#: mean validation loss on a tie). The test split is never used to choose.
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


def contenders(study: optuna.Study, entries: list[dict[str, Any]], n_valid: int) -> list[dict[str, Any]]:
    """What the evaluation cross-validates to pick the best (:mod:`autodnn.training.crossval`): under
    :data:`SMALL_VALIDATION` validation rows, the :func:`finalists` (named ``trial N``) and the baselines among
    ``entries``, where they are two or more; [] where the search's best stands alone."""
    if n_valid >= SMALL_VALIDATION:
        return []
    candidates = [{**searched_entry(trial), "name": f"trial {trial.number}"} for trial in finalists(study)]
    candidates += [dict(entry) for entry in entries[1:] if entry.get("kind") == "baseline"]
    return candidates if len(candidates) >= 2 else []


def searched_entry(trial: FrozenTrial) -> dict[str, Any]:
    """The evaluation's entry of a searched trial, as the best."""
    return {"name": "best", "title": f"Best found (trial {trial.number})", "kind": "best",
            "trial_number": trial.number, "config": trial.user_attrs[CONFIG]}


def choose_best(entries: list[dict[str, Any]], candidates: list[dict[str, Any]], n_valid: int,
                 retrain: Callable[..., list[bytes | None]], score: str) -> tuple[list[bytes | None], dict[str, Any]]:
    """Trains the best entry (``entries[0]``), or the cross-validated :func:`contenders`' first; a baseline so chosen
    is only named in the selection (it trains as a baseline, then :func:`as_best` copies it).

    Returns:
        The kept networks of the chosen entry's seeds ([] for a chosen baseline), and how it was chosen (stored
        as ``selection``).
    """
    what = f"validation {score[4:].replace('_', ' ')}"
    if not candidates:
        return retrain(entries[0]), {
            "rule": f"the search's trial of best {what}", "n_valid": n_valid, "finalists": []}
    ranked = sorted(candidates, key=lambda c: rank_key(c, score))
    summary = [{"name": c["name"], "kind": c["kind"], "trial_number": c["trial_number"],
                f"{score}_mean": c["cv"][f"{score}_mean"], "val_loss_mean": c["cv"]["val_loss_mean"]} for c in ranked]
    chosen = ranked[0]
    searched = [c for c in ranked if c["kind"] == "best"]
    top = [f"the search's top {len(searched)}" if len(searched) > 1 else "the search's best"] * bool(searched)
    among = " and ".join(top + ["the book's baselines"] * any(c["kind"] == "baseline" for c in ranked))
    rule = (f"the one of best mean {what} over {FOLDS}-fold cross-validation of the training and validation rows "
            f"among {among} ({chosen['name']}): validation has {n_valid} rows, under {SMALL_VALIDATION}, too few for "
            "one split to tell them apart; the test split was not used to choose")
    selection = {"rule": rule, "n_valid": n_valid, "finalists": summary, "folds": FOLDS,
                 "chosen": chosen["trial_number"]}
    if chosen["kind"] == "baseline":
        selection["baseline"] = chosen["name"]
        if searched:
            selection["searched_best"] = {"trial_number": searched[0]["trial_number"],
                                          f"{score}_mean": searched[0]["cv"][f"{score}_mean"]}
        return [], selection
    entries[0] = {**chosen, "name": "best"}
    return retrain(entries[0]), selection


def validation_key(entry: dict[str, Any], score: str) -> tuple[float, float]:
    """Sorts entries best first by mean validation ``score`` over their runs, then by lower mean validation loss."""
    runs = entry["runs"]
    return better_first(_finite_mean(r.get(score) for r in runs), _finite_mean(r.get("val_loss") for r in runs))


def against_the_book(entries: list[dict[str, Any]], files: list[bytes | None], book_files: dict[str, list[bytes | None]],
                      score: str, selection: dict[str, Any]) -> list[bytes | None]:
    """Makes a book baseline the best where it did better on mean validation than the searched best.

    The search's pick and every baseline are trained with the same seeds by then; the best is the one the
    validation split prefers (:func:`_validation_key`), so what autodnn recommends is never worse on validation
    than the book's defaults. The entry of a baseline so chosen is copied as the best, its ``baseline`` key naming
    it, and ``selection`` says so; the test split still chooses nothing.

    Returns:
        The networks of the best entry's runs (a baseline's where one was chosen).
    """
    searched = entries[0]
    book = [e for e in entries[1:] if e.get("kind") == "baseline" and any(f is not None for f in book_files[e["name"]])]
    if not book:
        return files
    rival = min(book, key=lambda e: validation_key(e, score))
    if validation_key(rival, score) >= validation_key(searched, score):
        return files
    what = f"validation {score[4:].replace('_', ' ')}"
    selection["baseline"] = rival["name"]
    selection["searched_best"] = {"trial_number": searched["trial_number"],
                                  f"{score}_mean": _finite_mean(r.get(score) for r in searched["runs"])}
    selection["rule"] = (f"{rival['name']}'s configuration: its mean {what} over the seeds beat the search's pick "
                         f"(trial {searched['trial_number']}), and the best is the configuration the validation split "
                         "prefers, the book's included; the test split was not used to choose")
    return as_best(entries, rival, book_files)


def chosen_baseline(entries: list[dict[str, Any]], candidates: list[dict[str, Any]], selection: dict[str, Any],
                    book_files: dict[str, list[bytes | None]], score: str) -> list[bytes | None] | None:
    """The networks of the baseline the cross-validation chose (``selection["baseline"]``), once its seeds are
    trained, copied as the best (:func:`as_best`). Where none of its runs left a network (every one reused from
    another study), None, after naming as ``entries[0]`` the searched candidate that cross-validated best, for the
    caller to retrain so that a network is kept; the selection's rule says so."""
    name = selection["baseline"]
    searched = min((c for c in candidates if c["kind"] == "best"), key=lambda c: rank_key(c, score), default=None)
    if any(f is not None for f in book_files[name]) or searched is None:
        return as_best(entries, next(e for e in entries[1:] if e["name"] == name), book_files)
    for key in ("baseline", "searched_best"):
        selection.pop(key, None)
    selection["chosen"] = searched["trial_number"]
    selection["rule"] += (f"; {name} cross-validated best, but every run of it was reused from another study and "
                          f"left no network to keep, so the best is the search's first over the folds "
                          f"({searched['name']})")
    entries[0] = {**searched, "name": "best"}
    return None


def as_best(entries: list[dict[str, Any]], rival: dict[str, Any],
             book_files: dict[str, list[bytes | None]]) -> list[bytes | None]:
    """Copies the baseline ``rival`` as the best (``entries[0]``), its ``baseline`` key naming it; returns its
    networks."""
    entries[0] = {**rival, "name": "best", "kind": "best", "baseline": rival["name"],
                  "title": f"{rival['name']}'s configuration (nothing searched did better on validation)"}
    return book_files[rival["name"]]


def _finite_mean(values: Any) -> float:
    """The mean of the finite values; NaN where there is none."""
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan
