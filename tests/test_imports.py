"""Module boundaries of DESIGN.md: what importing each part of autodnn may load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("keras", "tensorflow", "jax", "torch", "optuna")


def loaded_after(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["autodnn", "autodnn.space", "autodnn.config", "autodnn.datasets",
                                    "autodnn.cli"])
def test_light_modules_load_neither_keras_nor_optuna(module: str) -> None:
    assert not loaded_after(module) & set(HEAVY)


@pytest.mark.parametrize("module", ["autodnn.trainer", "autodnn.model", "autodnn.optim", "autodnn.lr_finder"])
def test_training_modules_never_load_optuna(module: str) -> None:
    loaded = loaded_after(module)
    assert "keras" in loaded
    assert "optuna" not in loaded
