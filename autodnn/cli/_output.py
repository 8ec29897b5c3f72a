"""What the command line prints after a search: the best trial and the final evaluation's table.

What it prints while the search runs (the study line, each trial, waits, workers' lines, the live bar or plain
progress lines) is :mod:`autodnn.progress`, which the Python API shares.
"""

from __future__ import annotations

from typing import Any

from autodnn.study.trial_record import BASELINE, CONFIG, RESULT


def evaluation_table(evaluation: dict) -> str:
    """One row a configuration (and the trees' reference on tables), then what the evaluation says plainly.

    Rows give the study's metric on the test split (mean ± spread over the seeds) and how far the best is from
    each; a regression's rows add the MAE and R² beside the RMSE, in the target's units.
    """
    from autodnn.study.verdict import headline_metric, plain_lines, verdict_line

    metric = headline_metric(evaluation)
    best = evaluation["entries"][0]
    reference = [evaluation["reference"]] if evaluation.get("reference") else []
    rows = [_row(entry, best, metric, evaluation.get("task") == "regression")
            for entry in [*evaluation["entries"], *reference]]
    verdict = verdict_line(evaluation)
    return "\n".join([*rows, *([verdict] if verdict else []), *plain_lines(evaluation)])


def _row(entry: dict, best: dict, metric: str, regression: bool) -> str:
    from autodnn.study.verdict import in_points, paired_difference

    value, spread = entry.get(f"{metric}_mean"), entry.get(f"{metric}_std")
    # Best minus this entry over the seeds both ran, as the report and the verdict line take it.
    difference = None if entry is best else paired_difference(best, entry, metric)[0]
    if in_points(metric):
        shown = (f"{metric} {_figure(None if value is None else 100 * value, '5.1f')}% "
                 f"± {_figure(None if spread is None else 100 * spread, '.1f')}")
        diff = "" if difference is None else f"  best is {100 * difference:+.1f} points"
    else:
        shown = f"{metric} {_figure(value)} ± {_figure(spread)}"
        diff = ""
        if difference is not None and value:
            change = 100 * difference / abs(value)
            diff = f"  best's is {abs(change):.1f}% {'lower' if change < 0 else 'higher'}"
    if regression:
        shown += "".join(f"  {name} {_figure(entry.get(f'test_{name}_mean'), spec)}"
                         for name, spec in (("rmse", ".4g"), ("mae", ".4g"), ("r2", ".3f")) if f"test_{name}" != metric)
    epochs = "rounds" if entry.get("kind") == "reference" else "epochs"  # boosting rounds: trees per class
    return (f"  {entry['name']:<10} {shown}  {epochs} {entry['epochs_mean']:5.1f}  time {entry['seconds_mean']:6.1f} s"
            + diff + (f"  ({entry['title']})" if entry.get("kind") == "reference" else ""))


def _figure(value: float | None, spec: str = ".4g") -> str:
    return "nan" if value is None else format(value, spec)


def nothing_searched_line(study: Any, timeout: Any, url: str) -> str:
    """Why a search ends without a configuration of its own to evaluate, and what to give it instead."""
    from optuna.trial import TrialState

    from autodnn.study.records import baseline_trials
    from autodnn.tuning.budget import clock

    trained = [t for t in baseline_trials(study) if t.state == TrialState.COMPLETE and t.duration is not None]
    spent = sum(t.duration.total_seconds() for t in trained)
    took = f" (the book's {', '.join(t.user_attrs[BASELINE] for t in trained)} took {clock(spent)})" if trained else ""
    budget = f"the {clock(timeout)} budget" if isinstance(timeout, (int, float)) else "the search"
    fewer = "fewer --seeds or --no-baselines" if trained else "fewer --seeds"
    return (f"{budget} ended before any searched configuration completed{took}, and the final evaluation needs one; "
            f"the study is kept in {url}: run the same command with a longer --timeout to go on where it stopped, "
            f"or with {fewer}")


def print_best(study: Any, best: Any = None) -> None:
    from autodnn.study.records import best_trial

    best = best or best_trial(study)
    if best is None:
        print("No searched configuration completed yet.")
        return
    result = best.user_attrs.get(RESULT, {})
    metric = (study.metric_names or ["val_accuracy"])[0] if hasattr(study, "metric_names") else "val_accuracy"
    print(f"\nBest trial {best.number}: {metric} {best.value:.4f} "
          f"(val_loss {result.get('val_loss', float('nan')):.4f}, {result.get('epochs')} epochs)")
    print("Configuration:")
    config = best.user_attrs.get(CONFIG, best.params)
    searched = set(best.params)
    for key, value in config.items():
        if key in searched or key == "learning_rate":
            print(f"  {key:<22} {value}")
