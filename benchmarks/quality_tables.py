"""The tables of ``benchmarks/search_quality.py``: each method's runs summarized, autodnn's lead over its rivals,
the development suite's search against its designed start, and the dated block appended to RESULTS.md."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_quality import Setting

#: Exercise 8 c (batch normalization), the book's best published CIFAR-10 validation accuracy.
CIFAR_TARGET = 0.540
METHODS = {
    "autodnn": "autodnn search (CLI defaults)",
    "autodnn-no-start": "autodnn search --no-warm-start",
    "optuna-script": "Optuna script: TPE + median pruner",
    "optuna-script-start": "Optuna script + autodnn's designed start",
    "designed-start": "designed start alone (no search)",
    "random": "Optuna script: random search",
    "kt-hyperband": "KerasTuner Hyperband",
    "kt-bayesian": "KerasTuner Bayesian",
    "kt-hyperresnet": "KerasTuner HyperResNet (Hyperband)",
}
#: The rivals whose gap to autodnn a table states, where they ran.
RIVALS = ("kt-hyperband", "kt-bayesian", "kt-hyperresnet")


def target(setting: Setting, runs: list[dict[str, Any]], seed: int) -> float | None:
    """The validation accuracy a run on ``seed`` has to reach (``None`` when unknown)."""
    if setting.dataset == "cifar10":
        return CIFAR_TARGET
    return next((r["baseline_best_val"] for r in runs if r["method"] == "autodnn" and r["seed"] == seed), None)


def time_to_reach(trace: list[list[float]], goal: float) -> float | None:
    # Accuracies are float32 in Keras and float64 in the study: equal fractions may differ in the 8th digit.
    return next((seconds for seconds, best in trace if best >= goal - 1e-6), None)


def summarize(setting: Setting, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for method, title in METHODS.items():
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        goals = [target(setting, runs, r["seed"]) for r in mine]
        reach = [time_to_reach(r["trace"], goal) for r, goal in zip(mine, goals) if goal is not None]
        reached = [seconds for seconds in reach if seconds is not None]
        rows.append({
            "method": method, "title": title, "runs": len(mine),
            "val": _mean_std([r["best_val_accuracy"] for r in mine]),
            "test": _mean_std([r["test_accuracy"] for r in mine]),
            "trials_mean": statistics.mean(r["trials"] for r in mine),
            "seconds_mean": statistics.mean(r["seconds"] for r in mine),
            "reached": f"{len(reached)}/{len(reach)}",
            "reach_seconds_mean": statistics.mean(reached) if reached else None,
        })
    return rows


def _mean_std(values: list[float | None]) -> tuple[float, float] | None:
    """Mean and standard deviation of the values that exist (a run whose search finished no trial has none)."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return statistics.mean(known), statistics.stdev(known) if len(known) > 1 else 0.0


def lead(runs: list[dict[str, Any]], rival: str = "kt-hyperband") -> float | None:
    """autodnn's test accuracy minus ``rival``'s, in points, averaged over the seeds both ran."""
    test = {(r["method"], r["seed"]): r["test_accuracy"] for r in runs if r["test_accuracy"] is not None}
    gaps = [100 * (test["autodnn", s] - test[rival, s]) for m, s in test if m == "autodnn" and (rival, s) in test]
    return statistics.mean(gaps) if gaps else None


def table(setting: Setting, runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    seeds = sorted({r["seed"] for r in runs})
    if setting.dataset == "cifar10":
        goal = f"{100 * CIFAR_TARGET:.1f}% (the book's best exercise-8 validation accuracy)"
    else:
        known = [g for g in (target(setting, runs, s) for s in seeds) if g is not None]
        goal = "the best book baseline in autodnn's study of the same seed"
        if known:
            goal += f" (mean {100 * statistics.mean(known):.1f}%)"
        elif any(r["method"] == "autodnn" for r in runs):
            goal += " (unknown: no baseline finished within autodnn's budget)"
        else:
            goal += " (unknown: autodnn did not run)"
    lines = [(f"\n{setting.dataset}: {setting.budget} s wall time per search, at most {setting.max_epochs} epochs "
              f"per trial, seeds {', '.join(map(str, seeds))}; mean ± std over seeds"),
             f"time to pass = first finished trial at or above {goal}",
             (f"{'method':<38}{'best val acc':>16}{'test acc of winner':>20}{'trials':>8}{'search s':>10}"
              f"{'time to pass':>16}")]
    lines.append("-" * len(lines[-1]))
    for r in rows:
        reach = r["reached"] + (f" in {r['reach_seconds_mean']:.0f} s" if r["reach_seconds_mean"] is not None else "")
        lines.append(f"{r['title']:<38}{_pm(r['val']):>16}{_pm(r['test']):>20}{r['trials_mean']:>8.1f}"
                     f"{r['seconds_mean']:>10.0f}{reach:>16}")
    mine = [r for r in runs if r["method"] == "autodnn"]
    if mine:
        lines.append(f"(autodnn's trials exclude the book baselines, which share its budget: "
                     f"{statistics.mean(r['baselines'] for r in mine):.1f} of "
                     f"{statistics.mean(r['baselines_queued'] for r in mine):.0f} finished on average)")
    for rival in RIVALS:
        gap = lead(runs, rival)
        if gap is not None:
            lines.append(f"autodnn ahead of {rival}: {gap:+.1f} points test (mean of seeds)")
    return "\n".join(lines)


def _pm(stats: tuple[float, float] | None) -> str:
    return "-" if stats is None else f"{100 * stats[0]:.1f} ± {100 * stats[1]:.1f}%"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{models[0] if models else 'unknown CPU'}, {os.cpu_count()} cores"


def record(tables: list[str], command: str, path: Path) -> None:
    with path.open("a") as out:
        out.write(f"\n## Search quality at equal wall time, {dt.date.today().isoformat()} ({machine()})\n\n"
                  f"`{command}`\n\n```")
        out.write("\n".join(tables))
        out.write("\n```\n")


def suite_table(paths: list[str]) -> str:
    """The development-suite row: each suite run's best (``benchmarks/suite.py --start-alone --json``) against the
    designed start alone in the same study, paired by seed, in the metric's units with + when the search is better.

    The summary counts the datasets where the search is ahead, level (the same test figures, mostly the same
    configuration chosen), behind within the paired differences' spread, and behind beyond it; the average is over classification tables in points and over regressions in percent of
    the start's error.
    """
    from autodnn.evaluate import in_points, lower_is_better

    lines = []
    for path in paths:
        run = json.loads(Path(path).read_text())
        rows = [r for r in run["rows"] if r.get("start_alone")]
        lines += [(f"\n{path} ({run['machine']}): search's best minus the designed start alone, paired by seed "
                   f"(+ = the search is better)"),
                  f"{'dataset':<16}{'metric':<19}{'search':>17}{'start alone':>30}{'difference':>18}"]
        lines.append("-" * len(lines[-1]))
        ahead, level, within, behind, points, percent = 0, 0, 0, 0, [], []
        for row in rows:
            metric, best, alone = row["metric"], row["entries"]["best"], row["start_alone"]
            gap = alone["search_minus_start"]
            sign = -1.0 if lower_is_better(metric) else 1.0
            better, spread = sign * gap["mean"], gap["std"] or 0.0
            ahead += better > 0
            level += better == 0
            within += better < 0 and -better <= spread
            behind += better < 0 and -better > spread
            if in_points(metric):
                points.append(100 * better)
                cells = (f"{100 * best['mean']:.1f} ± {100 * best['std']:.1f}",
                         f"{100 * alone['mean']:.1f} ± {100 * alone['std']:.1f}", f"{100 * better:+.1f} ± {100 * spread:.1f}")
            else:
                percent.append(100 * better / alone["mean"])
                cells = (f"{best['mean']:.4g} ± {best['std']:.2g}", f"{alone['mean']:.4g} ± {alone['std']:.2g}",
                         f"{better:+.3g} ± {spread:.2g}")
            lines.append(f"{row['dataset']:<16}{metric[5:]:<19}{cells[0]:>17}{cells[1] + ' ' + alone['start']:>30}"
                         f"{cells[2]:>18}")
        lines.append(f"search ahead on {ahead} of {len(rows)}, level on {level}, behind within the spread on {within}, "
                     f"behind beyond it on {behind}; mean difference {statistics.fmean(points) if points else float('nan'):+.2f} points "
                     f"(classification), {statistics.fmean(percent) if percent else float('nan'):+.1f}% of the error "
                     f"(regression)")
    return "\n".join(lines)
