"""How a report tells its scores: which figure of a run it leads with, and how each figure is written.

A classification is told in its study's metric (accuracy unless the study chose another, which then has the
task's other metrics beside it): shares written as percentages, differences in percentage points. A
regression is told in its study's metric (RMSE unless the study chose MAE or R²), with the other two beside:
RMSE and MAE in the target's own units, differences in those units and in percent of the other configuration's
figure; R² as a plain number (1 is perfect, 0 is always answering the mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autodnn.evaluate import in_points, lower_is_better
from autodnn.metrics import CLASSIFICATION_METRICS, METRICS, REGRESSION_METRICS

#: How each split is named in words.
SPLITS = {"test": "test", "val": "validation", "train": "training"}
#: Significant digits of a figure in the target's units.
DIGITS = 4


def title_of(key: str) -> str:
    """A run's figure in words: ``test_rmse`` is ``test RMSE``, ``val_r2`` is ``validation R²``."""
    split, _, name = key.partition("_")
    if split not in SPLITS or not name:
        return key.replace("_", " ")
    metric = METRICS.get(name)
    return f"{SPLITS[split]} {metric.title if metric else name.replace('_', ' ')}"


def in_units(key: str) -> bool:
    """Whether ``key`` is in the target's own units (an RMSE or an MAE)."""
    return key.endswith(("_rmse", "_mae"))


def decimals(value: float | None) -> int:
    """Decimals that write ``value`` with :data:`DIGITS` significant digits (none past the units for large ones)."""
    if value is None or not math.isfinite(value) or value == 0:
        return 2
    return max(0, DIGITS - 1 - math.floor(math.log10(abs(value))))


def format_value(key: str, mean: float | None, std: float | None = None) -> str:
    """A figure, with its spread after ``±`` when given: ``96.2 ± 0.7%``, ``68.99 ± 1.98``, ``0.220 ± 0.045``."""
    if mean is None or not math.isfinite(mean):
        return "—"
    if in_points(key):
        if std is None:
            return f"{100 * mean:.1f}%"
        return f"{100 * mean:.1f} ± {100 * std:.1f}%"
    if in_units(key):
        return format_units(mean, std)
    return f"{mean:.3f}" if std is None or not math.isfinite(std) else f"{mean:.3f} ± {std:.3f}"


def format_units(value: float | None, std: float | None = None) -> str:
    """A figure in the target's own units, to :data:`DIGITS` significant digits: ``68.99 ± 1.98``, ``48,214``."""
    if value is None or not math.isfinite(value):
        return "—"
    digits = decimals(value)
    text = f"{value:,.{digits}f}"
    return text if std is None or not math.isfinite(std) else f"{text} ± {std:,.{digits}f}"


def format_difference(key: str, difference: float | None, spread: float | None = None,
                      relative: float | None = None, scale: float | None = None) -> str:
    """A difference of ``key``: in points for shares (``+3.1 ± 0.5``); in the target's units for errors, with
    ``relative`` (percent of the other figure) after it (``-11.36 ± 0.79 (-14.1%)``).

    Args:
        key: The figure compared.
        difference: Best found minus the other (points for shares).
        spread: Its standard deviation, when known.
        relative: ``difference`` in percent of the other configuration's figure.
        scale: A figure of the comparison whose magnitude sets the decimals (the other configuration's).
    """
    if difference is None or not math.isfinite(difference):
        return "—"
    if in_points(key):
        return f"{difference:+.1f} ± {spread:.1f}" if spread is not None else f"{difference:+.1f}"
    digits = decimals(scale if scale is not None else difference) if in_units(key) else 3
    text = f"{difference:+,.{digits}f}"
    if spread is not None and math.isfinite(spread):
        text += f" ± {spread:,.{digits}f}"
    if relative is not None and math.isfinite(relative):
        text += f" ({relative:+.1f}%)"
    return text


@dataclass(frozen=True)
class Measure:
    """The figure a report leads with, and those it shows beside.

    Attributes:
        key: The run's figure (``test_accuracy``, ``test_rmse``, ``val_rmse`` ...).
        beside: Other figures of the same runs shown next to it (a regression's other metrics).
        from_value: Whether a search trial's objective value is this figure (else it is read from the trial's
            result).
    """

    key: str
    beside: tuple[str, ...] = ()
    from_value: bool = False

    @property
    def title(self) -> str:
        """The figure in words: ``test accuracy``, ``test RMSE``."""
        return title_of(self.key)

    @property
    def percent(self) -> bool:
        """Whether the figure is a share, written in percent with differences in points."""
        return in_points(self.key)

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller figure is the better one."""
        return lower_is_better(self.key)

    @property
    def relative(self) -> bool:
        """Whether differences are also told in percent of the other figure (errors in the target's units)."""
        return in_units(self.key)

    @property
    def scale(self) -> float:
        """Factor from a difference of the figure to what the report writes (points for shares)."""
        return 100.0 if self.percent else 1.0

    @property
    def columns(self) -> list[tuple[str, str]]:
        """``(key, title)`` of each figure shown beside."""
        return [(key, title_of(key)) for key in self.beside]

    def show(self, mean: float | None, std: float | None = None, key: str | None = None) -> str:
        """:func:`format_value` of this figure (or of ``key``, one of :attr:`beside`)."""
        return format_value(key or self.key, mean, std)

    def difference(self, difference: float | None, spread: float | None = None, relative: float | None = None,
                   scale: float | None = None) -> str:
        """:func:`format_difference` of this figure."""
        return format_difference(self.key, difference, spread, relative, scale)

    def tone(self, difference: float | None) -> str:
        """``pos`` where a difference (best found minus another) favours the best found, ``neg`` where it does
        not, ``""`` at zero or without one."""
        if difference is None or difference == 0 or not math.isfinite(difference):
            return ""
        return "pos" if (difference < 0) == self.lower_is_better else "neg"


def measure_of(task: str, metric: str | None, *, evaluated: bool) -> Measure:
    """What a study's headline is told in.

    Args:
        task: ``classification`` or ``regression``.
        metric: The study's metric (``rmse``, ``mae``, ``r2`` for a regression); None or another task's
            metric picks the task's default.
        evaluated: Whether the figures are a final evaluation's (test) or the search trials' (validation).
    """
    split = "test" if evaluated else "val"
    if task != "regression":
        if metric not in CLASSIFICATION_METRICS or metric == "accuracy":
            return Measure(f"{split}_accuracy", from_value=not evaluated)
        return Measure(f"{split}_{metric}", beside=tuple(f"{split}_{m}" for m in CLASSIFICATION_METRICS if m != metric),
                       from_value=not evaluated and METRICS[metric].searched == metric)
    name = metric if metric in REGRESSION_METRICS else "rmse"
    return Measure(f"{split}_{name}", beside=tuple(f"{split}_{m}" for m in REGRESSION_METRICS if m != name))
