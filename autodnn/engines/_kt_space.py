"""The YAML space in KerasTuner's terms: ``Int``/``Float``/``Choice`` hyperparameters in conditional scopes, and
a trial's configuration sampled back from the oracle's values through :meth:`SearchSpace.sample`.

Ranges keep their log sampling, categorical values of mixed types (``null`` included) travel as their JSON
text, and ``when`` conditions become ``conditional_scope``\\ s, so that KerasTuner knows which parameters are
active.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

if TYPE_CHECKING:
    from autodnn.space import Param, SearchSpace


def _encoded(param: Param) -> bool:
    """Whether a categorical parameter's choices are passed to KerasTuner as JSON text.

    KerasTuner's ``Choice`` takes values of one type among int, float, str and bool; anything else (``null``,
    lists, mixed types) is encoded.
    """
    kinds = {type(c) for c in param.choices}
    if kinds <= {bool} or kinds <= {str}:
        return False
    return not (kinds <= {int, float} and bool not in kinds)


def _to_kt(param: Param, value: Any) -> Any:
    if param.kind != "categorical":
        return value
    if _encoded(param):
        return json.dumps(value)
    if {type(c) for c in param.choices} == {int, float} or isinstance(value, float):
        return float(value)
    return value


def _from_kt(param: Param, value: Any) -> Any:
    if param.kind == "categorical":
        if _encoded(param):
            return json.loads(value)
        for choice in param.choices:  # 1 for 1.0 where the YAML wrote an int
            if choice == value:
                return choice
    if param.kind == "int":
        return int(value)
    if param.kind == "float":
        return float(value)
    return value


def optuna_distribution(param: Param) -> BaseDistribution:
    """The Optuna distribution an Optuna trial would have sampled ``param`` from."""
    if param.kind == "categorical":
        return CategoricalDistribution(list(param.choices))
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high), log=param.log,
                               step=int(param.step) if param.step is not None else 1)
    return FloatDistribution(float(param.low), float(param.high), log=param.log, step=param.step)


@dataclass
class KerasTunerSpace:
    """A search space seen through KerasTuner's hyperparameters.

    Attributes:
        space: The autodnn space.
    """

    space: SearchSpace
    _params: dict[str, Param] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._params = {p.name: p for p in self.space.params}

    def declare(self, hp: Any) -> None:
        """Registers every searched parameter in ``hp`` (a ``keras_tuner.HyperParameters``), each inside the
        conditional scopes of its ``when``; a condition on a fixed parameter is decided here."""
        for param in self.space.params:
            if param.kind == "fixed":
                continue
            scopes = []
            for parent_name, allowed in param.when.items():
                parent = self._params[parent_name]
                if parent.kind == "fixed":
                    if parent.value not in allowed:
                        break
                    continue
                scopes.append((parent_name, [_to_kt(parent, v) for v in allowed]))
            else:
                self._declare_in(hp, param, scopes)

    def _declare_in(self, hp: Any, param: Param, scopes: list[tuple[str, list[Any]]]) -> None:
        if scopes:
            name, values = scopes[0]
            with hp.conditional_scope(name, values):
                self._declare_in(hp, param, scopes[1:])
            return
        sampling = "log" if param.log else "linear"
        if param.kind == "categorical":
            hp.Choice(param.name, [_to_kt(param, c) for c in param.choices], ordered=False)
        elif param.kind == "int":
            # KerasTuner reads an Int's step as a factor under log sampling: a log range has none.
            step = None if param.log else int(param.step or 1)
            hp.Int(param.name, int(param.low), int(param.high), step=step, sampling=sampling)
        else:
            hp.Float(param.name, float(param.low), float(param.high), step=param.step, sampling=sampling)

    def sample(self, values: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, BaseDistribution]]:
        """Turns the oracle's values into a configuration.

        Args:
            values: ``trial.hyperparameters.values`` of a KerasTuner trial (its ``tuner/...`` entries ignored).

        Returns:
            ``(config, params, distributions)``: the validated :class:`TrialConfig`, and the parameters the
            space actually sampled, with their Optuna distributions, for the study's record.
        """
        suggested = _OracleValues(self._params, values)
        config = self.space.sample(suggested)
        return config, suggested.params, suggested.distributions


class _OracleValues:
    """Answers :meth:`SearchSpace.sample`'s ``suggest_*`` calls with a KerasTuner trial's values.

    A parameter the oracle left inactive (its condition differs in KerasTuner's view, e.g. because a
    constraint fixed the parent) falls back to the middle of its range or its first choice.
    """

    def __init__(self, params: dict[str, Param], values: dict[str, Any]) -> None:
        self._params = params
        self._values = values
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def _get(self, name: str) -> Any:
        param = self._params[name]
        raw = self._values.get(name)
        if raw is None:
            value = _fallback(param)
        else:
            value = _from_kt(param, raw)
        self.params[name] = value
        self.distributions[name] = optuna_distribution(param)
        return value

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._get(name)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self._get(name)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._get(name)


def _fallback(param: Param) -> Any:
    if param.kind == "categorical":
        return param.choices[0]
    low, high = float(param.low), float(param.high)
    middle = math.sqrt(low * high) if param.log else (low + high) / 2
    if param.kind == "int":
        step = int(param.step or 1)
        return int(low + round((middle - low) / step) * step)
    return middle
