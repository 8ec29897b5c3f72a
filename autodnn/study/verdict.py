"""How a final evaluation is told: its headline metric, the best against the strongest book baseline, and the
plain lines (trees won; nothing beat the constant answer), the same in the command's output and the report."""

from __future__ import annotations

import math
import statistics
from typing import Any

from autodnn.metrics import searched_of


def headline_metric(evaluation: dict[str, Any]) -> str:
    """The test figure an evaluation is told by: ``test_`` + the study's metric (accuracy where none is stored)."""
    metric = evaluation.get("metric") or ("rmse" if evaluation.get("task") == "regression" else "accuracy")
    return f"test_{metric}"


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is the better one (errors and losses)."""
    return metric.endswith(("_rmse", "_mae", "_loss"))


def in_points(metric: str) -> bool:
    """Whether ``metric`` is a share told in percentage points (accuracies, F1, ROC AUC)."""
    return metric.endswith(("accuracy", "f1_macro", "roc_auc"))


def paired_difference(best: dict[str, Any], other: dict[str, Any], metric: str) -> tuple[float | None, float | None, int]:
    """Best minus ``other`` on ``metric``: the mean over the seeds both ran (paired), with the differences' sample
    standard deviation (None for fewer than two); the difference of the means where no seed is shared.

    Returns:
        ``(difference, spread, paired seeds)``; a None difference where either has no finite figure.
    """
    def by_seed(entry: dict[str, Any]) -> dict[Any, float]:
        return {r.get("seed"): float(r[metric]) for r in entry.get("runs") or ()
                if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])}

    mine, theirs = by_seed(best), by_seed(other)
    common = [s for s in mine if s is not None and s in theirs]
    if common:
        diffs = [mine[s] - theirs[s] for s in common]
        return statistics.fmean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else None, len(common)
    if not mine or not theirs:
        return None, None, 0
    return statistics.fmean(mine.values()) - statistics.fmean(theirs.values()), None, 0


def strongest_baseline(entries: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The book baseline of best mean ``metric`` (lowest for an error), the one a verdict compares with."""
    scored = [(e[f"{metric}_mean"], e) for e in entries if e.get("kind") == "baseline"
              and isinstance(e.get(f"{metric}_mean"), (int, float)) and math.isfinite(e[f"{metric}_mean"])]
    if not scored:
        return None
    pick = min if lower_is_better(metric) else max
    return pick(scored, key=lambda pair: pair[0])[1]


def verdict_line(evaluation: dict[str, Any]) -> str | None:
    """The best against the strongest book baseline, in one line: the same comparison the report's first
    sentence makes (:func:`paired_difference`), or None without a baseline."""
    from autodnn.metrics import METRICS

    metric = headline_metric(evaluation)
    best = evaluation["entries"][0]
    own = best.get("baseline")  # the book configuration the best is, where nothing searched did better
    strongest = strongest_baseline([e for e in evaluation["entries"] if e.get("name") != own], metric)
    if strongest is None:
        return None
    difference, spread, paired = paired_difference(best, strongest, metric)
    if difference is None:
        return None
    title = f"test {METRICS[metric[5:]].title}" if metric[5:] in METRICS else metric
    scale, unit = (100.0, " points") if in_points(metric) else (1.0, "")
    shown = f"{scale * difference:+.1f}" if in_points(metric) else f"{difference:+.4g}"
    if spread is not None:
        shown += f" ± {scale * spread:.1f}" if in_points(metric) else f" ± {spread:.3g}"
    how = f"paired over {paired} seed{'s' if paired != 1 else ''}" if paired else "difference of the means"
    better = (difference < 0) == lower_is_better(metric) and difference != 0
    against = f"the strongest other book baseline, {strongest['name']}" if own else \
        f"the strongest book baseline, {strongest['name']}"
    return (f"Against {against}: best minus it {shown}{unit} of {title} "
            f"({how}); {'the best is ahead' if better else 'the best is not ahead'}.")


def plain_lines(evaluation: dict[str, Any]) -> list[str]:
    """What the evaluation says plainly, the same in the command's output and the report.

    First, where the best is a book baseline's configuration (nothing searched did better on validation), a line
    that says so. Then, where trees were trained, how they compare with the best net on the mean of the headline test
    figure (:func:`headline_metric`): "beat" only where their lead exceeds the spread of the best's figure
    across its seeds. Then, where the evaluation found that no configuration beat the constant answer (always
    the most frequent class, ``majority`` its share of validation rows; for a regression the training mean, R²
    0) by more than the seeds' spread, a line that says so.
    """
    lines = []
    metric = headline_metric(evaluation)
    best, trees = evaluation["entries"][0], evaluation.get("reference")
    if best.get("baseline"):
        lines.append(f"The search found nothing better than the book's {best['baseline']} on validation: the best is "
                     "that book configuration.")
    best_mean, best_std = _mean_std(best, metric)
    trees_mean = _mean_std(trees, metric)[0] if trees else None
    if trees_mean is not None and best_mean is not None:
        lines.append(_trees_line(metric, best_mean, best_std or 0.0, trees_mean))
    majority = evaluation.get("majority")
    if majority is not None and not evaluation.get("beats_majority", True):
        searched = searched_of(evaluation.get("task", "classification"), evaluation.get("metric"))
        if evaluation.get("task") == "regression":
            lines.append("No network beat always answering the training median on validation beyond the seeds' "
                         "spread: nothing here learned more than the target's average.")
        elif searched != "accuracy":
            lines.append(f"No network beat always answering the most frequent class (validation "
                         f"{searched.replace('_', ' ')} {majority:.3f}) beyond the seeds' spread: nothing here "
                         "learned more than the class shares.")
        else:
            lines.append(f"No network beat always answering the most frequent class ({100 * majority:.1f}% of "
                         "validation rows) beyond the seeds' spread: nothing here learned more than the class "
                         "shares.")
    return lines


def _trees_line(metric: str, best: float, spread: float, trees: float) -> str:
    """How the trees' mean headline figure compares with the best net's."""
    from autodnn.metrics import METRICS

    title = f"test {METRICS[metric[5:]].title}" if metric[5:] in METRICS else metric
    gap = (best - trees) if lower_is_better(metric) else (trees - best)  # > 0 where trees do better
    if in_points(metric):
        gap, spread = 100 * gap, 100 * spread
        margin, shown, tie = f"{abs(gap):.1f} points of {title}", f"{spread:.1f}", 0.05
    else:
        share = f" ({100 * abs(gap) / abs(best):.1f}% of the net's)" if best else ""
        margin, shown, tie = f"{abs(gap):.3g} of {title}{share}", f"{spread:.3g}", 1e-12
    if gap > spread:
        return (f"Gradient-boosted trees beat the best net by {margin}, more than the seeds' spread (± {shown}): "
                "on this table a neural net was not worth it.")
    if abs(gap) < tie:
        return f"The best net and gradient-boosted trees score the same {title}."
    if gap > 0:
        ahead = f"score {margin} above" if not lower_is_better(metric) else f"err {margin} less than"
        return (f"Gradient-boosted trees {ahead} the best net, within the seeds' spread (± {shown}): the net did "
                "no better than trees here.")
    return f"The best net beats gradient-boosted trees by {margin}."


def _mean_std(entry: dict[str, Any], metric: str = "test_accuracy") -> tuple[float | None, float | None]:
    """Mean and spread of an entry's test figure: its summary, or its runs' where it has none."""
    if entry.get(f"{metric}_mean") is not None:
        return entry[f"{metric}_mean"], entry.get(f"{metric}_std")
    values = [r[metric] for r in entry.get("runs") or () if isinstance(r.get(metric), (int, float))
              and math.isfinite(r[metric])]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
