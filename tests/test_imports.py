"""Module boundaries of DESIGN.md: what importing each part of autodnn may load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

HEAVY = ("keras", "tensorflow", "jax", "torch", "optuna")


def modules_after_each(modules: list[str]) -> dict[str, set[str]]:
    """Every module (dotted name) loaded once each of ``modules`` is imported, in order, in one fresh interpreter.

    Imports only add to ``sys.modules``: what is loaded after a module holds everything that module loads alone,
    so a package absent after the last of them was loaded by none, and the first module after which it appears
    is the one that loads it.
    """
    code = ("import importlib, json, sys\nafter = {}\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n    after[name] = sorted(sys.modules)\n"
            "print(json.dumps(after))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return {name: set(loaded) for name, loaded in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def packages(modules: set[str]) -> set[str]:
    """The top-level packages of ``modules``."""
    return {name.split(".")[0] for name in modules}


def test_light_modules_load_neither_keras_nor_optuna() -> None:
    for module, loaded in modules_after_each(["autodnn", "autodnn.space", "autodnn.config", "autodnn.datasets",
                                              "autodnn.cli", "autodnn.progress"]).items():
        assert not packages(loaded) & set(HEAVY), module


def test_training_modules_never_load_optuna() -> None:
    for module, loaded in modules_after_each(["autodnn.training.trainer", "autodnn.network.model", "autodnn.optim",
                                              "autodnn.training.lr_finder", "autodnn.training.tensorboard",
                                              "autodnn.training.population", "autodnn.training.programs",
                                              "autodnn.training.session", "autodnn.training.restore",
                                              "autodnn.training.loops", "autodnn.training.jax_loop"]).items():
        assert "keras" in packages(loaded), module
        assert "optuna" not in packages(loaded), module


#: The floors of DESIGN.md, lowest first: a module may import only from floors below its own (or from its own
#: package, except in ``study``, whose modules are floors of their own), at the top, inside a function or for
#: type checking alone.
LAYERS = [
    ("autodnn.errors",),
    ("autodnn.config",),
    ("autodnn.metrics",),
    ("autodnn.space", "autodnn.datasets", "autodnn.backend", "autodnn.defaults"),
    ("autodnn.network", "autodnn.optim"),
    ("autodnn.training",),
    ("autodnn.study", "autodnn.study.urls", "autodnn.study.deadline", "autodnn.study._tpe", "autodnn.study._tables"),
    ("autodnn.study.locks", "autodnn.study.trial_record"),
    ("autodnn.study._local",),
    ("autodnn.study.strategy",),
    ("autodnn.study.storage", "autodnn.study.options", "autodnn.study.cost"),
    ("autodnn.study.artifacts", "autodnn.study.dashboard"),
    ("autodnn.study.records", "autodnn.study.verdict", "autodnn.study.reuse"),
    ("autodnn.objective",),
    ("autodnn.workers", "autodnn.engines"),
    ("autodnn.export",),
    ("autodnn.evaluate",),
    ("autodnn.tuning",),
    ("autodnn.report", "autodnn.progress"),
    ("autodnn.cli",),
]
#: What the package root holds: the public entry points only; everything else lives in a floor's package.
ROOT_MODULES = {"__init__", "__main__", "objective", "export", "errors", "defaults", "backend", "metrics"}
MAX_LINES = 400


def _modules() -> dict[str, object]:
    """Every module of the package by dotted name, with its path."""
    package = REPO / "autodnn"
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _layer(module: str) -> int | None:
    """The floor of ``module``: the deepest name of :data:`LAYERS` that is the module or a package above it."""
    matches = [(name.count("."), rank) for rank, names in enumerate(LAYERS) for name in names
               if module == name or module.startswith(name + ".")]
    return max(matches)[1] if matches else None


def _autodnn_imports(path, known: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """The ``autodnn.*`` modules a source file imports anywhere in it (lazy imports inside functions and imports
    for type checking too); ``from autodnn.x import y`` counts as ``autodnn.x.y`` where that is a module."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autodnn"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("autodnn"))
    return found


def test_every_module_has_a_floor() -> None:
    unplaced = [m for m in _modules() if m != "autodnn" and m != "autodnn.__main__" and _layer(m) is None]
    assert not unplaced, f"modules on no floor of LAYERS: {unplaced}"


def test_the_floors_import_only_downward() -> None:
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        rank = _layer(module)
        if rank is None:
            continue
        for imported in _autodnn_imports(path, set(modules)):
            other = _layer(imported)
            same_package = imported.split(".")[:2] == module.split(".")[:2] and module.split(".")[1] != "study"
            if other is not None and other >= rank and not same_package and imported != module:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports against the floors of DESIGN.md: " + "; ".join(sorted(wrong))


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (module -> modules it imports), or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            if (found := visit(imported, [*path, module])) is not None:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        if (found := visit(module, [])) is not None:
            return found
    return None


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {m: {i for i in _autodnn_imports(p, set(modules)) if i in modules and i != m and not m.startswith(i + ".")}
             for m, p in modules.items()}
    # A package's __init__ re-exports its modules: importing it is importing them, not a circle through them.
    graph = {m: {i for i in imports if not (i in modules and modules[i].name == "__init__.py"
                                            and m.startswith(i + "."))}
             for m, imports in graph.items()}
    assert _circle(graph) is None, "import circle: " + " -> ".join(_circle(graph) or [])


def test_the_circle_check_finds_one() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_root_holds_only_the_public_entry_points() -> None:
    root = {path.stem for path in (REPO / "autodnn").glob("*.py")}
    assert root == ROOT_MODULES


def test_no_module_passes_the_line_limit() -> None:
    long = {str(path.relative_to(REPO)): n for path in (REPO / "autodnn").rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def test_the_layering_test_sees_an_import_against_it(tmp_path) -> None:
    upward = tmp_path / "storage.py"
    upward.write_text("def f():\n    from autodnn.workers import run_trials\n")
    imported = _autodnn_imports(upward)
    assert imported == {"autodnn.workers"}
    assert _layer("autodnn.workers") > _layer("autodnn.study.storage")
    typed = tmp_path / "loops.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from autodnn.objective import METRIC\n")
    assert _autodnn_imports(typed) == {"autodnn.objective"}
    assert _layer("autodnn.objective") > _layer("autodnn.training.loops")


def test_workers_engines_and_evaluation_never_load_the_search() -> None:
    for module, loaded in modules_after_each(["autodnn.workers", "autodnn.engines", "autodnn.objective",
                                              "autodnn.evaluate"]).items():
        assert not {m for m in loaded if m == "autodnn.tuning" or m.startswith("autodnn.tuning.")}, module


def test_the_lower_study_layers_load_neither_keras_nor_the_trainer() -> None:
    for module, loaded in modules_after_each(["autodnn.study.urls", "autodnn.study.storage",
                                              "autodnn.study.artifacts", "autodnn.study.strategy", "autodnn.study.cost",
                                              "autodnn.study.records", "autodnn.study.options",
                                              "autodnn.study.trial_record", "autodnn.study.deadline",
                                              "autodnn.export"]).items():
        assert not packages(loaded) & set(HEAVY) - {"optuna"}, module
        assert not loaded & {"autodnn.training.trainer", "autodnn.objective", "autodnn.workers",
                             "autodnn.tuning.run"}, module


def test_the_url_layer_loads_no_optuna() -> None:
    assert "optuna" not in packages(modules_after_each(["autodnn.study.urls"])["autodnn.study.urls"])
