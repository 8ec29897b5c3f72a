"""KerasTuner's HyperResNet as search_quality.py runs it (benchmarks/hyperresnet.py), on a few small images."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

pytestmark = pytest.mark.slow  # builds and trains ResNets


def _images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 32 * 32 * 3)).astype(np.float32) + 2.0 * y[:, None]  # two classes apart
    return x, y


def test_hyperresnet_searches_within_its_budget_and_tests_the_model_it_kept() -> None:
    from hyperresnet import run_hyperresnet

    rng = np.random.default_rng(0)
    parts = {name: _images(n, rng) for name, n in (("train", 64), ("valid", 32), ("test", 32))}
    dataset = SimpleNamespace(image_shape=(32, 32, 3), class_names=["a", "b"],
                              **{f"{axis}_{name}": part[i] for name, part in parts.items()
                                 for i, axis in enumerate("xy")})
    # A budget that ends the first trial in flight: no winner (KerasTuner would offer the unfinished trial).
    nothing = run_hyperresnet(dataset, budget=0.0, max_epochs=2, seed=0)
    assert nothing["trials"] == 0 and nothing["best_params"] is None and nothing["test_accuracy"] is None
    result = run_hyperresnet(dataset, budget=240.0, max_epochs=2, seed=0)
    assert result["trials"] >= 1 and result["trace"], "at least one trial ended within the budget"
    assert result["best_params"]["version"] in ("v1", "v2", "next")
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["best_val_accuracy"] == pytest.approx(max(best for _, best in result["trace"]))
