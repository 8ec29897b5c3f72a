"""Whether a configuration, or one value of one of its fields, is allowed, and what to say where it is not."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from autodnn.config._values import _CHOICES, _INTEGERS, _RANGES


def unknown_key_message(key: str, known: tuple[str, ...] | list[str], what: str) -> str:
    """One sentence saying ``key`` is not ``what``, with a suggestion when a known name is close."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(known)}."
    return f"'{key}' is not {what}.{hint}"


def validate(config: Any) -> list[str]:
    """Lists every problem of ``config``, one sentence each (empty when it is valid)."""
    names = [f.name for f in dataclasses.fields(config) if f.name != "extra"]
    problems = [p for name in names if (p := field_problem(name, getattr(config, name)))]
    if problems:
        return problems
    if config.rrelu_lower > config.rrelu_upper:
        problems.append(f"rrelu_lower ({config.rrelu_lower}) must be <= rrelu_upper ({config.rrelu_upper})")
    if config.clipnorm is not None and config.clipvalue is not None:
        problems.append(f"clipnorm ({config.clipnorm}) and clipvalue ({config.clipvalue}) exclude each other: "
                        "Keras clips by one of them; set the other to null")
    if config.momentum_min > config.momentum_max:
        problems.append(f"momentum_min ({config.momentum_min}) must be <= momentum_max ({config.momentum_max})")
    if len(config.piecewise_factors) != len(config.piecewise_epochs) + 1:
        problems.append(
            f"piecewise_factors needs one more value than piecewise_epochs ({len(config.piecewise_epochs)}), "
            f"but has {len(config.piecewise_factors)}"
        )
    if list(config.piecewise_epochs) != sorted(config.piecewise_epochs):
        problems.append(f"piecewise_epochs must increase, but got {list(config.piecewise_epochs)}")
    return problems


def field_problem(name: str, value: Any) -> str | None:
    """Says what is wrong with ``value`` for the field ``name``, or None when it is allowed.

    Args:
        name: A :class:`TrialConfig` field.
        value: A candidate value (as read from YAML or JSON).

    Returns:
        One sentence, or None.
    """
    if name in _CHOICES:
        choices = _CHOICES[name]
        if value in choices:
            return None
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"{name} is {value!r}, not one of {', '.join(choices)}.{hint}"
    if name in ("max_norm", "clipnorm", "clipvalue"):
        if value is None or (_is_number(value) and value > 0):
            return None
        return f"{name} must be a positive number or null, but got {value!r}"
    if name == "epochs":
        if value is None or (_is_number(value) and float(value).is_integer() and value >= 1):
            return None
        return f"epochs must be a whole number >= 1 or null (the run's budget), but got {value!r}"
    if name in ("lr_finder", "stem_downsample", "augment_flip"):
        return None if isinstance(value, bool) else f"{name} must be true or false, but got {value!r}"
    if name in ("piecewise_epochs", "piecewise_factors"):
        if isinstance(value, (list, tuple)) and all(_is_number(v) and v >= 0 for v in value):
            return None
        return f"{name} must be a list of non-negative numbers, but got {value!r}"
    if name not in _RANGES:
        return None
    low, high, low_inc, high_inc = _RANGES[name]
    if not _is_number(value):
        hint = f" (write {value} with a decimal point, e.g. 1.0e-4)" if isinstance(value, str) else ""
        return f"{name} must be a number, but got {value!r}{hint}"
    if name in _INTEGERS and not float(value).is_integer():
        return f"{name} must be a whole number, but got {value!r}"
    if not math.isfinite(value) or _outside(value, low, high, low_inc, high_inc):
        return f"{name} must be in {_interval(low, high, low_inc, high_inc)}, but got {value!r}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _outside(value: float, low: float | None, high: float | None, low_inc: bool, high_inc: bool) -> bool:
    if low is not None and (value < low or (value == low and not low_inc)):
        return True
    return high is not None and (value > high or (value == high and not high_inc))


def _interval(low: float | None, high: float | None, low_inc: bool, high_inc: bool) -> str:
    left = "(-inf" if low is None else ("[" if low_inc else "(") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + ("]" if high_inc else ")")
    return f"{left}, {right}"
