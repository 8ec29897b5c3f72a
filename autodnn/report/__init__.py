"""HTML reports of studies: the best configuration found against the book's defaults, and how the search went.

A report is made from the study database (Optuna storage), so it can be made on another machine than the
search ran on. Importing this package loads no Keras, TensorFlow or JAX; only the predicted-against-actual and
residuals plots of an evaluated regression load the kept network with Keras and reload the study's dataset
(:mod:`autodnn.report._predictions`), and where either is out of reach the report leaves them out and says why.

Example:
    >>> from autodnn.report import write_report
    >>> write_report(["digits-quick"])  # doctest: +SKIP
    PosixPath('reports/digits-quick.html')
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from autodnn.errors import UsageError
from autodnn.report._data import ReportData, gather
from autodnn.report._html import render

__all__ = ["DEFAULT_REPORTS_DIR", "ReportData", "default_output", "gather", "render", "write_report"]

DEFAULT_REPORTS_DIR = Path("reports")


def default_output(studies: Sequence[str]) -> Path:
    """``reports/<first>[+<others>].html``; characters a file name cannot hold become ``_``."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", "+".join(studies)).lstrip(".") or "report"
    return DEFAULT_REPORTS_DIR / f"{name[:200]}.html"


def _check_output(path: Path, *, create_parent: bool) -> None:
    """Raises :class:`UsageError` unless ``path`` can be written; creates only the default ``reports/``."""

    def fail(reason: str) -> UsageError:
        return UsageError(f"cannot write report to {path}: {reason}; choose another -o")

    if path.is_dir():
        raise fail("it is a folder")
    parent = path.parent
    if not parent.exists():
        if not create_parent:
            raise fail(f"folder {parent} does not exist")
        try:
            parent.mkdir(parents=True)
        except OSError as exc:
            raise fail(exc.strerror or str(exc)) from None
    if not parent.is_dir():
        raise fail(f"{parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise fail("the file is not writable")


def write_report(
    studies: Sequence[str], *, storage: str | None = None, output: str | Path | None = None
) -> Path:
    """Writes one self-contained HTML report of one or more studies.

    Args:
        studies: Study names; several are shown side by side, in this order.
        storage: SQLAlchemy URL holding every study; None looks for each in ``sqlite:///studies/<name>.db``.
        output: Where to write; None writes ``reports/<first>[+<others>].html`` (creating ``reports/``).

    Returns:
        The path written.

    Raises:
        UsageError: No study was named, the output cannot be written (checked before anything is read), or a
            study or its storage cannot be opened (:class:`~autodnn.errors.StudyError`).
    """
    if not studies:
        raise UsageError("name at least one study to report on")
    path = Path(output) if output is not None else default_output(studies)
    _check_output(path, create_parent=output is None)

    from autodnn.study.storage import load_study

    data = [gather(load_study(name, storage)) for name in studies]
    html = render(data)
    temporary: Path | None = None
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temporary = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a report meant to be shared
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write report to {path}: {exc.strerror or exc}; choose another -o") from None
    return path
