"""The headline of a report: which configuration won, by how much, and the one-sentence verdict.

Scores come from the study's final evaluation (test accuracy over several seeds) when it has one, and from
the search's trials (validation accuracy, one run each) otherwise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial

from autodnn.defaults import book_baselines
from autodnn.study.trial_record import CONFIG, RESULT, SEED, TITLE

#: How the verdict names each book default.
BASELINE_PHRASES = {
    "book-2e": "the 2nd-edition defaults",
    "book-3e": "the 3rd-edition defaults",
    "book-selu": "the self-normalizing defaults (Table 11-4)",
}
#: What the reader sees for each book default measured by a search trial.
BASELINE_TITLES = {b.name: b.title for b in book_baselines()}
#: The verdict compares with the first of these that was measured.
VERDICT_ORDER = ("book-3e", "book-2e", "book-selu")


@dataclass
class Score:
    """Accuracy of one configuration: test accuracy per seed (evaluation), or one validation accuracy (search).

    Attributes:
        name: ``best``, ``book-2e``, ``book-3e``, ``book-selu`` (or another evaluated entry's name).
        title: What the reader sees.
        kind: ``best`` or ``baseline``.
        trial_number: The trial this configuration comes from.
        seeds: Seed of each run (None for a search trial).
        accuracy: Accuracy of each run, as a fraction.
        epochs: Epochs of each run.
        seconds: Wall seconds of each run.
        mc_accuracy: MC-dropout test accuracy of each run that has one.
        config: The configuration (TrialConfig fields).
    """

    name: str
    title: str
    kind: str
    trial_number: int | None
    seeds: list[int | None]
    accuracy: list[float]
    epochs: list[int]
    seconds: list[float]
    mc_accuracy: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        """Mean accuracy over runs."""
        return statistics.fmean(self.accuracy) if self.accuracy else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over runs (None for fewer than 2)."""
        return statistics.stdev(self.accuracy) if len(self.accuracy) > 1 else None

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


@dataclass
class Comparison:
    """Best configuration minus one baseline, in points (percentage points) of accuracy.

    With runs on common seeds the difference is the mean of per-seed differences and the spread their sample
    standard deviation; otherwise the difference of means and the root of the summed variances.
    """

    baseline: Score
    difference: float
    spread: float | None
    paired: int


@dataclass
class Headline:
    """The answer the report leads with.

    Attributes:
        evaluated: Whether the numbers are test accuracies of a final evaluation (else validation accuracy).
        metric: ``test accuracy`` or ``validation accuracy``.
        seeds: Seeds of the evaluation.
        scores: Every measured configuration, best first.
        best: The best configuration found, if any.
        winner: The configuration with the highest mean accuracy.
        comparisons: The best configuration against each baseline.
        verdict: One sentence.
    """

    evaluated: bool
    metric: str
    seeds: list[int]
    scores: list[Score]
    best: Score | None
    winner: Score | None
    comparisons: list[Comparison]
    verdict: str


def headline(
    entries: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    best: FrozenTrial | None,
    baselines: Mapping[str, FrozenTrial],
) -> Headline:
    """Scores, comparisons and verdict of one study.

    Args:
        entries: The evaluation's entries (empty when the study was never evaluated).
        seeds: The evaluation's seeds.
        best: The best complete trial that is not a baseline.
        baselines: Baseline name -> its best complete trial.

    Returns:
        The headline; with entries it speaks of test accuracy, without of validation accuracy.
    """
    evaluated = bool(entries)
    if evaluated:
        scores = [entry_score(e) for e in entries]
        scores = [s for s in scores if s.accuracy]
        best_score = next((s for s in scores if s.kind == "best" or s.name == "best"), None)
    else:
        scores = [_trial_score(mark, f"{t.user_attrs.get(TITLE) or BASELINE_TITLES.get(mark, mark)} "
                                     f"(trial #{t.number})", "baseline", t) for mark, t in baselines.items()]
        best_score = _trial_score("best", f"Best trial (#{best.number})", "best", best) if best else None
        if best_score:
            scores.insert(0, best_score)
    order = {name: i for i, name in enumerate(("best", "book-2e", "book-3e", "book-selu"))}
    scores.sort(key=lambda s: (s is not best_score, order.get(s.name, len(order)), s.name))
    others = [s for s in scores if s is not best_score]
    comparisons = [_compare(best_score, s, paired=evaluated) for s in others] if best_score else []
    winner = max(scores, key=lambda s: s.mean or 0.0) if scores else None
    metric = "test accuracy" if evaluated else "validation accuracy"
    return Headline(
        evaluated=evaluated,
        metric=metric,
        seeds=[int(s) for s in seeds if isinstance(s, int)],
        scores=scores,
        best=best_score,
        winner=winner,
        comparisons=comparisons,
        verdict=_verdict(evaluated, metric, best_score, comparisons, winner),
    )


def _numbers(runs: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def entry_score(entry: Mapping[str, Any]) -> Score:
    """The score of one entry of a final evaluation (a configuration, or the trees' reference)."""
    runs = [r for r in entry.get("runs") or () if isinstance(r, Mapping)
            and isinstance(r.get("test_accuracy"), (int, float)) and math.isfinite(r["test_accuracy"])]
    config = entry.get("config")
    return Score(
        name=str(entry.get("name", "")),
        title=str(entry.get("title") or entry.get("name", "")),
        kind=str(entry.get("kind", "")),
        trial_number=entry.get("trial_number") if isinstance(entry.get("trial_number"), int) else None,
        seeds=[r.get("seed") for r in runs],
        accuracy=_numbers(runs, "test_accuracy"),
        epochs=[int(e) for e in _numbers(runs, "epochs")],
        seconds=_numbers(runs, "seconds"),
        mc_accuracy=_numbers(runs, "mc_test_accuracy"),
        config=dict(config) if isinstance(config, Mapping) else {},
    )


def _trial_score(name: str, title: str, kind: str, trial: FrozenTrial) -> Score:
    result = trial.user_attrs.get(RESULT)
    epochs = result.get("epochs") if isinstance(result, dict) else None
    if not isinstance(epochs, int):
        epochs = len(trial.intermediate_values) or None
    config = trial.user_attrs.get(CONFIG)
    return Score(
        name=name,
        title=title,
        kind=kind,
        trial_number=trial.number,
        seeds=[trial.user_attrs.get(SEED)],
        accuracy=[float(trial.value)] if trial.value is not None else [],
        epochs=[epochs] if epochs else [],
        seconds=[trial.duration.total_seconds()] if trial.duration is not None else [],
        config=dict(config) if isinstance(config, dict) else {},
    )


def _compare(best: Score, other: Score, *, paired: bool) -> Comparison:
    mine = dict(zip(best.seeds, best.accuracy, strict=True))
    theirs = dict(zip(other.seeds, other.accuracy, strict=True))
    common = [s for s in mine if s is not None and s in theirs] if paired else []
    if common:
        diffs = [100 * (mine[s] - theirs[s]) for s in common]
        spread = statistics.stdev(diffs) if len(diffs) > 1 else None
        return Comparison(other, statistics.fmean(diffs), spread, len(common))
    difference = 100 * ((best.mean or 0.0) - (other.mean or 0.0))
    spread = None
    if best.std is not None and other.std is not None:
        spread = 100 * math.hypot(best.std, other.std)
    return Comparison(other, difference, spread, 0)


def _verdict(evaluated: bool, metric: str, best: Score | None, comparisons: list[Comparison],
             winner: Score | None) -> str:
    if best is None:
        if winner is None or winner.mean is None:
            return "No trial has completed yet, so there is no result to compare."
        return (f"No searched configuration has a result yet; of the book defaults, {winner.title} leads with "
                f"{100 * winner.mean:.1f}% {metric}.")
    if not comparisons:
        return (f"The best configuration found reaches {100 * (best.mean or 0.0):.1f}% {metric}; "
                "no book default was measured to compare it with.")
    target = next((c for name in VERDICT_ORDER for c in comparisons if c.baseline.name == name), comparisons[0])
    phrase = BASELINE_PHRASES.get(target.baseline.name, target.baseline.title)
    if evaluated:
        subject = "The best configuration found"
        runs = len(best.accuracy)
        tail = f" of {metric}" + (f" (mean over {runs} seeds)" if runs > 1 else "")
    else:
        subject = f"On validation data, the best trial of the search (#{best.trial_number})"
        tail = f" of {metric}"
    d, s = target.difference, target.spread
    if (s is not None and abs(d) <= s) or round(abs(d), 1) == 0:
        spread = f" ± {s:.1f}" if s is not None else ""
        within = ", within the spread between seeds" if s is not None else ""
        return f"{subject} and {phrase} are level: {d:+.1f}{spread} points{tail}{within}."
    amount = f"{abs(d):.1f} ± {s:.1f} points" if s is not None else f"{abs(d):.1f} points"
    verb = "beats" if d > 0 else "falls short of"
    return f"{subject} {verb} {phrase} by {amount}{tail}."
