"""Resident memory stays flat over many trials in one process, as in a long search run by one worker."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.datasets import Dataset
from autodnn.training.trainer import train

TRIALS = 100
WARM_UP = 20
#: Allowed growth from trial 20 to trial 100. Each trial compiles two programs of about 1 MiB of machine code
#: and allocates its model and optimizer state; a trial that kept them would add 80 x ~1-3 MiB, well over the
#: bound, while allocator fragmentation and the libraries' bounded caches stay within a few tens of MiB.
MAX_GROWTH_MIB = 50.0


def resident_mib() -> float:
    """This process's resident set size (``VmRSS``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


def tiny_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((700, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    return Dataset(name="tiny", x_train=x[:500], y_train=y[:500], x_valid=x[500:600], y_valid=y[500:600],
                   x_test=x[600:], y_test=y[600:], class_names=("a", "b", "c"), fingerprint="tiny", source="tests")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc (Linux)")
def test_a_hundred_trials_keep_resident_memory_flat() -> None:
    dataset = tiny_dataset()
    rss: list[float] = []
    for trial in range(TRIALS):
        # Architectures vary like a search's, so every trial builds and compiles a new network.
        config = TrialConfig(n_hidden=1 + trial % 3, n_units=(8, 16, 32)[trial // 3 % 3], batch_size=64,
                             dropout=0.1 * (trial % 2), optimizer=("adam", "nadam", "sgd")[trial % 3])
        result = train(config, dataset, max_epochs=2, seed=trial)
        assert result.epochs == 2
        gc.collect()
        rss.append(resident_mib())
    growth = rss[-1] - rss[WARM_UP - 1]
    print(f"\nRSS after trial 1: {rss[0]:.1f} MiB, after trial {WARM_UP}: {rss[WARM_UP - 1]:.1f} MiB, "
          f"after trial {TRIALS}: {rss[-1]:.1f} MiB, max {max(rss):.1f} MiB; growth from trial {WARM_UP} to "
          f"{TRIALS}: {growth:+.1f} MiB ({growth / (TRIALS - WARM_UP) * 1024:+.0f} KiB per trial)")
    assert growth < MAX_GROWTH_MIB, rss
