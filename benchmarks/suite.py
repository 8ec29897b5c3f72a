"""The development suite: real tables and images, all offline, and the headline command on each.

Every dataset is read from a package that ships it (scikit-learn, palmerpenguins, vega_datasets, statsmodels)
or from ``../shared/data`` (CIFAR-10), written once as a CSV under ``--cache`` where it is a table, and searched
with the command a new user types: ``autodnn search --dataset csv:PATH --target COL`` and no other flag (the
default budget, ``--timeout auto``: sized by the data), plus ``--drop`` where the table holds a column no model
should see (a date), and ``--task regression`` where the target is a quantity in whole units (grams, a disease
score): there the command asks which task is meant, as it should; CIFAR-10 runs chapter 11's dense study
(``--space default``), the suite's image row since before images got the convolutional space by default. The table printed at the end has one row a dataset: task, the study's metric (``--metric
auto``), the best net's test figure (mean ± spread over the final seeds), each book baseline's, gradient-boosted
trees' (the non-neural reference, on tables), and the wall time; ``--json`` writes it.

Usage::

    python benchmarks/suite.py --list
    python benchmarks/suite.py --only penguins,seattle-drizzle --timeout 10m --json benchmarks/out/suite.json

``--timeout`` and ``--seeds`` shorten the runs for a quick look; without them each dataset gets the headline
command as is.

Sources and licences (the datasets' own, as their packages state them):

=================  =========================================================  ===================================
dataset            source                                                     licence
=================  =========================================================  ===================================
digits             scikit-learn ``load_digits`` (UCI optical digits)          CC BY 4.0 (UCI)
iris               scikit-learn ``load_iris`` (Fisher, 1936)                  CC BY 4.0 (UCI)
wine               scikit-learn ``load_wine`` (UCI wine)                      CC BY 4.0 (UCI)
breast_cancer      scikit-learn ``load_breast_cancer`` (UCI WDBC)             CC BY 4.0 (UCI)
digits-zero        digits, one class (0) against the rest: 9.9% positives     CC BY 4.0 (UCI)
penguins           palmerpenguins ``load_penguins`` (Gorman et al., 2014)     CC0 1.0; package MIT
seattle-drizzle        vega_datasets ``seattle-weather``: drizzle against rest  public domain (NOAA); package MIT
cars-origin        vega_datasets ``cars`` (StatLib, 1983 ASA expo)            public domain (StatLib); package MIT
anes96             statsmodels ``anes96`` (American National Election Study)  public domain; package BSD-3
penguins-mass      palmerpenguins, body mass (g) as a regression target       CC0 1.0
diabetes           scikit-learn ``load_diabetes`` (Efron et al., 2004)        BSD-3 (scikit-learn)
cars-mpg           vega_datasets ``cars``, miles per gallon as the target     public domain (StatLib); package MIT
cifar10            ``../shared/data/cifar10-jpg.tar.gz`` (Krizhevsky, 2009)   MIT-style (CIFAR terms)
=================  =========================================================  ===================================
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SuiteDataset:
    """One dataset of the suite.

    Attributes:
        name: Short name, also the study's.
        task: ``classification``, ``regression`` or ``images``.
        what: What it is, for the table.
        write: Writes the table as a CSV at the given path and returns its target column; None for a built-in
            dataset (``spec`` names it).
        spec: The ``--dataset`` of a built-in (``digits``, ``cifar10``); None for a table written by ``write``.
        drop: Columns left out with ``--drop``.
        flags: Further flags of its command (``--task regression`` where ``auto`` asks).
    """

    name: str
    task: str
    what: str
    write: Callable[[Path], str] | None = None
    spec: str | None = None
    drop: tuple[str, ...] = field(default=())
    flags: tuple[str, ...] = field(default=())


def _sklearn_table(loader: str, path: Path, *, positive: int | None = None) -> str:
    import sklearn.datasets

    frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
    if positive is not None:
        frame["target"] = (frame["target"] == positive).map({True: "yes", False: "no"})
    frame.to_csv(path, index=False)
    return "target"


def _penguins(path: Path, target: str = "species") -> str:
    import palmerpenguins

    frame = palmerpenguins.load_penguins()
    frame = frame[frame[target].notna()] if target != "species" else frame
    frame.to_csv(path, index=False)
    return target


def _seattle_drizzle(path: Path) -> str:
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    frame["drizzle"] = (frame.pop("weather") == "drizzle").map({True: "drizzle", False: "other"})
    frame.to_csv(path, index=False)
    return "drizzle"


def _cars(path: Path, target: str) -> str:
    from vega_datasets import local_data

    frame = local_data.cars()
    frame = frame[frame[target].notna()]
    frame.to_csv(path, index=False)
    return target


def _anes96(path: Path) -> str:
    import statsmodels.api as sm

    frame = sm.datasets.anes96.load_pandas().data
    frame["vote"] = frame["vote"].map({0.0: "clinton", 1.0: "dole"})
    frame.to_csv(path, index=False)
    return "vote"


DATASETS = (
    SuiteDataset("digits", "classification", "8x8 digits, 1,797 rows, 10 classes", spec="digits"),
    SuiteDataset("iris", "classification", "150 rows, 3 classes", lambda p: _sklearn_table("load_iris", p)),
    SuiteDataset("wine", "classification", "178 rows, 3 classes", lambda p: _sklearn_table("load_wine", p)),
    SuiteDataset("breast_cancer", "classification", "569 rows, 2 classes",
                 lambda p: _sklearn_table("load_breast_cancer", p)),
    SuiteDataset("digits-zero", "classification", "digit 0 against the rest, 9.9% positives",
                 lambda p: _sklearn_table("load_digits", p, positive=0)),
    SuiteDataset("penguins", "classification", "344 rows, text columns, missing values", _penguins),
    SuiteDataset("seattle-drizzle", "classification", "1,461 days, drizzle 3.6%", _seattle_drizzle, drop=("date",)),
    SuiteDataset("cars-origin", "classification", "406 cars, text name, missing values",
                 lambda p: _cars(p, "Origin"), drop=("Year",)),
    SuiteDataset("anes96", "classification", "944 voters, 2 classes", _anes96),
    SuiteDataset("penguins-mass", "regression", "body mass (g), 342 rows", lambda p: _penguins(p, "body_mass_g"),
                 flags=("--task", "regression")),
    SuiteDataset("diabetes", "regression", "disease progression, 442 rows",
                 lambda p: _sklearn_table("load_diabetes", p), flags=("--task", "regression")),
    SuiteDataset("cars-mpg", "regression", "miles per gallon, 398 cars",
                 lambda p: _cars(p, "Miles_per_Gallon"), drop=("Year",)),
    SuiteDataset("cifar10", "images", "60,000 32x32 colour images, 10 classes", spec="cifar10",
                 flags=("--space", "default")),
)


def command(dataset: SuiteDataset, cache: Path, study_dir: Path, extra: list[str]) -> list[str] | str:
    """The ``autodnn search`` command line of ``dataset``, or why it cannot run here."""
    storage = f"sqlite:///{study_dir / (dataset.name + '.db')}"
    argv = [sys.executable, "-m", "autodnn", "search", "--study", dataset.name, "--storage", storage]
    if dataset.spec == "cifar10":
        archive = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
        if not archive.exists():
            return f"skipped: {archive} is absent"
        argv += ["--dataset", "cifar10", "--data-dir", str(archive.parent)]
    elif dataset.spec is not None:
        argv += ["--dataset", dataset.spec]
    else:
        path = cache / f"{dataset.name}.csv"
        target = dataset.write(path)
        argv += ["--dataset", f"csv:{path}", "--target", target]
        if dataset.drop:
            argv += ["--drop", ",".join(dataset.drop)]
    return argv + list(dataset.flags) + extra


def figures(storage: str, name: str) -> tuple[str, dict[str, Any], list[str]]:
    """The study's headline test metric, each entry's mean and spread of it (and the trees'), by name, and the
    evaluation's plain lines."""
    import optuna

    from autodnn.evaluate import headline_metric, plain_lines

    evaluation = optuna.load_study(study_name=name, storage=storage).user_attrs.get("evaluation") or {}
    metric = headline_metric(evaluation)
    reference = [evaluation["reference"]] if evaluation.get("reference") else []
    entries = {entry["name"]: {"kind": entry.get("kind"), "mean": entry.get(f"{metric}_mean"),
                               "std": entry.get(f"{metric}_std")}
               for entry in [*evaluation.get("entries", []), *reference]}
    return metric, entries, plain_lines(evaluation) if evaluation else []


def origin(storage: str, name: str) -> str:
    """Where the evaluated best came from: a TPE draw, a warm start of the designed start, or a book baseline
    whose configuration validated better than every searched one (``book-2e``)."""
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    best = (study.user_attrs.get("evaluation") or {}).get("entries", [{}])[0]
    if best.get("baseline"):
        return f"book {best['baseline']}"
    number = best.get("trial_number")
    if number is None:
        return "-"
    attrs = study.trials[number].user_attrs
    if attrs.get("warm_start"):
        return f"warm start {attrs['warm_start']}"
    if attrs.get("local_move_of") is not None:
        return f"local move (trial {number}, from trial {attrs['local_move_of']})"
    return f"sampled (trial {number})"


def chance_stops(storage: str, name: str) -> dict[str, int]:
    """Searched trials of a finished study, and how many the chance rule stopped (each stopped one had neither a
    validation loss below the class priors' nor a score above the constant answer's by its third epoch)."""
    import optuna

    trials = [t for t in optuna.load_study(study_name=name, storage=storage).trials if "baseline" not in t.user_attrs]
    return {"searched": len(trials),
            "stopped_at_chance": sum("never beat chance" in t.user_attrs.get("reason", "") for t in trials)}


def start_alone(storage: str, name: str) -> dict[str, Any]:
    """The designed start alone in the finished study (:mod:`start_alone`), without its runs."""
    from autodnn.backend import select_backend

    select_backend("auto")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from start_alone import designed_start_alone

    began = time.monotonic()
    found = designed_start_alone(storage, name)
    found.pop("runs", None)
    return {**found, "seconds": round(time.monotonic() - began, 1)} if found else {}


def _cell(entry: dict[str, Any] | None, metric: str) -> str:
    from autodnn.evaluate import in_points

    if not entry or entry.get("mean") is None:
        return "-"
    if in_points(metric):
        return f"{100 * entry['mean']:.1f} ± {100 * (entry.get('std') or 0.0):.1f}"
    return f"{entry['mean']:.4g} ± {entry.get('std') or 0.0:.2g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the datasets and stop")
    parser.add_argument("--only", default=None, help="comma-separated dataset names")
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / "out" / "suite")
    parser.add_argument("--timeout", default=None, help="--timeout of every search (default: the command's own)")
    parser.add_argument("--seeds", default=None, help="--seeds of every final evaluation")
    parser.add_argument("--sampler", default=None, help="--sampler of every search (default: the command's own)")
    parser.add_argument("--start-alone", action="store_true",
                        help="also test the designed start alone: its pick among the study's designed "
                             "configurations, retrained with the final seeds (benchmarks/start_alone.py)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    chosen = [d for d in DATASETS if args.only is None or d.name in args.only.split(",")]
    if args.list or not chosen:
        for dataset in DATASETS:
            print(f"{dataset.name:<15} {dataset.task:<15} {dataset.what}")
        return 0 if chosen else 2
    args.cache.mkdir(parents=True, exist_ok=True)
    extra = [*(["--timeout", args.timeout] if args.timeout else []), *(["--seeds", args.seeds] if args.seeds else []),
             *(["--sampler", args.sampler] if args.sampler else [])]
    print(f"suite on {platform.processor() or platform.machine()}, {len(chosen)} datasets, "
          f"extra flags: {' '.join(extra) or 'none (the headline command)'}")
    rows = []
    for dataset in chosen:
        for old in args.cache.glob(f"{dataset.name}.db*"):
            old.unlink()
        line = command(dataset, args.cache, args.cache, extra)
        row: dict[str, Any] = {"dataset": dataset.name, "task": dataset.task}
        if isinstance(line, str):
            row["status"] = line
        else:
            began = time.monotonic()
            done = subprocess.run(line, cwd=REPO, capture_output=True, text=True, check=False)
            row.update(status="ok" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-300:]}",
                       seconds=round(time.monotonic() - began, 1), command=" ".join(line[2:]))
            if done.returncode == 0:
                row["metric"], row["entries"], row["said"] = figures(
                    f"sqlite:///{args.cache / (dataset.name + '.db')}", dataset.name)
                row["trials"] = chance_stops(f"sqlite:///{args.cache / (dataset.name + '.db')}", dataset.name)
                row["origin"] = origin(f"sqlite:///{args.cache / (dataset.name + '.db')}", dataset.name)
                row["budget"] = next((line for line in done.stdout.splitlines() if line.startswith("Time budget")),
                                     "")
                if args.start_alone:
                    row["start_alone"] = start_alone(f"sqlite:///{args.cache / (dataset.name + '.db')}", dataset.name)
        rows.append(row)
        print(_format(row), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "rows": rows},
                                        indent=2))
    return 0 if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in rows) else 1


def _format(row: dict[str, Any]) -> str:
    entries = row.get("entries") or {}
    if row["status"] != "ok":
        return f"{row['dataset']:<15} {row['task']:<15} {row['status']}"
    metric = row["metric"]
    baselines = "  ".join(f"{name} {_cell(e, metric)}" for name, e in entries.items() if e["kind"] == "baseline")
    trees = next((e for e in entries.values() if e["kind"] == "reference"), None)
    alone = row.get("start_alone") or {}
    start = ""
    if alone:
        gap = alone["search_minus_start"]
        start = (f"  start alone ({alone['start']}) {_cell(alone, metric)}, search minus it "
                 f"{_cell({'mean': gap['mean'], 'std': gap['std']}, metric)} over {gap['paired_seeds']} paired seeds")
    return (f"{row['dataset']:<15} {row['task']:<15} {metric[5:]:<18} best {_cell(entries.get('best'), metric)}  "
            f"{baselines}  trees {_cell(trees, metric)}  {row['seconds']:.0f} s  best from: {row.get('origin', '-')}"
            f"{start}")


if __name__ == "__main__":
    sys.exit(main())
