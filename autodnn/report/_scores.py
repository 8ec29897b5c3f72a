"""The headline of a report: which configuration won, by how much, and the one-sentence verdict.

Scores come from the study's final evaluation (test figures over several seeds) when it has one, and from
the search's trials (validation figures, one run each) otherwise: accuracy for a classification, the study's
metric for a regression (RMSE unless it chose another; :mod:`autodnn.report._measures`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial

from autodnn.defaults import book_baselines
from autodnn.report._measures import Measure, measure_of
from autodnn.study.trial_record import CONFIG, RESULT, SEED, TITLE

#: How the verdict names each book default.
BASELINE_PHRASES = {
    "book-2e": "the 2nd-edition defaults",
    "book-3e": "the 3rd-edition defaults",
    "book-selu": "the self-normalizing defaults (Table 11-4)",
    "book-ch10": "chapter 10's regression defaults",
}
#: What the reader sees for each book default measured by a search trial (a regression's included).
BASELINE_TITLES = {b.name: b.title for b in book_baselines(regression=True)}
#: The order of the headline's table, after the best found.
SCORE_ORDER = ("best", "book-2e", "book-3e", "book-selu", "book-ch10")


@dataclass
class Score:
    """One configuration's headline figure: its test figure per seed (evaluation), or one validation figure
    (search).

    Attributes:
        name: ``best``, ``book-2e``, ``book-3e``, ``book-selu``, ``book-ch10`` (or another evaluated entry's name).
        title: What the reader sees.
        kind: ``best`` or ``baseline``.
        trial_number: The trial this configuration comes from.
        seeds: Seed of each run (None for a search trial).
        values: The headline figure of each run (accuracy as a fraction; RMSE in the target's units ...).
        epochs: Epochs of each run.
        seconds: Wall seconds of each run.
        mc_accuracy: MC-dropout test accuracy of each run that has one.
        config: The configuration (TrialConfig fields).
        beside: Figure -> its value in each run that has it, for the figures shown beside the headline one.
    """

    name: str
    title: str
    kind: str
    trial_number: int | None
    seeds: list[int | None]
    values: list[float]
    epochs: list[int]
    seconds: list[float]
    mc_accuracy: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    beside: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        """Mean of the headline figure over runs."""
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over runs (None for fewer than 2)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def mean_epochs(self) -> float | None:
        """Mean epochs per run."""
        return statistics.fmean(self.epochs) if self.epochs else None

    @property
    def mean_seconds(self) -> float | None:
        """Mean wall seconds per run."""
        return statistics.fmean(self.seconds) if self.seconds else None

    @property
    def mc_mean(self) -> float | None:
        """Mean MC-dropout accuracy, when measured."""
        return statistics.fmean(self.mc_accuracy) if self.mc_accuracy else None

    def figure(self, key: str) -> tuple[float | None, float | None]:
        """Mean and sample standard deviation (None for fewer than 2 runs) of a figure shown beside."""
        values = self.beside.get(key) or []
        return (statistics.fmean(values) if values else None, statistics.stdev(values) if len(values) > 1 else None)


@dataclass
class Comparison:
    """Best configuration minus one baseline: in points (percentage points) of accuracy, or in the units of a
    regression's figure.

    With runs on common seeds the difference is the mean of per-seed differences and the spread their sample
    standard deviation; otherwise the difference of means and the root of the summed variances. ``relative``
    is the difference in percent of the baseline's mean figure (a regression's only).
    """

    baseline: Score
    difference: float
    spread: float | None
    paired: int
    relative: float | None = None


@dataclass
class Headline:
    """The answer the report leads with.

    Attributes:
        evaluated: Whether the numbers are test figures of a final evaluation (else validation figures).
        metric: What the numbers are, in words: ``test accuracy``, ``validation accuracy``, ``test RMSE`` ...
        seeds: Seeds of the evaluation.
        scores: Every measured configuration, best first.
        best: The best configuration found, if any.
        winner: The configuration with the best mean figure.
        comparisons: The best configuration against each baseline.
        verdict: One sentence.
        measure: The figure the numbers are, and how they are written.
    """

    evaluated: bool
    metric: str
    seeds: list[int]
    scores: list[Score]
    best: Score | None
    winner: Score | None
    comparisons: list[Comparison]
    verdict: str
    measure: Measure = field(default_factory=lambda: measure_of("classification", None, evaluated=True))


def headline(
    entries: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    best: FrozenTrial | None,
    baselines: Mapping[str, FrozenTrial],
    measure: Measure | None = None,
) -> Headline:
    """Scores, comparisons and verdict of one study.

    Args:
        entries: The evaluation's entries (empty when the study was never evaluated).
        seeds: The evaluation's seeds.
        best: The best complete trial that is not a baseline.
        baselines: Baseline name -> its best complete trial.
        measure: The figure to tell; None is a classification's (test accuracy with entries, else validation
            accuracy).

    Returns:
        The headline; with entries it speaks of test figures, without of validation figures.
    """
    evaluated = bool(entries)
    measure = measure or measure_of("classification", None, evaluated=evaluated)
    if evaluated:
        scores = [entry_score(e, measure) for e in entries]
        scores = [s for s in scores if s.values]
        best_score = next((s for s in scores if s.kind == "best" or s.name == "best"), None)
    else:
        scores = [_trial_score(mark, f"{t.user_attrs.get(TITLE) or BASELINE_TITLES.get(mark, mark)} "
                                     f"(trial #{t.number})", "baseline", t, measure) for mark, t in baselines.items()]
        scores = [s for s in scores if s.values]
        best_score = _trial_score("best", f"Best trial (#{best.number})", "best", best, measure) if best else None
        if best_score is not None and not best_score.values:
            best_score = None
        if best_score:
            scores.insert(0, best_score)
    order = {name: i for i, name in enumerate(SCORE_ORDER)}
    scores.sort(key=lambda s: (s is not best_score, order.get(s.name, len(order)), s.name))
    others = [s for s in scores if s is not best_score]
    comparisons = [_compare(best_score, s, measure, paired=evaluated) for s in others] if best_score else []
    if measure.lower_is_better:
        winner = min(scores, key=lambda s: s.mean if s.mean is not None else math.inf) if scores else None
    else:
        winner = max(scores, key=lambda s: s.mean or 0.0) if scores else None
    return Headline(
        evaluated=evaluated,
        metric=measure.title,
        seeds=[int(s) for s in seeds if isinstance(s, int)],
        scores=scores,
        best=best_score,
        winner=winner,
        comparisons=comparisons,
        verdict=_verdict(evaluated, measure, best_score, comparisons, winner,
                         own=next((str(e["baseline"]) for e in entries if e.get("baseline")), None)),
        measure=measure,
    )


def _numbers(runs: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def entry_score(entry: Mapping[str, Any], measure: Measure | None = None) -> Score:
    """The score of one entry of a final evaluation (a configuration, or the trees' reference).

    Args:
        entry: The entry, with its runs.
        measure: The figure to read from each run; None is test accuracy.
    """
    measure = measure or measure_of("classification", None, evaluated=True)
    key = measure.key
    runs = [r for r in entry.get("runs") or () if isinstance(r, Mapping)
            and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    config = entry.get("config")
    return Score(
        name=str(entry.get("name", "")),
        title=str(entry.get("title") or entry.get("name", "")),
        kind=str(entry.get("kind", "")),
        trial_number=entry.get("trial_number") if isinstance(entry.get("trial_number"), int) else None,
        seeds=[r.get("seed") for r in runs],
        values=_numbers(runs, key),
        epochs=[int(e) for e in _numbers(runs, "epochs")],
        seconds=_numbers(runs, "seconds"),
        mc_accuracy=_numbers(runs, "mc_test_accuracy"),
        config=dict(config) if isinstance(config, Mapping) else {},
        beside={other: _numbers(runs, other) for other in measure.beside},
    )


def _trial_score(name: str, title: str, kind: str, trial: FrozenTrial, measure: Measure) -> Score:
    result = trial.user_attrs.get(RESULT)
    result = result if isinstance(result, dict) else {}
    epochs = result.get("epochs")
    if not isinstance(epochs, int):
        epochs = len(trial.intermediate_values) or None
    config = trial.user_attrs.get(CONFIG)
    if measure.from_value:
        values = [float(trial.value)] if trial.value is not None else []
    else:
        values = _numbers([result], measure.key)
    return Score(
        name=name,
        title=title,
        kind=kind,
        trial_number=trial.number,
        seeds=[trial.user_attrs.get(SEED)],
        values=values,
        epochs=[epochs] if epochs else [],
        seconds=[trial.duration.total_seconds()] if trial.duration is not None else [],
        config=dict(config) if isinstance(config, dict) else {},
        beside={other: _numbers([result], other) for other in measure.beside},
    )


def _compare(best: Score, other: Score, measure: Measure, *, paired: bool) -> Comparison:
    scale = measure.scale
    mine = dict(zip(best.seeds, best.values, strict=True))
    theirs = dict(zip(other.seeds, other.values, strict=True))
    common = [s for s in mine if s is not None and s in theirs] if paired else []
    if common:
        diffs = [scale * (mine[s] - theirs[s]) for s in common]
        spread = statistics.stdev(diffs) if len(diffs) > 1 else None
        comparison = Comparison(other, statistics.fmean(diffs), spread, len(common))
        base = statistics.fmean(theirs[s] for s in common)
    else:
        spread = None
        if best.std is not None and other.std is not None:
            spread = scale * math.hypot(best.std, other.std)
        comparison = Comparison(other, scale * ((best.mean or 0.0) - (other.mean or 0.0)), spread, 0)
        base = other.mean or 0.0
    if measure.relative and base:
        # In percent of the baseline's figure on the same runs the difference is taken over.
        comparison.relative = 100 * comparison.difference / abs(base)
    return comparison


def _verdict(evaluated: bool, measure: Measure, best: Score | None, comparisons: list[Comparison],
             winner: Score | None, own: str | None = None) -> str:
    """The report's first sentence. ``own`` names the book baseline whose configuration the best is (nothing
    searched did better on validation): the sentence then compares with the strongest of the others."""
    metric = measure.title
    if best is None:
        if winner is None or winner.mean is None:
            return "No trial has completed yet, so there is no result to compare."
        leads = f"{100 * winner.mean:.1f}% {metric}" if measure.percent else f"{metric} {measure.show(winner.mean)}"
        return f"No searched configuration has a result yet; of the book defaults, {winner.title} leads with {leads}."
    if not comparisons:
        reaches = f"{100 * (best.mean or 0.0):.1f}% {metric}" if measure.percent else \
            f"{metric} {measure.show(best.mean)}"
        return f"The best configuration found reaches {reaches}; no book default was measured to compare it with."
    # The strongest book default measured (as the command's verdict line, autodnn.study.verdict.verdict_line).
    others = [c for c in comparisons if c.baseline.name != own] or comparisons
    measured = [c for c in others if c.baseline.mean is not None]
    pick = min if measure.lower_is_better else max
    target = pick(measured, key=lambda c: c.baseline.mean) if measured else others[0]
    phrase = BASELINE_PHRASES.get(target.baseline.name, target.baseline.title)
    runs = len(best.values)
    subject = ("The best configuration found" if evaluated
               else f"On validation data, the best trial of the search (#{best.trial_number})")
    if own:
        subject = (f"The best configuration, {BASELINE_PHRASES.get(own, own)} (nothing searched did better on "
                   "validation),")
    if not measure.percent:
        return _figure_verdict(subject, phrase, measure, target, runs if evaluated else 1)
    over = f" ({_over(target, runs)})" if evaluated and runs > 1 else ""
    tail = f" of {metric}{over}"
    d, s = target.difference, target.spread
    if (s is not None and abs(d) <= s) or round(abs(d), 1) == 0:
        spread = f" ± {s:.1f}" if s is not None else ""
        within = ", within the spread between seeds" if s is not None else ""
        return f"{subject} and {phrase} are level: {d:+.1f}{spread} points{tail}{within}."
    amount = f"{abs(d):.1f} ± {s:.1f} points" if s is not None else f"{abs(d):.1f} points"
    verb = "beats" if d > 0 else "falls short of"
    return f"{subject} {verb} {phrase} by {amount}{tail}."


def _over(target: Comparison, runs: int) -> str:
    """Over which seeds the difference was taken: every one of the best's, or the few the baseline shares."""
    if target.paired and target.paired < runs:
        return f"paired over {target.paired} of {runs} seeds"
    return f"mean over {runs} seeds"


def _figure_verdict(subject: str, phrase: str, measure: Measure, target: Comparison, runs: int) -> str:
    """The verdict told in a figure that is no share (a regression's RMSE): the gap in the figure's units, and
    in percent of the baseline's figure."""
    d, s, relative = target.difference, target.spread, target.relative
    level = (s is not None and abs(d) <= s) or d == 0 or (relative is not None and round(abs(relative), 1) == 0)
    notes = []
    if relative is not None:
        notes.append(f"{relative:+.1f}%" if level else f"{abs(relative):.1f}% {'lower' if d < 0 else 'higher'}")
    if runs > 1:
        notes.append(_over(target, runs))
    said = f" ({'; '.join(notes)})" if notes else ""
    scale = target.baseline.mean
    if level:
        within = ", within the spread between seeds" if s is not None and abs(d) <= s else ""
        return f"{subject} and {phrase} are level on {measure.title}: {measure.difference(d, s, scale=scale)}{said}{within}."
    amount = measure.difference(abs(d), s, scale=scale).lstrip("+")
    verb = "beats" if (d < 0) == measure.lower_is_better else "falls short of"
    return f"{subject} {verb} {phrase} on {measure.title} by {amount}{said}."
