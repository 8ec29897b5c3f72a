"""Search quality at an equal budget of training epochs: autodnn's default strategy against plain TPE, random
search and KerasTuner's Hyperband and Bayesian optimization, on the same space, data, trainer and seeds.

Every strategy runs ``autodnn.search`` with ``--epoch-budget`` (the searched trials' epochs, counted the same for
every engine), its own study in one SQLite file, no baselines and no final evaluation. For each run it records the
best validation accuracy, the test accuracy of that winner (retrained once with the run's seed and tested once),
and the wall time the run needed to reach KerasTuner Hyperband's final best validation accuracy on the same seed.

    python benchmarks/search_quality.py --quick     # digits, quick space: a few minutes on 2 cores
    python benchmarks/search_quality.py             # digits, then CIFAR-10 from ../shared/data
    python benchmarks/search_quality.py --datasets cifar10 --seeds 1 --budget 120

The studies stay in ``benchmarks/out/search_quality.db``: ``autodnn report STUDY STUDY ... --storage
sqlite:///benchmarks/out/search_quality.db`` shows the engines side by side. The JSON goes to ``--json``; a
dated block is appended to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
CIFAR_DIR = REPO.parent / "shared" / "data"
REFERENCE = "kt-hyperband"


@dataclass(frozen=True)
class Strategy:
    """One way to search: the ``autodnn search`` options that differ from the defaults.

    Attributes:
        core: Runs unless ``--strategies`` names others; the variants of the default are there to tune it.
    """

    name: str
    title: str
    options: dict[str, Any] = field(default_factory=dict)
    core: bool = True


def _default_title() -> str:
    from autodnn.study.settings import SearchOptions

    return f"autodnn default (TPE + {SearchOptions().pruner} pruner)"


STRATEGIES = (
    Strategy("autodnn", _default_title()),
    Strategy("autodnn-median", "TPE + median pruner", {"pruner": "median"}, core=False),
    Strategy("autodnn-hyperband", "TPE + Hyperband pruner", {"pruner": "hyperband"}, core=False),
    Strategy("autodnn-halving", "TPE + successive halving", {"pruner": "halving"}, core=False),
    Strategy("autodnn-finder", "autodnn default + LR finder in every trial", {"lr_finder": True}, core=False),
    Strategy("tpe", "Optuna TPE, no pruning, no finder", {"pruner": "none"}),
    Strategy("random", "random search (Optuna)", {"sampler": "random", "pruner": "none"}),
    Strategy("kt-hyperband", "KerasTuner Hyperband", {"engine": "keras-tuner", "strategy": "hyperband"}),
    Strategy("kt-bayesian", "KerasTuner Bayesian", {"engine": "keras-tuner", "strategy": "bayesian"}),
)


@dataclass(frozen=True)
class Setting:
    """A dataset, its space and the budget each run gets."""

    dataset: str
    space: str
    budget: int
    max_epochs: int
    data_dir: str | None = None


def settings(args: argparse.Namespace) -> list[Setting]:
    chosen = args.datasets.split(",") if args.datasets else (["digits"] if args.quick else ["digits", "cifar10"])
    out = []
    for name in chosen:
        if name == "digits":
            out.append(Setting("digits", args.space or "quick", args.budget or (60 if args.quick else 150),
                               args.max_epochs or 10))
        elif name == "cifar10":
            if not (CIFAR_DIR / "cifar10-jpg.tar.gz").exists():
                print(f"skipping cifar10: {CIFAR_DIR / 'cifar10-jpg.tar.gz'} is absent", file=sys.stderr)
                continue
            out.append(Setting("cifar10", args.space or "exercise8", args.budget or 200, args.max_epochs or 20,
                               data_dir=str(CIFAR_DIR)))
        else:
            raise SystemExit(f"--datasets: {name!r} is not digits or cifar10")
    return out


def spawn(setting: Setting, strategy: Strategy, seed: int, storage: str) -> dict[str, Any]:
    """Runs one search in a fresh process: no run profits from programs an earlier one compiled."""
    job = {"setting": setting.__dict__, "strategy": strategy.name, "seed": seed, "storage": storage}
    done = subprocess.run([sys.executable, __file__, "--run", json.dumps(job)], capture_output=True, text=True,
                          check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"{strategy.name} seed {seed} on {setting.dataset} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def run_one(setting: Setting, strategy: Strategy, seed: int, storage: str) -> dict[str, Any]:
    """Runs one search and measures its winner."""
    import optuna

    import autodnn
    from autodnn.config import TrialConfig
    from autodnn.study.records import epochs_spent
    from autodnn.study.search import search
    from autodnn.study.settings import SearchOptions
    from autodnn.trainer import train

    name = f"{setting.dataset}-{setting.space}-{strategy.name}-s{seed}"
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    options = SearchOptions(dataset=setting.dataset, space=setting.space, study=name, storage=storage,
                            n_trials=10_000, max_epochs=setting.max_epochs, seed=seed, data_dir=setting.data_dir,
                            baselines=False, epoch_budget=setting.budget, **strategy.options)
    start = time.perf_counter()
    study = search(options)
    seconds = time.perf_counter() - start
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    best = max(complete, key=lambda t: t.value)
    dataset = autodnn.load_dataset(setting.dataset, data_dir=setting.data_dir, seed=seed)
    tested = train(TrialConfig.from_dict(best.user_attrs["config"]), dataset, max_epochs=setting.max_epochs,
                   seed=seed, evaluate_test=True)
    return {
        "study": name, "strategy": strategy.name, "options": how(study.user_attrs["settings"]), "seed": seed,
        "seconds": seconds,
        "trials": len(trials), "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "epochs": epochs_spent(study), "best_val_accuracy": best.value, "test_accuracy": tested.test_accuracy,
        "best_config": best.user_attrs["config"],
        # Running best after each finished trial, in wall seconds since the search's first trial started.
        "trace": _trace(trials),
    }


#: The settings that make a strategy: two runs with equal ones searched the same way, whatever their names.
HOW = ("engine", "strategy", "sampler", "pruner", "lr_finder")


def how(settings: dict[str, Any]) -> dict[str, Any]:
    """The strategy-making part of a study's (or a :class:`SearchOptions`') settings.

    KerasTuner ignores the Optuna sampler and pruner, and Optuna the KerasTuner strategy.
    """
    ignored = ("sampler", "pruner") if settings.get("engine") == "keras-tuner" else ("strategy",)
    return {key: settings.get(key) for key in HOW if key not in ignored}


def how_strategy(strategy: Strategy) -> dict[str, Any]:
    from autodnn.study.settings import SearchOptions

    return how(vars(SearchOptions(**strategy.options)))


def kept_run(kept: list[dict[str, Any]], setting: Setting, strategy: Strategy, seed: int,
             storage: str) -> dict[str, Any] | None:
    """A run of an earlier invocation that searched ``setting`` with ``seed`` the way ``strategy`` does.

    Runs are matched by their settings, not their names: a variant run before it became the default counts
    as a run of the default.
    """
    wanted = how_strategy(strategy)
    for run in kept:
        if run.get("setting") != setting.__dict__ or run["seed"] != seed:
            continue
        if "options" not in run:
            import optuna

            run["options"] = how(optuna.load_study(study_name=run["study"], storage=storage).user_attrs["settings"])
        if run["options"] == wanted:
            return {**run, "strategy": strategy.name}
    return None


def _trace(trials: list[Any]) -> list[tuple[float, float]]:
    done = sorted((t for t in trials if t.value is not None and t.datetime_complete), key=lambda t: t.datetime_complete)
    if not done:
        return []
    start = min(t.datetime_start for t in trials if t.datetime_start)
    best, trace = -math.inf, []
    for t in done:
        best = max(best, t.value)
        trace.append(((t.datetime_complete - start).total_seconds(), best))
    return trace


def time_to_reach(trace: list[tuple[float, float]], target: float) -> float | None:
    return next((seconds for seconds, best in trace if best >= target - 1e-12), None)


def summarize(setting: Setting, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reference = {r["seed"]: r["best_val_accuracy"] for r in runs if r["strategy"] == REFERENCE}
    rows = []
    for strategy in STRATEGIES:
        mine = [r for r in runs if r["strategy"] == strategy.name]
        if not mine:
            continue
        reach = [time_to_reach(r["trace"], reference[r["seed"]]) if r["seed"] in reference else None for r in mine]
        reached = [t for t in reach if t is not None]
        rows.append({
            "dataset": setting.dataset, "strategy": strategy.name, "title": strategy.title, "runs": len(mine),
            "val_mean": statistics.mean(r["best_val_accuracy"] for r in mine),
            "val_std": _std([r["best_val_accuracy"] for r in mine]),
            "test_mean": statistics.mean(r["test_accuracy"] for r in mine),
            "test_std": _std([r["test_accuracy"] for r in mine]),
            "trials_mean": statistics.mean(r["trials"] for r in mine),
            "seconds_mean": statistics.mean(r["seconds"] for r in mine),
            "reached": f"{len(reached)}/{len(mine)}",
            "reach_seconds_mean": statistics.mean(reached) if reached else None,
        })
    return rows


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def print_table(setting: Setting, rows: list[dict[str, Any]]) -> str:
    lines = [f"\n{setting.dataset}, space {setting.space}: {setting.budget} epochs per search, at most "
             f"{setting.max_epochs} per trial",
             f"{'strategy':<44}{'best val acc':>16}{'test acc of winner':>20}{'trials':>8}{'search s':>10}"
             f"{'reached KT-HB best':>20}"]
    lines.append("-" * len(lines[-1]))
    for r in rows:
        reach = f"{r['reached']} in {r['reach_seconds_mean']:.0f} s" if r["reach_seconds_mean"] is not None else \
            f"{r['reached']}"
        lines.append(f"{r['title']:<44}{_pm(r['val_mean'], r['val_std']):>16}{_pm(r['test_mean'], r['test_std']):>20}"
                     f"{r['trials_mean']:>8.1f}{r['seconds_mean']:>10.0f}{reach:>20}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _pm(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}%"


def record(tables: list[str], args: argparse.Namespace, path: Path) -> None:
    from autodnn.backend import environment

    env = environment()
    with path.open("a") as out:
        out.write(f"\n## Search quality, {dt.date.today().isoformat()} ({env.get('backend')}, "
                  f"{os.cpu_count()} cores)\n\n`python benchmarks/search_quality.py {' '.join(sys.argv[1:])}` "
                  f"(seeds {args.seeds}; mean ± standard deviation over seeds)\n\n```")
        out.write("\n".join(tables))
        out.write("\n```\n")


def previous_runs(path: Path) -> list[dict[str, Any]]:
    """The runs an earlier invocation wrote to ``path`` (none when it is absent)."""
    return json.loads(path.read_text())["runs"] if path.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits only, 60-epoch budget")
    parser.add_argument("--datasets", default="", help="comma-separated: digits, cifar10")
    parser.add_argument("--space", default=None, help="search space (default: quick on digits, exercise8 on CIFAR)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=0, help="epochs per search (default: 60 quick, 150 digits, "
                        "200 CIFAR-10)")
    parser.add_argument("--max-epochs", type=int, default=0, help="epochs per trial (default: 10 digits, 20 CIFAR)")
    parser.add_argument("--strategies", default="", help="comma-separated (default: "
                        + ", ".join(s.name for s in STRATEGIES if s.core) + "; variants of the default: "
                        + ", ".join(s.name for s in STRATEGIES if not s.core) + ")")
    parser.add_argument("--storage", default=f"sqlite:///{OUT / 'search_quality.db'}")
    parser.add_argument("--json", default=str(OUT / "search_quality.json"))
    parser.add_argument("--no-record", action="store_true", help="do not append to benchmarks/RESULTS.md")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --json (and in any "
                        "--merge files) for the same dataset, space, budget, strategy settings and seed; run only "
                        "the missing ones")
    parser.add_argument("--merge", default="", help="comma-separated JSON files of other invocations whose runs "
                        "count as kept")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        job = json.loads(args.run)
        strategy = next(s for s in STRATEGIES if s.name == job["strategy"])
        print(json.dumps(run_one(Setting(**job["setting"]), strategy, job["seed"], job["storage"])))
        return 0
    chosen = set(args.strategies.split(",")) if args.strategies else {s.name for s in STRATEGIES if s.core}
    unknown = chosen - {s.name for s in STRATEGIES}
    if unknown:
        raise SystemExit(f"--strategies: unknown {', '.join(sorted(unknown))}; choose from "
                         + ", ".join(s.name for s in STRATEGIES))
    OUT.mkdir(parents=True, exist_ok=True)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    kept = previous_runs(Path(args.json)) if args.resume else []
    for other in filter(None, args.merge.split(",")):
        kept.extend(r for r in previous_runs(Path(other)) if r not in kept)
    report: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "settings": [], "runs": []}
    tables = []
    for setting in settings(args):
        runs = []
        for seed in range(args.seeds):
            for strategy in STRATEGIES:
                if strategy.name not in chosen:
                    continue
                run = kept_run(kept, setting, strategy, seed, args.storage)
                if run is None:
                    run = {**spawn(setting, strategy, seed, args.storage), "setting": setting.__dict__}
                    kept.append(run)
                print(f"  {setting.dataset} {strategy.name:<18} seed {seed}: best val {run['best_val_accuracy']:.4f}, "
                      f"test {run['test_accuracy']:.4f}, {run['trials']} trials, {run['epochs']} epochs, "
                      f"{run['seconds']:.0f} s", flush=True)
                runs.append(run)
                # Written after every run, so that an interrupted benchmark resumes where it stopped.
                Path(args.json).write_text(json.dumps({**report, "runs": kept}, indent=1))
        rows = summarize(setting, runs)
        tables.append(print_table(setting, rows))
        report["settings"].append({**setting.__dict__, "rows": rows})
    Path(args.json).write_text(json.dumps({**report, "runs": kept}, indent=1))
    if not args.no_record and tables:
        record(tables, args, RESULTS_MD)
    print(f"\nStudies in {args.storage}; JSON in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
