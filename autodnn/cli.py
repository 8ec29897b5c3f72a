"""The ``autodnn`` command line: argument parsing and user-facing errors; every command calls the package."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from autodnn.backend import PRECISIONS
from autodnn.errors import AutodnnError, UsageError

EPILOG = "Docs: README.md and docs/search-spaces.md. Add --debug to see a traceback on errors."


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage, so every error has one format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="autodnn",
        description="Search hyperparameters of deep dense networks and compare them with the book's defaults.",
        epilog=EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    search = sub.add_parser("search", help="run or resume a hyperparameter search", epilog=EPILOG)
    _data_args(search)
    search.add_argument("--space", default="quick", help="search space: a name in search_spaces/ or a YAML path "
                        "(default: quick)")
    _study_args(search, required=False)
    search.add_argument("--n-trials", type=int, default=20,
                        help="finished trials the study should hold; a rerun adds only the missing ones (default: 20)")
    search.add_argument("--timeout", type=float, default=None, help="stop starting trials after SECONDS")
    search.add_argument("--max-epochs", type=int, default=50, help="epoch budget of a trial (default: 50)")
    search.add_argument("--seed", type=int, default=0, help="seeds sampling, the data split and training")
    search.add_argument("--backend", default="auto", choices=["auto", "jax", "tensorflow", "torch"],
                        help="Keras backend (default: auto = fastest installed)")
    search.add_argument("--mc-samples", type=int, default=0,
                        help="MC-dropout passes at evaluation for nets with dropout (default: 0 = off)")
    search.add_argument("--force", action="store_true",
                        help="continue a study that was made for another dataset or search space")
    search.add_argument("--no-baselines", action="store_true",
                        help="do not train the book's default configurations in this study")
    search.add_argument("--no-final", action="store_true",
                        help="skip the final evaluation (retraining with --seeds seeds and testing)")
    search.add_argument("--seeds", type=int, default=3,
                        help="seeds of the final evaluation (default: 3)")
    search.add_argument("--quiet", action="store_true", help="print only the final summary")
    search.add_argument("--workers", type=int, default=1,
                        help="worker processes on this machine sharing the study (default: 1 = this process)")
    search.add_argument("--gpus", default=None, metavar="LIST",
                        help="GPU indices (e.g. 0,1) or 'all': one worker process per GPU")
    search.add_argument("--trials-per-gpu", type=int, default=1, metavar="K",
                        help="worker processes sharing each GPU of --gpus, for small nets (default: 1)")
    search.add_argument("--no-mps", action="store_true",
                        help="do not run the workers sharing a GPU under NVIDIA MPS (used when installed)")
    search.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="dtype policy of every trial; the mixed ones compute in 16 bits on GPUs "
                             "(default: float32)")
    strategy = search.add_argument_group("search strategy")
    strategy.add_argument("--engine", default="optuna", choices=["optuna", "keras-tuner"],
                          help="who picks the configurations: autodnn's Optuna loop, or KerasTuner's oracles "
                               "(same space, trainer and study; default: optuna)")
    strategy.add_argument("--strategy", default="hyperband", choices=["hyperband", "bayesian", "random"],
                          help="KerasTuner's algorithm with --engine keras-tuner (default: hyperband)")
    strategy.add_argument("--sampler", default="tpe", choices=["tpe", "random"],
                          help="Optuna's sampler (default: tpe)")
    strategy.add_argument("--pruner", default="hyperband", choices=["hyperband", "halving", "median", "none"],
                          help="Optuna's pruner of hopeless trials (default: hyperband)")
    strategy.add_argument("--lr-finder", action="store_true",
                          help="run the learning-rate finder in every trial, whatever the space says")
    strategy.add_argument("--epoch-budget", type=int, default=None, metavar="EPOCHS",
                          help="stop starting trials once the searched trials trained this many epochs in all")

    worker = sub.add_parser("worker", help="join a study made by 'autodnn search' and run its missing trials "
                            "(from any machine)", epilog=EPILOG)
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study database (default: $AUTODNN_STORAGE, else "
                             "sqlite:///studies/STUDY.db); e.g. postgresql://user@host/db")
    worker.add_argument("--backend", default="auto", choices=["auto", "jax", "tensorflow", "torch"],
                        help="Keras backend (default: auto = fastest installed)")
    worker.add_argument("--timeout", type=float, default=None, help="stop starting trials after SECONDS")
    worker.add_argument("--quiet", action="store_true", help="print only errors")

    dashboard = sub.add_parser("dashboard", help="open optuna-dashboard on a study's storage "
                               "(pip install 'autodnn[dashboard]')", epilog=EPILOG)
    _study_args(dashboard, required=True)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")

    evaluate = sub.add_parser("evaluate", help="retrain the best configuration and the baselines; test once",
                              epilog=EPILOG)
    _study_args(evaluate, required=True)
    evaluate.add_argument("--seeds", type=int, default=3, help="trainings per configuration (default: 3)")
    evaluate.add_argument("--max-epochs", type=int, default=None, help="epoch budget (default: the study's)")
    evaluate.add_argument("--backend", default="auto", choices=["auto", "jax", "tensorflow", "torch"])

    finder = sub.add_parser("lr-find", help="run the learning-rate finder; print the pick, write PNG and JSON",
                            epilog=EPILOG)
    _data_args(finder)
    which = finder.add_mutually_exclusive_group()
    which.add_argument("--space", default=None,
                       help="take the configuration from this search space (sampled with --seed)")
    which.add_argument("--preset", default="book-3e", choices=["book-2e", "book-3e", "book-selu"],
                       help="take one of the book's default configurations (default: book-3e, 20 x 100)")
    finder.add_argument("--batch-size", type=int, default=None, help="override the configuration's batch size")
    finder.add_argument("--iterations", type=int, default=500, help="steps of the sweep (default: 500)")
    finder.add_argument("--seed", type=int, default=0)
    finder.add_argument("--backend", default="auto", choices=["auto", "jax", "tensorflow", "torch"])
    finder.add_argument("-o", "--output", default="reports/lr-find",
                        help="path prefix of the PNG and JSON files (default: reports/lr-find)")

    report = sub.add_parser("report", help="write a self-contained HTML report of one or more studies",
                            epilog=EPILOG)
    report.add_argument("studies", nargs="+", metavar="STUDY", help="study names (several: side by side)")
    report.add_argument("--storage", default=None,
                        help="SQLAlchemy URL holding the studies (default: sqlite:///studies/STUDY.db each)")
    report.add_argument("-o", "--output", default=None, help="HTML file (default: reports/STUDY.html)")

    studies = sub.add_parser("studies", help="list the studies of a storage", epilog=EPILOG)
    studies.add_argument("--storage", default=None,
                         help="SQLAlchemy URL (default: every studies/*.db)")

    show = sub.add_parser("show", help="best configuration and trials of a study", epilog=EPILOG)
    _study_args(show, required=True)
    show.add_argument("--all-params", action="store_true", help="show every parameter column")
    show.add_argument("--json", action="store_true", help="print the best trial as JSON")
    show.add_argument("--trials", type=int, default=100, metavar="N",
                      help="list the last N trials (default: 100; 0 lists all)")
    return parser


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits",
                        help="digits, iris, wine, breast_cancer, cifar10, mnist, fashion_mnist, csv:PATH, "
                             "parquet:PATH, npz:PATH or images:PATH (default: digits)")
    parser.add_argument("--data-dir", default=None, help="folder holding dataset files (e.g. cifar-10-python.tar.gz)")
    parser.add_argument("--target", default=None, help="target column of a csv/parquet dataset")
    parser.add_argument("--valid-fraction", type=float, default=0.1,
                        help="share of the training data held out for validation (default: 0.1)")


def _study_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    if required:
        parser.add_argument("study", help="study name")
    else:
        parser.add_argument("--study", default=None, help="study name (default: DATASET-SPACE)")
    parser.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study database (default: sqlite:///studies/STUDY.db)")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns its exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = _parser().parse_args(argv)
        _quiet_libraries(debug)
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except AutodnnError as exc:
        if debug:
            raise
        print(f"Error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)


def _quiet_libraries(debug: bool) -> None:
    """Trials report their own outcome in one line; Optuna's per-trial logging (with tracebacks) only on --debug."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if debug else optuna.logging.ERROR)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _search(args: argparse.Namespace) -> int:
    from autodnn.backend import configure_device, select_backend
    from autodnn.study import SearchOptions, redact, search, searched_count

    select_backend(args.backend)
    configure_device(args.precision)
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, but got {args.seeds}")
    options = SearchOptions(
        dataset=args.dataset, space=args.space, study=args.study, storage=args.storage, n_trials=args.n_trials,
        timeout=args.timeout, max_epochs=args.max_epochs, seed=args.seed, data_dir=args.data_dir,
        target=args.target, valid_fraction=args.valid_fraction, force=args.force, mc_samples=args.mc_samples,
        baselines=not args.no_baselines, workers=args.workers, gpus=args.gpus, trials_per_gpu=args.trials_per_gpu,
        mps=not args.no_mps, precision=args.precision,
        engine=args.engine, strategy=args.strategy, sampler=args.sampler, pruner=args.pruner,
        lr_finder=args.lr_finder, epoch_budget=args.epoch_budget,
    )
    opened: dict[str, Any] = {}

    def started(study: Any, dataset: Any, space: Any, url: str) -> None:
        opened.update(study=study, url=url)
        print(f"Study '{study.study_name}' in {redact(url)}: dataset {dataset.name} ({dataset.sizes['train']} "
              f"train / {dataset.sizes['valid']} valid / {dataset.sizes['test']} test), space {space.name}, "
              f"{searched_count(study)} of {args.n_trials} trials finished"
              f"{'' if args.no_baselines else ', book baselines first'}.", flush=True)

    try:
        study = search(options, on_start=started, on_trial=None if args.quiet else _print_trial,
                       on_wait=_print_wait, on_worker_line=_print_worker_line)
        _print_best(study)
        if not args.no_final:
            _run_evaluation(study, args.seeds, quiet=args.quiet)
    except KeyboardInterrupt:
        if "study" not in opened:
            raise
        resume = shlex.join(["autodnn", *sys.argv[1:]]) if sys.argv[1:2] == ["search"] else "the same command"
        print(f"\nInterrupted: {searched_count(opened['study'])} finished trials are saved in "
              f"{redact(opened['url'])}. Resume with: {redact(resume)}", file=sys.stderr)
        return 130
    return 0


def _print_wait(study: Any, running: int) -> None:
    from autodnn.study import heartbeat_settings

    print(f"Waiting: the {running} missing trial(s) run in other workers; a lost worker's trial is retried here "
          f"after {heartbeat_settings()[1]} s without a heartbeat.", flush=True)


def _print_worker_line(plan: Any, stream: str, line: str) -> None:
    print(f"[{plan.label}] {line}", file=sys.stdout if stream == "stdout" else sys.stderr, flush=True)


def _worker(args: argparse.Namespace) -> int:
    from autodnn.study import STORAGE_ENV, redact, storage_url
    from autodnn.workers import pin_to_cpus, run_worker, worker_id

    cpus = pin_to_cpus()
    url = storage_url(args.study, args.storage or os.environ.get(STORAGE_ENV))

    def started(study: Any, dataset: Any, target: int) -> None:
        from autodnn.study import finished_count

        on_cpus = f" on CPUs {','.join(map(str, cpus))}" if cpus else ""
        print(f"Worker {worker_id()}{on_cpus} joined study '{study.study_name}' in {redact(url)}: dataset "
              f"{dataset.name}, {finished_count(study)} of {target} trials finished.", flush=True)

    def trial_done(study: Any, progress: Any) -> None:
        if progress.lost:
            print(f"Trial {progress.trial.number} was declared lost by another worker (no heartbeat in time) "
                  "and runs again there; this result is discarded.", flush=True)
        elif not args.quiet:
            _print_trial(study, progress.trial)

    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, but got {args.timeout}")
    try:
        run_worker(args.study, url, backend=args.backend, timeout=args.timeout, on_start=started,
                   on_trial=trial_done, on_wait=None if args.quiet else _print_wait)
    except KeyboardInterrupt:
        print(f"Interrupted: worker {worker_id()} stopped; its running trial is marked failed and runs again.",
              file=sys.stderr)
        return 130
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from autodnn.study import redact, serve_dashboard, storage_url

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
    from autodnn.study import load_study

    select_backend(args.backend)
    study = load_study(args.study, args.storage)
    _run_evaluation(study, args.seeds, quiet=False, max_epochs=args.max_epochs)
    return 0


def _run_evaluation(study: Any, seeds: int, *, quiet: bool, max_epochs: int | None = None) -> None:
    from autodnn.evaluate import evaluate

    def progress(entry: dict, run: dict) -> None:
        if not quiet:
            print(f"  {entry['name']:<10} seed {run['seed']}: test_accuracy {run['test_accuracy']:.4f} "
                  f"({run['epochs']} epochs, {run['seconds']:.1f} s)", flush=True)

    print(f"\nFinal evaluation: retraining the best configuration and the baselines with {seeds} seed(s), "
          "each tested once.", flush=True)
    evaluation = evaluate(study, seeds=seeds, max_epochs=max_epochs, on_run=progress)
    print(_evaluation_table(evaluation))


def _evaluation_table(evaluation: dict) -> str:
    rows = []
    best = evaluation["entries"][0]
    for entry in evaluation["entries"]:
        diff = "" if entry is best else f"{100 * (best['test_accuracy_mean'] - entry['test_accuracy_mean']):+.1f}"
        rows.append(f"  {entry['name']:<10} test_accuracy {100 * entry['test_accuracy_mean']:5.1f}% "
                    f"± {100 * entry['test_accuracy_std']:.1f}  epochs {entry['epochs_mean']:5.1f}  "
                    f"time {entry['seconds_mean']:6.1f} s" + (f"  best is {diff} points" if diff else ""))
    return "\n".join(rows)


def _print_trial(study: Any, trial: Any) -> None:
    from autodnn.study import searched_count

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


def _print_best(study: Any, best: Any = None) -> None:
    from autodnn.study import best_trial

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
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, target=args.target,
                           valid_fraction=args.valid_fraction, seed=args.seed)

    from autodnn.lr_finder import plot_lr_finder
    from autodnn.trainer import find_learning_rate

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

    from autodnn.study import DEFAULT_STUDIES_DIR, study_summaries

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
    from autodnn.study import best_trial, engine_label, load_study, precision_of, trial_summaries, trials_frame

    study = load_study(args.study, args.storage)
    if args.trials < 0:
        raise UsageError(f"--trials must be >= 0, but got {args.trials}")
    summaries = trial_summaries(study)  # read once: a study may hold 10,000 trials
    best = best_trial(study, summaries)
    if args.json:
        print(json.dumps(None if best is None else {
            "number": best.number, "value": best.value, "config": best.user_attrs.get("config"),
            "result": best.user_attrs.get("result")}, indent=2))
        return 0
    attrs = study.user_attrs
    dataset = attrs.get("dataset", {})
    env = attrs.get("environment", {})
    settings = attrs.get("settings") or {}
    precision = precision_of(settings)
    precision = "" if precision == "float32" else f" ({precision})"
    print(f"Study {study.study_name}: dataset {dataset.get('name', '?')} (fingerprint "
          f"{dataset.get('fingerprint', '?')}), space {attrs.get('space', {}).get('name', '?')}, "
          f"backend {env.get('backend', '?')}{precision}, engine {engine_label(settings) or '?'}")
    _print_best(study, best)
    frame = trials_frame(study, summaries)
    if frame.empty:
        return 0
    fixed = ["number", "state", "value", "epochs", "seconds", "baseline", "retry_of", "reason"]
    params = [c for c in frame.columns if c not in fixed]
    if not args.all_params:
        params = [c for c in params if frame[c].nunique(dropna=True) > 1][:8]
    if frame["retry_of"].isna().all():
        fixed.remove("retry_of")
    if not frame["baseline"].astype(bool).any():
        fixed.remove("baseline")
    import pandas as pd

    shown = frame if args.trials == 0 else frame.tail(args.trials)
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.max_colwidth", 60):
        print("\nTrials:" if len(shown) == len(frame) else
              f"\nTrials (the last {len(shown)} of {len(frame)}; --trials 0 lists all):")
        print(shown[fixed + params].to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
    return 0


_COMMANDS = {
    "search": _search,
    "worker": _worker,
    "dashboard": _dashboard,
    "evaluate": _evaluate,
    "lr-find": _lr_find,
    "report": _report,
    "studies": _studies,
    "show": _show,
}


if __name__ == "__main__":
    sys.exit(main())
