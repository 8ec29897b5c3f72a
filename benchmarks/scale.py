"""Scale of a study: ``autodnn show`` and ``autodnn report`` on 10,000 trials, and the per-trial cost of the
sampler and the storage at 1,000 trials.

1. Fills a SQLite study with 10,000 synthetic finished trials shaped like real ones: parameters sampled from
   the ``default`` search space, the stored configuration, result metrics, a 20-epoch history, epoch times
   and 20 intermediate values (a tenth of them pruned earlier), plus the study attributes a search records.
2. Times ``autodnn show`` and ``autodnn report`` on it, each as a user runs it (a new process:
   ``python -m autodnn ...``, imports included) and in-process (``autodnn.cli.main([...])``, imports already
   done); medians of ``--repeats`` runs. Targets: report <= 15 s, show <= 3 s (the subprocess times).
3. On a second study holding 1,000 such trials, opened as a worker opens it (WAL, ``BEGIN IMMEDIATE``,
   heartbeats), runs the bookkeeping of ``--overhead-trials`` trials without training: the worker loop's
   coordination (study lock, stale-trial check, count), ``study.ask()`` with the TPE sampler of
   ``make_sampler`` and the default space's suggestions, then what a 20-epoch trial writes (20 intermediate
   values, each with a pruner query; configuration, result, history, epoch times) and ``tell``. Target: under
   2 % of a 10-second trial (200 ms).

Prints a table, writes JSON to ``benchmarks/out/scale.json`` and appends a dated block to
``benchmarks/RESULTS.md``.

    python benchmarks/scale.py                  # full run: about 10 minutes on 2 cores, most of it filling
    python benchmarks/scale.py --trials 2000    # quicker look
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

OUT = REPO / "benchmarks" / "out"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
EPOCHS = 20
TARGETS = {"report_s": 15.0, "show_s": 3.0, "overhead_fraction": 0.02}
TRIAL_SECONDS = 10.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / "scale"
    folder.mkdir(exist_ok=True)
    big, small = folder / "big.db", folder / "small.db"
    for path in folder.glob("*.db*"):
        path.unlink()

    print(f"Filling a study with {args.trials:,} synthetic trials ...", flush=True)
    fill_seconds = fill(f"sqlite:///{big}", "scale", args.trials, seed=0)
    print(f"  {fill_seconds:.0f} s ({big.stat().st_size / 1e6:.0f} MB)", flush=True)
    print("Timing show and report ...", flush=True)
    timings = {
        "show": time_command(["show", "scale", "--storage", f"sqlite:///{big}"], args.repeats),
    }
    if has_report():
        html = OUT / "scale.html"
        timings["report"] = time_command(["report", "scale", "--storage", f"sqlite:///{big}", "-o", str(html)],
                                         args.repeats)
    print(f"Filling a study with {args.overhead_at:,} trials and timing {args.overhead_trials} more ...", flush=True)
    fill(f"sqlite:///{small}", "overhead", args.overhead_at, seed=1)
    overhead = measure_overhead(f"sqlite:///{small}", "overhead", args.overhead_trials, args.pruner)

    report = summarize(args, fill_seconds, timings, overhead, big.stat().st_size)
    print_table(report)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {path}")
    if not args.no_record:
        record(report, Path(args.results))
        print(f"Appended to {args.results}")
    if not args.keep:
        for db in folder.glob("*.db*"):
            db.unlink()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000, help="trials of the study show/report read")
    parser.add_argument("--overhead-at", type=int, default=1_000, help="trials already in the overhead study")
    parser.add_argument("--overhead-trials", type=int, default=30, help="trials whose bookkeeping is timed")
    parser.add_argument("--pruner", default=None, help="pruner of the overhead study (default: the search's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of show and report; medians are reported")
    parser.add_argument("--json", default=str(OUT / "scale.json"))
    parser.add_argument("--results", default=str(RESULTS_MD), help="Markdown file the dated block is appended to")
    parser.add_argument("--no-record", action="store_true", help="do not append to the results file")
    parser.add_argument("--keep", action="store_true", help="keep the study databases in benchmarks/out/scale/")
    return parser.parse_args(argv)


# --- synthetic studies ------------------------------------------------------------------------------------------


def sampled_configs(n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, BaseDistribution], dict[str, Any]]]:
    """``n`` (params, distributions, config) drawn at random from the default space, as trials store them."""
    from autodnn.space import load_space

    space = load_space("default")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        config = space.sample(trial)
        drawn.append((dict(trial.params), dict(trial.distributions), config.to_dict()))
        study.tell(trial, state=TrialState.FAIL)
    return drawn


def synthetic_trial(params: dict[str, Any], distributions: dict[str, BaseDistribution], config: dict[str, Any],
                    number: int, rng: random.Random) -> FrozenTrial:
    """A finished trial with the attributes ``autodnn.objective`` records."""
    pruned = rng.random() < 0.1
    epochs = rng.randint(3, 8) if pruned else EPOCHS
    start = 0.3 + 0.5 * rng.random()
    curve = [min(0.99, start + (0.97 - start) * (1 - 0.8 ** (e + 1)) + rng.gauss(0, 0.01)) for e in range(epochs)]
    history = {
        "loss": [2.0 * 0.85 ** e for e in range(epochs)],
        "accuracy": [min(1.0, c + 0.01) for c in curve],
        "val_loss": [2.1 * 0.86 ** e for e in range(epochs)],
        "val_accuracy": curve,
        "learning_rate": [config.get("learning_rate") or 1e-3] * epochs,
    }
    times = [0.5 + 0.01 * rng.random() for _ in range(epochs)]
    best = max(range(epochs), key=lambda e: curve[e])
    result = {
        "val_accuracy": curve[best], "val_loss": history["val_loss"][best], "train_accuracy": history["accuracy"][best],
        "train_loss": history["loss"][best], "epochs": epochs, "best_epoch": best + 1,
        "stopped": "pruned" if pruned else "completed", "reason": "", "learning_rate": history["learning_rate"][0],
        "mc_val_accuracy": None, "test_accuracy": None, "test_loss": None, "mc_test_accuracy": None,
        "n_params": rng.randint(10_000, 500_000), "samples_per_second": 20_000.0,
    }
    user_attrs: dict[str, Any] = {"config": config, "seed": number, "worker": f"bench:{1000 + number % 8}",
                                  "result": result, "history": history, "epoch_times": times}
    if pruned:
        user_attrs["reason"] = (f"pruned at epoch {epochs}: val_accuracy {curve[-1]:.4f} was below the pruner's "
                                "threshold")
    began = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=11 * number)
    return FrozenTrial(
        number=number, state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        value=curve[-1] if pruned else curve[best], values=None, datetime_start=began,
        datetime_complete=began + dt.timedelta(seconds=sum(times)), params=params, distributions=distributions,
        user_attrs=user_attrs, system_attrs={}, intermediate_values=dict(enumerate(curve)), trial_id=number)


def study_attributes(name: str) -> dict[str, Any]:
    """The study attributes ``autodnn search`` records (the environment written out, to avoid loading Keras)."""
    from autodnn.datasets import load_dataset
    from autodnn.space import load_space
    from autodnn.tuning.options import SearchOptions, options_record

    space = load_space("default")
    return {
        "dataset": load_dataset("digits").describe(),
        "space": space.to_dict(),
        "space_digest": space.digest,
        "environment": {"backend": "jax", "devices": ["cpu:0"], "python": platform.python_version(),
                        "platform": platform.platform(terse=True), "cpu_count": os.cpu_count(),
                        "versions": {"optuna": optuna.__version__}},
        "settings": options_record(SearchOptions(dataset="digits", space="default", study=name, n_trials=10_000)),
    }


def fill(url: str, name: str, n: int, *, seed: int) -> float:
    """Creates study ``name`` holding ``n`` synthetic trials; returns the seconds it took.

    The study and its attributes go through Optuna; the trials are written straight into Optuna's tables in
    one transaction (``study.add_trials`` takes about 60 ms a trial, 10 minutes for 10,000). Reading them back
    through Optuna checks the rows.
    """
    import json

    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models
    from sqlalchemy import insert

    start = time.perf_counter()
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_metric_names(["val_accuracy"])
    for key, value in study_attributes(name).items():
        study.set_user_attr(key, value)
    rng = random.Random(seed)
    drawn = sampled_configs(min(n, 500), seed)
    study_id = storage.get_study_id_from_name(name)
    finite = models.TrialValueModel.TrialValueType.FINITE
    step_finite = models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE
    rows: dict[str, list[dict[str, Any]]] = {"trials": [], "values": [], "params": [], "attrs": [], "steps": []}
    for number in range(n):
        params, distributions, config = drawn[number % len(drawn)]
        trial = synthetic_trial(params, distributions, config, number, rng)
        trial_id = number + 1
        rows["trials"].append({"trial_id": trial_id, "number": number, "study_id": study_id, "state": trial.state,
                               "datetime_start": trial.datetime_start, "datetime_complete": trial.datetime_complete})
        rows["values"].append({"trial_id": trial_id, "objective": 0, "value": trial.value, "value_type": finite})
        rows["params"] += [{"trial_id": trial_id, "param_name": key, "distribution_json": distribution_to_json(d),
                            "param_value": d.to_internal_repr(trial.params[key])}
                           for key, d in trial.distributions.items()]
        rows["attrs"] += [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                          for key, value in trial.user_attrs.items()]
        rows["steps"] += [{"trial_id": trial_id, "step": step, "intermediate_value": value,
                           "intermediate_value_type": step_finite}
                          for step, value in trial.intermediate_values.items()]
    tables = {"trials": models.TrialModel, "values": models.TrialValueModel, "params": models.TrialParamModel,
              "attrs": models.TrialUserAttributeModel, "steps": models.TrialIntermediateValueModel}
    with storage.engine.begin() as connection:
        for key, model in tables.items():
            connection.execute(insert(model.__table__), rows[key])
    storage.engine.dispose()
    loaded = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    assert len(loaded) == n and all(t.state.is_finished() for t in loaded) and loaded[-1].user_attrs["history"]
    return time.perf_counter() - start


# --- measurements -----------------------------------------------------------------------------------------------


def has_report() -> bool:
    try:
        from autodnn.report import write_report  # noqa: F401
    except ImportError:
        return False
    return True


def time_command(argv: list[str], repeats: int) -> dict[str, Any]:
    """Median wall seconds of ``autodnn ARGV`` as a new process and in this one."""
    from autodnn.cli import main as cli

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess_s, inprocess_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "autodnn", *argv], capture_output=True, text=True, env=env,
                              check=False)
        subprocess_s.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"autodnn {' '.join(argv)} failed: {done.stderr.strip()}")
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(argv)
        inprocess_s.append(time.perf_counter() - start)
        assert code == 0
    return {"subprocess_s": statistics.median(subprocess_s), "inprocess_s": statistics.median(inprocess_s),
            "runs_subprocess_s": subprocess_s, "runs_inprocess_s": inprocess_s}


def measure_overhead(url: str, name: str, n: int, pruner: str | None = None) -> dict[str, Any]:
    """Per-trial seconds of a worker's bookkeeping on a study that already holds many trials.

    ``pruner`` is a ``--pruner`` choice (default: the search's default); the pruner is asked where a trial's
    reporter asks it (:func:`autodnn.study.may_prune_at`).
    """
    from autodnn.space import load_space
    from autodnn.study.storage import open_storage
    from autodnn.study.strategy import make_pruner, make_sampler, may_prune_at
    from autodnn.tuning.options import SearchOptions
    from autodnn.workers import study_lock, worker_id

    space = load_space("default")
    study = optuna.load_study(study_name=name, storage=open_storage(url, create=False), sampler=make_sampler(0),
                              pruner=make_pruner(pruner or SearchOptions().pruner, EPOCHS))
    lock = study_lock(url, name)
    rng = random.Random(2)
    parts: dict[str, list[float]] = {"coordination": [], "sampler": [], "pruner": [], "storage": [], "total": []}
    for number in range(n):
        t0 = time.perf_counter()
        lock.acquire()
        optuna.storages.fail_stale_trials(study)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        assert states.count(TrialState.RUNNING) == 0
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        lock.release()
        config = space.sample(trial)
        t2 = time.perf_counter()
        pruner_s = 0.0
        # A 10-second trial records one heartbeat (they come every 20 s), at its start.
        study._storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("seed", number)
        fake = synthetic_trial(trial.params, trial.distributions, config.to_dict(), number, rng)
        for epoch in range(EPOCHS):
            trial.report(0.5 + 0.02 * epoch + 0.01 * rng.random(), epoch)
            p0 = time.perf_counter()
            if may_prune_at(study.pruner, epoch):
                trial.should_prune()
            pruner_s += time.perf_counter() - p0
        for key in ("result", "history", "epoch_times"):
            trial.set_user_attr(key, fake.user_attrs[key])
        study.tell(trial, fake.value)
        t3 = time.perf_counter()
        parts["coordination"].append(t1 - t0)
        parts["sampler"].append(t2 - t1)
        parts["pruner"].append(pruner_s)
        parts["storage"].append(t3 - t2 - pruner_s)
        parts["total"].append(t3 - t0)
    return {key: {"median_s": statistics.median(v), "mean_s": statistics.fmean(v), "max_s": max(v)}
            for key, v in parts.items()} | {"trials_before": len(study.trials) - n, "timed_trials": n}


# --- output -----------------------------------------------------------------------------------------------------


def summarize(args: argparse.Namespace, fill_s: float, timings: dict[str, Any], overhead: dict[str, Any],
              db_bytes: int) -> dict[str, Any]:
    total = overhead["total"]["median_s"]
    fraction = total / TRIAL_SECONDS
    checks = {
        "show": timings["show"]["subprocess_s"] <= TARGETS["show_s"],
        "report": timings["report"]["subprocess_s"] <= TARGETS["report_s"] if "report" in timings else None,
        "overhead": fraction < TARGETS["overhead_fraction"],
    }
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(terse=True),
                    "python": platform.python_version(), "load_average_1min": load},
        "versions": {"optuna": optuna.__version__},
        "settings": {"trials": args.trials, "overhead_at": args.overhead_at, "overhead_trials": args.overhead_trials,
                     "repeats": args.repeats, "storage": "sqlite", "pruner": args.pruner or "default"},
        "fill_s": fill_s,
        "database_mb": db_bytes / 1e6,
        "timings": timings,
        "overhead": overhead,
        "overhead_fraction_of_10s_trial": fraction,
        "targets": TARGETS,
        "met": checks,
    }


def print_table(report: dict[str, Any]) -> None:
    t, o = report["timings"], report["overhead"]
    n = report["settings"]["trials"]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT MET")

    rows = [("measure", "new process", "in-process", "target", "")]
    for command in ("show", "report"):
        if command in t:
            rows.append((f"autodnn {command} ({n:,} trials)", f"{t[command]['subprocess_s']:.2f} s",
                         f"{t[command]['inprocess_s']:.2f} s", f"<= {TARGETS[command + '_s']:.0f} s",
                         verdict(report["met"][command])))
        else:
            rows.append((f"autodnn {command} ({n:,} trials)", "-", "-", f"<= {TARGETS[command + '_s']:.0f} s",
                         "autodnn.report missing"))
    at = report["settings"]["overhead_at"]
    for part in ("coordination", "sampler", "pruner", "storage"):
        rows.append((f"  per trial at {at:,}: {part}", "", f"{1000 * o[part]['median_s']:.1f} ms", "", ""))
    rows.append((f"per-trial overhead at {at:,} trials", "", f"{1000 * o['total']['median_s']:.1f} ms",
                 f"< {TARGETS['overhead_fraction'] * TRIAL_SECONDS * 1000:.0f} ms",
                 f"{report['overhead_fraction_of_10s_trial']:.2%} of 10 s, {verdict(report['met']['overhead'])}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def record(report: dict[str, Any], path: Path) -> None:
    """Appends one self-contained dated block (heading, header, row), so other benchmarks' tables stay intact."""
    t, o, m = report["timings"], report["overhead"], report["machine"]
    report_s = (f"{t['report']['subprocess_s']:.2f} / {t['report']['inprocess_s']:.2f}" if "report" in t
                else "not measured")
    load = f"{m['load_average_1min']:.1f}" if m["load_average_1min"] is not None else "?"
    met = ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in report["met"].items() if v is not None)
    block = (
        f"\n### scale.py, {report['date'][:10]}\n\n"
        "| date | machine | trials | show s (process / in-process) | report s (process / in-process) | "
        "overhead per trial at 1,000 | of a 10-s trial | targets | notes |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {report['date'][:10]} | {m['nproc']} CPUs, load {load} | {report['settings']['trials']:,} | "
        f"{t['show']['subprocess_s']:.2f} / {t['show']['inprocess_s']:.2f} | {report_s} | "
        f"{1000 * o['total']['median_s']:.0f} ms | {report['overhead_fraction_of_10s_trial']:.2%} | "
        f"{met} | "
        f"SQLite, optuna {report['versions']['optuna']}, medians of {report['settings']['repeats']} |\n"
    )
    with path.open("a") as out:
        out.write(block)


if __name__ == "__main__":
    sys.exit(main())
