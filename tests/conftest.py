"""Shared fixtures: the Keras backend, temporary storages and an in-process command-line runner."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR10_JPG = SHARED_DATA / "cifar10-jpg.tar.gz"


@pytest.fixture(autouse=True)
def restore_precision(monkeypatch: pytest.MonkeyPatch):
    """``autodnn search`` sets this process's precision (``--precision``); each test starts from float32."""
    monkeypatch.delenv("AUTODNN_PRECISION", raising=False)
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


@dataclass
class CliResult:
    """Exit code and captured output of one in-process ``autodnn`` call."""

    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Calls ``autodnn.cli.main(argv)`` in this process and returns its exit code and output."""
    from autodnn.cli import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary current directory, so default ``studies/`` and ``reports/`` land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite storage URL in a temporary folder."""
    return f"sqlite:///{tmp_path / 'study.db'}"


def assert_user_error(result: CliResult, *fragments: str) -> None:
    """Checks the contract for bad input: exit 2, one 'Error:' line naming the problem, no traceback."""
    assert result.code == 2, (result.code, result.err)
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
