"""Population training's throughput: K trials of one network trained together against one trial alone.

Every row trains K members through the product's own path (:func:`autodnn.training.population.train_population`,
each member a different learning rate and seed, validation included) and reports the aggregate training
samples per second over the steady epochs (the median after the first, which compiles), the FLOP rate that
is (6 x parameters per sample) as a fraction of this machine's float32 matrix-multiply rate (NumPy
``a @ b``, measured in the same run), and the memory per member: the bytes of its state (weights, optimizer
moments, the schedule's table) and the growth of the process's peak resident memory divided by K. Each row
runs in a fresh process, so peaks do not mix.

Rows:

- the exercise-8 net (20 x 100 Swish, He, Nadam) on CIFAR-10-shaped random data, K = 1, 2, 4, 8, 16 at
  batch 32 and 128 (the issue's CPU target: K = 8 at batch 32 reaching 70% of the matmul rate);
- a small net (3 x 128, ReLU, Adam) on digits at batch 64, K = 1 and 8 (target: K = 8 at 4x one trial).

    python benchmarks/population.py                    # a few minutes on 2 cores
    python benchmarks/population.py --quick            # K = 1, 8 only, fewer samples
    python benchmarks/throughput.py --population       # the same, from the throughput benchmark
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.throughput import machine, matmul_rates, n_params

TARGET_FRACTION_K8_B32 = 0.70
TARGET_SMALL_SPEEDUP_K8 = 4.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K = 1 and 8 only, fewer samples")
    parser.add_argument("--ks", default="1,2,4,8,16", help="population sizes of the exercise-8 rows")
    parser.add_argument("--batch-sizes", default="32,128", help="batch sizes of the exercise-8 rows")
    parser.add_argument("--samples", type=int, default=9000, help="training rows per epoch of the exercise-8 rows")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs after the first")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "out" / "population.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    ks = [1, 8] if args.quick else [int(k) for k in args.ks.split(",")]
    samples = 3000 if args.quick else args.samples
    jobs = [{"net": "exercise-8", "k": k, "batch": b, "samples": samples, "epochs": args.epochs}
            for b in (int(b) for b in args.batch_sizes.split(",")) for k in ks]
    jobs += [{"net": "3 x 128 digits", "k": k, "batch": 64, "samples": 0, "epochs": args.epochs} for k in (1, 8)]
    rates = matmul_rates(args.quick)
    rows = []
    for job in jobs:
        row = spawn(job)
        rows.append(row)
        print_row(row, statistics.median(rates), flush=True)
    report = {"date": dt.date.today().isoformat(), "machine": machine(), "matmul_gflops": rates, "rows": rows}
    summary = summarize(report)
    report["summary"] = summary
    print()
    for line in summary["lines"]:
        print(line)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"machine: {report['machine'].get('cpu')}; JSON: {args.json}")
    return 0


def spawn(job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"worker {job} failed:\n{done.stderr[-3000:]}")
    return {**job, **json.loads(line[len("RESULT "):])}


def worker(job: dict[str, Any]) -> dict[str, Any]:
    import resource

    import numpy as np

    from autodnn.config import TrialConfig
    from autodnn.training.population import train_population

    if job["net"] == "exercise-8":
        from benchmarks.throughput import _dataset, synthetic

        dataset = _dataset(*synthetic(job["samples"], 5000, flat=True))
        config = TrialConfig(n_hidden=20, n_units=100, activation="swish", optimizer="nadam", learning_rate=5e-5,
                             batch_size=job["batch"], patience=100)
    else:
        from autodnn.datasets import load_dataset

        dataset = load_dataset("digits", seed=0)
        config = TrialConfig(n_hidden=3, n_units=128, optimizer="adam", batch_size=job["batch"], patience=100)
    k = job["k"]
    configs = [config.replace(learning_rate=config.learning_rate * (1 + 0.1 * i)) for i in range(k)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = train_population(configs, dataset, max_epochs=job["epochs"] + 1, seeds=list(range(k)),
                               keep_model=True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Each member's epoch time is its share of the population's epoch: K shares make one epoch's wall time.
    epochs = [sum(r.epoch_times[e] for r in results) for e in range(job["epochs"] + 1)]
    steady = statistics.median(epochs[1:])
    trained = len(dataset.x_train) // job["batch"] * job["batch"]
    params = n_params(dataset.n_features, config.n_hidden, config.n_units, dataset.n_classes)
    state_bytes = _state_bytes(results[0].model)
    return {"samples_per_second": k * trained / steady, "steady_epoch_s": steady, "first_epoch_s": epochs[0],
            "params": params, "flops_per_sample": 6 * params, "state_bytes_per_member": state_bytes,
            "peak_rss_growth_per_member_mb": (after - before) / 1024 / k,
            "val_accuracy": [float(np.round(r.val_accuracy, 4)) for r in results]}


def _state_bytes(model: Any) -> int:
    """Bytes of one member's weights and optimizer state (moments, step, held hyperparameters, tables)."""
    return int(sum(v.numpy().nbytes for v in [*model.variables, *model.optimizer.variables]))


def print_row(row: dict[str, Any], matmul: float, flush: bool = False) -> None:
    gflops = row["samples_per_second"] * row["flops_per_sample"] / 1e9
    print(f"{row['net']:<16} K={row['k']:>2} batch {row['batch']:>3}: {row['samples_per_second']:>10,.0f} samples/s "
          f"{gflops:6.1f} GFLOP/s ({gflops / matmul:5.1%} of matmul), epoch {row['steady_epoch_s']:.2f} s, "
          f"state {row['state_bytes_per_member'] / 2**20:.1f} MiB/member, peak RSS +"
          f"{row['peak_rss_growth_per_member_mb']:.0f} MB/member", flush=flush)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    matmul = statistics.median(report["matmul_gflops"])
    rows = report["rows"]

    def find(net: str, k: int, batch: int) -> dict[str, Any] | None:
        return next((r for r in rows if r["net"] == net and r["k"] == k and r["batch"] == batch), None)

    lines, out = [], {}
    k8 = find("exercise-8", 8, 32)
    one = find("exercise-8", 1, 32)
    if k8 and one:
        fraction = k8["samples_per_second"] * k8["flops_per_sample"] / 1e9 / matmul
        out["exercise8_k8_b32_fraction"] = fraction
        out["exercise8_k8_b32_speedup"] = k8["samples_per_second"] / one["samples_per_second"]
        verdict = "met" if fraction >= TARGET_FRACTION_K8_B32 else "NOT met"
        lines.append(f"exercise-8, K = 8 at batch 32: {fraction:.1%} of the matmul rate ({matmul:.0f} GFLOP/s), "
                     f"{out['exercise8_k8_b32_speedup']:.2f}x one trial; target {TARGET_FRACTION_K8_B32:.0%}: {verdict}")
    small8, small1 = find("3 x 128 digits", 8, 64), find("3 x 128 digits", 1, 64)
    if small8 and small1:
        speedup = small8["samples_per_second"] / small1["samples_per_second"]
        out["small_k8_speedup"] = speedup
        verdict = "met" if speedup >= TARGET_SMALL_SPEEDUP_K8 else "NOT met"
        lines.append(f"3 x 128 on digits, K = 8 at batch 64: {speedup:.2f}x one trial's samples/s; target "
                     f"{TARGET_SMALL_SPEEDUP_K8:.0f}x: {verdict}")
    out["lines"] = lines
    return out


if __name__ == "__main__":
    sys.exit(main())
