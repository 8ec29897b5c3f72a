"""The ``autodnn`` command line's arguments: one parser, a subcommand each, every error a ``UsageError``."""

from __future__ import annotations

import argparse
import re

from autodnn.backend import PRECISIONS
from autodnn.errors import UsageError

EPILOG = "Docs: README.md and docs/search-spaces.md. Add --debug to see a traceback on errors."


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage, so every error has one format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
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
    _metric_args(search)
    search.add_argument("--space", default="auto", help="search space: a name in search_spaces/ or a YAML path "
                        "(default: auto, conv for images (mnist, fashion_mnist, cifar10, images:PATH), else default: "
                        "everything chapter 11 teaches for dense nets)")
    _study_args(search, required=False)
    search.add_argument("--n-trials", type=int, default=100,
                        help="at most this many finished trials in the study; a rerun adds only the missing ones "
                             "(default: 100)")
    search.add_argument("--timeout", type=duration, default=DEFAULT_TIMEOUT, metavar="TIME",
                        help="the whole command, final evaluation included, ends within TIME (seconds, or 90s, 30m, "
                             "2h, 1h30m): the search stops in time for the evaluation's estimated share, its running "
                             "trial after its epoch (kept, pruned); 'none' for no limit (default: auto, by the data: 5m for "
                             "a table under 100,000 training cells, 15m under a million, 30m above and for images)")
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
    search.add_argument("--no-reference", action="store_true",
                        help="on a table, leave gradient-boosted trees out of the final evaluation")
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
    search.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="write TensorBoard logs under DIR, a folder per trial with its epoch scalars and "
                             "hyperparameters (view: tensorboard --logdir DIR); workers write relative to "
                             "their working directory")
    strategy = search.add_argument_group("search strategy")
    strategy.add_argument("--engine", default="optuna", choices=["optuna", "keras-tuner"],
                          help="who picks the configurations: autodnn's Optuna loop, or KerasTuner's oracles "
                               "(same space, trainer and study; default: optuna)")
    strategy.add_argument("--strategy", default="hyperband", choices=["hyperband", "bayesian", "random"],
                          help="KerasTuner's algorithm with --engine keras-tuner (default: hyperband)")
    strategy.add_argument("--sampler", default="tpe-local", choices=["tpe-local", "tpe", "random"],
                          help="Optuna's sampler: TPE with a third of the trials moving around the best so far "
                               "(tpe-local, the default), TPE alone, or random search")
    strategy.add_argument("--pruner", default="hyperband", choices=["hyperband", "halving", "median", "none"],
                          help="Optuna's pruner of hopeless trials (default: hyperband)")
    strategy.add_argument("--lr-finder", action="store_true",
                          help="run the learning-rate finder in every trial, whatever the space says")
    strategy.add_argument("--epoch-budget", type=int, default=None, metavar="EPOCHS",
                          help="stop starting trials once the searched trials trained this many epochs in all")
    strategy.add_argument("--no-warm-start", action="store_true",
                          help="leave out the designed start configurations (autodnn/tuning/warm_start.py) that "
                               "TPE otherwise trains first, at most a quarter of --n-trials")

    worker = sub.add_parser("worker", help="join a study made by 'autodnn search' and run its missing trials "
                            "(from any machine)", epilog=EPILOG)
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study database (default: $AUTODNN_STORAGE, else "
                             "sqlite:///studies/STUDY.db); e.g. postgresql://user@host/db")
    worker.add_argument("--backend", default="auto", choices=["auto", "jax", "tensorflow", "torch"],
                        help="Keras backend (default: auto = fastest installed)")
    worker.add_argument("--timeout", type=duration, default=None, metavar="TIME",
                        help="after TIME (seconds, or 90s, 30m, 2h, 1h30m) start no trial and stop the running one "
                             "after its epoch (kept, pruned)")
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
    evaluate.add_argument("--no-reference", action="store_true",
                          help="on a table, leave gradient-boosted trees out (default: as the search said)")
    evaluate.add_argument("--backend", default="auto", choices=["auto", "jax", "tensorflow", "torch"])

    export = sub.add_parser("export", help="write the best model that the final evaluation kept to a .keras file",
                            epilog=EPILOG)
    _study_args(export, required=True)
    export.add_argument("-o", "--output", default=None, metavar="PATH",
                        help="the .keras file to write (default: STUDY-best.keras in the current folder)")

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


#: ``autodnn search``'s budget when no ``--timeout`` is given: sized by the data
#: (:func:`autodnn.tuning.budget.default_seconds`), final evaluation included.
DEFAULT_TIMEOUT = "auto"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def duration(text: str) -> float | str | None:
    """Seconds in ``text``: a number of seconds (``900``), or hours, minutes and seconds (``2h``, ``1h30m``, ``90s``);
    None for ``none`` (no limit); ``"auto"`` for ``auto`` (sized by the data).

    Raises:
        argparse.ArgumentTypeError: Anything else, with what is expected.
    """
    value = text.strip().lower()
    if value == "none":
        return None
    if value == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        pass
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write seconds (900) or e.g. 30m, 2h, 1h30m")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits",
                        help="digits, iris, wine, breast_cancer, diabetes (regression), cifar10, mnist, fashion_mnist, csv:PATH, "
                             "parquet:PATH, npz:PATH or images:PATH (default: digits)")
    parser.add_argument("--data-dir", default=None, help="folder holding dataset files (e.g. cifar-10-python.tar.gz)")
    parser.add_argument("--target", default=None, help="target column of a csv/parquet dataset")
    parser.add_argument("--drop", type=_columns, default=(), metavar="COL[,COL]",
                        help="columns of a csv/parquet dataset to leave out")
    parser.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                        help="what the target is: auto (text, booleans and few whole numbers are classes, numbers "
                             "with fractions a regression; many whole numbers ask), classification or regression")
    parser.add_argument("--valid-fraction", type=_fraction, default="auto",
                        help="share of the training data held out for validation, or auto: a tenth, more on a small "
                             "table (about 100 rows, at most a quarter) (default: auto)")


def _metric_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metric", default="auto",
                        choices=("auto", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "rmse",
                                 "mae", "r2"),
                        help="what the search optimizes on validation (default auto: accuracy, balanced_accuracy "
                             "where a class holds under 10%% of the rows, rmse for a regression)")
    parser.add_argument("--class-weight", default="auto", choices=("auto", "none", "balanced"),
                        help="weigh each class's rows alike in the loss (default auto: balanced where a class holds "
                             "under 10%% of the rows)")


def _fraction(text: str) -> float | str:
    """``--valid-fraction``: ``auto`` or a number."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither auto nor a number; write e.g. --valid-fraction 0.2") from None


def _columns(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``: the column names of ``--drop``."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no column; write e.g. --drop id,date")
    return names


def _study_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    if required:
        parser.add_argument("study", help="study name")
    else:
        parser.add_argument("--study", default=None, help="study name (default: DATASET-SPACE)")
    parser.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study database (default: sqlite:///studies/STUDY.db)")
