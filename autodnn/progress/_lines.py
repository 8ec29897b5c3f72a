"""The plain-text lines of a search's progress: a trial started or finished, a wait, the study opened."""

from __future__ import annotations

import re
from typing import Any

from autodnn.study.trial_record import BASELINE, EPOCH_TIMES, REASON, RESULT

#: A line a worker process prints when one of its trials ended (:func:`trial_line`), as relayed to the parent.
FINISHED_LINE = re.compile(r"^Trial\s+\S+\s+(complete|pruned|fail)")


def describe_config(config: dict[str, Any]) -> str:
    """A configuration in one short phrase: ``2 x 64 elu, adam lr 0.0032 1cycle, batch 64, 20 epochs``.

    The epochs are named where the configuration sets its own (``epochs``), not where it trains the budget.
    """
    if config.get("family") == "conv":
        from autodnn.config import TrialConfig

        shape = TrialConfig.from_dict(config).shape_words
    else:
        shape = f"{config.get('n_hidden', '?')} x {config.get('n_units', '?')}"
    parts = [f"{shape} {config.get('activation', '?')}"]
    if config.get("normalization", "none") != "none":
        parts.append(str(config["normalization"]).replace("_", " "))
    for key in ("dropout", "alpha_dropout", "spatial_dropout", "augment_shift", "label_smoothing"):
        if config.get(key):
            parts.append(f"{key.replace('_', ' ')} {config[key]:.2g}")
    if config.get("augment_flip"):
        parts.append("flips")
    rate = "lr finder" if config.get("lr_finder") else f"lr {config.get('learning_rate', float('nan')):.2g}"
    schedule = config.get("schedule", "constant")
    parts.append(f"{config.get('optimizer', '?')} {rate}" + ("" if schedule == "constant" else f" {schedule}"))
    parts.append(f"batch {config.get('batch_size', '?')}")
    if config.get("epochs"):
        parts.append(f"{config['epochs']} epochs")
    return ", ".join(parts)


def trial_label(trial: Any) -> str:
    """A trial's name in every line: its baseline name, or its number right-aligned (columns line up)."""
    return str(trial.user_attrs.get(BASELINE, f"{trial.number:>3}"))


def trial_line(study: Any, trial: Any, searched: int | None = None) -> str:
    """The line printed when a trial ended: state, value, epochs and time, reason, and the searched count.

    Args:
        study: Its study.
        trial: The trial as stored after it ended.
        searched: Finished searched trials of the study, when already counted.
    """
    if searched is None:
        from autodnn.study.records import searched_count

        searched = searched_count(study)
    result = trial.user_attrs.get(RESULT, {})
    parts = [f"Trial {trial_label(trial):<9} {trial.state.name.lower():<8}"]
    if trial.value is not None:
        parts.append(f"{score_name(study)} {trial.value:.4f}")
    if result:
        parts.append(f"{result.get('epochs')} epochs, {sum(trial.user_attrs.get(EPOCH_TIMES, [])):.1f} s")
    if trial.user_attrs.get(REASON):
        parts.append(trial.user_attrs[REASON])
    if trial.system_attrs.get("failed_trial") is not None:
        parts.append(f"retry of trial {trial.system_attrs['failed_trial']} (its worker was lost)")
    parts.append(f"[{searched} searched]")
    return "  ".join(parts)


def score_name(study: Any) -> str:
    """The name of the value the study's trials hold (``val_accuracy``, ``val_r2``, ``val_balanced_accuracy`` ...)."""
    names = getattr(study, "metric_names", None)
    return names[0] if names and names[0] else "val_accuracy"


def wait_line(running: int) -> str:
    """The line printed when every missing trial runs in another worker and this one waits."""
    from autodnn.study.storage import heartbeat_settings

    return (f"Waiting: the {running} missing trial(s) run in other workers; a lost worker's trial is retried here "
            f"after {heartbeat_settings()[1]} s without a heartbeat.")


def study_line(study: Any, dataset: Any, space: Any, url: str, n_trials: int, baselines: bool) -> str:
    """The line printed when the study is open: where it lives, the data, the space and how far it is."""
    from autodnn.study.records import searched_count
    from autodnn.study.urls import redact

    return (f"Study '{study.study_name}' in {redact(url)}: dataset {dataset.name} ({dataset.sizes['train']} "
            f"train / {dataset.sizes['valid']} valid / {dataset.sizes['test']} test), space {space.name}, "
            f"{searched_count(study)} of {n_trials} trials finished{', book baselines too' if baselines else ''}.")


def tally(study: Any) -> tuple[int, float | None]:
    """Finished searched trials and the best searched validation accuracy (baselines excluded, as in ``show``).

    A trial the search did not start (no time or too dear, kept as pruned) is not counted, as ``--n-trials``
    does not count it.
    """
    from autodnn.study.records import FINISHED, counts, is_baseline

    searched = [t for t in study.get_trials(deepcopy=False, states=FINISHED) if counts(t) and not is_baseline(t)]
    best = max((t.value for t in searched if t.state.name == "COMPLETE" and t.value is not None), default=None)
    return len(searched), best
