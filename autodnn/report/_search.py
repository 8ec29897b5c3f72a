"""What the search-visualization figures show: trial values and parameters, importances, intermediate values.

:func:`gather_search` turns the study's trials into one :class:`SearchData`, which :mod:`autodnn.report._figures`
draws as the optimization history, parameter importances, parallel coordinates and intermediate values.
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodnn.study.trial_record import BASELINE

#: The intermediate-values plot draws at most this many trials (evenly spread over the study).
MAX_LINES = 1000

#: Most complete trials parameter importances are computed from (a seeded uniform sample beyond that).
IMPORTANCE_SAMPLE = 2_000


@dataclass
class ParamColumn:
    """One parameter over the complete trials of :class:`SearchData` (None where a trial lacks it)."""

    name: str
    values: list[Any]
    categorical: bool
    log: bool


@dataclass
class SearchData:
    """What the search-visualization figures need.

    Attributes:
        numbers: Numbers of the complete trials, in order.
        values: Their objective values: the study's metric (validation accuracy, a regression's R² ...).
        baselines: Their baseline mark (None for searched trials).
        searched: Values of the complete searched trials (baselines have no sampled parameters).
        columns: Parameters that take more than one value among the searched trials, aligned with ``searched``.
        importances: Parameter -> share of the objective's variance it explains, or empty.
        importance_note: Why importances are missing, or how they were computed.
        lines: ``(number, pruned, values per epoch)`` of the trials the intermediate-values plot draws.
        lines_note: Says when only a sample of the trials is drawn.
        metric: The study's metric name (``val_accuracy``, ``val_r2`` ...): what the values are.
    """

    numbers: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    baselines: list[str | None] = field(default_factory=list)
    searched: list[float] = field(default_factory=list)
    columns: list[ParamColumn] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    lines: list[tuple[int, bool, list[float | None]]] = field(default_factory=list)
    lines_note: str = ""
    metric: str = "val_accuracy"


def trial_value(trial: FrozenTrial) -> float:
    """The trial's objective value (the study's metric), or -inf when it has none."""
    return float(trial.value) if trial.value is not None else -math.inf


def metric_name(study: optuna.Study) -> str:
    """The study's metric name (Optuna's ``metric_names``), ``val_accuracy`` where the study names none."""
    names = study.metric_names
    return str(names[0]) if names and names[0] else "val_accuracy"


def gather_search(study: optuna.Study, trials: list[FrozenTrial], complete: list[FrozenTrial]) -> SearchData:
    """Collects what the search-visualization figures draw.

    Args:
        study: The study the trials come from (its directions; importances are computed on an in-memory copy).
        trials: All trials of the study, in number order.
        complete: Its complete trials that have a value.

    Returns:
        The figures' data; importances are empty, with a note saying why, when they cannot be computed.
    """
    data = SearchData(
        numbers=[t.number for t in complete],
        values=[trial_value(t) for t in complete],
        baselines=[t.user_attrs.get(BASELINE) or None for t in complete],
        metric=metric_name(study),
    )
    searched = [t for t in complete if not t.user_attrs.get(BASELINE)]
    data.searched = [trial_value(t) for t in searched]
    names: dict[str, bool] = {}
    for t in searched:
        for key, dist in t.distributions.items():
            if key not in names:
                names[key] = getattr(dist, "log", False)
    for key, log in names.items():
        values = [t.params.get(key) for t in searched]
        if len({repr(v) for v in values}) < 2:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None)
        data.columns.append(ParamColumn(key, values, not numeric, bool(log) and numeric))
    data.importances, data.importance_note = _importances(study, searched, data.columns)

    drawn = [t for t in trials if t.intermediate_values and t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(drawn) > MAX_LINES:
        step = len(drawn) / MAX_LINES
        data.lines_note = (f"Showing {MAX_LINES:,} of {len(drawn):,} trials, an even sample by trial number, "
                           "to keep the page light.")
        drawn = [drawn[int(i * step)] for i in range(MAX_LINES)]
    for t in drawn:
        # One value an epoch, in epoch order, whether the study's steps start at 0 or 1.
        line: list[float | None] = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        data.lines.append((t.number, t.state == TrialState.PRUNED, line))
    return data


def _importances(study: optuna.Study, searched: list[FrozenTrial],
                 columns: list[ParamColumn]) -> tuple[dict[str, float], str]:
    if len(searched) < 2:
        return {}, "Parameter importances need at least 2 complete searched trials."
    if not columns:
        return {}, "Parameter importances need at least one parameter that varies between complete trials."
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    sample = searched
    if len(searched) > IMPORTANCE_SAMPLE:
        # Copying every trial into the evaluator's study costs seconds per thousand; a seeded uniform sample keeps
        # both the top 10% and the rest that PED-ANOVA compares.
        sample = random.Random(0).sample(searched, IMPORTANCE_SAMPLE)
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # PED-ANOVA (Optuna's default evaluator since 5.0) stays fast at 10,000 trials; fANOVA takes minutes.
            found = get_param_importances(_snapshot(study, sample), evaluator=PedAnovaImportanceEvaluator())
    except Exception as exc:  # noqa: BLE001 - any evaluator error costs only this figure; the note says why
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {}, f"Optuna could not compute parameter importances for this study: {first[:300]}"
    finally:
        logger.setLevel(level)
    note = ("PED-ANOVA (Optuna's importance evaluator): how much each parameter separates the best 10% of "
            "complete searched trials from the rest.")
    if len(sample) < len(searched):
        note += f" Computed on a random sample of {len(sample):,} of the {len(searched):,} trials."
    if caught:
        note += f" Optuna warned: {str(caught[0].message).splitlines()[0][:200]}"
    return {k: float(v) for k, v in found.items()}, note


def _snapshot(study: optuna.Study, trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory copy of the trials' parameters and values.

    The evaluator reads the study's trials more than once; from a database each read reloads every trial with
    its histories, seconds per thousand trials.
    """
    from optuna.trial import create_trial

    copy = optuna.create_study(directions=study.directions)
    copy.add_trials([create_trial(value=t.value, params=t.params, distributions=t.distributions) for t in trials])
    return copy
