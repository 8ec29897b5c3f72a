"""autodnn: hyperparameter search for deep dense networks, measured against the book's defaults.

Importing the package loads neither Keras nor Optuna; the functions below import what they need.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from autodnn.config import TrialConfig
from autodnn.errors import (
    AutodnnError,
    ConfigError,
    DatasetError,
    SearchFailed,
    StudyError,
    TrialFailed,
    UsageError,
)
from autodnn.space import SearchSpace, load_space

if TYPE_CHECKING:
    from pathlib import Path

    import keras
    import optuna

    from autodnn.datasets import Dataset
    from autodnn.tuning import SearchOptions

__version__ = "0.1.0"

__all__ = [
    "AutodnnError",
    "ConfigError",
    "DatasetError",
    "SearchFailed",
    "SearchSpace",
    "StudyError",
    "TrialConfig",
    "TrialFailed",
    "UsageError",
    "export_best",
    "load_best",
    "load_dataset",
    "load_space",
    "search",
]


def search(options: SearchOptions | None = None, *, progress: bool | None = None, **kwargs: Any) -> optuna.Study:
    """Runs or resumes a search; keyword arguments are the fields of :class:`autodnn.tuning.SearchOptions`.

    Args:
        options: What to search; made from ``kwargs`` when None.
        progress: Show the search as ``autodnn search`` does: the study line, a tqdm bar (``tqdm.auto``: a
            widget in Jupyter) and a line per started and finished trial, in a notebook's output or on stderr.
            None (the default) shows it in a notebook or where stderr is a terminal, and nothing elsewhere;
            True also where there is no terminal, as plain lines (:mod:`autodnn.progress`); False never.
        **kwargs: The fields of :class:`autodnn.tuning.SearchOptions`.
    """
    from autodnn.progress import StudyProgress, in_notebook, progress_mode
    from autodnn.tuning import SearchOptions
    from autodnn.tuning import search as run

    options = options or SearchOptions(**kwargs)
    notebook = in_notebook()
    # stderr keeps a script's own stdout clean; in a notebook stderr is shaded as an error, stdout is not.
    stream = sys.stdout if notebook else sys.stderr
    mode = progress_mode(stream, progress)
    if mode == "off":
        return run(options)
    with StudyProgress(mode, n_trials=options.n_trials, max_epochs=options.max_epochs, timeout=options.timeout,
                       baselines=options.baselines, file=stream, notebook=notebook) as shown:
        callbacks = shown.callbacks()
        on_start = callbacks["on_start"]

        def started(study: optuna.Study, dataset: Any, space: Any, url: str) -> None:
            shown.timeout = options.timeout  # timeout="auto" is sized once the data is read
            on_start(study, dataset, space, url)

        return run(options, **{**callbacks, "on_start": started})


def load_dataset(spec: str, **kwargs: Any) -> Dataset:
    """Loads a dataset; see :func:`autodnn.datasets.load_dataset`."""
    from autodnn.datasets import load_dataset as load

    return load(spec, **kwargs)


def load_best(study_name: str, storage: str | None = None) -> keras.Model:
    """The best model that a study's final evaluation kept (the seed of median validation accuracy).

    An uncompiled ``keras.Model``: ``predict`` works as it is; compile it to evaluate or train it. See
    :func:`autodnn.export.load_best`.
    """
    from autodnn.export import load_best as load

    return load(study_name, storage)


def export_best(study_name: str, path: str | Path, storage: str | None = None) -> dict[str, Any]:
    """Writes that model to a ``.keras`` file and returns its record; see :func:`autodnn.export.export_best`."""
    from autodnn.export import export_best as export

    return export(study_name, path, storage)
