"""Search quality at an equal wall time: ``autodnn search`` as a user types it, against what a user writes by
hand without autodnn (a plain Optuna script with TPE and the median pruner, the same with random search, and
KerasTuner's Hyperband and Bayesian optimization; see ``benchmarks/competitors.py``; on images KerasTuner's own
``HyperResNet``, ``benchmarks/hyperresnet.py``, against the conv space). Three more rows tell what
autodnn's designed start is worth from what its search is worth: autodnn with ``--no-warm-start``, the plain
Optuna script with the designed start enqueued, and the designed start alone (trained once each, no search).

Every search gets the same seconds, the same standardized arrays (``autodnn.load_dataset`` with the run's
seed) and at most the same epochs per trial. autodnn runs its CLI in a subprocess with ``--timeout``, chapter
11's dense space (``--space default``, what the competitors' spaces hold) unless ``--space`` says otherwise, and its book baselines inside the budget; the others stop at a
deadline that interrupts the trial in flight, as Ctrl-C would. Every budget counts from the start of the
method's own process, imports and data loading included, as ``--timeout`` does for autodnn's command. Each
(method, seed) runs in a fresh process of its own; each autodnn run also gets an empty JAX compilation cache,
so no run profits from an earlier one.

For each run it records the best validation accuracy, the test accuracy of that winner (retrained once with
the run's seed and tested once), the finished trials, the measured wall time of the search (overruns show)
and when the running best first reached a target: 54.0 % on CIFAR-10 (the book's best exercise-8 figure),
elsewhere the best book baseline of autodnn's study with the same seed.

    python benchmarks/search_quality.py --quick --no-record   # digits, 30 s a search, 1 seed: a few minutes
    python benchmarks/search_quality.py --datasets wine --seeds 1 --budget 30
    python benchmarks/search_quality.py                       # digits, wine, CIFAR-10 (from ../shared/data)
    python benchmarks/search_quality.py --suite benchmarks/out/suite.json   # the suite's search against its start
    python benchmarks/search_quality.py --datasets cifar10 --space conv --methods autodnn,kt-hyperresnet --budget 3600
    python benchmarks/search_quality.py --datasets cifar10 --methods autodnn,kt-hyperband,kt-bayesian --budget 960 --seeds 3
                                      # the 16-minute row against KerasTuner: about 2.5 hours of one idle machine

The dense rows run on JAX; convnets on TensorFlow (autodnn's own ``--backend auto`` on a CPU, and the backend
KerasTuner's users get by default).

autodnn's studies stay in ``benchmarks/out/search_quality.db``; the JSON of every run goes to ``--json``; a
dated block is appended to ``benchmarks/RESULTS.md`` unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quality_tables import METHODS, machine, record, suite_table, summarize, table

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
CIFAR_DIR = REPO.parent / "shared" / "data"
#: Relative to the repository, where every run works, so that the URL reads as a user would type it.
STORAGE = "sqlite:///benchmarks/out/search_quality.db"
BUDGETS = {"digits": 120, "wine": 60, "breast_cancer": 60, "cifar10": 960}
@dataclass(frozen=True)
class Setting:
    """A dataset and what each search on it gets.

    Attributes:
        budget: Wall seconds of each search.
        max_epochs: Epochs a trial may train at most.
        space: autodnn's ``--space``; ``None`` keeps the CLI's default (the competitors have their own space).
    """

    dataset: str
    budget: int
    max_epochs: int
    space: str | None = None
    data_dir: str | None = None


def settings(args: argparse.Namespace) -> list[Setting]:
    out = []
    for name in args.datasets.split(","):
        if name not in BUDGETS:
            raise SystemExit(f"--datasets: {name!r} is not one of {', '.join(BUDGETS)}")
        data_dir = None
        if name == "cifar10":
            if not (CIFAR_DIR / "cifar10-jpg.tar.gz").exists():
                print(f"skipping cifar10: {CIFAR_DIR / 'cifar10-jpg.tar.gz'} is absent", file=sys.stderr)
                continue
            data_dir = str(CIFAR_DIR)
        budget = args.budget or (30 if args.quick else BUDGETS[name])
        max_epochs = args.max_epochs or (50 if name == "cifar10" else 30)
        out.append(Setting(name, budget, max_epochs, args.space, data_dir))
    return out


def spawn(setting: Setting, method: str, seed: int) -> dict[str, Any]:
    """Runs one search in a fresh process of this script, with an empty compilation cache of its own."""
    # Every budget counts from the start of the process a user would start, as autodnn's --timeout does.
    job = {"setting": asdict(setting), "method": method, "seed": seed, "launched": time.time()}
    with tempfile.TemporaryDirectory(prefix="autodnn-jax-cache-") as cache:
        env = {**os.environ, "KERAS_BACKEND": backend(setting, method), "AUTODNN_COMPILATION_CACHE": cache}
        done = subprocess.run([sys.executable, __file__, "--run", json.dumps(job)], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-15:])
        raise SystemExit(f"{method} seed {seed} on {setting.dataset} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def backend(setting: Setting, method: str) -> str:
    """The Keras backend of a run's process: TensorFlow for convnets (autodnn's ``--backend auto`` on a CPU, and
    Keras' default that KerasTuner's users get), JAX for the dense rows."""
    return "tensorflow" if setting.space == "conv" or method == "kt-hyperresnet" else "jax"


def run_autodnn(setting: Setting, seed: int, *, warm_start: bool = True) -> dict[str, Any]:
    """Runs ``autodnn search`` as a user types it (``--no-warm-start`` unless ``warm_start``), then reads its
    study and tests the winner."""
    import optuna

    import autodnn
    from autodnn.config import TrialConfig
    from autodnn.training.trainer import train

    name = f"{setting.dataset}-{setting.space or 'default'}-{setting.budget}s-autodnn{'' if warm_start else '-no-start'}-s{seed}"
    try:
        optuna.delete_study(study_name=name, storage=STORAGE)
    except KeyError:
        pass
    command = [str(Path(sys.executable).parent / "autodnn"), "search", "--dataset", setting.dataset]
    command += ["--data-dir", setting.data_dir] if setting.data_dir else []
    command += ["--study", name, "--storage", STORAGE, "--timeout", str(setting.budget), "--n-trials", "100000",
                "--max-epochs", str(setting.max_epochs), "--seed", str(seed), "--no-final", "--quiet"]
    command += ["--space", setting.space] if setting.space else []
    command += [] if warm_start else ["--no-warm-start"]
    started, start = dt.datetime.now(), time.perf_counter()
    # A convnet study picks its backend itself (--backend auto), as the command a user types does.
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND" or setting.space != "conv"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed (exit {done.returncode}):\n{done.stderr.strip()[-3000:]}")

    study = optuna.load_study(study_name=name, storage=STORAGE)
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start is not None]
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    baselines = [t for t in complete if "baseline" in t.user_attrs]
    searched = [t for t in complete if "baseline" not in t.user_attrs and "config" in t.user_attrs]
    best = max(searched, key=lambda t: t.value) if searched else None
    max_epochs = study.user_attrs["settings"]["max_epochs"]
    test = None
    if best is not None:
        dataset = autodnn.load_dataset(setting.dataset, data_dir=setting.data_dir, seed=seed)
        test = train(TrialConfig.from_dict(best.user_attrs["config"]), dataset, max_epochs=max_epochs, seed=seed,
                     evaluate_test=True).test_accuracy
    return {
        "study": name, "command": shlex.join(command), "best_val_accuracy": best.value if best else None,
        "test_accuracy": test, "best_params": best.user_attrs["config"] if best else None,
        # Trials that trained: the ones skipped for lack of time are pruned without a history.
        "trials": sum("baseline" not in t.user_attrs and "history" in t.user_attrs for t in finished),
        "baselines": len(baselines), "baselines_queued": sum("baseline" in t.user_attrs for t in trials),
        "baseline_best_val": max((t.value for t in baselines), default=None),
        "seconds": seconds,
        # Searched trials only, timed from the command's start: its start-up and baselines count.
        "trace": running_best([(t.datetime_complete, t.value) for t in searched], started),
    }


def run_designed_start(setting: Setting, seed: int) -> dict[str, Any]:
    """Trains autodnn's designed start alone (each configuration once, as the search trains it, unpruned) and
    keeps the one of best validation score: what the start is worth without a search. Its time is what it takes,
    whatever the budget."""
    import autodnn
    from autodnn.config import TrialConfig
    from autodnn.training.trainer import train
    from autodnn.tuning.warm_start import designed_start, fitted

    dataset = autodnn.load_dataset(setting.dataset, data_dir=setting.data_dir, seed=seed)
    kind = "images" if dataset.image_shape is not None else "tables"
    start, trace, best = time.perf_counter(), [], None
    for warm in designed_start(kind):
        config = TrialConfig.from_dict(fitted(warm.values, len(dataset.x_train)))
        result = train(config, dataset, max_epochs=setting.max_epochs, seed=seed, evaluate_test=True)
        if best is None or result.score > best[1].score:
            best = (warm.name, result)
        trace.append((time.perf_counter() - start, best[1].score))
    name, result = best
    # The test figure read is the chosen one's only: the choice is made on validation.
    return {"best_val_accuracy": result.score, "test_accuracy": result.test_accuracy, "best_params": {"start": name},
            "trials": len(trace), "seconds": time.perf_counter() - start, "trace": trace}


def running_best(results: list[tuple[dt.datetime, float]], started: dt.datetime) -> list[tuple[float, float]]:
    """``(seconds since started, best value so far)`` after each of ``results`` (when it ended, its value)."""
    trace, best = [], -math.inf
    for ended, value in sorted(results):
        best = max(best, value)
        trace.append(((ended - started).total_seconds(), best))
    return trace


def run_competitor(setting: Setting, method: str, seed: int, launched: float) -> dict[str, Any]:
    """Runs one of the hand-written searches of ``competitors.py`` on autodnn's arrays and tests its winner.

    Args:
        launched: ``time.time()`` when this process was started: its start-up (imports, loading the data)
            counts in the budget, in the seconds and in the trace, as autodnn's does.
    """
    import competitors
    import optuna

    import autodnn

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dataset = autodnn.load_dataset(setting.dataset, data_dir=setting.data_dir, seed=seed)
    spent = time.time() - launched
    budget = {"budget": setting.budget - spent, "max_epochs": setting.max_epochs, "seed": seed}
    if method == "optuna-script":
        result = competitors.run_optuna(dataset, sampler="tpe", **budget)
    elif method == "optuna-script-start":
        kind = "images" if dataset.image_shape is not None else "tables"
        result = competitors.run_optuna(dataset, sampler="tpe", **budget,
                                        start=competitors.designed_start_params(kind, setting.max_epochs))
    elif method == "random":
        result = competitors.run_optuna(dataset, sampler="random", **budget)
    elif method == "kt-hyperresnet":
        from hyperresnet import run_hyperresnet

        result = run_hyperresnet(dataset, **budget)  # tests the model KerasTuner kept, as its users do
    else:
        result = competitors.run_keras_tuner(dataset, algorithm=method.removeprefix("kt-"), **budget)
    test = result.get("test_accuracy")
    if result["best_params"] is not None and test is None:
        test = competitors.test_accuracy(result["best_params"], dataset, max_epochs=setting.max_epochs, seed=seed)
    return {**result, "seconds": spent + result["seconds"], "startup_seconds": spent, "test_accuracy": test,
            "trace": [(spent + seconds, best) for seconds, best in result["trace"]]}


def kept_run(kept: list[dict[str, Any]], setting: Setting, method: str, seed: int) -> dict[str, Any] | None:
    """A run of an earlier invocation with the same dataset, budget, epochs, method and seed (and, for autodnn,
    the same space: the competitors' space is their own)."""
    wanted = asdict(setting)
    keys = [key for key in wanted if method.startswith("autodnn") or key != "space"]
    # .get: a file of the epoch-budget benchmark that preceded this one holds runs of another shape.
    return next((run for run in kept if run.get("method") == method and run.get("seed") == seed
                 and all(run.get("setting", {}).get(key) == wanted[key] for key in keys)), None)


def previous_runs(path: Path) -> list[dict[str, Any]]:
    """The runs an earlier invocation wrote to ``path`` (none when it is absent)."""
    return json.loads(path.read_text())["runs"] if path.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits only, 30 s a search, 1 seed")
    parser.add_argument("--datasets", default=None, help="comma-separated: digits, wine, breast_cancer, cifar10 "
                        "(default: digits,wine,cifar10)")
    parser.add_argument("--seeds", type=int, default=None, help="runs seeds 0 .. N-1 (default: 3, 1 with --quick)")
    parser.add_argument("--first-seed", type=int, default=0, help="start the seeds there instead (e.g. to add seeds "
                        "1 and 2 to a seed 0 run earlier: --first-seed 1 --seeds 2)")
    parser.add_argument("--budget", type=int, default=0, help="wall seconds per search (default: digits 120, "
                        "wine and breast_cancer 60, cifar10 960; 30 with --quick)")
    parser.add_argument("--max-epochs", type=int, default=0, help="epochs per trial (default: 30, cifar10 50)")
    parser.add_argument("--space", default="default",
                        help="autodnn's --space (default: chapter 11's dense space, as the competitors search)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default: all of "
                        f"{', '.join(METHODS)})")
    parser.add_argument("--json", default=str(OUT / "search_quality.json"))
    parser.add_argument("--no-record", action="store_true", help="do not append to benchmarks/RESULTS.md")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --json with the same "
                        "dataset, budget, max epochs, method and seed; run only the missing ones")
    parser.add_argument("--suite", default=None, metavar="JSON[,JSON]",
                        help="print the development-suite row from runs of benchmarks/suite.py --start-alone --json")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.suite:
        print(suite_table(args.suite.split(",")))
        print(f"\n{shlex.join(['python', 'benchmarks/search_quality.py', *(sys.argv[1:] if argv is None else argv)])}")
        return 0
    if args.run:
        job = json.loads(args.run)
        setting = Setting(**job["setting"])
        if job["method"] in ("autodnn", "autodnn-no-start"):
            result = run_autodnn(setting, job["seed"], warm_start=job["method"] == "autodnn")
        elif job["method"] == "designed-start":
            result = run_designed_start(setting, job["seed"])
        else:
            result = run_competitor(setting, job["method"], job["seed"], job["launched"])
        print(json.dumps(result))
        return 0
    args.datasets = args.datasets or ("digits" if args.quick else "digits,wine,cifar10")
    args.seeds = args.seeds or (1 if args.quick else 3)
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    command = shlex.join(["python", "benchmarks/search_quality.py", *(sys.argv[1:] if argv is None else argv)])
    OUT.mkdir(parents=True, exist_ok=True)
    kept = previous_runs(Path(args.json)) if args.resume else []
    report: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "command": command,
                              "machine": machine()}
    tables = []
    for setting in settings(args):
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for method in methods:
                run = kept_run(kept, setting, method, seed)
                if run is None:
                    run = {"setting": asdict(setting), "method": method, "seed": seed,
                           **spawn(setting, method, seed)}
                    kept.append(run)
                val, test = run["best_val_accuracy"], run["test_accuracy"]
                print(f"  {setting.dataset} {method:<14} seed {seed}: best val "
                      f"{'-' if val is None else f'{val:.4f}'}, test {'-' if test is None else f'{test:.4f}'}, "
                      f"{run['trials']} trials, {run['seconds']:.0f} s", flush=True)
                runs.append(run)
                # Written after every run, so that an interrupted benchmark resumes where it stopped.
                Path(args.json).write_text(json.dumps({**report, "runs": kept}, indent=1))
        tables.append(table(setting, runs, summarize(setting, runs)))
        print(tables[-1], flush=True)
    print(f"\n{command}")
    if not args.no_record and tables:
        record(tables, command, RESULTS_MD)
    print(f"autodnn's studies in {STORAGE}; every run in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
