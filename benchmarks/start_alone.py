"""The designed start alone, read from a finished study: what the study's best would have been without a search.

The designed start's configurations trained first in the study, with its seed, data and settings. Without a
search the product would pick among them as it picks among searched trials (the one of best validation score,
or, on a validation split under ``SMALL_VALIDATION`` rows, the one of best mean validation score over the
final evaluation's seeds) and retrain the pick with those seeds. So both figures are tests of runs chosen on
validation, with the same seeds: the difference pairs by seed.

    python benchmarks/start_alone.py --storage sqlite:///benchmarks/out/suite/wine.db --study wine
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any


def designed_start_alone(storage: str, name: str) -> dict[str, Any]:
    """The designed start's pick in study ``name`` and its test figure over the final evaluation's seeds.

    Returns:
        ``start`` (the configuration's name), ``trial``, ``mean`` and ``std`` of the study's headline test metric,
        ``runs``, and ``search_minus_start`` (the evaluated best minus the start's pick, paired by seed: mean,
        spread, seeds); an empty dict where the study has no finished designed start or no evaluation.
    """
    import optuna

    from autodnn.config import SMALL_VALIDATION, TrialConfig
    from autodnn.evaluate import headline_metric, paired_difference, summarize
    from autodnn.metrics import searched_of
    from autodnn.study.options import dataset_of, stored_options
    from autodnn.study.trial_record import CONFIG, WARM_START
    from autodnn.training.trainer import train

    study = optuna.load_study(study_name=name, storage=storage)
    evaluation = study.user_attrs.get("evaluation") or {}
    starts = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
              if t.user_attrs.get(WARM_START) and t.value is not None and CONFIG in t.user_attrs]
    if not starts or not evaluation.get("entries"):
        return {}
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    starts.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
    dataset, options = dataset_of(study), stored_options(study)
    metric = evaluation.get("metric") or ("rmse" if dataset.is_regression else "accuracy")
    score, headline = f"val_{searched_of(dataset.task, metric)}", headline_metric(evaluation)
    best = evaluation["entries"][0]
    small = dataset.sizes["valid"] < SMALL_VALIDATION and len(starts) >= 2

    def runs_of(trial: optuna.trial.FrozenTrial) -> list[dict[str, Any]]:
        if not best.get("baseline") and best.get("trial_number") == trial.number:
            return best["runs"]  # the search kept this very start: its evaluation runs are the start's
        config = TrialConfig.from_dict(trial.user_attrs[CONFIG])
        runs = []
        for seed in evaluation["seeds"]:
            result = train(config, dataset, max_epochs=evaluation["max_epochs"], seed=seed, evaluate_test=True,
                           metric=options.get("metric"))
            runs.append(result.evaluation_run(seed, 0.0))
        return runs

    candidates = starts if small else starts[:1]
    tried = [(trial, runs_of(trial)) for trial in candidates]
    sign = -1.0 if maximize else 1.0
    trial, runs = min(tried, key=lambda pair: sign * statistics.fmean(r[score] for r in pair[1]))
    figures = summarize(runs)
    difference, spread, paired = paired_difference(best, {"runs": runs}, headline)
    return {"start": trial.user_attrs[WARM_START], "trial": trial.number, "rule": "finalists" if small else "best",
            "mean": figures.get(f"{headline}_mean"), "std": figures.get(f"{headline}_std"), "runs": runs,
            "search_minus_start": {"mean": difference, "std": spread, "paired_seeds": paired}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    args = parser.parse_args(argv)
    found = designed_start_alone(args.storage, args.study)
    print({k: v for k, v in found.items() if k != "runs"} or "no finished designed start or no evaluation")
    return 0


if __name__ == "__main__":
    from autodnn.backend import select_backend

    select_backend("auto")
    raise SystemExit(main())
