"""The commands of ``autodnn``: each turns parsed arguments into a call of the package and prints its outcome."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any

from autodnn.cli._output import evaluation_table, nothing_searched_line, print_best
from autodnn.errors import SearchFailed, UsageError
from autodnn.study.trial_record import CONFIG, RESULT


def _search(args: argparse.Namespace) -> int:
    from autodnn.backend import configure_device, select_backend
    from autodnn.progress import StudyProgress, progress_mode
    from autodnn.space import load_space
    from autodnn.study.records import best_trial, searched_count
    from autodnn.study.urls import redact
    from autodnn.tuning import SearchOptions
    from autodnn.tuning.options import space_name
    from autodnn.tuning.run import search

    began = time.monotonic()
    args.space = space_name(args.space, args.dataset)
    select_backend(args.backend, family=load_space(args.space).family)
    configure_device(args.precision)
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, but got {args.seeds}")
    options = SearchOptions(
        dataset=args.dataset, space=args.space, study=args.study, storage=args.storage, n_trials=args.n_trials,
        timeout=args.timeout, final_seeds=0 if args.no_final else args.seeds, max_epochs=args.max_epochs,
        seed=args.seed, data_dir=args.data_dir,
        target=args.target, drop=args.drop, task=args.task, metric=args.metric, class_weight=args.class_weight,
        valid_fraction=args.valid_fraction, force=args.force,
        mc_samples=args.mc_samples,
        baselines=not args.no_baselines, workers=args.workers, gpus=args.gpus, trials_per_gpu=args.trials_per_gpu,
        mps=not args.no_mps, precision=args.precision,
        engine=args.engine, strategy=args.strategy, sampler=args.sampler, pruner=args.pruner,
        lr_finder=args.lr_finder, epoch_budget=args.epoch_budget, tensorboard=args.tensorboard,
        warm_start=not args.no_warm_start, reference=not args.no_reference,
    )
    opened: dict[str, Any] = {}
    # A bar where stdout is a terminal, plain lines where it is a log or a pipe, nothing extra with --quiet.
    progress = StudyProgress(progress_mode(sys.stdout, not args.quiet), n_trials=args.n_trials,
                             max_epochs=args.max_epochs, timeout=args.timeout, baselines=not args.no_baselines)

    def started(study: Any, dataset: Any, space: Any, url: str) -> None:
        opened.update(study=study, url=url)
        progress.timeout = options.timeout  # --timeout auto is sized once the data is read
        for note in () if args.quiet else dataset.notes:  # what became of a table's columns, before the study line
            print(note[:1].upper() + note[1:], flush=True)
        progress.on_start(study, dataset, space, url)

    try:
        with progress:  # closed (its last state left on screen) before the summary, an error or Ctrl-C prints
            study = search(options, on_start=started, on_trial_start=None if args.quiet else progress.on_trial_start,
                           on_epoch=None if args.quiet else progress.on_epoch,
                           on_trial=None if args.quiet else progress.on_trial, on_wait=progress.on_wait,
                           on_worker_line=progress.on_worker_line, on_budget=progress.display.write)
        print_best(study)
        if not args.no_final:
            if best_trial(study) is None:
                raise SearchFailed(nothing_searched_line(study, options.timeout, redact(opened["url"])))
            deadline = began + options.timeout if isinstance(options.timeout, (int, float)) else None
            _run_evaluation(study, args.seeds, quiet=args.quiet, reference=options.reference, deadline=deadline)
    except KeyboardInterrupt:
        if "study" not in opened:
            raise
        resume = shlex.join(["autodnn", *sys.argv[1:]]) if sys.argv[1:2] == ["search"] else "the same command"
        print(f"\nInterrupted: {searched_count(opened['study'])} finished trials are saved in "
              f"{redact(opened['url'])}. Resume with: {redact(resume)}", file=sys.stderr)
        return 130
    return 0


def _worker(args: argparse.Namespace) -> int:
    from autodnn.progress import StudyProgress, progress_mode
    from autodnn.study.urls import STORAGE_ENV, redact, storage_url
    from autodnn.workers import pin_to_cpus, run_worker, worker_id

    cpus = pin_to_cpus()
    url = storage_url(args.study, args.storage or os.environ.get(STORAGE_ENV))
    # Under 'autodnn search --workers N' stdout is a pipe: plain lines, which the search relays with a prefix.
    progress = StudyProgress(progress_mode(sys.stdout, not args.quiet), timeout=args.timeout)

    def started(study: Any, dataset: Any, target: int) -> None:
        from autodnn.study.records import finished_count

        on_cpus = f" on CPUs {','.join(map(str, cpus))}" if cpus else ""
        print(f"Worker {worker_id()}{on_cpus} joined study '{study.study_name}' in {redact(url)}: dataset "
              f"{dataset.name}, {finished_count(study)} of {target} trials finished.", flush=True)
        progress.open(study)

    def trial_done(study: Any, done: Any) -> None:
        if done.lost:
            progress.display.write(f"Trial {done.trial.number} was declared lost by another worker (no heartbeat "
                                   "in time) and runs again there; this result is discarded.")
        elif not args.quiet:
            progress.on_trial(study, done.trial)

    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, but got {args.timeout}")
    try:
        with progress:
            run_worker(args.study, url, backend=args.backend, timeout=args.timeout, on_start=started,
                       on_trial=trial_done, on_wait=None if args.quiet else progress.on_wait,
                       on_trial_start=None if args.quiet else progress.on_trial_start,
                       on_epoch=None if args.quiet else progress.on_epoch)
    except KeyboardInterrupt:
        print(f"Interrupted: worker {worker_id()} stopped; its running trial is marked failed and runs again.",
              file=sys.stderr)
        return 130
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from autodnn.study.dashboard import serve_dashboard
    from autodnn.study.urls import redact, storage_url

    def ready(address: str) -> None:
        print(f"optuna-dashboard on {redact(storage_url(args.study, args.storage))}: {address} (Ctrl-C stops it)",
              flush=True)

    try:
        serve_dashboard(args.study, args.storage, host=args.host, port=args.port, on_ready=ready)
    except KeyboardInterrupt:
        pass
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from autodnn.backend import select_backend
    from autodnn.space import stored_family
    from autodnn.study.storage import load_study

    study = load_study(args.study, args.storage)
    select_backend(args.backend, family=stored_family(study.user_attrs))
    _run_evaluation(study, args.seeds, quiet=False, max_epochs=args.max_epochs,
                    reference=False if args.no_reference else None)
    return 0


def _run_evaluation(study: Any, seeds: int, *, quiet: bool, max_epochs: int | None = None,
                    reference: bool | None = None, deadline: float | None = None) -> None:
    """Runs the final evaluation with its progress (``deadline``: ``time.monotonic()`` at which the command's
    budget ends, for the bar's time left) and prints its table and verdict."""
    from autodnn.config import SMALL_VALIDATION
    from autodnn.evaluate import FOLDS, contenders, evaluate, evaluation_entries
    from autodnn.progress import EvaluationProgress, progress_mode, score_name
    from autodnn.study.options import stored_options

    metric_name = stored_options(study).get("metric") or "accuracy"
    print(f"\nFinal evaluation: retraining the best configuration and the baselines with {seeds} seed(s), "
          "each tested once.", flush=True)
    n_valid = study.user_attrs.get("dataset", {}).get("sizes", {}).get("valid", SMALL_VALIDATION)
    candidates = contenders(study, evaluation_entries(study), n_valid)
    if candidates:
        print(f"Validation has {n_valid} rows, too few to choose on: the best is first chosen among "
              f"{', '.join(c['name'] for c in candidates)} by {FOLDS}-fold cross-validation of the training and "
              "validation rows (validation figures only).", flush=True)
    with EvaluationProgress(progress_mode(sys.stdout, not quiet), score=score_name(study),
                            test=f"test_{metric_name}", deadline=deadline) as progress:
        evaluation = evaluate(study, seeds=seeds, max_epochs=max_epochs, reference=reference, **progress.callbacks())
    print(evaluation_table(evaluation))
    if evaluation["selection"]["finalists"] or evaluation["selection"].get("baseline"):
        print(f"The best configuration is {evaluation['selection']['rule']}.")
    if evaluation.get("model"):
        from autodnn.study.artifacts import study_storage
        from autodnn.study.urls import redact, storage_url

        kept, url = evaluation["model"], study_storage(study).url
        where = "" if url == storage_url(study.study_name) else f" --storage {redact(url)}"
        metric = kept.get("metric", "test_accuracy")
        print(f"Kept the best configuration's network of seed {kept['seed']} (the median validation score "
              f"of the seeds; {metric} {kept[metric]:.4f}) in the study; "
              f"'autodnn export {study.study_name}{where}' writes it to a .keras file.")


def _export(args: argparse.Namespace) -> int:
    from autodnn.export import default_path, export_best, load_hint

    path = args.output or default_path(args.study)
    kept = export_best(args.study, path, storage=args.storage)
    metric = kept.get("metric", "test_accuracy")
    mean = kept.get(f"{metric}_mean")
    print(f"Wrote {kept['path']} ({kept['bytes'] / 1e3:.0f} kB): the best configuration (trial "
          f"{kept['trial_number']}) trained with seed {kept['seed']}, {metric} {kept[metric]:.4f}"
          + (f" (mean of {kept['n_seeds']} seeds {mean:.4f})." if mean is not None else "."))
    if kept.get("columns_path"):
        print(f"Wrote {kept['columns_path']}: the table's column encoder, fitted on the training rows; the network "
              "takes what it makes of the raw feature columns.")
    print("An inference copy, uncompiled and without its optimizer, taking unscaled inputs; load it in Python with:")
    print(f"  {load_hint(kept, kept['path'])}")
    if kept.get("imports"):
        print(f"  ({', '.join(kept['imports'])} registers autodnn's layers that this network uses.)")
    return 0


def _lr_find(args: argparse.Namespace) -> int:
    from pathlib import Path

    from autodnn.backend import select_backend
    from autodnn.datasets import load_dataset

    select_backend(args.backend)
    if args.iterations < 2:
        raise UsageError(f"--iterations must be >= 2, but got {args.iterations}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, but got {args.batch_size}")
    output = Path(args.output)
    if not output.parent.is_dir():
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write to {output.parent}: {exc.strerror}; choose another -o") from None
    config = _config_for(args)
    if args.batch_size is not None:
        config = config.replace(batch_size=args.batch_size)
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, target=args.target, drop=args.drop,
                           task=args.task, valid_fraction=args.valid_fraction, seed=args.seed)

    from autodnn.training.lr_finder import plot_lr_finder
    from autodnn.training.trainer import find_learning_rate

    result = find_learning_rate(config, dataset, seed=args.seed, iterations=args.iterations)
    png, js = output.with_suffix(".png"), output.with_suffix(".json")
    try:
        plot_lr_finder(result, png)
        js.write_text(json.dumps({"config": config.to_dict(), "dataset": dataset.describe(),
                                  "result": result.to_dict()}, indent=1))
    except OSError as exc:
        raise UsageError(f"cannot write {png}: {exc.strerror}; choose another -o") from None
    turning = f"{result.turning_point:.3g}" if result.turning_point else "none (the loss never went down)"
    print(f"Learning-rate finder on {dataset.name}, {config.n_hidden} x {config.n_units} {config.activation}, "
          f"{config.optimizer}, batch {config.batch_size}: {result.iterations} iterations"
          f"{', diverged' if result.diverged else ''}; turning point {turning}.")
    print(f"Pick: learning_rate = {result.suggestion:.3g}")
    print(f"Wrote {png} and {js}")
    return 0


def _config_for(args: argparse.Namespace) -> Any:
    if args.space:
        import optuna

        from autodnn.space import load_space

        space = load_space(args.space)
        return space.sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed)).ask())
    from autodnn.defaults import book_baselines

    return next(b.config for b in book_baselines() if b.name == args.preset)


def _report(args: argparse.Namespace) -> int:
    from autodnn.report import write_report

    path = write_report(args.studies, storage=args.storage, output=args.output)
    print(f"Wrote {path}")
    return 0


def _studies(args: argparse.Namespace) -> int:
    from pathlib import Path

    from autodnn.study.records import study_summaries
    from autodnn.study.urls import DEFAULT_STUDIES_DIR

    urls = [args.storage] if args.storage else [f"sqlite:///{p}" for p in sorted(DEFAULT_STUDIES_DIR.glob("*.db"))]
    rows = [row for url in urls for row in study_summaries(url)]
    if not rows:
        where = args.storage or f"{Path(DEFAULT_STUDIES_DIR)}/*.db"
        print(f"No studies in {where}.")
        return 0
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["best_value"] = frame["best_value"].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.4f}")
    print(frame.to_string(index=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    from autodnn.study.options import stored_options
    from autodnn.study.records import best_trial, trial_summaries, trials_frame
    from autodnn.study.storage import load_study
    from autodnn.study.strategy import engine_label, precision_of

    study = load_study(args.study, args.storage)
    if args.trials < 0:
        raise UsageError(f"--trials must be >= 0, but got {args.trials}")
    summaries = trial_summaries(study)  # read once: a study may hold 10,000 trials
    best = best_trial(study, summaries)
    if args.json:
        print(json.dumps(None if best is None else {
            "number": best.number, "value": best.value, "config": best.user_attrs.get(CONFIG),
            "result": best.user_attrs.get(RESULT)}, indent=2))
        return 0
    attrs = study.user_attrs
    dataset = attrs.get("dataset", {})
    env = attrs.get("environment", {})
    options = stored_options(study)
    precision = precision_of(options)
    precision = "" if precision == "float32" else f" ({precision})"
    print(f"Study {study.study_name}: dataset {dataset.get('name', '?')} (fingerprint "
          f"{dataset.get('fingerprint', '?')}), space {attrs.get('space', {}).get('name', '?')}, "
          f"backend {env.get('backend', '?')}{precision}, engine {engine_label(options) or '?'}")
    print_best(study, best)
    evaluation = attrs.get("evaluation")
    if evaluation and evaluation.get("entries"):
        print(f"\nFinal evaluation ({len(evaluation.get('seeds', []))} seed(s), test split):")
        print(evaluation_table(evaluation))
    frame = trials_frame(study, summaries)
    if frame.empty:
        return 0
    fixed = ["number", "state", "value", "epochs", "seconds", "predicted_s", "epoch_s", "baseline", "retry_of",
             "reason"]
    params = [c for c in frame.columns if c not in fixed]
    if not args.all_params:
        params = [c for c in params if frame[c].nunique(dropna=True) > 1][:8]
    for column in ("retry_of", "predicted_s", "epoch_s"):  # studies from before they were recorded
        if frame[column].isna().all():
            fixed.remove(column)
    if not frame["baseline"].astype(bool).any():
        fixed.remove("baseline")
    import pandas as pd

    shown = frame if args.trials == 0 else frame.tail(args.trials)
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.max_colwidth", 60):
        print("\nTrials:" if len(shown) == len(frame) else
              f"\nTrials (the last {len(shown)} of {len(frame)}; --trials 0 lists all):")
        print(shown[fixed + params].to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
    return 0


COMMANDS = {
    "search": _search,
    "worker": _worker,
    "dashboard": _dashboard,
    "evaluate": _evaluate,
    "export": _export,
    "lr-find": _lr_find,
    "report": _report,
    "studies": _studies,
    "show": _show,
}
