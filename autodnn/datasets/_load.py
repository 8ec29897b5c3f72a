"""``load_dataset``: from a ``--dataset`` spec to a :class:`Dataset`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

from autodnn.datasets._dataset import Dataset, RawData
from autodnn.datasets._images import is_tar, load_images
from autodnn.datasets._prepare import build_dataset, check_options
from autodnn.datasets._tabular import (
    SKLEARN_LOADERS,
    SKLEARN_REGRESSIONS,
    load_csv,
    load_npz,
    load_parquet,
    load_sklearn,
)
from autodnn.datasets._targets import check_task
from autodnn.datasets._vision import load_cifar10, load_fashion_mnist, load_mnist
from autodnn.errors import DatasetError

_VISION_LOADERS: dict[str, Callable[[str | Path | None], RawData]] = {
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}

#: Prefixes of file specs (``csv:PATH`` ...) and whether they take ``--target``.
FILE_PREFIXES = {"csv": True, "parquet": True, "npz": False, "images": False}


def dataset_names() -> tuple[str, ...]:
    """Returns the names of the built-in datasets, for ``--help`` and "did you mean" suggestions."""
    return (*SKLEARN_LOADERS, *_VISION_LOADERS)


def is_image_spec(spec: str) -> bool:
    """Whether ``spec`` names image data without reading it: ``mnist``, ``fashion_mnist``, ``cifar10`` or
    ``images:PATH``."""
    return spec in _VISION_LOADERS or spec.startswith("images:")


def load_dataset(
    spec: str,
    *,
    data_dir: str | Path | None = None,
    target: str | None = None,
    valid_fraction: float | str = "auto",
    seed: int = 0,
    scaling: str = "standard",
    drop: str | tuple[str, ...] | list[str] | None = None,
    task: str = "auto",
) -> Dataset:
    """Loads a dataset, splits it into train, valid and test parts, and scales its features.

    Args:
        spec: A built-in name (see :func:`dataset_names`) or a file: ``csv:PATH``, ``parquet:PATH`` (both with
            ``target``), ``npz:PATH`` (arrays ``x_train``, ``y_train``, optionally ``x_test``, ``y_test``), or
            ``images:PATH`` (a folder or tar archive of ``train/<class>/*`` and optionally ``test/<class>/*``).
        data_dir: Folder searched before Keras' cache for ``mnist``, ``fashion_mnist`` and ``cifar10``.
        target: Column holding the classes, for ``csv:`` and ``parquet:`` specs only.
        valid_fraction: Fraction of the training part held out for validation, in ``(0, 0.5]``, or ``auto``: a
            tenth, more on a small table, up to a quarter, so that validation holds about 100 rows. Sources without
            a test part of their own also give 20 % of their examples to the test part first.
        seed: Seed of the shuffles and the stratified splits; the same seed gives the same arrays.
        scaling: ``"standard"``: per-feature mean 0 and standard deviation 1 on ``x_train`` (constant features
            are only centered); ``"unit"``: images divided by 255, other data min-max scaled to [0, 1] on
            ``x_train``; ``"none"``: the raw values as float32. Statistics always come from ``x_train`` alone.
        drop: Feature columns of a ``csv:`` or ``parquet:`` table to leave out (a name, or several).
        task: ``"auto"`` (:mod:`autodnn.datasets._targets` says how a target is read), ``"classification"`` or
            ``"regression"``; for ``csv:``, ``parquet:`` and ``npz:`` data (a built-in dataset has its own).

    Returns:
        The dataset, with a fingerprint of its raw data and of these settings.

    Raises:
        DatasetError: The spec is unknown, the data cannot be found or read, or the options are out of range.
    """
    check_options(valid_fraction, seed, scaling)
    check_task(task)
    columns = (drop,) if isinstance(drop, str) else tuple(drop or ())
    name, raw = _read(spec, data_dir=data_dir, target=target, drop=columns, task=task)
    return build_dataset(name, raw, valid_fraction=valid_fraction, seed=seed, scaling=scaling)


def _read(spec: str, *, data_dir: str | Path | None, target: str | None, drop: tuple[str, ...], task: str
          ) -> tuple[str, RawData]:
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError(f"dataset spec must be a name or PREFIX:PATH, but got {spec!r}; {_known()}")
    spec = spec.strip()
    prefix, sep, rest = spec.partition(":")
    if sep and prefix.lower() in FILE_PREFIXES:
        prefix = prefix.lower()
        if target is not None and not FILE_PREFIXES[prefix]:
            raise DatasetError(f"--target {target} only applies to csv: and parquet: datasets, not {prefix}:; "
                               "drop --target")
        if drop and not FILE_PREFIXES[prefix]:
            raise DatasetError(f"--drop {','.join(drop)} only applies to csv: and parquet: tables, not {prefix}:; "
                               "leave out --drop")
        path = _existing_path(prefix, rest)
        name = f"{prefix}:{path}"
        if prefix == "csv":
            return name, load_csv(path, target, drop, task)
        if prefix == "parquet":
            return name, load_parquet(path, target, drop, task)
        if prefix == "npz":
            return name, load_npz(path, task)
        if task == "regression":
            raise DatasetError(f"images:{rest} holds classes (one folder each); --task regression does not apply, "
                               "leave it out")
        return name, load_images(path)
    builtin = spec.lower().replace("-", "_")
    if builtin in SKLEARN_LOADERS or builtin in _VISION_LOADERS:
        if target is not None:
            raise DatasetError(f"--target {target} only applies to csv: and parquet: datasets, not {builtin}; "
                               "drop --target")
        if drop:
            raise DatasetError(f"--drop {','.join(drop)} only applies to csv: and parquet: tables, not {builtin}; "
                               "leave out --drop")
        own = "regression" if builtin in SKLEARN_REGRESSIONS else "classification"
        if task not in ("auto", own):
            raise DatasetError(f"{builtin} is a {own} dataset; --task {task} does not apply, leave out --task")
        if builtin in SKLEARN_LOADERS:
            return builtin, load_sklearn(builtin)
        return builtin, _VISION_LOADERS[builtin](data_dir)
    raise DatasetError(f"unknown dataset '{spec}'.{_suggestion(spec)} {_known()}")


def _existing_path(prefix: str, text: str) -> Path:
    if not text.strip():
        raise DatasetError(f"{prefix}: needs a path after the colon, e.g. {prefix}:data/train"
                           f"{'' if prefix == 'images' else '.' + prefix}")
    path = Path(os.path.abspath(Path(text.strip()).expanduser()))
    if not path.exists():
        raise DatasetError(f"{prefix}:{text}: no such file or folder: {path}; check the path")
    if prefix != "images" and not path.is_file():
        raise DatasetError(f"{prefix}:{text}: {path} is a folder, not a file; name the file itself")
    if path.is_file() and prefix == "images" and not is_tar(path):
        raise DatasetError(f"images:{text}: {path} is neither a folder nor a .tar/.tar.gz archive; "
                           "give a folder with train/<class>/ inside, or a tar of one")
    if not os.access(path, os.R_OK):
        raise DatasetError(f"{prefix}:{text}: cannot read {path} (permission denied)")
    return path


def _known() -> str:
    return (f"Known datasets: {', '.join(dataset_names())}, or a file: "
            f"{', '.join(p + ':PATH' for p in FILE_PREFIXES)}.")


def _suggestion(spec: str) -> str:
    prefix, sep, rest = spec.partition(":")
    if sep and rest:
        close = difflib.get_close_matches(prefix.lower(), list(FILE_PREFIXES), n=1)
        if close:
            return f" Did you mean '{close[0]}:{rest}'?"
    path = Path(spec).expanduser()
    lowered = spec.lower()
    for suffix, guess in ((".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet"), (".npz", "npz")):
        if lowered.endswith(suffix):
            return f" Did you mean '{guess}:{spec}'?"
    if is_tar(path) or path.is_dir():
        return f" Did you mean 'images:{spec}'?"
    close = difflib.get_close_matches(lowered.replace("-", "_"), list(dataset_names()), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""
