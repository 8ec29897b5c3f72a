"""autodnn: hyperparameter search for deep dense networks, measured against the book's defaults.

Importing the package loads neither Keras nor Optuna; the functions below import what they need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autodnn.config import TrialConfig
from autodnn.errors import AutodnnError, ConfigError, DatasetError, StudyError, TrialFailed, UsageError
from autodnn.space import SearchSpace, load_space

if TYPE_CHECKING:
    import optuna

    from autodnn.datasets import Dataset
    from autodnn.study.settings import SearchOptions

__version__ = "0.1.0"

__all__ = [
    "AutodnnError",
    "ConfigError",
    "DatasetError",
    "SearchSpace",
    "StudyError",
    "TrialConfig",
    "TrialFailed",
    "UsageError",
    "load_dataset",
    "load_space",
    "search",
]


def search(options: SearchOptions | None = None, **kwargs: Any) -> optuna.Study:
    """Runs or resumes a search; keyword arguments are the fields of :class:`autodnn.study.SearchOptions`."""
    from autodnn.study.search import search as run
    from autodnn.study.settings import SearchOptions

    return run(options or SearchOptions(**kwargs))


def load_dataset(spec: str, **kwargs: Any) -> Dataset:
    """Loads a dataset; see :func:`autodnn.datasets.load_dataset`."""
    from autodnn.datasets import load_dataset as load

    return load(spec, **kwargs)
