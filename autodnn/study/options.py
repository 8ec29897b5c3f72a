"""The search's options as a study stores them: what a worker, the final evaluation and the report read back.

:class:`autodnn.tuning.options.SearchOptions` writes them (``autodnn search``); this module only reads them,
so that the floors below the search never import it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodnn.errors import StudyError, UsageError

if TYPE_CHECKING:
    import optuna

#: The study attribute holding the options of the search that made the study (a plain dict). Its name is
#: part of the storage format: studies made by earlier versions keep theirs.
OPTIONS = "settings"


def stored_options(study: optuna.Study) -> dict[str, Any]:
    """The options the study was searched with, or ``{}`` for a study no ``autodnn search`` made."""
    return dict(study.user_attrs.get(OPTIONS) or {})


def require_options(study: optuna.Study, where: str) -> dict[str, Any]:
    """The stored options, for commands that cannot work without them.

    Raises:
        StudyError: The study was not made by ``autodnn search``.
    """
    options = stored_options(study)
    if not options or "space" not in study.user_attrs:
        raise StudyError(f"study '{study.study_name}' in {where} was not made by 'autodnn search' (it has no "
                         "stored options); start it with 'autodnn search --study NAME --storage URL'")
    return options


def dataset_of(study: optuna.Study) -> Any:
    """Reloads the dataset a study was made for and checks that its fingerprint still matches.

    Raises:
        StudyError: The study lacks its options, or the data changed since the search.
    """
    from autodnn.datasets import load_dataset

    options = stored_options(study)
    stored = study.user_attrs.get("dataset", {})
    if not options:
        raise StudyError(f"study '{study.study_name}' was not made by 'autodnn search': it has no stored options")
    dataset = load_dataset(options["dataset_spec"], data_dir=options.get("data_dir"), target=options.get("target"),
                           drop=options.get("drop") or (), task=options.get("task") or "auto",
                           valid_fraction=options["valid_fraction"],
                           seed=options["seed"])
    if stored.get("fingerprint") and stored["fingerprint"] != dataset.fingerprint:
        raise StudyError(
            f"dataset {dataset.name} changed since study '{study.study_name}' was made (fingerprint "
            f"{dataset.fingerprint}, not {stored['fingerprint']}); restore the data or start a new study"
        )
    return dataset


def check_tensorboard(folder: str) -> None:
    """Checks, writing nothing, that TensorBoard logs can be written under ``folder`` (``--tensorboard``).

    Raises:
        UsageError: TensorFlow or the tensorboard package is missing, or ``folder`` cannot be created or
            written (a file stands in its way, or a parent is not writable).
    """
    # Found, not imported: TensorFlow takes seconds to import, and this layer stays free of it.
    if importlib.util.find_spec("tensorboard") is None or importlib.util.find_spec("tensorflow") is None:
        raise UsageError("--tensorboard needs TensorFlow's tensorboard package: pip install tensorboard")
    path = Path(folder)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise UsageError(f"--tensorboard {folder!r} {what}, not a folder; give a folder for the logs")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--tensorboard {folder!r} cannot be written: {existing} is not writable; "
                         "give a folder you can write to")
