"""The book baselines' runs reused across studies of the same data and settings.

A book baseline is a fixed configuration: trained on the same data (the dataset's fingerprint: rows, split, seed
and scaling), by the same backend at the same precision, with the same seed, epoch budget, metric and class
weighting, it gives the same run in every study. So a study whose storage holds another such study takes that
study's baseline run (its search run, tested at its end) and the final-evaluation runs of it, instead of training
them again: on CIFAR-10 that is three baselines times three seeds of training. The reused trial is a completed
trial of this study like any other, its curve and figures copied, with :data:`REUSED` naming where it came from;
the final evaluation reuses the runs of the seeds it wants and trains the rest, and the output and the report say
which baselines were reused.
"""

from __future__ import annotations

import copy
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodnn.study.trial_record import BASELINE, CONFIG, TEST_RUN

#: Trial attribute of a reused baseline run: ``{"study": name, "trial": number, "evaluation": {...}}``, the last
#: holding the other study's final-evaluation runs of it, their epoch budget and MC-dropout passes.
REUSED = "reused_from"
#: What must be equal in two studies' records for one's baseline runs to be the other's.
SAME = ("seed", "max_epochs", "mc_samples", "metric", "class_weight", "lr_finder", "first_step")
#: Configuration fields a search sets on a baseline from its options (pinned by :data:`SAME`), left out when two
#: baselines' configurations are compared.
SET_BY_OPTIONS = ("class_weight", "lr_finder")


def setting(attrs: dict[str, Any]) -> tuple[Any, ...] | None:
    """What decides a baseline's run in a study with these user attributes; None where the study lacks a record."""
    dataset, environment = attrs.get("dataset") or {}, attrs.get("environment") or {}
    options = attrs.get("settings") or {}
    if not dataset.get("fingerprint") or not environment.get("backend") or not options:
        return None
    return (dataset["fingerprint"], environment["backend"], environment.get("precision"),
            *(options.get(key) for key in SAME))


def donor_run(study: optuna.Study, name: str, config: dict[str, Any]) -> FrozenTrial | None:
    """A completed, tested run of baseline ``name`` with ``config`` in another study of ``study``'s storage made on
    the same data and settings (:func:`setting`), as a trial to add to ``study``; None where there is none.

    A run reused from a study that itself reused it names the study that trained it.
    """
    mine = setting(study.user_attrs)
    if mine is None:
        return None
    for summary in optuna.get_all_study_summaries(study._storage, include_best_trial=False):
        if summary.study_name == study.study_name or setting(summary.user_attrs) != mine:
            continue
        other = optuna.load_study(study_name=summary.study_name, storage=study._storage)
        for trial in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            attrs = trial.user_attrs
            if attrs.get(BASELINE) != name or not _same_config(attrs.get(CONFIG), config) or TEST_RUN not in attrs:
                continue
            origin = attrs.get(REUSED) or {"study": other.study_name, "trial": trial.number}
            evaluation = _evaluation_runs(summary.user_attrs.get("evaluation"), name, config) \
                or (origin.get("evaluation") if attrs.get(REUSED) else None)
            copied = copy.deepcopy(trial)
            copied.user_attrs = {**copy.deepcopy(attrs), REUSED: {"study": origin["study"], "trial": origin["trial"],
                                                                  **({"evaluation": evaluation} if evaluation else {})}}
            return copied
    return None


def _evaluation_runs(evaluation: dict[str, Any] | None, name: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The final-evaluation runs of baseline ``name`` in another study's stored evaluation, with the settings they
    were trained under; None where that study holds none."""
    if not evaluation:
        return None
    for entry in evaluation.get("entries", []):
        if entry.get("kind") == "baseline" and entry.get("name") == name and _same_config(entry.get("config"), config):
            runs = [run for run in entry.get("runs", []) if run.get("seed") in evaluation.get("seeds", [])]
            if runs:
                return {"max_epochs": evaluation.get("max_epochs"), "mc_samples": evaluation.get("mc_samples"),
                        "runs": copy.deepcopy(runs)}
    return None


def _same_config(stored: dict[str, Any] | None, config: dict[str, Any]) -> bool:
    """Whether a stored baseline configuration is ``config``, but for what the search's options set on it."""
    if not stored:
        return False
    return ({k: v for k, v in stored.items() if k not in SET_BY_OPTIONS}
            == {k: v for k, v in config.items() if k not in SET_BY_OPTIONS})


def reuse_baseline(study: optuna.Study, name: str, config: dict[str, Any]) -> str | None:
    """Adds to ``study`` another study's run of baseline ``name`` (:func:`donor_run`), completed as it was.

    Returns:
        The name of the study it came from, or None where none could be reused (the baseline is then to train).
    """
    trial = donor_run(study, name, config)
    if trial is None:
        return None
    study.add_trial(trial)
    return str(trial.user_attrs[REUSED]["study"])


def reused_evaluation_runs(trial: FrozenTrial, seeds: list[int], max_epochs: int, mc_samples: int) -> list[dict[str, Any]]:
    """The final-evaluation runs a reused baseline ``trial`` brings for ``seeds``, where the other study's evaluation
    trained them under the same epoch budget and MC-dropout passes; [] otherwise."""
    evaluation = (trial.user_attrs.get(REUSED) or {}).get("evaluation") or {}
    if evaluation.get("max_epochs") != max_epochs or evaluation.get("mc_samples") != mc_samples:
        return []
    return [copy.deepcopy(run) for run in evaluation.get("runs", []) if run.get("seed") in seeds]
