"""A password in a storage URL never shows: not in output, errors (with or without --debug), logs, the study
database, reports, or worker command lines."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import REPO
from test_storage_servers import TINY_SPACE, server_database

SECRET = "Sup3r-S3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://alice:{SECRET}@db:5432/s", "postgresql://alice:***@db:5432/s"),
        (f"mysql+pymysql://root:{SECRET}@db/s", "mysql+pymysql://root:***@db/s"),
        (f"postgresql://alice:{SECRET}@with@at@db/s", "postgresql://alice:***@db/s"),
        (f"postgresql://alice:{SECRET}/slash@db/s", "postgresql://alice:***@db/s"),
        (f"postgresql://db/s?user=alice&password={SECRET}&x=1", "postgresql://db/s?user=alice&password=***&x=1"),
        (f"error at 'postgresql://a:{SECRET}@db/s' and mysql://b:{SECRET}@h/t.", None),
        ("sqlite:///studies/x.db", "sqlite:///studies/x.db"),
    ],
)
def test_redact_hides_every_form_of_password(url: str, shown: str | None) -> None:
    from autodnn.study.urls import redact

    assert SECRET not in redact(url)
    if shown is not None:
        assert redact(url) == shown


def run_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autodnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)


@pytest.mark.parametrize("url", [f"postgresql://u:{SECRET}@127.0.0.1:1/x", f"mysql+pymysql://u:{SECRET}@127.0.0.1:1/x"])
def test_an_unreachable_server_error_hides_the_password_even_with_debug(url: str, tmp_path: Path, run_cli) -> None:
    plain = run_cli("search", "--dataset", "iris", "--storage", url)
    assert plain.code == 2 and SECRET not in plain.out + plain.err and "***" in plain.err
    debug = run_subprocess("--debug", "show", "x", "--storage", url, cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert SECRET not in debug.stdout + debug.stderr


@pytest.mark.mysql
def test_a_refused_password_is_not_repeated(run_cli) -> None:
    url = f"mysql+pymysql://root:{SECRET}@127.0.0.1:3306/test"
    result = run_cli("show", "x", "--storage", url)
    if "Can't connect" in result.err:
        pytest.skip("no MariaDB/MySQL server answers on 127.0.0.1:3306")
    assert result.code == 2 and "Access denied" in result.err and SECRET not in result.err


@pytest.fixture
def postgres_with_password() -> Iterator[str]:
    """A fresh PostgreSQL database, its URL carrying a password (trust authentication accepts any)."""
    for url in server_database("postgres"):
        yield url.replace("postgres@", f"postgres:{SECRET}@")


@pytest.mark.postgres
def test_a_search_on_a_server_never_shows_its_password(postgres_with_password: str, run_cli, workdir: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    url = postgres_with_password
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    outputs = []
    with caplog.at_level("DEBUG"):
        result = run_cli("--debug", "search", "--dataset", "iris", "--space", "tiny.yaml", "--study", "p",
                         "--storage", url, "--n-trials", "1", "--max-epochs", "1", "--no-baselines", "--no-final")
        assert result.code == 0, result.err
        outputs += [result.out, result.err]
        for command in (("studies", "--storage", url), ("show", "p", "--storage", url),
                        ("show", "p", "--storage", url, "--json")):
            shown = run_cli(*command)
            assert shown.code == 0, shown.err
            outputs += [shown.out, shown.err]
    assert "postgresql://postgres:***@" in result.out
    outputs.append(caplog.text)
    assert not [text for text in outputs if SECRET in text]

    # The study records its settings, never where it is stored.
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as connection:
        tables = connection.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").scalars().all()
        for table in tables:
            rows = connection.exec_driver_sql(f'SELECT * FROM "{table}"').all()
            assert SECRET not in repr(rows), table
    engine.dispose()

    try:
        import autodnn.report  # noqa: F401
    except ImportError:
        return  # the report is checked where autodnn.report exists
    report = run_cli("report", "p", "--storage", url, "-o", str(workdir / "p.html"))
    assert report.code == 0, report.err
    assert SECRET not in report.out + report.err + (workdir / "p.html").read_text()


def test_the_resume_hint_after_ctrl_c_hides_the_password(run_cli, workdir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{workdir / 's.db'}?password={SECRET}"
    argv = ["search", "--dataset", "iris", "--storage", url, "--no-final"]

    def interrupted(options, *, on_start, **_):
        dataset = type("D", (), {"name": "iris", "notes": (), "sizes": {"train": 1, "valid": 1, "test": 1}})
        on_start(optuna.create_study(), dataset, type("S", (), {"name": "quick"}), url)
        raise KeyboardInterrupt

    monkeypatch.setattr("autodnn.tuning.run.search", interrupted)
    monkeypatch.setattr(sys, "argv", ["autodnn", *argv])
    result = run_cli(*argv)
    assert result.code == 130
    assert "Resume with: autodnn search" in result.err and "password=***" in result.err
    assert SECRET not in result.out + result.err


def test_worker_processes_never_carry_the_password_on_their_command_line() -> None:
    from autodnn.workers import WorkerPlan, worker_command, worker_environment

    url = f"postgresql://alice:{SECRET}@db/s"
    assert SECRET not in " ".join(worker_command("s", timeout=5.0, quiet=True))
    assert worker_environment(url, WorkerPlan(1, {}))["AUTODNN_STORAGE"] == url
