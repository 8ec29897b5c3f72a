"""The study file holds the study when a command ends: SQLite's WAL is checkpointed into it, so that a copy of
the ``.db`` file alone is the whole study, and a command that only reads leaves the file's bytes as they were."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

from conftest import assert_user_error

SEARCH = ("search", "--dataset", "digits", "--space", "quick", "--study", "s", "--n-trials", "1", "--max-epochs", "1",
          "--seeds", "1")


def _trials_in(file: Path, tmp_path: Path) -> int:
    """Trials in a copy of ``file`` alone (without its ``-wal`` and ``-shm`` companions)."""
    copy = tmp_path / "copied" / file.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(file, copy)
    with sqlite3.connect(copy) as connection:
        return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def _digest(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def test_a_copy_of_the_study_file_alone_holds_every_trial_after_a_search(run_cli, workdir: Path) -> None:
    result = run_cli(*SEARCH)
    assert result.code == 0, result.err
    file = workdir / "studies" / "s.db"
    wal = file.with_name("s.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the WAL still holds pages the file lacks"
    assert _trials_in(file, workdir) == 4  # the searched trial and the three book baselines
    before = _digest(file)
    for command in (("show", "s"), ("studies",), ("report", "s", "-o", str(workdir / "s.html"))):
        shown = run_cli(*command)
        assert shown.code == 0, shown.err
        assert _digest(file) == before, f"'autodnn {command[0]}' changed the study file"


def test_a_command_that_ends_with_an_error_leaves_the_study_in_its_file(run_cli, workdir: Path) -> None:
    assert run_cli(*SEARCH, "--no-final").code == 0
    file = workdir / "studies" / "s.db"
    refused = run_cli("search", "--dataset", "iris", "--space", "quick", "--study", "s", "--n-trials", "2")
    assert_user_error(refused, "was made for dataset digits")
    assert _trials_in(file, workdir) == 4
