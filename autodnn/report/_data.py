"""What a report shows, gathered from one study into plain dataclasses (no plotting, no HTML).

Everything here comes from the study database: study attributes (dataset, space, environment, options,
evaluation) and the trials with their user attributes. :func:`gather` reads the trials once and builds no
per-trial objects beyond one table row, so it stays fast with thousands of trials. What the search figures
draw (values, parameters, importances, intermediate values) is gathered by :mod:`autodnn.report._search`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodnn.defaults import PUBLISHED_CIFAR10
from autodnn.errors import UsageError
from autodnn.evaluate import headline_metric, plain_lines
from autodnn.report._measures import Measure, measure_of
from autodnn.report._predictions import Predictions, gather_predictions
from autodnn.report._scores import BASELINE_TITLES, Comparison, Headline, Score, entry_score, headline
from autodnn.report._search import ParamColumn, SearchData, gather_search, trial_value
from autodnn.study.options import stored_options
from autodnn.study.reuse import REUSED
from autodnn.study.trial_record import (
    BASELINE,
    BASELINES_LEFT_OUT,
    CONFIG,
    EPOCH_TIMES,
    HISTORY,
    LR_FINDER,
    MEASURED,
    PREDICTED,
    REASON,
    RESULT,
    SEED,
    TITLE,
)

__all__ = ["Comparison", "Compute", "Curve", "Headline", "LRCurve", "Measure", "ParamColumn", "Predictions",
           "ReportData", "Score", "SearchData", "TrialRow", "gather"]

#: The per-epoch validation figure the learning curves draw, by task.
CURVE_METRICS = {"classification": "val_accuracy", "regression": "val_r2"}


@dataclass
class TrialRow:
    """One line of the trials table.

    Attributes:
        number: Optuna's trial number.
        state: ``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING`` or ``WAITING``.
        value: The trial's objective value, the study's metric (complete trials only).
        epochs: Epochs trained, when known.
        pruned_at: 1-based epoch at which a pruned trial stopped.
        seconds: Wall time of the trial.
        predicted_epoch_seconds: Seconds an epoch was predicted to take before the trial started.
        epoch_seconds: Seconds its steady epochs took (median after the first).
        baseline: The book default this trial trains (``book-2e`` ...), or None for a searched one.
        retry_of: Number of the failed trial this one retries.
        reason: Why the trial failed or was pruned.
        params: Sampled parameters.
    """

    number: int
    state: str
    value: float | None
    epochs: int | None
    pruned_at: int | None
    seconds: float | None
    baseline: str | None
    retry_of: int | None
    reason: str
    params: dict[str, Any]
    predicted_epoch_seconds: float | None = None
    epoch_seconds: float | None = None


@dataclass
class Curve:
    """A validation figure (accuracy, or a regression's R²) and the loss per epoch of one training run (index 0
    is epoch 1)."""

    name: str
    title: str
    kind: str
    seed: int | None
    trial_number: int | None
    values: list[float]
    val_loss: list[float]


@dataclass
class LRCurve:
    """The learning-rate finder's sweep of one trial and its pick."""

    trial_number: int
    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    turning_point: float | None
    diverged: bool


@dataclass
class Compute:
    """What the study cost: trial counts, epochs and time."""

    counts: dict[str, int]
    epochs_spent: int
    median_complete_epochs: float | None
    epochs_saved: float | None
    epochs_saved_max: int | None
    max_epochs: int | None
    epoch_seconds: float | None
    trial_seconds: float
    wall_seconds: float | None
    evaluation_seconds: float


@dataclass
class ReportData:
    """Everything the report shows about one study."""

    study: str
    dataset: dict[str, Any]
    space: dict[str, Any]
    space_digest: str
    environment: dict[str, Any]
    options: dict[str, Any]
    headline: Headline
    reference: Score | None
    reference_gap: float | None
    plain: list[str]
    best_config: dict[str, Any] | None
    best_learning_rate: float | None
    best_label: str
    published: list[dict[str, Any]]
    curves: list[Curve]
    curves_source: str
    lr_curve: LRCurve | None
    search: SearchData
    trials: list[TrialRow]
    compute: Compute
    selection: str = ""
    choice: list[dict[str, Any]] = field(default_factory=list)
    task: str = "classification"
    target: dict[str, Any] = field(default_factory=dict)
    reference_relative: float | None = None
    curves_metric: str = "val_accuracy"
    predictions: Predictions | None = None
    predictions_note: str = ""
    left_out: list[str] = field(default_factory=list)
    reused: dict[str, str] = field(default_factory=dict)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _floats(values: Any) -> list[float]:
    return [float(v) if isinstance(v, (int, float)) else float("nan") for v in values or ()]


def _epochs(trial: FrozenTrial) -> int | None:
    result = _dict(trial.user_attrs.get(RESULT))
    if isinstance(result.get("epochs"), int):
        return result["epochs"]
    history = _dict(trial.user_attrs.get(HISTORY))
    history = history.get("val_accuracy") or history.get("val_r2")
    if history:
        return len(history)
    return len(trial.intermediate_values) or None


def _row(trial: FrozenTrial) -> TrialRow:
    pruned_at = None
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        pruned_at = len(trial.intermediate_values)  # one value an epoch, whether steps start at 0 or 1
    retry = trial.system_attrs.get("failed_trial")
    return TrialRow(
        number=trial.number,
        state=trial.state.name,
        value=trial.value if trial.state == TrialState.COMPLETE else None,
        epochs=_epochs(trial),
        pruned_at=pruned_at,
        seconds=trial.duration.total_seconds() if trial.duration is not None else None,
        baseline=trial.user_attrs.get(BASELINE) or None,
        retry_of=retry if isinstance(retry, int) else None,
        reason=str(trial.user_attrs.get(REASON) or ""),
        params=dict(trial.params),
        predicted_epoch_seconds=_number(trial.user_attrs.get(PREDICTED)),
        epoch_seconds=_number(trial.user_attrs.get(MEASURED)),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def gather(study: optuna.Study) -> ReportData:
    """Collects everything the report shows about ``study``.

    Args:
        study: A single-objective study written by autodnn (or any study with the same attributes).

    Returns:
        The report's data; sections without data (no trials, no evaluation) are empty, never missing.

    Raises:
        UsageError: The study has more than one objective.
    """
    if len(study.directions) != 1:
        raise UsageError(f"study {study.study_name!r} has {len(study.directions)} objectives; autodnn reports "
                         "single-objective studies (validation accuracy, or a regression's R²)")
    from autodnn.study.records import read_trials

    trials = read_trials(study)
    attrs = study.user_attrs
    options = stored_options(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    searched = [t for t in complete if not t.user_attrs.get(BASELINE)]
    best = max(searched, key=trial_value) if searched else None
    by_number = {t.number: t for t in trials}
    baselines: dict[str, FrozenTrial] = {}
    for t in complete:
        mark = t.user_attrs.get(BASELINE)
        if mark and (mark not in baselines or trial_value(t) > trial_value(baselines[mark])):
            baselines[str(mark)] = t
    evaluation = _dict(attrs.get("evaluation"))
    entries = [e for e in evaluation.get("entries") or () if isinstance(e, dict)]
    dataset = _dict(attrs.get("dataset"))
    task = str(evaluation.get("task") or dataset.get("task") or options.get("task") or "classification")
    task = task if task in CURVE_METRICS else "classification"
    metric = headline_metric({**evaluation, "task": task})[5:] if entries else options.get("metric")
    measure = measure_of(task, metric, evaluated=bool(entries))

    top = headline(entries, evaluation.get("seeds") or [], best, baselines, measure)
    reference = (entry_score(evaluation["reference"], measure) if isinstance(evaluation.get("reference"), dict)
                 else None)
    gap = relative = None
    if reference is not None and reference.mean is not None and top.best is not None and top.best.mean is not None:
        gap = measure.scale * (top.best.mean - reference.mean)
        relative = 100 * gap / abs(reference.mean) if measure.relative and reference.mean else None
    source_trial = best
    if top.best is not None and top.best.trial_number in by_number:
        source_trial = by_number[top.best.trial_number]
    best_config = (top.best.config if top.best else None) or (
        _dict(source_trial.user_attrs.get(CONFIG)) if source_trial else None)
    used_lr = _dict(source_trial.user_attrs.get(RESULT)).get("learning_rate") if source_trial else None
    curve_metric = CURVE_METRICS[task]
    curves, source = (_evaluation_curves(entries, curve_metric), "evaluation") if entries else (
        _trial_curves(best, baselines, curve_metric), "trials")
    predictions, note = gather_predictions(study, evaluation, task)
    name = str(dataset.get("name", ""))
    cifar = "cifar10" in name.lower().replace("-", "").replace("_", "") and "cifar100" not in name.lower()
    return ReportData(
        study=study.study_name,
        dataset=dataset,
        space=_dict(attrs.get("space")),
        space_digest=str(attrs.get("space_digest") or ""),
        environment=_dict(attrs.get("environment")),
        options=options,
        headline=top,
        reference=reference,
        reference_gap=gap,
        plain=plain_lines(evaluation) if entries else [],
        best_config=best_config or None,
        best_learning_rate=used_lr if isinstance(used_lr, (int, float)) else None,
        best_label=top.best.title if top.best else "",
        published=[dict(row) for row in PUBLISHED_CIFAR10] if cifar else [],
        curves=curves,
        curves_source=source,
        lr_curve=_lr_curve(source_trial),
        search=gather_search(study, trials, complete),
        trials=[_row(t) for t in trials],
        compute=_compute(trials, options, entries),
        selection=str(_dict(evaluation.get("selection")).get("rule") or ""),
        choice=_choice(_dict(evaluation.get("selection"))),
        task=task,
        target=_target(evaluation, dataset) if task == "regression" else {},
        reference_relative=relative,
        curves_metric=curve_metric,
        predictions=predictions,
        predictions_note=note,
        left_out=[str(line) for line in study.user_attrs.get(BASELINES_LEFT_OUT) or []],
        reused={str(t.user_attrs[BASELINE]): str(t.user_attrs[REUSED]["study"]) for t in trials
                if t.user_attrs.get(BASELINE) and isinstance(t.user_attrs.get(REUSED), dict)},
    )


def _target(evaluation: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """A regression's target: its name, and its training mean and standard deviation in its own units."""
    stored = _dict(evaluation.get("target"))
    return {"name": str(stored.get("name") or dataset.get("target_name") or "target"),
            "mean": _number(stored.get("mean", dataset.get("target_mean"))),
            "std": _number(stored.get("std", dataset.get("target_std")))}


def _evaluation_curves(entries: list[dict[str, Any]], metric: str) -> list[Curve]:
    curves = []
    for entry in entries:
        for run in entry.get("runs") or ():
            history = _dict(_dict(run).get("history"))
            if history.get(metric):
                curves.append(Curve(str(entry.get("name", "")), str(entry.get("title", "")), str(entry.get("kind", "")),
                                    run.get("seed"), entry.get("trial_number"), _floats(history.get(metric)),
                                    _floats(history.get("val_loss"))))
    return curves


def _trial_curves(best: FrozenTrial | None, baselines: dict[str, FrozenTrial], metric: str) -> list[Curve]:
    chosen: list[tuple[str, str, str, FrozenTrial]] = []
    if best is not None and not best.user_attrs.get(BASELINE):
        chosen.append(("best", f"Best trial (#{best.number})", "best", best))
    for mark, trial in sorted(baselines.items()):
        title = trial.user_attrs.get(TITLE) or BASELINE_TITLES.get(mark, mark)
        chosen.append((mark, f"{title} (trial #{trial.number})", "baseline", trial))
    curves = []
    for name, title, kind, trial in chosen:
        history = _dict(trial.user_attrs.get(HISTORY))
        values = history.get(metric) or [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        if values:
            curves.append(Curve(name, title, kind, trial.user_attrs.get(SEED), trial.number, _floats(values),
                                _floats(history.get("val_loss"))))
    return curves


def _lr_curve(trial: FrozenTrial | None) -> LRCurve | None:
    finder = _dict(trial.user_attrs.get(LR_FINDER)) if trial is not None else {}
    if trial is None or not finder.get("learning_rates"):
        return None
    suggestion, turning = finder.get("suggestion"), finder.get("turning_point")
    return LRCurve(
        trial_number=trial.number,
        learning_rates=_floats(finder.get("learning_rates")),
        losses=_floats(finder.get("losses")),
        smoothed=_floats(finder.get("smoothed")),
        suggestion=float(suggestion) if isinstance(suggestion, (int, float)) else None,
        turning_point=float(turning) if isinstance(turning, (int, float)) else None,
        diverged=bool(finder.get("diverged")),
    )


def _compute(trials: list[FrozenTrial], options: dict[str, Any], entries: list[dict[str, Any]]) -> Compute:
    counts = {state.name: 0 for state in TrialState}
    for t in trials:
        counts[t.state.name] += 1
    epochs = {t.number: _epochs(t) or 0 for t in trials}
    complete_epochs = [epochs[t.number] for t in trials if t.state == TrialState.COMPLETE and epochs[t.number]]
    pruned = [epochs[t.number] for t in trials if t.state == TrialState.PRUNED]
    median = statistics.median(complete_epochs) if complete_epochs else None
    max_epochs = options.get("max_epochs") if isinstance(options.get("max_epochs"), int) else None
    times = [float(s) for t in trials for s in t.user_attrs.get(EPOCH_TIMES) or ()
             if isinstance(s, (int, float))]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    evaluation_seconds = sum(float(_dict(r).get("seconds") or 0) for e in entries for r in e.get("runs") or ())
    return Compute(
        counts=counts,
        epochs_spent=sum(epochs.values()),
        median_complete_epochs=median,
        epochs_saved=sum(max(0.0, median - e) for e in pruned) if median is not None and pruned else None,
        epochs_saved_max=sum(max(0, max_epochs - e) for e in pruned) if max_epochs and pruned else None,
        max_epochs=max_epochs,
        epoch_seconds=statistics.median(times) if times else None,
        trial_seconds=sum(t.duration.total_seconds() for t in trials if t.duration is not None),
        wall_seconds=wall,
        evaluation_seconds=evaluation_seconds,
    )


def generated_at() -> str:
    """The local time a report is made, for its footer."""
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _choice(selection: dict[str, Any]) -> list[dict[str, Any]]:
    """The cross-validated candidates of a small-validation study, best first: name, mean validation figure (its
    name), mean validation loss; [] where the best was not chosen by cross-validation."""
    if not selection.get("folds"):
        return []
    rows = []
    for candidate in selection.get("finalists") or []:
        metric = next((k for k in candidate if k.endswith("_mean") and k != "val_loss_mean"), "")
        rows.append({"name": str(candidate.get("name", "")), "metric": metric.removesuffix("_mean"),
                     "value": candidate.get(metric), "loss": candidate.get("val_loss_mean"),
                     "chosen": candidate.get("trial_number") == selection.get("chosen")})
    return rows

