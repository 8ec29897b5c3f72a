"""Training throughput of the exercise-8 network: the book's ``model.fit`` against autodnn's trainer.

The network is chapter 11's exercise 8: 20 hidden layers of 100 Swish units, He initialization, Nadam, a
10-way softmax, trained on CIFAR-10-shaped data (45,000 training and 5,000 validation images of 32x32x3,
random here: speed does not depend on the values). Printed, in one run:

- the reference: the book's way, plain Keras ``model.fit(X, y, validation_data=...)`` at batch 32 on the
  TensorFlow backend (and the same ``fit`` on JAX, for context);
- ``autodnn.training.trainer.train`` at each batch size on each installed backend;
- this machine's float32 matrix-multiply rate (NumPy ``a @ b``), and each run's achieved rate as a fraction
  of it, counting 6 x parameters FLOPs per training sample (forward 2, backward 4);
- the compile cost per trial on digits (first epoch minus a steady one), for a 20 x 100 and a 2 x 64 net;
- with ``--share 1,4``: K trainer processes training at once on one device (one GPU, configured as
  ``--trials-per-gpu K`` configures it), their summed samples per second against one process's;
- with ``--population``: K trials trained as one population against one trial alone (only that; see
  ``benchmarks/population.py``).

On a GPU the trainer's rows are also measured against the GPU's float32 matrix-multiply rate (JAX ``a @ b`` at
its default precision, the one the trainer uses), and ``--precisions`` adds rows for the mixed policies.

Every epoch time includes validation, for the reference and the trainer alike. Each backend runs in its own
process (``KERAS_BACKEND`` is fixed per process); the first epoch (tracing and compilation) is reported
separately and the steady-state rate is the median of the later epochs. ``--repeats`` runs everything again
and reports medians, for machines shared with other work. The JSON goes to ``--json``; a dated row is
appended to ``benchmarks/RESULTS.md``.

    python benchmarks/throughput.py            # full run, a few minutes on 2 cores
    python benchmarks/throughput.py --quick    # CI smoke run, under 2 minutes
    KERAS_BACKEND=jax python benchmarks/throughput.py --backends jax --precisions float32,mixed_bfloat16 \
        --share 1,4                            # on a GPU machine
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
#: The issue's GPU targets: an epoch at batch 128 in at most this many seconds; K trials sharing a GPU at this
#: multiple of one trial's throughput.
TARGET_GPU_EPOCH_B128_S = 0.25
TARGET_SHARE_SPEEDUP = {4: 3.0}


def n_params(n_features: int = 32 * 32 * 3, hidden: int = HIDDEN, units: int = UNITS, classes: int = N_CLASSES) -> int:
    """Weights of a dense net with ``hidden`` layers of ``units`` (biases included)."""
    return n_features * units + units + (hidden - 1) * (units * units + units) + units * classes + classes


# --- the parent: orchestrates, measures the matmul rate, prints and records ---------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.population:
        sys.path.insert(0, str(REPO))
        from benchmarks import population

        return population.main(["--quick"] if args.quick else [])
    installed = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    backends = [b for b in args.backends.split(",") if b] if args.backends else installed
    missing = [b for b in backends if b not in installed]
    if missing:
        print(f"Error: backend(s) {', '.join(missing)} not installed; installed: {', '.join(installed)}",
              file=sys.stderr)
        return 2
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    precisions = [p for p in args.precisions.split(",") if p]
    samples = args.samples or (12_000 if args.quick else 45_000)
    epochs = args.epochs or (2 if args.quick else 3)
    common = {"samples": samples, "valid": samples // 9, "epochs": epochs}

    matmul: list[float] = []
    runs: list[dict[str, Any]] = []
    compile_runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for repeat in range(args.repeats):
        matmul += matmul_rates(args.quick)
        if "tensorflow" in installed and not args.no_reference:
            runs.append(spawn({"task": "reference", "backend": "tensorflow", "repeat": repeat, **common}))
        if "jax" in installed and not args.quick and not args.no_reference:
            runs.append(spawn({"task": "reference", "backend": "jax", "repeat": repeat, **common}))
        for backend in backends:
            for precision in precisions:
                runs.append(spawn({"task": "trainer", "backend": backend, "batch_sizes": batch_sizes,
                                   "precision": precision, "repeat": repeat, **common}))
        matmul += matmul_rates(args.quick)
    share_runs: list[dict[str, Any]] = []
    for k in args.share:
        share_runs.append(share(k, backends[0], args.share_batch, precisions[0], common, mps=not args.share_no_mps))
    if not args.no_compile:
        for backend in backends:
            compile_runs.append(spawn({"task": "compile", "backend": backend, "epochs": 4 if args.quick else 6}))

    report = summarize(runs, compile_runs, share_runs, matmul, args, samples, epochs, time.perf_counter() - started)
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
    parser.add_argument("--precisions", default="float32",
                        help="trainer precisions, comma-separated from float32, mixed_bfloat16, mixed_float16 "
                             "(default float32; the targets use float32)")
    parser.add_argument("--share", default="", metavar="K,...",
                        help="also train K processes at once on one device for each K (e.g. 1,4)")
    parser.add_argument("--share-no-mps", action="store_true",
                        help="run the --share processes without NVIDIA MPS (as autodnn search --no-mps does)")
    parser.add_argument("--share-batch", type=int, default=128, help="batch size of the --share runs (default 128)")
    parser.add_argument("--epochs", type=int, default=0, help="measured epochs after the warm-up one (default 3)")
    parser.add_argument("--samples", type=int, default=0, help="training samples per epoch (default 45,000)")
    parser.add_argument("--repeats", type=int, default=1, help="run everything this many times; report medians")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "out" / "throughput.json"))
    parser.add_argument("--results", default=str(RESULTS_MD), help="Markdown file the dated row is appended to")
    parser.add_argument("--no-record", action="store_true", help="do not append to the results file")
    parser.add_argument("--no-reference", action="store_true", help="skip the book's plain-fit runs")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-cost measurement on digits")
    parser.add_argument("--population", action="store_true",
                        help="population training instead: K members against one trial (benchmarks/population.py)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, but got {args.repeats}")
    from autodnn.backend import PRECISIONS

    unknown = [p for p in args.precisions.split(",") if p and p not in PRECISIONS]
    if unknown or not args.precisions.strip(","):
        parser.error(f"--precisions {args.precisions!r}: choose from {', '.join(PRECISIONS)}")
    try:
        args.share = [int(k) for k in args.share.split(",") if k.strip()]
    except ValueError:
        parser.error(f"--share {args.share!r} is not a comma-separated list of process counts, e.g. 1,4")
    if any(k < 1 for k in args.share):
        parser.error(f"--share counts must be >= 1, but got {args.share}")
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
    return collect(job, start(job))


def start(job: dict[str, Any], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, **(extra_env or {}), KERAS_BACKEND=job["backend"], TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    print(f"... {label(job)}", file=sys.stderr, flush=True)
    return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(job)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(job: dict[str, Any], process: subprocess.Popen) -> dict[str, Any]:
    stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise SystemExit(f"{label(job)} failed (exit {process.returncode}):\n{tail}")
    return json.loads(lines[-1])


def label(job: dict[str, Any]) -> str:
    extra = f" ({job['precision']})" if job.get("precision", "float32") != "float32" else ""
    if job["task"] == "share":
        extra += f", process {job['index'] + 1} of {job['k']}"
    return f"{job['task']} on {job['backend']}{extra}"


def share(k: int, backend: str, batch: int, precision: str, common: dict[str, Any], *,
          mps: bool = True) -> dict[str, Any]:
    """Trains ``k`` processes at once on one device; returns their summed steady throughput.

    Every process compiles and trains its first epoch, then waits at a barrier until all ``k`` have, so the
    measured epochs overlap. The throughput is the samples of all measured epochs over the time from the first
    measured epoch's start to the last one's end. The processes share the device as a search's workers do: on
    a GPU as ``--gpus 0 --trials-per-gpu k`` has them share it (under an MPS daemon of autodnn's own where
    NVIDIA's MPS is installed, unless ``mps`` is False), on the CPU as ``--workers k`` does (each pinned to its
    share of the cores when there are at least k).
    """
    from autodnn.backend import visible_gpus
    from autodnn.workers import CPUS_ENV, gpu_sharing, plan_workers

    gpu = visible_gpus()[:1]
    plans = plan_workers(gpus=gpu[0], trials_per_gpu=k) if gpu else plan_workers(k)
    with tempfile.TemporaryDirectory(prefix="autodnn-share-") as barrier, gpu_sharing(plans, mps=mps) as mps_env:
        jobs = [{"task": "share", "backend": backend, "batch": batch, "precision": precision, "k": k, "index": i,
                 "barrier": barrier, **common} for i in range(k)]
        processes = [start(job, {**plan.env, **mps_env}) for job, plan in zip(jobs, plans)]
        rows = [collect(job, process)["rows"][0] for job, process in zip(jobs, processes)]
    begin = min(r["measured_start"] for r in rows)
    end = max(r["measured_end"] for r in rows)
    total = sum(r["measured_samples"] for r in rows)
    return {"backend": backend, "k": k, "batch_size": batch, "precision": precision, "mps": bool(mps_env),
            "cpus": [plan.env.get(CPUS_ENV) for plan in plans],
            "samples_per_second": total / (end - begin),
            "per_process": [r["measured_samples"] / (r["measured_end"] - r["measured_start"]) for r in rows],
            "steady_epoch_s": [r["steady_epoch_s"] for r in rows], "devices": rows[0]["devices"]}


def summarize(runs: list[dict[str, Any]], compile_runs: list[dict[str, Any]], share_runs: list[dict[str, Any]],
              matmul: list[float], args: argparse.Namespace, samples: int, epochs: int,
              seconds: float) -> dict[str, Any]:
    flops = 6 * n_params()
    gflops = statistics.median(matmul)
    accelerator = next((run["accelerator"] for run in runs if run.get("accelerator")), None)

    def merged(task: str, backend: str, batch: int, precision: str = "float32") -> dict[str, Any] | None:
        matching = [run for run in runs if run["task"] == task and run["backend"] == backend
                    and run.get("precision", "float32") == precision]
        rows = [r for run in matching for r in run["rows"] if r["batch_size"] == batch]
        if not rows:
            return None
        keys = ("samples_per_second", "first_epoch_s", "steady_epoch_s")
        out = {"backend": backend, "batch_size": batch, "precision": precision, "repeats": len(rows),
               "device": matching[0].get("device", "cpu")}
        out.update({k: statistics.median(r[k] for r in rows) for k in keys})
        out["compile_s"] = max(0.0, out["first_epoch_s"] - out["steady_epoch_s"])
        out["samples_per_second_all"] = [r["samples_per_second"] for r in rows]
        out["gflops"] = out["samples_per_second"] * flops / 1e9
        on_gpu = accelerator is not None and out["device"] != "cpu"
        out["matmul_reference"] = "gpu" if on_gpu else "cpu"
        out["fraction_of_matmul"] = out["gflops"] / (accelerator["matmul_gflops"] if on_gpu else gflops)
        return out

    reference = merged("reference", "tensorflow", 32)
    plain_jax = merged("reference", "jax", 32)
    backends = sorted({run["backend"] for run in runs if run["task"] == "trainer"}, key=BACKENDS.index)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    precisions = [p for p in args.precisions.split(",") if p]
    trainer = [m for b in backends for p in precisions for s in batch_sizes
               if (m := merged("trainer", b, s, p)) is not None]
    # Without TensorFlow (GPU machines here), the book's fit on JAX on the same machine is the reference.
    baseline = reference or plain_jax
    for row in [plain_jax, *trainer]:
        if row is not None and baseline is not None:
            row["speedup_vs_reference"] = row["samples_per_second"] / baseline["samples_per_second"]
    cpu32 = [r for r in trainer if r["precision"] == "float32" and r["matmul_reference"] == "cpu"]
    b32 = [r for r in cpu32 if r["batch_size"] == 32 and "speedup_vs_reference" in r]
    big = [r for r in cpu32 if r["batch_size"] >= 512]
    best32 = max(b32, key=lambda r: r["speedup_vs_reference"], default=None)
    best_big = max(big, key=lambda r: r["fraction_of_matmul"], default=None)
    targets: dict[str, Any] = {
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
    gpu128 = [r for r in trainer if r["matmul_reference"] == "gpu" and r["batch_size"] == 128]
    gpu128 = [r for r in gpu128 if r["precision"] == "float32"] or gpu128
    if gpu128:
        fastest = min(gpu128, key=lambda r: r["steady_epoch_s"])
        targets["gpu_epoch_b128_s"] = {"target": TARGET_GPU_EPOCH_B128_S, "value": fastest["steady_epoch_s"],
                                       "backend": fastest["backend"], "precision": fastest["precision"],
                                       "met": fastest["steady_epoch_s"] <= TARGET_GPU_EPOCH_B128_S}
    one = next((r for r in share_runs if r["k"] == 1), None)
    for row in share_runs:
        if one is not None:
            row["speedup_vs_one"] = row["samples_per_second"] / one["samples_per_second"]
        if row["k"] in TARGET_SHARE_SPEEDUP and one is not None:
            targets[f"share{row['k']}_speedup"] = {"target": TARGET_SHARE_SPEEDUP[row["k"]], "k": row["k"],
                                                   "value": row["speedup_vs_one"],
                                                   "met": row["speedup_vs_one"] >= TARGET_SHARE_SPEEDUP[row["k"]]}
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "accelerator": accelerator,
        "versions": next((run["versions"] for run in runs if "versions" in run), {}),
        "settings": {"quick": args.quick, "samples_per_epoch": samples, "valid_samples": samples // 9,
                     "measured_epochs": epochs, "repeats": args.repeats, "batch_sizes": batch_sizes,
                     "precisions": precisions, "share": args.share, "share_batch": args.share_batch,
                     "network": f"{HIDDEN} x {UNITS} swish, he_normal, Nadam, 3072 -> 10",
                     "n_params": n_params(), "flops_per_sample": flops, "seconds": round(seconds, 1)},
        "matmul_gflops": gflops,
        "matmul_gflops_all": matmul,
        "reference": reference,
        "plain_fit_jax": plain_jax,
        "trainer": trainer,
        "share": share_runs,
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
          f"{max(report['matmul_gflops_all']):.1f})")
    gpu = report["accelerator"]
    if gpu:
        print(f"Accelerator: {gpu['name']}; float32 matrix multiply (JAX's default precision, TF32 on recent "
              f"NVIDIA GPUs): "
              f"{gpu['matmul_gflops']:,.0f} GFLOP/s; bfloat16: {gpu['matmul_gflops_bf16']:,.0f} GFLOP/s")
    print()
    header = (f"{'run':<40}{'batch':>6}{'samples/s':>11}{'vs book':>9}{'GFLOP/s':>9}{'of matmul':>11}"
              f"{'epoch s':>9}{'1st epoch s':>13}")
    print(header)
    print("-" * len(header))
    rows = []
    if report["reference"]:
        rows.append(("book: fit(X, y), tensorflow", report["reference"]))
    if report["plain_fit_jax"]:
        rows.append(("book's fit on jax", report["plain_fit_jax"]))
    rows += [(_trainer_name(r), r) for r in report["trainer"]]
    for name, r in rows:
        speed = r.get("speedup_vs_reference", 1.0 if r is report["reference"] else float("nan"))
        if r is report["plain_fit_jax"] and report["reference"] is None:
            name += " (reference)"
        print(f"{name:<40}{r['batch_size']:>6}{r['samples_per_second']:>11,.0f}{speed:>8.2f}x{r['gflops']:>9.1f}"
              f"{r['fraction_of_matmul']:>10.0%}{r['steady_epoch_s']:>9.2f}{r['first_epoch_s']:>13.2f}")
    targets = report["targets"]
    t32, tbig = targets["batch32_speedup"], targets["batch512_fraction_of_matmul"]
    if report["share"]:
        first = report["share"][0]
        print(f"\nProcesses training at once on one device (batch {report['settings']['share_batch']}, "
              f"{first['precision']}, {first['devices']}):")
        print(f"{'processes':>10}{'samples/s, all':>16}{'vs one':>8}{'per process':>14}{'epoch s':>9}  MPS")
        for r in report["share"]:
            print(f"{r['k']:>10}{r['samples_per_second']:>16,.0f}{r.get('speedup_vs_one', float('nan')):>7.2f}x"
                  f"{statistics.median(r['per_process']):>14,.0f}{statistics.median(r['steady_epoch_s']):>9.3f}"
                  f"  {'yes' if r['mps'] else 'no'}"
                  + (f"  pinned to CPUs {' | '.join(r['cpus'])}" if all(r.get("cpus") or [None]) else ""))
    print()
    if "gpu_epoch_b128_s" in targets:
        t = targets["gpu_epoch_b128_s"]
        print(f"Target GPU epoch at batch 128 <= {t['target']} s: {t['value']:.3f} s ({t['backend']}, {t['precision']})"
              f" -> {'met' if t['met'] else 'NOT met'}")
    for key, t in targets.items():
        if key.startswith("share"):
            print(f"Target {t['k']} processes sharing one device >= {t['target']:.0f}x one: {t['value']:.2f}x -> "
                  f"{'met' if t['met'] else 'NOT met'}")
    if t32["value"] is not None:
        print(f"Target batch 32 >= {t32['target']:.0f}x the book's fit: {t32['value']:.2f}x ({t32['backend']}) "
              f"-> {'met' if t32['met'] else 'NOT met'}")
    if tbig["value"] is not None:
        print(f"Target batch >= 512 >= {tbig['target']:.0%} of matmul: {tbig['value']:.0%} ({tbig['backend']}, "
              f"batch {tbig['batch_size']}) -> {'met' if tbig['met'] else 'NOT met'}")
    if report["compile"]:
        print("\nCompile cost per trial on digits (first epoch minus a steady epoch, batch 32):")
        print(f"{'backend':<12}{'net':<10}{'1st epoch s':>12}{'epoch s':>9}{'compile s':>11}"
              f"{'trial s':>9}{'same net again s':>18}")
        for r in report["compile"]:
            again = "" if r.get("again_first_epoch_s") is None else f"{r['again_first_epoch_s']:.2f}"
            print(f"{r['backend']:<12}{r['net']:<10}{r['first_epoch_s']:>12.2f}{r['steady_epoch_s']:>9.3f}"
                  f"{r['compile_s']:>11.2f}{r['trial_s']:>9.2f}{again:>18}")


def _trainer_name(row: dict[str, Any]) -> str:
    name = f"autodnn trainer, {row['backend']}"
    if row["device"] != "cpu":
        name += f" {row['device']}"
    if row["precision"] != "float32":
        name += f" {row['precision'].replace('mixed_', '')}"
    return name


def record(report: dict[str, Any], path: Path) -> None:
    """Appends one self-contained dated block (heading, header, row), so other benchmarks' tables stay intact."""
    m = report["machine"]
    per_backend = {}
    batches = sorted({r["batch_size"] for r in report["trainer"]})
    for r in report["trainer"]:
        per_backend.setdefault(_trainer_name(r).removeprefix("autodnn trainer, "), []).append(
            f"{r['samples_per_second']:,.0f}")
    trainer = "; ".join(f"{b}: {' / '.join(v)}" for b, v in per_backend.items())
    t32, tbig = report["targets"]["batch32_speedup"], report["targets"]["batch512_fraction_of_matmul"]
    baseline = report["reference"] or report["plain_fit_jax"]
    ref = f"{baseline['samples_per_second']:,.0f} ({baseline['backend']})" if baseline else "n/a"
    b32 = f"{t32['value']:.2f}x ({t32['backend']})" if t32["value"] is not None else "n/a (no CPU row)"
    big = (f"{tbig['value']:.0%} ({tbig['backend']}, b{tbig['batch_size']})" if tbig["value"] is not None
           else "n/a (no CPU row)")
    names = {"batch32_speedup": "b32", "batch512_fraction_of_matmul": "b512", "gpu_epoch_b128_s": "GPU epoch b128"}
    met = ", ".join(f"{names.get(key, key.replace('share', 'share ').replace('_speedup', ''))} "
                    f"{'met' if t['met'] else 'NOT met'}" for key, t in report["targets"].items()
                    if t["value"] is not None)
    s = report["settings"]
    notes = (f"{'quick, ' if s['quick'] else ''}{s['samples_per_epoch']:,} samples, {s['measured_epochs']} epochs x "
             f"{s['repeats']} repeats, load {m['load_average_1min']:.1f}")
    gpu = report["accelerator"]
    machine_text = f"{m['nproc']} x {m['cpu']}" + (f" + {gpu['name']}" if gpu else "")
    if gpu:
        b128 = report["targets"].get("gpu_epoch_b128_s")
        notes += (f"; GPU float32 matmul {gpu['matmul_gflops']:,.0f} GFLOP/s"
                  + (f", epoch at b128 {b128['value']:.3f} s" if b128 else ""))
    for r in report["share"]:
        notes += (f"; {r['k']} processes at once{' under MPS' if r['mps'] else ''}: "
                  f"{r['samples_per_second']:,.0f} samples/s")
        if "speedup_vs_one" in r:
            notes += f" ({r['speedup_vs_one']:.2f}x one)"
    block = (
        f"\n### throughput.py, {report['date'][:10]}\n\n"
        "| date | machine | matmul GFLOP/s | book fit b32 samples/s | trainer samples/s "
        f"(backend: {' / '.join(f'b{b}' for b in batches)}) | b32 vs book | b >= 512 of matmul | targets | notes |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {report['date'][:10]} | {machine_text} | {report['matmul_gflops']:.0f} | {ref} | "
        f"{trainer} | {b32} | {big} | {met} | {notes} |\n"
    )
    with path.open("a") as out:
        out.write(block)


# --- the workers: one backend per process ----------------------------------------------------------------------


def worker(job: dict[str, Any]) -> int:
    from autodnn.backend import configure_device
    from autodnn.workers import pin_to_cpus

    pin_to_cpus()
    # As a search's worker process does, before Keras is imported: GPU memory on demand and the precision policy.
    configure_device(job.get("precision", "float32"))
    tasks = {"reference": reference_worker, "trainer": trainer_worker, "compile": compile_worker,
             "share": share_worker}
    out = {"task": job["task"], "backend": job["backend"], "precision": job.get("precision", "float32"),
           "rows": tasks[job["task"]](job), "versions": versions(), "device": device()}
    if job["task"] == "trainer" and out["device"] != "cpu":
        out["accelerator"] = accelerator()
    print(json.dumps(out))
    return 0


def device() -> str:
    """``cpu``, or the accelerator Keras trains on (``gpu``), for the running backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend()
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    return "cpu"


def accelerator() -> dict[str, Any] | None:
    """The GPU's name and its float32 and bfloat16 matrix-multiply rates, measured with JAX (n = 8192)."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    gpu = jax.devices()[0]
    n = 8192
    rates = {}
    for dtype in ("float32", "bfloat16"):
        a = jax.random.normal(jax.random.key(0), (n, n), dtype=dtype)
        b = jax.random.normal(jax.random.key(1), (n, n), dtype=dtype)
        product = jax.jit(lambda a, b: a @ b)
        product(a, b).block_until_ready()
        times = []
        for _ in range(10):
            begin = time.perf_counter()
            product(a, b).block_until_ready()
            times.append(time.perf_counter() - begin)
        rates[dtype] = 2 * n**3 / statistics.median(times) / 1e9
    return {"name": getattr(gpu, "device_kind", str(gpu)), "matmul_gflops": rates["float32"],
            "matmul_gflops_bf16": rates["bfloat16"]}


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
    from autodnn.training.trainer import train

    dataset = _dataset(*synthetic(job["samples"], job["valid"], flat=True))
    rows = []
    for batch in job["batch_sizes"]:
        config = TrialConfig(n_hidden=HIDDEN, n_units=UNITS, activation="swish", optimizer="nadam",
                             learning_rate=BOOK_LEARNING_RATE, batch_size=batch, patience=job["epochs"] + 5)
        result = train(config, dataset, max_epochs=job["epochs"] + 1, seed=42, precision=job["precision"])
        trained = len(dataset.x_train) // batch * batch
        rows.append(_row(batch, trained, result.epoch_times))
    return rows


def share_worker(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One of ``job["k"]`` processes training at once: compile and a first epoch, a barrier, measured epochs."""
    from autodnn.config import TrialConfig
    from autodnn.training.trainer import train

    dataset = _dataset(*synthetic(job["samples"], job["valid"], flat=True))
    config = TrialConfig(n_hidden=HIDDEN, n_units=UNITS, activation="swish", optimizer="nadam",
                         learning_rate=BOOK_LEARNING_RATE, batch_size=job["batch"], patience=job["epochs"] + 5)
    barrier = _Barrier(Path(job["barrier"]), job["index"], job["k"])
    result = train(config, dataset, max_epochs=job["epochs"] + 1, seed=42 + job["index"], reporter=barrier)
    trained = len(dataset.x_train) // job["batch"] * job["batch"]
    return [{"measured_start": barrier.times[0], "measured_end": barrier.times[-1],
             "measured_samples": trained * job["epochs"], "steady_epoch_s": steady(result.epoch_times),
             "devices": device()}]


class _Barrier:
    """A trainer reporter that holds each process after its first epoch until all ``k`` processes got there,
    then records when each later epoch ends (wall clock, comparable across processes)."""

    def __init__(self, folder: Path, index: int, k: int) -> None:
        self.folder, self.index, self.k = folder, index, k
        self.times: list[float] = []

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch == 0:
            (self.folder / f"ready-{self.index}").touch()
            deadline = time.time() + 600
            while len(list(self.folder.glob("ready-*"))) < self.k:
                if time.time() > deadline:
                    raise RuntimeError("the other processes of the share run never finished their first epoch")
                time.sleep(0.001)
        self.times.append(time.time())

    def should_stop(self) -> str | None:
        return None


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
    from autodnn.training.trainer import train

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
