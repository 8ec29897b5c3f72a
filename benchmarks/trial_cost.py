"""The fixed cost of a trial: what it spends besides its steady epochs, for a new and a repeated architecture.

A trial builds its network, compiles its training program and trains; its fixed cost is its whole time less
its epochs, plus its first epoch's excess over a steady one (that is where the compilation lands):
``fixed = total - sum(epochs) + (first epoch - median of the later epochs)``.

Each case runs in a fresh process on digits (1,437 training rows), 5 epochs a trial:

- ``new``: the first trial of a process with an empty compilation cache (an architecture never seen);
- ``repeated``: a second trial in the same process, same architecture, other float hyperparameters (learning
  rate, 1cycle's momentum bounds, dropout rate): it reuses the compiled program (:mod:`autodnn.training.programs`);
- ``cached, new process``: the first trial of a second process that finds the first one's cache (a resumed
  study, a worker, a later search).

Usage: ``python benchmarks/trial_cost.py [--repeats 3] [--json benchmarks/out/trial_cost.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Book-2e's network at two sizes; its LR finder's sweep (a few hundred steps of training) is part of a trial
# that runs it, so each net is measured with the finder off (the fixed cost alone) and on.
NETS = {
    "20 x 100 (book-2e)": {"shape": {"n_hidden": 20, "n_units": 100}, "lr_finder": True},
    "20 x 100, no LR finder": {"shape": {"n_hidden": 20, "n_units": 100}, "lr_finder": False},
    "2 x 64, dropout, no LR finder": {"shape": {"n_hidden": 2, "n_units": 64}, "lr_finder": False, "dropout": 0.2},
}

# The float hyperparameters of each trial in a process: the second differs from the first in all of them.
TRIALS = [
    {"learning_rate": 1e-3, "momentum_max": 0.95, "momentum_min": 0.85},
    {"learning_rate": 3e-3, "momentum_max": 0.9, "momentum_min": 0.8},
]
AGAIN = [{"learning_rate": 1e-2, "momentum_max": 0.99, "momentum_min": 0.9}]

CHILD = r"""
import json, sys, time
from autodnn import load_dataset
from autodnn.defaults import book_baselines
from autodnn.training.trainer import train

net, trials = json.loads(sys.argv[1]), json.loads(sys.argv[2])
dataset = load_dataset("digits", seed=0)
base = next(b for b in book_baselines(**net["shape"]) if b.name == "book-2e").config
base = base.replace(lr_finder=net["lr_finder"], dropout=net.get("dropout", 0.0), patience=100)
out = []
for changes in trials:
    start = time.perf_counter()
    result = train(base.replace(**changes), dataset, max_epochs=5, seed=0)
    total = time.perf_counter() - start
    epochs = result.epoch_times
    steady = sorted(epochs[1:])[len(epochs[1:]) // 2]
    out.append({"total": total, "epochs": epochs, "fixed": total - sum(epochs) + epochs[0] - steady})
print("RESULT " + json.dumps(out))
"""


def _run(net: dict, trials: list[dict], cache: str) -> list[dict]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "AUTODNN_COMPILATION_CACHE": cache, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(net), json.dumps(trials)], env=env,
                          capture_output=True, text=True, timeout=900, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def measure(repeats: int) -> list[dict]:
    """Fixed costs per net and case, each the median of ``repeats`` runs."""
    rows = []
    for label, net in NETS.items():
        cases: dict[str, list[float]] = {}
        for _ in range(repeats):
            for mode in ("off", "on"):
                with tempfile.TemporaryDirectory() as folder:
                    cache = "off" if mode == "off" else folder
                    first = _run(net, TRIALS, cache)
                    cases.setdefault(f"new, cache {mode}", []).append(first[0]["fixed"])
                    cases.setdefault(f"repeated, cache {mode}", []).append(first[1]["fixed"])
                    if mode == "on":
                        again = _run(net, AGAIN, cache)
                        cases.setdefault("cached, new process", []).append(again[0]["fixed"])
        for case, values in cases.items():
            rows.append({"net": label, "case": case, "fixed_s": statistics.median(values), "runs": values})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "out" / "trial_cost.json"))
    args = parser.parse_args()
    rows = measure(args.repeats)
    print(f"{'net':<20} {'case':<22} {'fixed cost (s)':>14}   runs")
    for row in rows:
        runs = ", ".join(f"{v:.2f}" for v in row["runs"])
        print(f"{row['net']:<20} {row['case']:<22} {row['fixed_s']:>14.2f}   {runs}")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        machine["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                              if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"machine: {machine['cpu']} ({machine['cores']} cores); JSON: {args.json}")


if __name__ == "__main__":
    main()
