"""Opening a study's storage: SQLite made safe for several processes, server drivers, heartbeats, loading."""

from __future__ import annotations

import atexit
import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from autodnn.errors import StudyError, UsageError
from autodnn.study.locks import StudyLock, schema_lock
from autodnn.study.urls import CONNECT_TIMEOUT, DEFAULT_STUDIES_DIR, first_line, normalize_url, redact, storage_url

# Heartbeats, constant liar and metric names are experimental in Optuna; they are deliberate choices here.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

#: Seconds between a running trial's heartbeats, and after which a silent trial counts as dead. The
#: environment variables ``AUTODNN_HEARTBEAT_INTERVAL`` and ``AUTODNN_GRACE_PERIOD`` override them (whole
#: seconds; every worker of a study should use the same ones).
HEARTBEAT_INTERVAL = 20
GRACE_PERIOD = 60


def heartbeat_settings() -> tuple[int, int]:
    """Heartbeat interval and grace period in seconds, from the environment or the module's defaults.

    Raises:
        UsageError: A variable is not a positive whole number, or the grace period is not longer than the
            interval (every live trial would then look dead).
    """
    values = []
    for name, default in (("AUTODNN_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL), ("AUTODNN_GRACE_PERIOD", GRACE_PERIOD)):
        raw = os.environ.get(name, "").strip()
        if not raw:
            values.append(default)
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise UsageError(f"{name} must be a whole number of seconds >= 1, but got {raw!r}")
        values.append(int(raw))
    interval, grace = values
    if grace <= interval:
        raise UsageError(f"AUTODNN_GRACE_PERIOD ({grace} s) must be longer than AUTODNN_HEARTBEAT_INTERVAL "
                         f"({interval} s), or live trials would be failed as lost")
    return interval, grace


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Opens an Optuna storage with heartbeats, so that a killed worker's trial is failed and retried.

    SQLite is made safe for several processes: every transaction starts with ``BEGIN IMMEDIATE`` (takes the
    write lock up front, so the busy timeout applies instead of a lock-upgrade deadlock), and the journal is
    WAL (readers never block the writer).

    Args:
        url: A SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://...``, ``mysql+pymysql://...``).
        create: Whether a missing SQLite file may be created; when False, a missing file is an error.

    Raises:
        StudyError: The URL is malformed, its driver is missing, or the database does not answer.
        UsageError: The heartbeat settings in the environment are invalid.
    """
    from optuna.storages import RDBStorage
    from sqlalchemy.engine import make_url

    safe = redact(url)
    url = normalize_url(url)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    engine_kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:" and not path.startswith("file:"):
            if not create and not Path(path).exists():
                raise StudyError(f"no study database at {safe}: check --storage, or run 'autodnn search' first")
            if Path(path).is_dir():
                raise StudyError(f"cannot open storage {safe}: {path} is a folder; name a .db file in it")
            parent = Path(path).parent
            if not parent.exists() and create and parent == DEFAULT_STUDIES_DIR:
                parent.mkdir(parents=True)
            elif not parent.exists():
                raise StudyError(f"cannot create {safe}: folder {parent} does not exist")
        # isolation_level=None stops pysqlite's own BEGIN, so that _serialize_sqlite's BEGIN IMMEDIATE is the one.
        engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
        if parsed.get_driver_name() in ("psycopg2", "pymysql"):
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    interval, grace = heartbeat_settings()
    writable = backend != "sqlite" or _writable(parsed.database or "")
    try:
        # A lock of the database, so that processes opening a new one at once do not race to make its tables.
        lock = schema_lock(url) if writable else StudyLock()
        lock.acquire()
        try:
            storage = RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=_retry_lost_trial(),
            )
        finally:
            lock.release()
    except (ImportError, ValueError) as exc:
        # Optuna turns a missing driver into a ValueError ("Failed to import DB access module ...").
        if isinstance(exc, ValueError) and "import DB access module" not in str(exc):
            raise StudyError(f"cannot open storage {safe}: {redact(first_line(exc))[:300]}") from None
        driver = getattr(exc, "name", None) or parsed.get_driver_name()
        hint = {"postgresql": ": pip install 'autodnn[postgres]' and write postgresql://...",
                "mysql": ": pip install 'autodnn[mysql]' and write mysql+pymysql://...",
                "mariadb": ": pip install 'autodnn[mysql]' and write mariadb+pymysql://..."}.get(backend, "")
        raise StudyError(f"the database driver for {safe} is not installed ({driver}){hint}") from None
    except Exception as exc:  # noqa: BLE001 - drivers raise many kinds; each is one line for the user
        raise StudyError(f"cannot open storage {safe}: {redact(first_line(_cause(exc)))[:300]}") from None
    if backend == "sqlite" and writable:
        _serialize_sqlite(storage)
    _OPEN.append(storage.engine)
    return storage


#: The engine of every storage this process opened and has not closed (:func:`close_storages`).
_OPEN: list[Any] = []


def close_storages() -> None:
    """Closes every storage this process opened, so that the study file alone holds the study.

    SQLite in WAL mode keeps new pages in ``<db>-wal`` until a checkpoint copies them into the file, which it
    does when the last connection closes; a process that ends with its connections pooled leaves them in the
    WAL, and a copy of the ``.db`` file alone would be an empty study. So every command ends here (on errors
    and Ctrl-C too, and at the interpreter's exit for Python users): a checkpoint that empties the WAL, then
    the connection pool is closed. Server databases only get their pool closed. A storage used again after
    this reconnects by itself.
    """
    while _OPEN:
        engine = _OPEN.pop()
        if engine.dialect.name == "sqlite":
            # Another process may still write (a worker): then the checkpoint does what it can, and that process
            # checkpoints the rest when it closes.
            with contextlib.suppress(Exception), engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        with contextlib.suppress(Exception):
            engine.dispose()


atexit.register(close_storages)


def _writable(path: str) -> bool:
    """Whether this process may write the SQLite file (a read-only copy can still be shown and reported)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return True
    file = Path(path)
    folder_ok = os.access(file.parent if str(file.parent) else Path("."), os.W_OK)
    return folder_ok and (not file.exists() or os.access(file, os.W_OK))


def _cause(exc: BaseException) -> BaseException:
    """The driver's error behind Optuna's ``StorageInternalError``, whose own text names no cause."""
    from optuna.exceptions import StorageInternalError

    return exc.__cause__ if isinstance(exc, StorageInternalError) and exc.__cause__ is not None else exc


def _serialize_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Makes every SQLite transaction take the write lock first, and switches the journal to WAL.

    pysqlite opens transactions deferred: one that reads and then writes asks for the write lock while holding
    a read lock, and SQLite answers "database is locked" at once when another process waits for the reverse,
    whatever the busy timeout. ``BEGIN IMMEDIATE`` queues writers on the busy timeout instead.
    """
    import contextlib
    import sqlite3

    from sqlalchemy import event

    @event.listens_for(storage.engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        with contextlib.suppress(sqlite3.OperationalError):  # a read-only folder: stay on the rollback journal
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL syncs at checkpoints instead of at every commit (a trial commits dozens of times):
        # a killed process loses nothing, a power cut at most the last commits, and the file never corrupts.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(storage.engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Connections opened while RDBStorage set up its tables predate the listeners.
    storage.engine.dispose()


def _retry_lost_trial() -> Callable[[optuna.Study, FrozenTrial], None]:
    """Re-queues a trial whose worker stopped sending heartbeats, linked to it (``retry_of``), up to 3 times."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    return RetryHeartbeatStaleTrialCallback(max_retry=3)


def load_study(name: str, storage: str | None = None, **kwargs: Any) -> optuna.Study:
    """Loads an existing study by name, with a clear error listing the studies that do exist.

    Args:
        name: Study name.
        storage: Storage URL; defaults to ``sqlite:///studies/<name>.db``.
        **kwargs: ``sampler`` and ``pruner`` of :func:`optuna.load_study`.

    Raises:
        StudyError: No such storage or study.
    """
    url = storage_url(name, storage)
    backend = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=backend, **kwargs)
    except KeyError:
        names = optuna.get_all_study_names(backend)
        known = f"; studies there: {', '.join(names)}" if names else "; it holds no study"
        raise StudyError(f"no study named {name!r} in {redact(url)}{known}") from None
