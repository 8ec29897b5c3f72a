"""What the command line prints after a search: the best trial and the final evaluation's table.

What it prints while the search runs (the study line, each trial, waits, workers' lines, the live bar or plain
progress lines) is :mod:`autodnn.progress`, which the Python API shares.
"""

from __future__ import annotations

from typing import Any

from autodnn.study.trial_record import CONFIG, RESULT


def evaluation_table(evaluation: dict) -> str:
    """One row a configuration (and the trees' reference on tables), then what the evaluation says plainly."""
    from autodnn.evaluate import plain_lines

    rows = []
    best = evaluation["entries"][0]
    reference = [evaluation["reference"]] if evaluation.get("reference") else []
    for entry in [*evaluation["entries"], *reference]:
        diff = "" if entry is best else f"{100 * (best['test_accuracy_mean'] - entry['test_accuracy_mean']):+.1f}"
        epochs = "rounds" if entry.get("kind") == "reference" else "epochs"  # boosting rounds: trees per class
        rows.append(f"  {entry['name']:<10} test_accuracy {100 * entry['test_accuracy_mean']:5.1f}% "
                    f"± {100 * entry['test_accuracy_std']:.1f}  {epochs} {entry['epochs_mean']:5.1f}  "
                    f"time {entry['seconds_mean']:6.1f} s" + (f"  best is {diff} points" if diff else "")
                    + (f"  ({entry['title']})" if entry.get("kind") == "reference" else ""))
    return "\n".join([*rows, *plain_lines(evaluation)])


def print_best(study: Any, best: Any = None) -> None:
    from autodnn.study.records import best_trial

    best = best or best_trial(study)
    if best is None:
        print("No trial completed yet.")
        return
    result = best.user_attrs.get(RESULT, {})
    print(f"\nBest trial {best.number}: val_accuracy {best.value:.4f} "
          f"(val_loss {result.get('val_loss', float('nan')):.4f}, {result.get('epochs')} epochs)")
    print("Configuration:")
    config = best.user_attrs.get(CONFIG, best.params)
    searched = set(best.params)
    for key, value in config.items():
        if key in searched or key == "learning_rate":
            print(f"  {key:<22} {value}")
