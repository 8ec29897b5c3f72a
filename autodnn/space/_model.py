"""The search space itself: parameters, constraints, and define-by-run sampling into :class:`TrialConfig`.

This module imports neither Optuna nor Keras: :meth:`SearchSpace.sample` takes any object with Optuna's
``suggest_*`` methods. It is the only place in autodnn that calls them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from autodnn.config import TrialConfig


class TrialLike(Protocol):
    """The part of ``optuna.trial.Trial`` a space needs."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One searched or fixed hyperparameter.

    Attributes:
        name: The :class:`TrialConfig` field.
        kind: ``fixed``, ``int``, ``float`` or ``categorical``.
        value: The fixed value (kind ``fixed``).
        low: Lower bound of a range.
        high: Upper bound of a range.
        log: Sample the range on a log scale.
        step: Step of a discretized range.
        choices: Values of a categorical parameter.
        when: Sample only when each named earlier parameter has one of the listed values.
    """

    name: str
    kind: str
    value: Any = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Returns the canonical YAML/JSON form of the parameter."""
        if self.kind == "fixed":
            spec: dict[str, Any] = {"value": list(self.value) if isinstance(self.value, tuple) else self.value}
        elif self.kind == "categorical":
            spec = {"choices": list(self.choices)}
        else:
            spec = {"low": self.low, "high": self.high, "log": self.log}
            if self.step is not None:
                spec["step"] = self.step
        if self.when:
            spec["when"] = {k: list(v) for k, v in self.when.items()}
        return spec


@dataclass(frozen=True)
class Constraint:
    """Fixes values whenever earlier parameters match.

    Attributes:
        condition: Field name -> allowed values; all must match.
        then: Field name -> the value it takes.
    """

    condition: dict[str, tuple[Any, ...]]
    then: dict[str, Any]

    def matches(self, values: dict[str, Any]) -> bool:
        """Whether every field of the condition is decided in ``values`` and has an allowed value."""
        return all(k in values and values[k] in allowed for k, allowed in self.condition.items())


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space.

    Attributes:
        name: Short name (the file stem unless the file says otherwise).
        description: One or two sentences for people.
        params: The parameters, in sampling order.
        constraints: Rules that fix values given earlier ones.
        source: Where the space was read from.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    constraints: tuple[Constraint, ...] = ()
    source: str = ""

    def sample(self, trial: TrialLike) -> TrialConfig:
        """Samples one configuration, define-by-run, from an Optuna trial.

        Args:
            trial: An ``optuna.trial.Trial`` (or ``FixedTrial``), or anything with its ``suggest_*`` methods.

        Returns:
            The validated configuration; fields the space does not mention keep their defaults.
        """
        values: dict[str, Any] = {}
        for param in self.params:
            if not all(k in values and values[k] in allowed for k, allowed in param.when.items()):
                continue
            fixed = self._constrained(param.name, values)
            if fixed is not _UNSET:
                values[param.name] = fixed
            else:
                values[param.name] = _suggest(trial, param)
        for constraint in self.constraints:
            if constraint.matches(values):
                for key, value in constraint.then.items():
                    values.setdefault(key, value)
        return config_from_values(values)

    def _constrained(self, name: str, values: dict[str, Any]) -> Any:
        for constraint in self.constraints:
            if name in constraint.then and constraint.matches(values):
                return constraint.then[name]
        return _UNSET

    def to_dict(self) -> dict[str, Any]:
        """Returns the canonical form stored in a study: it reads back with :func:`space_from_dict`."""
        return {
            "name": self.name,
            "description": self.description,
            "params": {p.name: p.to_dict() for p in self.params},
            "constraints": [
                {"if": {k: list(v) for k, v in c.condition.items()}, "then": dict(c.then)}
                for c in self.constraints
            ],
        }

    @property
    def digest(self) -> str:
        """A short hash of the canonical form: equal spaces have equal digests."""
        canonical = json.dumps({k: v for k, v in self.to_dict().items() if k != "description"}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def family(self) -> str:
        """The family of networks the space holds: its fixed ``family`` (``dense`` where it does not say)."""
        fixed = next((p for p in self.params if p.name == "family" and p.kind == "fixed" and not p.when), None)
        return str(fixed.value) if fixed is not None else "dense"

    @property
    def searched(self) -> tuple[str, ...]:
        """Names of the parameters that are sampled rather than fixed."""
        return tuple(p.name for p in self.params if p.kind != "fixed")


_UNSET = object()


def _suggest(trial: TrialLike, param: Param) -> Any:
    if param.kind == "fixed":
        return param.value
    if param.kind == "categorical":
        return trial.suggest_categorical(param.name, list(param.choices))
    if param.kind == "int":
        step = int(param.step) if param.step is not None else 1
        return trial.suggest_int(param.name, int(param.low), int(param.high), step=step, log=param.log)
    return trial.suggest_float(param.name, float(param.low), float(param.high), step=param.step, log=param.log)


def config_from_values(values: dict[str, Any]) -> TrialConfig:
    """Builds a :class:`TrialConfig` from sampled values, mapping ``learning_rate: finder``."""
    values = dict(values)
    if values.get("learning_rate") == "finder":
        del values["learning_rate"]
        values["lr_finder"] = True
    return TrialConfig.from_dict(values)
