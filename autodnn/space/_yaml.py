"""Reading search spaces: YAML files (or parsed mappings) validated into :class:`SearchSpace` objects.

Validation reports every problem at once, each with its key path, in one :class:`ConfigError`.
PyYAML is imported only when a file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autodnn.config import field_names, field_problem, field_type, unknown_key_message
from autodnn.errors import ConfigError
from autodnn.space._model import Constraint, Param, SearchSpace

SPACES_DIR = Path(__file__).resolve().parent.parent.parent / "search_spaces"

_PARAM_KEYS = ("low", "high", "log", "step", "choices", "when")
_TOP_KEYS = ("name", "description", "params", "constraints")
_FIXED_ONLY = ("piecewise_epochs", "piecewise_factors")


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


def stored_family(user_attrs: dict[str, Any]) -> str:
    """The family of networks of a study's stored space (``dense`` for a study that stored none)."""
    stored = user_attrs.get("space")
    return space_from_stored(stored).family if stored else "dense"
