"""The lock every worker of a study takes to count trials and start one as a single step, and the lock that
makes setting up a new database's tables one process's job.

SQLite studies lock a file beside the database (one machine); PostgreSQL and MySQL/MariaDB studies a named
lock of the server, so workers on any machine exclude each other. A dead worker's lock is freed by the kernel
or the server.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import IO, Any

from autodnn.study.urls import CONNECT_TIMEOUT, normalize_url


class StudyLock:
    """A lock shared by every worker of one study; ``release`` is safe to call when not held.

    This base class only serializes threads of one process (enough for ``sqlite:///:memory:``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False

    def acquire(self) -> None:
        """Blocks until this worker holds the lock."""
        self._lock.acquire()
        self._held = True

    def release(self) -> None:
        """Lets the next worker in; does nothing when the lock is not held."""
        if self._held:
            self._held = False
            self._lock.release()


class _FileLock(StudyLock):
    """``flock`` on a file beside the SQLite database; the kernel drops it when its process dies.

    A sidecar, not the database file itself: closing any descriptor of a file drops the POSIX locks SQLite
    holds on it in this process.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        import fcntl

        super().acquire()
        try:
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the worker's life
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            super().release()
            raise

    def release(self) -> None:
        import fcntl

        if self._held and self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        super().release()


class _ServerLock(StudyLock):
    """A named lock of the database server, held by a connection of its own (PostgreSQL advisory lock,
    MySQL/MariaDB ``GET_LOCK``); the server drops it when that connection ends, so a dead worker frees it.
    """

    def __init__(self, url: str, label: str, kind: str) -> None:
        super().__init__()
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        self._url = sqlalchemy.engine.make_url(url)
        self._postgres = self._url.get_backend_name() == "postgresql"
        digest = hashlib.sha1(f"{kind}:{self._url.database}:{label}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)  # pg_advisory_lock takes a bigint
        self._name = f"autodnn.{digest.hex()[:40]}"  # GET_LOCK names are at most 64 characters
        args = {"connect_timeout": CONNECT_TIMEOUT} if self._url.get_driver_name() in ("psycopg2", "pymysql") else {}
        self._engine = sqlalchemy.create_engine(self._url, poolclass=NullPool, connect_args=args)
        self._connection: Any = None

    def acquire(self) -> None:
        from sqlalchemy import text

        super().acquire()
        try:
            self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self._postgres:
                # A worker whose machine vanishes keeps no socket to close: let the server probe it.
                self._connection.exec_driver_sql(
                    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3")
                self._connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
            else:
                while self._connection.execute(text("SELECT GET_LOCK(:name, 60)"), {"name": self._name}).scalar() != 1:
                    pass
        except BaseException:
            self._close()
            super().release()
            raise

    def release(self) -> None:
        if self._held:
            self._close()
        super().release()

    def _close(self) -> None:
        # Closing the lock's connection ends its session, which releases the lock on the server.
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001, S110 - a broken connection is closed on the server's side too
                pass
            self._connection = None


def study_lock(url: str, study_name: str) -> StudyLock:
    """The lock the workers of study ``study_name`` in ``url`` share."""
    return _lock_for(url, study_name, kind="autodnn")


def schema_lock(url: str) -> StudyLock:
    """The lock held while a process opens the database at ``url`` and sets up its tables if they are missing.

    Optuna checks for its tables and then creates them, and stamps the schema version the same way: processes
    opening a new database at the same moment (a search and its workers, or workers on several machines) each
    find the tables missing, and all but one fail. Holding this lock, the others wait and then find them made.
    """
    return _lock_for(url, "", kind="autodnn-schema")


def _lock_for(url: str, label: str, kind: str) -> StudyLock:
    """A server lock named after ``kind``, the database and ``label``, or the file lock beside a SQLite database.

    SQLite's file lock is one per database, whatever the name: a process never asks for it while holding it.
    """
    import sqlalchemy

    url = normalize_url(url)
    parsed = sqlalchemy.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "mysql", "mariadb"):
        return _ServerLock(url, label, kind)
    path = parsed.database or ""
    if backend == "sqlite" and path and path != ":memory:" and not path.startswith("file:"):
        try:
            import fcntl  # noqa: F401
        except ImportError:  # Windows: workers of one process only
            return StudyLock()
        return _FileLock(Path(f"{path}.lock"))
    return StudyLock()
