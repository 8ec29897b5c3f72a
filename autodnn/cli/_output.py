"""What the command line prints of a search: each trial, the best one, waits, workers' lines, the final table."""

from __future__ import annotations

import sys
from typing import Any


def print_wait(study: Any, running: int) -> None:
    from autodnn.study.storage import heartbeat_settings

    print(f"Waiting: the {running} missing trial(s) run in other workers; a lost worker's trial is retried here "
          f"after {heartbeat_settings()[1]} s without a heartbeat.", flush=True)


def print_worker_line(plan: Any, stream: str, line: str) -> None:
    print(f"[{plan.label}] {line}", file=sys.stdout if stream == "stdout" else sys.stderr, flush=True)


def evaluation_table(evaluation: dict) -> str:
    rows = []
    best = evaluation["entries"][0]
    for entry in evaluation["entries"]:
        diff = "" if entry is best else f"{100 * (best['test_accuracy_mean'] - entry['test_accuracy_mean']):+.1f}"
        rows.append(f"  {entry['name']:<10} test_accuracy {100 * entry['test_accuracy_mean']:5.1f}% "
                    f"± {100 * entry['test_accuracy_std']:.1f}  epochs {entry['epochs_mean']:5.1f}  "
                    f"time {entry['seconds_mean']:6.1f} s" + (f"  best is {diff} points" if diff else ""))
    return "\n".join(rows)


def print_trial(study: Any, trial: Any) -> None:
    from autodnn.study.records import searched_count

    result = trial.user_attrs.get("result", {})
    label = trial.user_attrs.get("baseline", f"{trial.number:>3}")
    parts = [f"Trial {label:<9} {trial.state.name.lower():<8}"]
    if trial.value is not None:
        parts.append(f"val_accuracy {trial.value:.4f}")
    if result:
        parts.append(f"{result.get('epochs')} epochs, {sum(trial.user_attrs.get('epoch_times', [])):.1f} s")
    if trial.user_attrs.get("reason"):
        parts.append(trial.user_attrs["reason"])
    if trial.system_attrs.get("failed_trial") is not None:
        parts.append(f"retry of trial {trial.system_attrs['failed_trial']} (its worker was lost)")
    parts.append(f"[{searched_count(study)} searched]")
    print("  ".join(parts), flush=True)


def print_best(study: Any, best: Any = None) -> None:
    from autodnn.study.records import best_trial

    best = best or best_trial(study)
    if best is None:
        print("No trial completed yet.")
        return
    result = best.user_attrs.get("result", {})
    print(f"\nBest trial {best.number}: val_accuracy {best.value:.4f} "
          f"(val_loss {result.get('val_loss', float('nan')):.4f}, {result.get('epochs')} epochs)")
    print("Configuration:")
    config = best.user_attrs.get("config", best.params)
    searched = set(best.params)
    for key, value in config.items():
        if key in searched or key == "learning_rate":
            print(f"  {key:<22} {value}")
