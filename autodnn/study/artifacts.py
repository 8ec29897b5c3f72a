"""Files kept in a study's own database, in a table of autodnn's beside Optuna's: the best trained model.

Optuna's user attributes are JSON text (MySQL caps each at 64 KB), too small and the wrong type for the few
megabytes of a trained network. A table of autodnn's own in the same database keeps the study the single
source of truth: whatever reaches the database (SQLite, PostgreSQL, MySQL/MariaDB) reads the file back, from
any machine. Rows are keyed by the study's id and a name; a file is split into rows of :data:`CHUNK_BYTES`,
so that no statement passes a server's packet limit (``max_allowed_packet`` is 4 MiB by default on MySQL
5.7, 16 MiB on MariaDB). The table is made on the first write; reading a database without it finds nothing.

This layer stores bytes only: what they mean (a ``.keras`` file) is :mod:`autodnn.export`'s business.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from autodnn.errors import StudyError
from autodnn.study.locks import schema_lock
from autodnn.study.urls import first_line, redact

if TYPE_CHECKING:
    import optuna

TABLE = "autodnn_artifacts"
#: Bytes per row: a quarter of MySQL 5.7's default packet, leaving room for the driver's escaping.
CHUNK_BYTES = 1 << 20
#: Longest artifact name.
NAME_LENGTH = 128


def study_storage(study: optuna.Study) -> Any:
    """The SQL storage (``RDBStorage``) behind a study, or raises if it lives elsewhere.

    Raises:
        StudyError: The study is in memory or in a journal file, which has no table to keep files in.
    """
    from optuna.storages import RDBStorage

    backend = getattr(study._storage, "_backend", study._storage)  # RDBStorage behind Optuna's cache
    if not isinstance(backend, RDBStorage):
        raise StudyError(f"study '{study.study_name}' is not in a database ({type(backend).__name__}); "
                         "keeping a model needs a SQL storage such as sqlite:///studies/NAME.db")
    return backend


def save_artifact(study: optuna.Study, name: str, data: bytes) -> str:
    """Stores ``data`` under ``name`` for ``study``, replacing what was stored under that name before.

    Args:
        study: A study in a SQL storage.
        name: The artifact's name within the study (at most :data:`NAME_LENGTH` characters).
        data: The file's bytes.

    Returns:
        The SHA-256 of ``data`` in hex, to record beside the study so that a reader can check what it reads.

    Raises:
        StudyError: The study is not in a SQL storage, or the database refused the write.
    """
    from sqlalchemy import delete, insert

    if not 0 < len(name) <= NAME_LENGTH:
        raise ValueError(f"name must have 1 to {NAME_LENGTH} characters, but got {name!r}.")
    storage = study_storage(study)
    table = _table()
    try:
        _create_table(storage, table)
        mine = (table.c.study_id == study._study_id) & (table.c.name == name)
        # One transaction: a reader sees the old file or the new one, never a mixture of their rows.
        with storage.engine.begin() as connection:
            connection.execute(delete(table).where(mine))
            for index, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES)):
                connection.execute(insert(table).values(study_id=study._study_id, name=name, chunk=index,
                                                        data=data[start:start + CHUNK_BYTES]))
    except StudyError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers raise many kinds; each is one line for the user
        raise StudyError(f"cannot store {name!r} of study '{study.study_name}' in {redact(storage.url)}: "
                         f"{redact(first_line(exc))[:300]}") from None
    return hashlib.sha256(data).hexdigest()


def load_artifact(study: optuna.Study, name: str) -> bytes | None:
    """The bytes stored under ``name`` for ``study``, or None when there are none (or no table yet).

    Raises:
        StudyError: The study is not in a SQL storage, or the database cannot be read.
    """
    from sqlalchemy import inspect, select

    storage = study_storage(study)
    table = _table()
    try:
        if not inspect(storage.engine).has_table(TABLE):
            return None
        with storage.engine.connect() as connection:
            chunks = connection.execute(
                select(table.c.data).where((table.c.study_id == study._study_id) & (table.c.name == name))
                .order_by(table.c.chunk)).scalars().all()
    except Exception as exc:  # noqa: BLE001 - as in save_artifact
        raise StudyError(f"cannot read {name!r} of study '{study.study_name}' from {redact(storage.url)}: "
                         f"{redact(first_line(exc))[:300]}") from None
    return b"".join(bytes(chunk) for chunk in chunks) if chunks else None


def _table() -> Any:
    """The table's definition, in a metadata of its own: Optuna's schema and migrations never see it."""
    from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table
    from sqlalchemy.dialects import mysql

    return Table(
        TABLE, MetaData(),
        # No foreign key to Optuna's studies table: deleting a study with Optuna's tools must not fail on it.
        # A reader checks the bytes against the SHA-256 the study records, so a row left behind by a
        # deleted study whose id is reused is never taken for the new study's.
        Column("study_id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(NAME_LENGTH), primary_key=True),
        Column("chunk", Integer, primary_key=True, autoincrement=False),
        # MySQL's plain BLOB holds 64 KB; LONGBLOB any chunk size.
        Column("data", LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"), nullable=False),
    )


def _create_table(storage: Any, table: Any) -> None:
    # The schema lock: two processes making the table at once would otherwise race (as for Optuna's tables).
    lock = schema_lock(storage.url)
    lock.acquire()
    try:
        table.create(storage.engine, checkfirst=True)
    finally:
        lock.release()
