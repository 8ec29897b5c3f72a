"""Module boundaries of DESIGN.md: what importing each part of autodnn may load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

HEAVY = ("keras", "tensorflow", "jax", "torch", "optuna")


def modules_after(module: str) -> set[str]:
    """Every module (dotted name) that importing ``module`` loads, in a fresh interpreter."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def loaded_after(module: str) -> set[str]:
    """The top-level packages that importing ``module`` loads, in a fresh interpreter."""
    return {name.split(".")[0] for name in modules_after(module)}


@pytest.mark.parametrize("module", ["autodnn", "autodnn.space", "autodnn.config", "autodnn.datasets",
                                    "autodnn.cli", "autodnn.progress"])
def test_light_modules_load_neither_keras_nor_optuna(module: str) -> None:
    assert not loaded_after(module) & set(HEAVY)


@pytest.mark.parametrize("module", ["autodnn.trainer", "autodnn.model", "autodnn.optim", "autodnn.lr_finder",
                                    "autodnn.tensorboard", "autodnn.population", "autodnn.programs",
                                    "autodnn.session", "autodnn.restore"])
def test_training_modules_never_load_optuna(module: str) -> None:
    loaded = loaded_after(module)
    assert "keras" in loaded
    assert "optuna" not in loaded


#: The study side of DESIGN.md, lowest layer first: a module may import only from layers below its own (or
#: from its own package, for ``workers``, ``engines`` and the other packages), at the top or inside a function.
STUDY_LAYERS = [
    ("autodnn.study.urls",),
    ("autodnn.study.locks",),
    ("autodnn.study.storage",),
    ("autodnn.study.artifacts",),
    ("autodnn.study._tpe", "autodnn.study._tables"),
    ("autodnn.study.strategy", "autodnn.study.warm_start", "autodnn.study.cost"),
    ("autodnn.study.records",),
    ("autodnn.study.settings", "autodnn.study.budget"),
    ("autodnn.objective",),
    ("autodnn.export",),
    ("autodnn.workers", "autodnn.engines", "autodnn.evaluate", "autodnn.report"),
    ("autodnn.study.search", "autodnn.study.dashboard"),
    ("autodnn.progress",),
    ("autodnn.cli",),
]


def _layer(module: str) -> int | None:
    for rank, names in enumerate(STUDY_LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return rank
    return None


def _autodnn_imports(path) -> set[str]:
    """The ``autodnn.*`` modules a source file imports anywhere in it (lazy imports inside functions too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autodnn"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("autodnn"))
    return found


def test_the_study_layers_import_only_downward() -> None:
    package = REPO / "autodnn"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        rank = _layer(module)
        if rank is None:
            continue
        for imported in _autodnn_imports(path):
            other = _layer(imported)
            # Inside one package of a layer (workers, engines, report, cli, progress) modules import each other;
            # the study package is several layers, each held to the rule.
            same_package = imported.split(".")[:2] == module.split(".")[:2] and module.split(".")[1] != "study"
            if other is not None and other >= rank and not same_package:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports against the layering of DESIGN.md: " + "; ".join(wrong)


def test_the_layering_test_sees_an_import_against_it(tmp_path) -> None:
    upward = tmp_path / "storage.py"
    upward.write_text("def f():\n    from autodnn.workers import run_trials\n")
    imported = _autodnn_imports(upward)
    assert imported == {"autodnn.workers"}
    assert _layer("autodnn.workers") > _layer("autodnn.study.storage")


@pytest.mark.parametrize("module", ["autodnn.workers", "autodnn.engines", "autodnn.objective"])
def test_workers_and_engines_never_load_the_search(module: str) -> None:
    loaded = modules_after(module)
    assert "autodnn.study.search" not in loaded


@pytest.mark.parametrize("module", ["autodnn.study.urls", "autodnn.study.storage", "autodnn.study.artifacts",
                                    "autodnn.study.strategy", "autodnn.study.cost", "autodnn.study.warm_start",
                                    "autodnn.study.records", "autodnn.study.settings",
                                    "autodnn.export"])
def test_the_lower_study_layers_load_neither_keras_nor_the_trainer(module: str) -> None:
    loaded = modules_after(module)
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY) - {"optuna"}
    assert not loaded & {"autodnn.trainer", "autodnn.objective", "autodnn.workers", "autodnn.study.search"}


def test_the_url_layer_loads_no_optuna() -> None:
    assert "optuna" not in loaded_after("autodnn.study.urls")
