"""Training throughput of one convolutional trial: autodnn's trainer against a plain Keras ``fit`` of the same net.

The network is the conv family's (:mod:`autodnn.network.conv`) at a shape a CIFAR-10 search trains: a 3 x 3 stem of
32 filters and three groups of two plain blocks with batch norm (64-128-256... as ``--filters`` and
``--growth`` say), global average pooling, Adam, on CIFAR-10-shaped data (random values: speed does not depend
on them). Each backend runs in its own process (``KERAS_BACKEND`` is fixed per process). Printed, in one run:

- the reference: ``model.fit(x, y, batch_size=B, validation_data=...)`` of the same Keras model, as a user
  would write it, on each installed backend;
- ``autodnn.training.trainer.train`` of the same configuration on each installed backend;
- each row's samples a second (the median of the epochs after the first, validation included), its ratio to
  the reference on TensorFlow (Keras' default backend), and its multiply-add rate as a share of this machine's
  float32 matrix multiply (NumPy ``a @ b``), counting three passes (forward, and backward twice) of the
  network's multiply-adds (:func:`autodnn.study.cost.conv_multiply_adds`) a training sample.

    python benchmarks/conv_throughput.py --samples 5000 --epochs 3
    python benchmarks/conv_throughput.py --backends jax --batch 128 --json benchmarks/out/conv_throughput.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IMAGE = (32, 32, 3)
N_CLASSES = 10
BACKENDS = ("tensorflow", "jax", "torch")


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    return {"family": "conv", "conv_filters": args.filters, "filter_growth": args.growth, "conv_groups": 3,
            "conv_blocks": 2, "normalization": "batch_norm_before", "conv_head": "gap", "n_hidden": 0,
            "optimizer": "adam", "learning_rate": 1e-3, "batch_size": args.batch, "patience": 100}


def data(samples: int) -> tuple[Any, ...]:
    import numpy as np

    rng = np.random.default_rng(0)
    n_features = IMAGE[0] * IMAGE[1] * IMAGE[2]
    valid = max(1, samples // 9)
    return (rng.normal(size=(samples, n_features)).astype("float32"), rng.integers(0, N_CLASSES, samples).astype("int32"),
            rng.normal(size=(valid, n_features)).astype("float32"), rng.integers(0, N_CLASSES, valid).astype("int32"))


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in a process of its own, on ``job["backend"]``: the reference ``fit`` or autodnn's trainer."""
    import keras

    from autodnn.config import TrialConfig
    from autodnn.network.conv import build_conv_model

    config = TrialConfig.from_dict(job["config"])
    x, y, xv, yv = data(job["samples"])
    times: list[float] = []
    if job["runner"] == "keras fit":
        model = build_conv_model(config, IMAGE, N_CLASSES, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.began = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                times.append(time.perf_counter() - self.began)

        model.fit(x, y, batch_size=config.batch_size, epochs=job["epochs"], validation_data=(xv, yv), verbose=0,
                  callbacks=[Clock()])
    else:
        from autodnn.datasets import Dataset
        from autodnn.training.trainer import train

        dataset = Dataset("random", x, y, xv, yv, xv, yv, tuple(map(str, range(N_CLASSES))), "random", "random",
                          image_shape=IMAGE)
        result = train(config, dataset, max_epochs=job["epochs"], seed=0)
        times = list(result.epoch_times)
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    return {"backend": job["backend"], "runner": job["runner"], "first_epoch_s": times[0], "steady_epoch_s": steady,
            "samples_per_s": job["samples"] / steady}


def matmul_rate() -> float:
    """This machine's float32 matrix-multiply rate, in multiply-adds a second (NumPy, best of five)."""
    import numpy as np

    a = np.random.default_rng(0).normal(size=(1024, 1024)).astype("float32")
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - began)
    return 1024 ** 3 / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--growth", type=float, default=2.0)
    parser.add_argument("--backends", default=",".join(b for b in BACKENDS if importlib.util.find_spec(b)))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--limit", type=float, default=1800.0, help="seconds a row may take (default: 1800)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    sys.path.insert(0, str(REPO))
    from autodnn.config import TrialConfig
    from autodnn.study.cost import conv_multiply_adds

    values = config_values(args)
    macs = conv_multiply_adds(TrialConfig.from_dict(values), IMAGE, N_CLASSES)[0]
    rate = matmul_rate()
    rows = []
    for backend in args.backends.split(","):
        for runner in ("keras fit", "autodnn trainer"):
            job = {"backend": backend, "runner": runner, "config": values, "samples": args.samples,
                   "epochs": args.epochs}
            env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
            try:
                done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env, cwd=REPO,
                                      capture_output=True, text=True, check=False, timeout=args.limit)
            except subprocess.TimeoutExpired:
                rows.append({**job, "error": [f"did not finish {args.epochs} epochs in {args.limit:.0f} s"]})
                continue
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                rows.append({**job, "error": done.stderr.strip().splitlines()[-1:]})
                continue
            rows.append(json.loads(lines[-1]))
    reference = next((r for r in rows if r.get("backend") == "tensorflow" and r.get("runner") == "keras fit"
                      and "samples_per_s" in r), None)
    print(f"conv net {TrialConfig.from_dict(values).shape_words}, {macs / 1e6:.1f}M multiply-adds an image, batch "
          f"{args.batch}, {args.samples} samples; float32 matmul {rate / 1e9:.1f} G multiply-adds/s")
    print(f"{'backend':<12}{'runner':<18}{'first epoch s':>15}{'samples/s':>12}{'x TF fit':>10}{'of matmul':>11}")
    for row in rows:
        if "error" in row:
            print(f"{row['backend']:<12}{row['runner']:<18} failed: {row['error']}")
            continue
        ratio = row["samples_per_s"] / reference["samples_per_s"] if reference else float("nan")
        share = 3 * macs * row["samples_per_s"] / rate
        print(f"{row['backend']:<12}{row['runner']:<18}{row['first_epoch_s']:>15.1f}{row['samples_per_s']:>12.0f}"
              f"{ratio:>10.2f}{share:>11.1%}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"multiply_adds": macs, "matmul_rate": rate, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
