"""Training throughput of the exercise-8 network: the book's ``model.fit`` against autodnn's trainer.

The network is chapter 11's exercise 8: 20 hidden layers of 100 Swish units, He initialization, Nadam, a
10-way softmax, trained on CIFAR-10-shaped data (45,000 training and 5,000 validation images of 32x32x3,
random here: speed does not depend on the values). Printed, in one run:

- the reference: the book's way, plain Keras ``model.fit(X, y, validation_data=...)`` at batch 32 on the
  TensorFlow backend (and the same ``fit`` on JAX, for context);
- ``autodnn.trainer.train`` at each batch size on each installed backend;
- this machine's float32 matrix-multiply rate (NumPy ``a @ b``), and each run's achieved rate as a fraction
  of it, counting 6 x parameters FLOPs per training sample (forward 2, backward 4);
- the compile cost per trial on digits (first epoch minus a steady one), for a 20 x 100 and a 2 x 64 net.

Every epoch time includes validation, for the reference and the trainer alike. Each backend runs in its own
process (``KERAS_BACKEND`` is fixed per process); the first epoch (tracing and compilation) is reported
separately and the steady-state rate is the median of the later epochs. ``--repeats`` runs everything again
and reports medians, for machines shared with other work. The JSON goes to ``--json``; a dated row is
appended to ``benchmarks/RESULTS.md``.

    python benchmarks/throughput.py            # full run, a few minutes on 2 cores
    python benchmarks/throughput.py --quick    # CI smoke run, under 2 minutes
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
BACKENDS = ("jax", "tensorflow", "torch")
IMAGE = (32, 32, 3)
N_CLASSES = 10
HIDDEN, UNITS = 20, 100
BOOK_LEARNING_RATE = 5e-5
#: The issue's targets on the 2-core CI machine.
TARGET_SPEEDUP_B32 = 5.0
TARGET_FRACTION_B512 = 0.40


def n_params(n_features: int = 32 * 32 * 3, hidden: int = HIDDEN, units: int = UNITS, classes: int = N_CLASSES) -> int:
    """Weights of a dense net with ``hidden`` layers of ``units`` (biases included)."""
    return n_features * units + units + (hidden - 1) * (units * units + units) + units * classes + classes


# --- the parent: orchestrates, measures the matmul rate, prints and records ---------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    installed = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    backends = [b for b in args.backends.split(",") if b] if args.backends else installed
    missing = [b for b in backends if b not in installed]
    if missing:
        print(f"Error: backend(s) {', '.join(missing)} not installed; installed: {', '.join(installed)}",
              file=sys.stderr)
        return 2
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    samples = args.samples or (12_000 if args.quick else 45_000)
    epochs = args.epochs or (2 if args.quick else 3)
    common = {"samples": samples, "valid": samples // 9, "epochs": epochs}

    matmul: list[float] = []
    runs: list[dict[str, Any]] = []
    compile_runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for repeat in range(args.repeats):
        matmul += matmul_rates(args.quick)
        if "tensorflow" in installed:
            runs.append(spawn({"task": "reference", "backend": "tensorflow", "repeat": repeat, **common}))
        if "jax" in installed and not args.quick:
            runs.append(spawn({"task": "reference", "backend": "jax", "repeat": repeat, **common}))
        for backend in backends:
            runs.append(spawn({"task": "trainer", "backend": backend, "batch_sizes": batch_sizes,
                               "repeat": repeat, **common}))
        matmul += matmul_rates(args.quick)
    if not args.no_compile:
        for backend in backends:
            compile_runs.append(spawn({"task": "compile", "backend": backend, "epochs": 4 if args.quick else 6}))

    report = summarize(runs, compile_runs, matmul, args, samples, epochs, time.perf_counter() - started)
    print_report(report)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON: {path}")
    if not args.no_record:
        record(report, Path(args.results))
        print(f"Row appended to {args.results}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="short CI run: 12,000 samples, 2 measured epochs, no plain-fit-on-JAX row")
    parser.add_argument("--backends", default="", help="comma-separated (default: every installed backend)")
    parser.add_argument("--batch-sizes", default="32,128,512,1024",
                        help="trainer batch sizes (default 32,128,512,1024)")
    parser.add_argument("--epochs", type=int, default=0, help="measured epochs after the warm-up one (default 3)")
    parser.add_argument("--samples", type=int, default=0, help="training samples per epoch (default 45,000)")
    parser.add_argument("--repeats", type=int, default=1, help="run everything this many times; report medians")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "out" / "throughput.json"))
    parser.add_argument("--results", default=str(RESULTS_MD), help="Markdown file the dated row is appended to")
    parser.add_argument("--no-record", action="store_true", help="do not append to the results file")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-cost measurement on digits")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, but got {args.repeats}")
    return args


def matmul_rates(quick: bool) -> list[float]:
    """GFLOP/s of float32 ``a @ b`` (n = 2048, or 4096 outside quick runs), one value per timed run."""
    import numpy as np

    n = 2048 if quick else 4096
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return rates


def spawn(job: dict[str, Any]) -> dict[str, Any]:
    """Runs one measurement in a fresh process on ``job["backend"]`` and returns what it printed as JSON."""
    env = dict(os.environ, KERAS_BACKEND=job["backend"], TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    label = f"{job['task']} on {job['backend']}"
    print(f"... {label}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env, capture_output=True,
                          text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"{label} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def summarize(runs: list[dict[str, Any]], compile_runs: list[dict[str, Any]], matmul: list[float],
              args: argparse.Namespace, samples: int, epochs: int, seconds: float) -> dict[str, Any]:
    flops = 6 * n_params()
    gflops = statistics.median(matmul)

    def merged(task: str, backend: str, batch: int) -> dict[str, Any] | None:
        rows = [r for run in runs if run["task"] == task and run["backend"] == backend for r in run["rows"]
                if r["batch_size"] == batch]
        if not rows:
            return None
        keys = ("samples_per_second", "first_epoch_s", "steady_epoch_s")
        out = {"backend": backend, "batch_size": batch, "repeats": len(rows)}
        out.update({k: statistics.median(r[k] for r in rows) for k in keys})
        out["compile_s"] = max(0.0, out["first_epoch_s"] - out["steady_epoch_s"])
        out["samples_per_second_all"] = [r["samples_per_second"] for r in rows]
        out["gflops"] = out["samples_per_second"] * flops / 1e9
        out["fraction_of_matmul"] = out["gflops"] / gflops
        return out

    reference = merged("reference", "tensorflow", 32)
    plain_jax = merged("reference", "jax", 32)
    backends = sorted({run["backend"] for run in runs if run["task"] == "trainer"}, key=BACKENDS.index)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    trainer = [m for b in backends for s in batch_sizes if (m := merged("trainer", b, s)) is not None]
    for row in [plain_jax, *trainer]:
        if row is not None and reference is not None:
            row["speedup_vs_reference"] = row["samples_per_second"] / reference["samples_per_second"]
    b32 = [r for r in trainer if r["batch_size"] == 32 and "speedup_vs_reference" in r]
    big = [r for r in trainer if r["batch_size"] >= 512]
    best32 = max(b32, key=lambda r: r["speedup_vs_reference"], default=None)
    best_big = max(big, key=lambda r: r["fraction_of_matmul"], default=None)
    targets = {
        "batch32_speedup": {
            "target": TARGET_SPEEDUP_B32,
            "value": best32["speedup_vs_reference"] if best32 else None,
            "backend": best32["backend"] if best32 else None,
            "met": bool(best32 and best32["speedup_vs_reference"] >= TARGET_SPEEDUP_B32),
        },
        "batch512_fraction_of_matmul": {
            "target": TARGET_FRACTION_B512,
            "value": best_big["fraction_of_matmul"] if best_big else None,
            "backend": best_big["backend"] if best_big else None,
            "batch_size": best_big["batch_size"] if best_big else None,
            "met": bool(best_big and best_big["fraction_of_matmul"] >= TARGET_FRACTION_B512),
        },
    }
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": next((run["versions"] for run in runs if "versions" in run), {}),
        "settings": {"quick": args.quick, "samples_per_epoch": samples, "valid_samples": samples // 9,
                     "measured_epochs": epochs, "repeats": args.repeats, "batch_sizes": batch_sizes,
                     "network": f"{HIDDEN} x {UNITS} swish, he_normal, Nadam, 3072 -> 10",
                     "n_params": n_params(), "flops_per_sample": flops, "seconds": round(seconds, 1)},
        "matmul_gflops": gflops,
        "matmul_gflops_all": matmul,
        "reference": reference,
        "plain_fit_jax": plain_jax,
        "trainer": trainer,
        "compile": [row for run in compile_runs for row in run["rows"]],
        "targets": targets,
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"nproc": os.cpu_count(), "cpu": model, "platform": platform.platform(terse=True),
            "python": platform.python_version(), "load_average_1min": load}


def print_report(report: dict[str, Any]) -> None:
    m, s = report["machine"], report["settings"]
    print(f"\nExercise-8 net ({s['network']}, {s['n_params']:,} parameters, {s['flops_per_sample'] / 1e6:.2f} "
          f"MFLOP/sample), {s['samples_per_epoch']:,} samples/epoch + {s['valid_samples']:,} validation")
    print(f"Machine: {m['nproc']} cores, {m['cpu']}; load average {m['load_average_1min']}")
    print(f"Matrix multiply (NumPy float32): {report['matmul_gflops']:.1f} GFLOP/s "
          f"(median of {len(report['matmul_gflops_all'])}, range {min(report['matmul_gflops_all']):.1f}-"
          f"{max(report['matmul_gflops_all']):.1f})\n")
    header = (f"{'run':<34}{'batch':>6}{'samples/s':>11}{'vs book':>9}{'GFLOP/s':>9}{'of matmul':>11}"
              f"{'epoch s':>9}{'1st epoch s':>13}")
    print(header)
    print("-" * len(header))
    rows = []
    if report["reference"]:
        rows.append(("book: fit(X, y), tensorflow", report["reference"]))
    if report["plain_fit_jax"]:
        rows.append(("book's fit on jax", report["plain_fit_jax"]))
    rows += [(f"autodnn trainer, {r['backend']}", r) for r in report["trainer"]]
    for name, r in rows:
        speed = r.get("speedup_vs_reference", 1.0 if r is report["reference"] else float("nan"))
        print(f"{name:<34}{r['batch_size']:>6}{r['samples_per_second']:>11,.0f}{speed:>8.2f}x{r['gflops']:>9.1f}"
              f"{r['fraction_of_matmul']:>10.0%}{r['steady_epoch_s']:>9.2f}{r['first_epoch_s']:>13.2f}")
    t32, tbig = report["targets"]["batch32_speedup"], report["targets"]["batch512_fraction_of_matmul"]
    print()
    if t32["value"] is not None:
        print(f"Target batch 32 >= {t32['target']:.0f}x the book's fit: {t32['value']:.2f}x ({t32['backend']}) "
              f"-> {'met' if t32['met'] else 'NOT met'}")
    if tbig["value"] is not None:
        print(f"Target batch >= 512 >= {tbig['target']:.0%} of matmul: {tbig['value']:.0%} ({tbig['backend']}, "
              f"batch {tbig['batch_size']}) -> {'met' if tbig['met'] else 'NOT met'}")
    if report["compile"]:
        print(f"\nCompile cost per trial on digits (first epoch minus a steady epoch, batch 32):")
        print(f"{'backend':<12}{'net':<10}{'1st epoch s':>12}{'epoch s':>9}{'compile s':>11}"
              f"{'trial s':>9}{'same net again s':>18}")
        for r in report["compile"]:
            again = "" if r.get("again_first_epoch_s") is None else f"{r['again_first_epoch_s']:.2f}"
            print(f"{r['backend']:<12}{r['net']:<10}{r['first_epoch_s']:>12.2f}{r['steady_epoch_s']:>9.3f}"
                  f"{r['compile_s']:>11.2f}{r['trial_s']:>9.2f}{again:>18}")


def record(report: dict[str, Any], path: Path) -> None:
    """Appends one self-contained dated block (heading, header, row), so other benchmarks' tables stay intact."""
    m = report["machine"]
    per_backend = {}
    batches = sorted({r["batch_size"] for r in report["trainer"]})
    for r in report["trainer"]:
        per_backend.setdefault(r["backend"], []).append(f"{r['samples_per_second']:,.0f}")
    trainer = "; ".join(f"{b}: {' / '.join(v)}" for b, v in per_backend.items())
    t32, tbig = report["targets"]["batch32_speedup"], report["targets"]["batch512_fraction_of_matmul"]
    ref = report["reference"]["samples_per_second"] if report["reference"] else float("nan")
    met = "both met" if t32["met"] and tbig["met"] else ("b32 met" if t32["met"] else
                                                         ("b512 met" if tbig["met"] else "not met"))
    s = report["settings"]
    notes = (f"{'quick, ' if s['quick'] else ''}{s['samples_per_epoch']:,} samples, {s['measured_epochs']} epochs x "
             f"{s['repeats']} repeats, load {m['load_average_1min']:.1f}")
    block = (
        f"\n### throughput.py, {report['date'][:10]}\n\n"
        "| date | machine | matmul GFLOP/s | book fit b32 (TF) samples/s | trainer samples/s "
        f"(backend: {' / '.join(f'b{b}' for b in batches)}) | b32 vs book | b >= 512 of matmul | targets | notes |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {report['date'][:10]} | {m['nproc']} x {m['cpu']} | {report['matmul_gflops']:.0f} | {ref:,.0f} | "
        f"{trainer} | {t32['value'] or float('nan'):.2f}x ({t32['backend']}) | "
        f"{tbig['value'] or float('nan'):.0%} ({tbig['backend']}, b{tbig.get('batch_size', '?')}) | {met} | {notes} |\n"
    )
    with path.open("a") as out:
        out.write(block)


# --- the workers: one backend per process ----------------------------------------------------------------------


def worker(job: dict[str, Any]) -> int:
    task = {"reference": reference_worker, "trainer": trainer_worker, "compile": compile_worker}[job["task"]]
    out = {"task": job["task"], "backend": job["backend"], "rows": task(job), "versions": versions()}
    print(json.dumps(out))
    return 0


def versions() -> dict[str, str]:
    import importlib.metadata

    found = {}
    for package in ("keras", "jax", "jaxlib", "tensorflow", "tensorflow-cpu", "torch", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def synthetic(samples: int, valid: int, flat: bool) -> tuple[Any, ...]:
    import numpy as np

    rng = np.random.default_rng(42)
    shape = (-1, 32 * 32 * 3) if flat else (-1, *IMAGE)
    x = rng.random((samples + valid, 32 * 32 * 3), dtype=np.float32).reshape(shape)
    y = rng.integers(0, N_CLASSES, samples + valid).astype(np.int32)
    return x[:samples], y[:samples], x[samples:], y[samples:]


def steady(times: list[float]) -> float:
    """Median epoch time after the first (warm-up) epoch."""
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def reference_worker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The book's exercise-8 code: Flatten, 20 Dense(100, swish, he_normal), softmax; Nadam; plain ``fit``."""
    import keras

    x_train, y_train, x_valid, y_valid = synthetic(job["samples"], job["valid"], flat=False)
    keras.utils.set_random_seed(42)
    model = keras.Sequential()
    model.add(keras.layers.Input(shape=IMAGE))
    model.add(keras.layers.Flatten())
    for _ in range(HIDDEN):
        model.add(keras.layers.Dense(UNITS, activation="swish", kernel_initializer="he_normal"))
    model.add(keras.layers.Dense(N_CLASSES, activation="softmax"))
    optimizer = keras.optimizers.Nadam(learning_rate=BOOK_LEARNING_RATE)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    timer = _EpochTimer()
    model.fit(x_train, y_train, epochs=job["epochs"] + 1, validation_data=(x_valid, y_valid), callbacks=[timer],
              verbose=0)
    return [_row(32, job["samples"], timer.times)]


def trainer_worker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """autodnn's trainer on the same network, one process for all batch sizes (data prepared once)."""
    from autodnn.config import TrialConfig
    from autodnn.trainer import train

    dataset = _dataset(*synthetic(job["samples"], job["valid"], flat=True))
    rows = []
    for batch in job["batch_sizes"]:
        config = TrialConfig(n_hidden=HIDDEN, n_units=UNITS, activation="swish", optimizer="nadam",
                             learning_rate=BOOK_LEARNING_RATE, batch_size=batch, patience=job["epochs"] + 5)
        result = train(config, dataset, max_epochs=job["epochs"] + 1, seed=42)
        trained = len(dataset.x_train) // batch * batch
        rows.append(_row(batch, trained, result.epoch_times))
    return rows


def compile_worker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """First epoch vs steady epochs of whole trials on digits; then the same net again (new seed and rate).

    On JAX the second trial runs with a persistent compilation cache in a temporary folder, which the first
    trial filled: that is what a cache shared by the trials of a study would save.
    """
    import keras

    directory = None
    if keras.backend.backend() == "jax":
        from autodnn.backend import enable_compilation_cache

        directory = tempfile.mkdtemp(prefix="autodnn-xla-cache-")
        enable_compilation_cache(directory)
    from autodnn.config import TrialConfig
    from autodnn.datasets import load_dataset
    from autodnn.trainer import train

    dataset = load_dataset("digits")
    rows = []
    for hidden, units in ((20, 100), (2, 64)):
        config = TrialConfig(n_hidden=hidden, n_units=units, activation="swish", optimizer="nadam",
                             batch_size=32, patience=100)
        start = time.perf_counter()
        first = train(config, dataset, max_epochs=job["epochs"], seed=1)
        trial = time.perf_counter() - start
        again = train(config.replace(learning_rate=config.learning_rate / 2), dataset, max_epochs=2, seed=2)
        epoch = steady(first.epoch_times)
        rows.append({"backend": keras.backend.backend(), "net": f"{hidden}x{units}",
                     "first_epoch_s": first.epoch_times[0], "steady_epoch_s": epoch,
                     "compile_s": max(0.0, first.epoch_times[0] - epoch), "trial_s": trial,
                     "epochs": first.epochs, "again_first_epoch_s": again.epoch_times[0],
                     "persistent_cache": directory is not None})
    return rows


class _EpochTimer:
    def __new__(cls) -> Any:
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []
                self._start = 0.0

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                self.times.append(time.perf_counter() - self._start)

        return Timer()


def _row(batch: int, samples: int, times: list[float]) -> dict[str, Any]:
    epoch = steady(times)
    return {"batch_size": batch, "samples_per_second": samples / epoch, "first_epoch_s": times[0],
            "steady_epoch_s": epoch, "epoch_times": times}


def _dataset(x_train: Any, y_train: Any, x_valid: Any, y_valid: Any) -> Any:
    from autodnn.datasets import Dataset

    return Dataset(name="synthetic-cifar10-shape", x_train=x_train, y_train=y_train, x_valid=x_valid,
                   y_valid=y_valid, x_test=x_valid[:100], y_test=y_valid[:100],
                   class_names=tuple(str(i) for i in range(N_CLASSES)), fingerprint="synthetic",
                   source="random numbers", image_shape=IMAGE)


if __name__ == "__main__":
    sys.exit(main())
