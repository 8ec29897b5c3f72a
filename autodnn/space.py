"""Search spaces: YAML files turned into validated spaces that sample :class:`TrialConfig` define-by-run.

The format (documented in ``docs/search-spaces.md``)::

    name: quick
    description: A small space for demos.
    params:
      n_hidden: {low: 1, high: 3}                 # integer range
      n_units: {low: 16, high: 256, log: true}    # log scale
      activation: {choices: [relu, elu, swish]}   # categorical
      activation_alpha: {low: 0.01, high: 0.3, log: true, when: {activation: leaky_relu}}
      learning_rate: finder                       # run the LR finder; or a range, or a fixed value
      batch_size: 64                              # fixed
    constraints:
      - if: {activation: selu}
        then: {initializer: lecun, normalization: none, dropout: 0.0}

Parameters are sampled in file order. A ``when`` condition and a constraint's ``if`` may only refer to
parameters listed before the ones they govern; a constraint's ``then`` fixes values and wins over sampling.
This module imports neither Optuna nor Keras: :meth:`SearchSpace.sample` takes any object with Optuna's
``suggest_*`` methods.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from autodnn.config import TrialConfig, field_names, field_problem, field_type, unknown_key_message
from autodnn.errors import ConfigError

SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"

_PARAM_KEYS = ("low", "high", "log", "step", "choices", "when")
_TOP_KEYS = ("name", "description", "params", "constraints")
_FIXED_ONLY = ("piecewise_epochs", "piecewise_factors")


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


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Reads a search space from a YAML file, or by name from ``search_spaces/``.

    Args:
        name_or_path: A path to a ``.yaml`` file, or the stem of a file in ``search_spaces/``.

    Returns:
        The validated space.

    Raises:
        ConfigError: The file is missing, not YAML, or breaks the format; the message lists every problem
            with its key path.
    """
    import yaml

    path = Path(name_or_path)
    if not path.exists() and path.suffix == "" and "/" not in str(name_or_path):
        path = SPACES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
        raise ConfigError(
            f"search space '{name_or_path}' not found: give a YAML file path or one of {', '.join(known)}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the search space ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    return space_from_dict(data, source=str(path), default_name=path.stem)


def space_from_dict(data: Any, *, source: str = "<dict>", default_name: str = "space") -> SearchSpace:
    """Validates a parsed space (as YAML loads it) and builds it, reporting every problem at once.

    Raises:
        ConfigError: One message listing each problem as ``source: key.path: what is wrong``.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a search space is a mapping with 'params', but got {type(data).__name__}")
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(unknown_key_message(str(key), _TOP_KEYS, "a top-level key"))
    raw_params = data.get("params")
    if not isinstance(raw_params, dict) or not raw_params:
        problems.append("params: must be a non-empty mapping of hyperparameter names to specs")
        raw_params = {}
    names = field_names() + ("learning_rate",)
    params: list[Param] = []
    for name, spec in raw_params.items():
        if name not in names:
            problems.append(f"params.{name}: " + unknown_key_message(str(name), field_names(), "a hyperparameter"))
            continue
        param = _parse_param(str(name), spec, problems, [p.name for p in params])
        if param is not None:
            params.append(param)
    constraints = _parse_constraints(data.get("constraints", []) or [], [p.name for p in params], problems)
    name = data.get("name", default_name)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        problems.append("name and description must be strings")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return SearchSpace(str(name), str(description), tuple(params), tuple(constraints), source)


def _parse_param(name: str, spec: Any, problems: list[str], earlier: list[str]) -> Param | None:
    where = f"params.{name}"
    if not isinstance(spec, dict):
        return _fixed(name, spec, where, problems)
    for key in spec:
        if key not in _PARAM_KEYS + ("value",):
            problems.append(f"{where}: " + unknown_key_message(str(key), _PARAM_KEYS, "a parameter key"))
    when = _parse_condition(spec.get("when", {}), f"{where}.when", earlier, problems)
    if "value" in spec:
        param = _fixed(name, spec["value"], f"{where}.value", problems)
        return None if param is None else Param(name, "fixed", value=param.value, when=when)
    if "choices" in spec:
        return _categorical(name, spec, where, when, problems)
    if "low" in spec or "high" in spec:
        return _range(name, spec, where, when, problems)
    problems.append(f"{where}: give a value, 'choices: [...]', or 'low' and 'high'")
    return None


def _fixed(name: str, value: Any, where: str, problems: list[str]) -> Param | None:
    if name == "learning_rate" and value == "finder":
        return Param(name, "fixed", value="finder")
    if name in _FIXED_ONLY and isinstance(value, list):
        value = tuple(value)
    problem = field_problem(name, value)
    if problem:
        problems.append(f"{where}: {problem}")
        return None
    return Param(name, "fixed", value=value)


def _categorical(name: str, spec: dict, where: str, when: dict, problems: list[str]) -> Param | None:
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        problems.append(f"{where}.choices: must be a non-empty list")
        return None
    if name in _FIXED_ONLY:
        problems.append(f"{where}: {name} can only be fixed, not searched")
        return None
    for extra in ("low", "high", "log", "step"):
        if extra in spec:
            problems.append(f"{where}: '{extra}' does not go with 'choices'")
    ok = True
    for i, choice in enumerate(choices):
        if name == "learning_rate" and choice == "finder":
            continue
        problem = field_problem(name, choice)
        if problem:
            problems.append(f"{where}.choices[{i}]: {problem}")
            ok = False
    if len(set(map(repr, choices))) != len(choices):
        problems.append(f"{where}.choices: has duplicates")
        ok = False
    return Param(name, "categorical", choices=tuple(choices), when=when) if ok else None


def _range(name: str, spec: dict, where: str, when: dict, problems: list[str]) -> Param | None:
    if name in _FIXED_ONLY or field_type(name) in (str, bool):
        problems.append(f"{where}: {name} takes 'choices' or a fixed value, not a range")
        return None
    start = len(problems)
    is_int = field_type(name) is int
    bounds = {}
    for key in ("low", "high"):
        if key not in spec:
            problems.append(f"{where}: needs both 'low' and 'high'")
            continue
        value = spec[key]
        if isinstance(value, str):
            problems.append(f"{where}.{key}: {value!r} is a string; write numbers like 1.0e-4 (with a dot)")
        elif is_int and not (isinstance(value, int) and not isinstance(value, bool)):
            problems.append(f"{where}.{key}: {name} is a whole number, but got {value!r}")
        elif (problem := field_problem(name, value)) is not None:
            problems.append(f"{where}.{key}: {problem}")
        else:
            bounds[key] = value
    log = spec.get("log", False)
    step = spec.get("step")
    if not isinstance(log, bool):
        problems.append(f"{where}.log: must be true or false, but got {log!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
        problems.append(f"{where}.step: must be a positive number, but got {step!r}")
    if log is True and step is not None:
        problems.append(f"{where}: 'step' and 'log: true' cannot be used together")
    if len(bounds) == 2:
        if bounds["low"] > bounds["high"]:
            problems.append(f"{where}: low ({bounds['low']}) must be <= high ({bounds['high']})")
        if log is True and bounds["low"] <= 0:
            problems.append(f"{where}: a log scale needs low > 0, but got {bounds['low']}")
    if len(problems) > start:
        return None
    kind = "int" if is_int else "float"
    return Param(name, kind, low=bounds["low"], high=bounds["high"], log=log, step=step, when=when)


def _parse_condition(raw: Any, where: str, earlier: list[str], problems: list[str]) -> dict[str, tuple]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must map earlier parameters to a value or a list of values")
        return {}
    condition = {}
    for key, allowed in raw.items():
        if key not in earlier:
            problems.append(f"{where}.{key}: conditions may only refer to parameters listed before this one")
            continue
        condition[str(key)] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
    return condition


def _parse_constraints(raw: Any, params: list[str], problems: list[str]) -> list[Constraint]:
    if not isinstance(raw, list):
        problems.append("constraints: must be a list of {if: ..., then: ...}")
        return []
    constraints = []
    for i, item in enumerate(raw):
        where = f"constraints[{i}]"
        if not isinstance(item, dict) or set(item) != {"if", "then"}:
            problems.append(f"{where}: must have exactly the keys 'if' and 'then'")
            continue
        condition = _parse_condition(item["if"], f"{where}.if", params, problems)
        then = item["then"]
        if not isinstance(then, dict) or not then:
            problems.append(f"{where}.then: must map hyperparameters to the values they take")
            continue
        fixed = {}
        for key, value in then.items():
            if key not in field_names():
                problems.append(f"{where}.then: " + unknown_key_message(str(key), field_names(), "a hyperparameter"))
            elif (problem := field_problem(key, value)) is not None:
                problems.append(f"{where}.then.{key}: {problem}")
            else:
                fixed[key] = value
        for key in condition:
            if key in fixed:
                problems.append(f"{where}: '{key}' cannot be both in 'if' and in 'then'")
        last_condition = max((params.index(k) for k in condition), default=-1)
        for key in fixed:
            if key in params and params.index(key) < last_condition:
                problems.append(
                    f"{where}.then.{key}: is sampled before the parameters of 'if'; list it after them"
                )
        constraints.append(Constraint(condition, fixed))
    return constraints


def space_from_stored(data: dict[str, Any]) -> SearchSpace:
    """Rebuilds a space from :meth:`SearchSpace.to_dict` output (as stored in a study)."""
    return space_from_dict(data, source="stored space")
