"""Where studies live: storage URLs, their drivers, and hiding their passwords from everything printed."""

from __future__ import annotations

import re
from pathlib import Path

from autodnn.errors import StudyError

DEFAULT_STUDIES_DIR = Path("studies")
#: Where ``autodnn worker`` finds its storage URL when ``--storage`` is left out; keeps passwords out of
#: command lines (``ps``) and shell history.
STORAGE_ENV = "AUTODNN_STORAGE"
#: Seconds a PostgreSQL or MySQL server may take to accept a connection before the storage counts as down.
CONNECT_TIMEOUT = 10


def default_study_name(dataset: str, space: str) -> str:
    """``<dataset>-<space>`` with file paths reduced to their stems, e.g. ``digits-quick``."""
    data = Path(dataset.split(":", 1)[-1]).name.split(".")[0] if ":" in dataset else dataset
    space_name = Path(space).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{data}-{space_name}")[:100]


def storage_url(study: str, storage: str | None = None) -> str:
    """The storage URL a study lives in: ``storage`` as given, or ``sqlite:///studies/<study>.db``."""
    if storage:
        return storage
    return f"sqlite:///{DEFAULT_STUDIES_DIR / f'{study}.db'}"


def redact(text: str) -> str:
    """Hides every database password in ``text`` (``postgresql://user:***@host/db``, ``?password=***``).

    The password runs to the last ``@`` before the host, so one holding ``@`` or ``/`` is hidden whole.
    """
    text = re.sub(r"(://[^:/@\s]*:)\S*?@(?=[^@\s]*(?:[\s/'\"]|$))", r"\1***@", text)
    return re.sub(r"(password=)[^&\s'\"]+", r"\1***", text, flags=re.IGNORECASE)


def normalize_url(url: str) -> str:
    """Checks a storage URL and picks an installed driver where it names none.

    ``postgresql://`` gets psycopg2 when psycopg 3 (SQLAlchemy 2.1's default) is missing, and ``mysql://``
    or ``mariadb://`` get PyMySQL when mysqlclient is missing: the ``postgres`` and ``mysql`` extras install
    those.

    Raises:
        StudyError: The text is not a database URL.
    """
    import importlib.util

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if "://" not in url:
        raise StudyError(f"--storage {redact(url)!r} is not a database URL; use e.g. sqlite:///studies/x.db or "
                         "postgresql://user@host/db")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StudyError(f"--storage {redact(url)!r} is not a valid database URL ({redact(first_line(exc))}); "
                         "use e.g. postgresql://user:password@host:5432/db") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise StudyError(f"--storage {redact(url)}: unknown database kind '{parsed.drivername}'; use "
                         "sqlite:///PATH, postgresql://... or mysql+pymysql://...") from None
    if "+" not in parsed.drivername:
        def missing(module: str) -> bool:
            return importlib.util.find_spec(module) is None

        backend = parsed.get_backend_name()
        if backend == "postgresql" and missing("psycopg") and not missing("psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg2")
        elif backend in ("mysql", "mariadb") and missing("MySQLdb") and not missing("pymysql"):
            parsed = parsed.set(drivername=f"{backend}+pymysql")
        else:
            return url
    return parsed.render_as_string(hide_password=False)


def first_line(exc: BaseException) -> str:
    """The first line of an error's text, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
