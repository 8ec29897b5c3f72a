"""Which designed start for tables: candidate configurations trained on the suite's tables, ranked on validation.

Trains each candidate (the warm starts of :mod:`autodnn.tuning.warm_start` and the ones given here) with the
project's own trainer on each table of the development suite (``benchmarks/suite.py``), with several seeds, as the
search would train it: the batch fitted to the table (:func:`autodnn.tuning.warm_start.fitted`), the study's metric
and class weighting as ``--metric auto`` and ``--class-weight auto`` resolve them, the epoch kept as the spaces'
``auto`` keeps it. It prints the mean validation score of every candidate on every table (the searched number:
accuracy, balanced accuracy, R² for a regression), then each candidate's mean rank and mean shortfall from the
table's best candidate over the **choosing** tables, and the same over the **held-out** tables: the choice is made
on the choosing tables' validation figures, and the held-out ones show whether it carries to tables it was not
chosen on. No test figure is read.

Usage::

    python benchmarks/designed_start.py --seeds 2 --json benchmarks/out/designed_start.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from autodnn.backend import select_backend

select_backend("auto")  # before Keras is imported: the backend the CLI's --backend auto picks

from autodnn import load_dataset
from autodnn.config import TrialConfig
from autodnn.metrics import resolve, searched_of
from autodnn.training.trainer import train
from autodnn.tuning.warm_start import WARM_STARTS, fitted

HERE = Path(__file__).resolve().parent
#: The tables the choice is made on; the rest of the suite's tables are held out.
CHOOSING = ("digits", "wine", "breast_cancer", "penguins", "cars-origin", "diabetes", "penguins-mass")

#: Candidates besides the warm starts: dense nets that the literature on tuned tabular MLPs trains on small
#: tables (name -> configuration fields; anything not given is TrialConfig's default).
CANDIDATES: dict[str, dict[str, Any]] = {
    "selu-cosine": {  # RealMLP-TD's classification defaults, as far as this trainer has them (Holzmüller et al. 2024)
        "n_hidden": 3, "n_units": 256, "activation": "selu", "initializer": "lecun", "init_distribution": "normal",
        "normalization": "none", "optimizer": "adamw", "beta_1": 0.9, "beta_2": 0.95, "weight_decay": 1.0e-4,
        "learning_rate": 1.0e-3, "schedule": "cosine", "epochs": 50, "batch_size": 256, "patience": 10},
    "relu-mlp": {  # Gorishniy et al. 2021's tuned MLP, typical of its tuned values
        "n_hidden": 4, "n_units": 256, "activation": "relu", "initializer": "he", "normalization": "none",
        "dropout": 0.1, "optimizer": "adamw", "weight_decay": 1.0e-5, "learning_rate": 1.0e-3, "schedule": "constant",
        "epochs": None, "batch_size": 128, "patience": 16},
    "swish-bn-long": {  # deep-swish-1cycle made for small tables: 3 x 256 and 50 epochs of 1cycle
        "n_hidden": 3, "n_units": 256, "activation": "swish", "initializer": "he", "normalization": "batch_norm_before",
        "dropout": 0.1, "optimizer": "nadam", "learning_rate": 2.0e-3, "schedule": "1cycle", "epochs": 50,
        "batch_size": 128},
    "small-adam-long": {  # small-adam with 50 epochs of cosine decay
        **next(s.values for s in WARM_STARTS if s.name == "small-adam"), "schedule": "cosine", "epochs": 50},
}


def _suite() -> Any:
    spec = importlib.util.spec_from_file_location("suite", HERE / "suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["suite"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _dataset(entry: Any, cache: Path) -> Any:
    if entry.write is None:
        return load_dataset(entry.spec, seed=0)
    path = cache / f"{entry.name}.csv"
    target = entry.write(path)
    task = "regression" if "regression" in entry.flags or entry.task == "regression" else "auto"
    return load_dataset(f"csv:{path}", target=target, seed=0, drop=list(entry.drop) or None, task=task)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--only", default=None, help="comma-separated candidates (default: all)")
    parser.add_argument("--cache", type=Path, default=HERE / "out" / "suite")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    suite = _suite()
    candidates = {**{s.name: s.values for s in WARM_STARTS}, **CANDIDATES}
    if args.only:
        candidates = {k: v for k, v in candidates.items() if k in args.only.split(",")}
    tables = [d for d in suite.DATASETS if d.task != "images"]
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"designed start candidates on {len(tables)} tables, {args.seeds} seeds, --max-epochs {args.max_epochs}, "
          f"{platform.processor() or platform.machine()}; mean validation score (the searched number)", flush=True)
    scores: dict[str, dict[str, float]] = {name: {} for name in candidates}
    seconds: dict[str, float] = dict.fromkeys(candidates, 0.0)
    for entry in tables:
        dataset = _dataset(entry, args.cache)
        metric, weighting, _ = resolve("auto", "auto", dataset.task, dataset.y_train, dataset.n_outputs)
        for name, values in candidates.items():
            config = TrialConfig.from_dict({**fitted(values, len(dataset.x_train)), "class_weight": weighting,
                                            "restore_best": "val_loss"})
            got = []
            for seed in range(args.seeds):
                began = time.perf_counter()
                result = train(config, dataset, max_epochs=args.max_epochs, seed=seed, metric=metric)
                seconds[name] += time.perf_counter() - began
                got.append(result.score)
            finite = [g for g in got if math.isfinite(g)]
            scores[name][entry.name] = statistics.fmean(finite) if len(finite) == len(got) else -1.0  # diverged
            print(f"  {entry.name:<16} {searched_of(dataset.task, metric):<18} {name:<20} {scores[name][entry.name]:.4f}",
                  flush=True)
    rows = _summary(scores, [t.name for t in tables])
    print(f"\n{'candidate':<20} {'rank (choosing)':>15} {'short (choosing)':>16} {'rank (held out)':>15} "
          f"{'short (held out)':>16} {'seconds':>8}")
    for name, row in sorted(rows.items(), key=lambda kv: kv[1]["choosing"]["rank"]):
        print(f"{name:<20} {row['choosing']['rank']:>15.2f} {row['choosing']['short']:>16.4f} "
              f"{row['held_out']['rank']:>15.2f} {row['held_out']['short']:>16.4f} {seconds[name]:>8.0f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seeds": args.seeds, "max_epochs": args.max_epochs, "choosing": CHOOSING,
                                         "scores": scores, "summary": rows, "seconds": seconds,
                                         "candidates": candidates}, indent=2, default=str))
    return 0


def _summary(scores: dict[str, dict[str, float]], tables: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Each candidate's mean rank (1 = best) and mean shortfall from the table's best, over each group of tables."""
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in scores}
    for group, names in (("choosing", [t for t in tables if t in CHOOSING]),
                         ("held_out", [t for t in tables if t not in CHOOSING])):
        ranks: dict[str, list[float]] = {name: [] for name in scores}
        shorts: dict[str, list[float]] = {name: [] for name in scores}
        for table in names:
            values = {name: scores[name][table] for name in scores}
            top = max(values.values())
            for name, value in values.items():
                better = sum(v > value for v in values.values())
                tied = sum(v == value for v in values.values())
                ranks[name].append(better + (tied + 1) / 2)  # ties share the mean of their ranks
                shorts[name].append(top - value)
        for name in scores:
            out[name][group] = {"rank": statistics.fmean(ranks[name]) if ranks[name] else float("nan"),
                                "short": statistics.fmean(shorts[name]) if shorts[name] else float("nan")}
    return out


if __name__ == "__main__":
    sys.exit(main())
