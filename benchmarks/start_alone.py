"""The designed start alone, read from a finished study: what the study's best would have been without a search.

The designed start's configurations trained first in the study, with its seed, data and settings. Without a
search the product would pick among them as it picks among searched trials: the one of best validation score,
or, on a validation split under ``SMALL_VALIDATION`` rows, the one of best mean validation score over the
final evaluation's cross-validation (:mod:`autodnn.training.crossval`) among the start's configurations and the
book's baselines, with the same folds and seeds. The pick is retrained with the final evaluation's seeds, so both
figures are tests of runs chosen on validation, with the same seeds: the difference pairs by seed.

    python benchmarks/start_alone.py --storage sqlite:///benchmarks/out/suite/wine.db --study wine
"""

from __future__ import annotations

import argparse
from typing import Any


def designed_start_alone(storage: str, name: str) -> dict[str, Any]:
    """The designed start's pick in study ``name`` and its test figure over the final evaluation's seeds.

    Returns:
        ``start`` (the configuration's name, or the baseline's where the cross-validation preferred one),
        ``trial``, ``rule``, ``mean`` and ``std`` of the study's headline test metric, ``runs``, and
        ``search_minus_start`` (the evaluated best minus the start's pick, paired by seed: mean, spread, seeds); an
        empty dict where the study has no finished designed start or no evaluation.
    """
    import optuna

    from autodnn.config import SMALL_VALIDATION, TrialConfig
    from autodnn.evaluate import SEED_OFFSET, headline_metric, paired_difference, summarize
    from autodnn.metrics import searched_of
    from autodnn.study.options import dataset_of, stored_options
    from autodnn.study.trial_record import CONFIG, WARM_START
    from autodnn.training.crossval import cross_validate, rank_key
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
    baselines = [e for e in evaluation["entries"][1:] if e.get("kind") == "baseline"]
    candidates = [{"name": t.user_attrs[WARM_START], "kind": "start", "trial_number": t.number,
                   "config": t.user_attrs[CONFIG]} for t in starts]
    small = dataset.sizes["valid"] < SMALL_VALIDATION and len(candidates) + len(baselines) >= 2
    if small:
        candidates += [{**e, "kind": "baseline"} for e in baselines]
        cross_validate(candidates, dataset, score=score, max_epochs=evaluation["max_epochs"],
                       seed=int(options.get("seed", 0)) + SEED_OFFSET, metric=options.get("metric"))
        candidates.sort(key=lambda c: rank_key(c, score))
    chosen = candidates[0]
    if chosen["kind"] == "baseline":
        runs = chosen["runs"]  # trained with the evaluation's seeds as a baseline
    elif not best.get("baseline") and best.get("trial_number") == chosen["trial_number"]:
        runs = best["runs"]  # the search kept this very start: its evaluation runs are the start's
    else:
        config = TrialConfig.from_dict(chosen["config"])
        runs = [train(config, dataset, max_epochs=evaluation["max_epochs"], seed=seed, evaluate_test=True,
                      metric=options.get("metric")).evaluation_run(seed, 0.0) for seed in evaluation["seeds"]]
    figures = summarize(runs)
    difference, spread, paired = paired_difference(best, {"runs": runs}, headline)
    return {"start": chosen["name"], "trial": chosen["trial_number"], "rule": "cross-validation" if small else "best",
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
