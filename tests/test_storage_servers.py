"""Studies on real database servers: PostgreSQL on localhost:5432 and MariaDB/MySQL on localhost:3306.

Each test makes a database of its own and drops it afterwards; without a server (or its driver) the test
skips and says why. Workers are real ``autodnn worker`` processes training tiny networks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import REPO
from optuna.trial import TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TINY_SPACE = ("params:\n  n_hidden: 1\n  n_units: 16\n  batch_size: 64\n  patience: 2\n"
              "  learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\n")
#: Epochs of a few seconds, so that a worker can be killed in the middle of a trial.
SLOW_SPACE = ("params:\n  n_hidden: 1\n  n_units: 16\n  batch_size: 8\n  patience: 100\n"
              "  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n")
SERVERS = {
    "postgres": ("postgresql+psycopg2://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/{db}"),
    "mysql": ("mysql+pymysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/{db}"),
}


def server_database(kind: str) -> Iterator[str]:
    """Creates a fresh database on the ``kind`` server, yields its URL, drops it; skips without a server."""
    import sqlalchemy

    admin_url, template = SERVERS[kind]
    name = f"autodnn_{uuid.uuid4().hex[:12]}"
    try:
        admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                         connect_args={"connect_timeout": 5})
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    except ModuleNotFoundError as exc:
        pytest.skip(f"the {kind} driver is not installed ({exc.name}): pip install 'autodnn[{kind}]'")
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"no {kind} server answers at {admin_url.split('@')[1]}: {str(exc.orig).splitlines()[0]}")
    try:
        yield template.format(db=name)
    finally:
        with admin.connect() as connection:
            force = " WITH (FORCE)" if kind == "postgres" else ""
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from server_database("postgres")


@pytest.fixture
def mysql_url() -> Iterator[str]:
    yield from server_database("mysql")


BOTH = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]


def load(url: str, name: str) -> optuna.Study:
    from autodnn.study.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url, create=False))


def _open_at_once(url: str, barrier: Any, results: Any) -> None:
    from autodnn.study.storage import open_storage

    barrier.wait()
    try:
        open_storage(url)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - the test reports whatever failed
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("server", ["sqlite", *BOTH])
def test_processes_opening_a_new_database_at_once_all_open_it(server: str, request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:
    import multiprocessing

    import sqlalchemy

    from autodnn.study.storage import open_storage
    from autodnn.study.urls import normalize_url

    url = f"sqlite:///{tmp_path / 'new.db'}" if server == "sqlite" else request.getfixturevalue(f"{server}_url")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(6)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    # Without a lock around Optuna's check-then-create, most of six such processes fail (table already exists,
    # duplicate key in pg_type, or alembic_version's unique version).
    assert outcomes == ["ok"] * 6
    engine = sqlalchemy.create_engine(normalize_url(url))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM alembic_version").scalar() == 1
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM version_info").scalar() == 1
    engine.dispose()
    optuna.create_study(study_name="after", storage=open_storage(url))


@pytest.mark.parametrize("server", BOTH)
def test_eight_workers_finish_every_trial_exactly_once(server: str, request: pytest.FixtureRequest, run_cli,
                                                      workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = request.getfixturevalue(f"{server}_url")
    # A short heartbeat only so that idle workers notice the end sooner (they poll once per interval).
    monkeypatch.setenv("AUTODNN_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("AUTODNN_GRACE_PERIOD", "30")
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    result = run_cli("search", "--dataset", "iris", "--space", "tiny.yaml", "--study", "eight", "--storage", url,
                     "--n-trials", "9", "--max-epochs", "1", "--no-baselines", "--no-final", "--workers", "8")
    assert result.code == 0, result.err
    trials = load(url, "eight").trials
    # Nine trials in all: none lost, none started twice, none beyond the target although eight workers raced.
    assert sorted(t.number for t in trials) == list(range(9))
    assert all(t.state in FINISHED for t in trials), [(t.number, t.state, t.user_attrs.get("reason")) for t in trials]
    assert len({t.params["learning_rate"] for t in trials}) == 9
    assert len({t.user_attrs["worker"] for t in trials}) >= 4
    assert "[w8]" in result.out


@pytest.mark.parametrize("server", BOTH)
def test_a_sigkilled_worker_trial_is_retried_by_another_and_the_count_stays_exact(
        server: str, request: pytest.FixtureRequest, run_cli, workdir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.tuning.options import SearchOptions
    from autodnn.tuning.run import create_or_resume, prepare

    url = request.getfixturevalue(f"{server}_url")
    monkeypatch.setenv("AUTODNN_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("AUTODNN_GRACE_PERIOD", "4")
    (workdir / "slow.yaml").write_text(SLOW_SPACE)
    options = SearchOptions(dataset="digits", space="slow.yaml", study="k", storage=url, n_trials=2, max_epochs=30,
                            baselines=False)
    create_or_resume(options, *prepare(options))

    env = {**os.environ, "AUTODNN_STORAGE": url, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "autodnn", "worker", "--study", "k"]
    workers = {p.pid: p for p in (subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True) for _ in range(2))}
    watched = load(url, "k")  # one connection pool for the whole watch, not one per look
    try:
        victim = None
        deadline = time.monotonic() + 150
        while victim is None and time.monotonic() < deadline:
            for trial in watched.get_trials(states=(TrialState.RUNNING,)):
                pid = int(trial.user_attrs.get("worker", ":0").rsplit(":", 1)[1])
                if trial.intermediate_values and pid in workers:
                    victim = trial
                    workers[pid].send_signal(signal.SIGKILL)
                    break
            time.sleep(0.1)
        assert victim is not None, "no worker reached a trial's first epoch"
        assert watched.trials[victim.number].state == TrialState.RUNNING, "the trial ended before the kill"
        survivor = next(p for pid, p in workers.items() if str(pid) != victim.user_attrs["worker"].rsplit(":", 1)[1])
        out, err = survivor.communicate(timeout=180)
    finally:
        for process in workers.values():
            process.kill()
    assert survivor.returncode == 0, err
    assert "retry of trial" in out

    trials = load(url, "k").trials
    states = [t.state for t in trials]
    assert states.count(TrialState.FAIL) == 1 and sum(s in FINISHED for s in states) == 2 and len(trials) == 3
    assert trials[victim.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") is not None]
    assert retry.system_attrs["failed_trial"] == victim.number and retry.state in FINISHED
    assert retry.user_attrs["config"] == victim.user_attrs["config"] and retry.params == victim.params
    shown = run_cli("show", "k", "--storage", url)
    assert shown.code == 0, shown.err
    assert "retry_of" in shown.out and f"retried as trial {retry.number}" in shown.out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dashboard_serves_the_study_with_its_trials(tmp_path: Path) -> None:
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (pip install 'autodnn[dashboard]')")
    from autodnn.study.storage import open_storage

    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = optuna.create_study(study_name="d", storage=open_storage(url), direction="maximize")
    study.set_metric_names(["val_accuracy"])
    study.set_user_attr("dataset", {"name": "digits", "fingerprint": "abc"})
    study.add_trial(optuna.trial.create_trial(
        params={"learning_rate": 0.01},
        distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)},
        value=0.9, intermediate_values={0: 0.5, 1: 0.9},
        user_attrs={"config": {"n_hidden": 2, "learning_rate": 0.01}, "epoch_times": [0.1, 0.1]}))
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "autodnn", "dashboard", "d", "--storage", url, "--port", str(port)],
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as answer:
                    studies = json.load(answer)["study_summaries"]
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.5)
        (summary,) = studies
        assert summary["study_name"] == "d"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=10) as answer:
            detail = json.load(answer)
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"127.0.0.1:{port}/dashboard/studies/{summary['study_id']}" in out
    assert detail["objective_names"] == ["val_accuracy"]
    (trial,) = detail["trials"]
    assert trial["state"] == "Complete" and trial["values"] == [0.9]
    attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
    assert json.loads(attrs["config"])["n_hidden"] == 2
    assert {v["step"]: v["value"] for v in trial["intermediate_values"]} == {0: 0.5, 1: 0.9}


def varied_trials() -> list[optuna.trial.FrozenTrial]:
    """Trials in every state, with the attributes and links ``show`` reads."""
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    act = optuna.distributions.CategoricalDistribution(["relu", "elu"])
    depth = optuna.distributions.IntDistribution(1, 8)
    both = {"learning_rate": lr, "activation": act, "n_hidden": depth}
    return [
        optuna.trial.create_trial(params={"learning_rate": 0.01, "activation": "elu", "n_hidden": 3}, distributions=both,
                                  value=0.9, intermediate_values={0: 0.5, 1: 0.9},
                                  user_attrs={"result": {"epochs": 2}, "history": {"loss": [1, 2]}}),
        optuna.trial.create_trial(params={"learning_rate": 0.05}, distributions={"learning_rate": lr},
                                  state=TrialState.PRUNED, value=0.2, intermediate_values={0: 0.2},
                                  user_attrs={"reason": "pruned at epoch 1", "baseline": "book-3e"}),
        optuna.trial.create_trial(params={"activation": "relu"}, distributions={"activation": act},
                                  state=TrialState.FAIL, system_attrs={"failed_trial": 0, "retry_history": [0]}),
        optuna.trial.create_trial(state=TrialState.WAITING, params={}, distributions={}),
    ]


@pytest.mark.parametrize("server", BOTH)
def test_trial_summaries_read_from_the_tables_match_optunas_trials(server: str,
                                                                     request: pytest.FixtureRequest) -> None:
    from autodnn.study.records import TrialSummary, summaries_from_tables
    from autodnn.study.storage import open_storage

    url = request.getfixturevalue(f"{server}_url")
    storage = open_storage(url)
    study = optuna.create_study(study_name="t", storage=storage, direction="maximize")
    study.add_trials(varied_trials())
    fast = summaries_from_tables(storage, storage.get_study_id_from_name("t"))
    assert fast == [TrialSummary.of(t) for t in study.trials]
    assert fast[0].params == {"learning_rate": 0.01, "activation": "elu", "n_hidden": 3}
    assert fast[2].system_attrs == {"failed_trial": 0, "retry_history": [0]}
    storage.engine.dispose()
