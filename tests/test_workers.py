"""Workers on one machine: SQLite made safe for several processes, the exact trial count, lost workers'
trials failed and retried, and ``autodnn search --workers``.

Most tests here drive :func:`autodnn.workers.run_trials` with an objective that trains nothing, so that many
trials and processes fit in seconds; one test runs the real command line end to end.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from conftest import assert_user_error
from optuna.trial import TrialState

from autodnn.errors import TrialFailed, UsageError
from autodnn.study.deadline import Deadline
from autodnn.study.records import trials_frame
from autodnn.study.storage import heartbeat_settings, open_storage
from autodnn.study.urls import redact
from autodnn.workers import (
    CPUS_ENV,
    StudyLock,
    WorkerPlan,
    gpu_sharing,
    parse_gpus,
    plan_workers,
    run_trials,
    split_cpus,
    study_lock,
    worker_command,
    worker_environment,
)

TINY_SPACE = ("params:\n  n_hidden: 1\n  n_units: 16\n  batch_size: 64\n  patience: 2\n"
              "  learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\n")
SPAWN = multiprocessing.get_context("spawn")


def quick_objective(trial: optuna.Trial) -> float:
    """Writes what a real trial writes (intermediate values, user attributes), without training."""
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(3):
        trial.report(x * step, step)
        trial.set_user_attr(f"epoch_{step}", [x] * 50)
    return x


def stuck_objective(trial: optuna.Trial) -> float:
    """Reports one epoch, then hangs: a trial that is mid-way when its worker is killed."""
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("config", {"x": x})
    trial.report(0.5, 0)
    time.sleep(600)
    return x


def _worker_process(url: str, n_trials: int, objective_name: str, results: multiprocessing.Queue) -> None:
    """One worker process: opens the study as ``autodnn worker`` does and runs the shared trial loop."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name="s", storage=open_storage(url, create=False))
        objective = {"quick": quick_objective, "stuck": stuck_objective}[objective_name]
        ran = run_trials(study, objective, n_trials=n_trials, lock=study_lock(url, "s"))
        results.put(("ok", ran))
    except Exception as exc:  # noqa: BLE001 - reported to the test, which shows it
        results.put(("error", repr(exc)))


def _states(url: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name="s", storage=url).trials]


@pytest.fixture
def short_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heartbeat every second, lost after three: lets a test see a killed worker's trial retried quickly."""
    monkeypatch.setenv("AUTODNN_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("AUTODNN_GRACE_PERIOD", "3")


def test_sqlite_transactions_take_the_write_lock_first_and_use_wal(sqlite_url: str, tmp_path: Path) -> None:
    storage = open_storage(sqlite_url)
    optuna.create_study(study_name="s", storage=storage)
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        # A read-only transaction already holds the write lock: another writer is refused at once instead of
        # deadlocking later on a lock upgrade.
        connection.exec_driver_sql("SELECT COUNT(*) FROM studies").scalar()
        other = sqlite3.connect(tmp_path / "study.db", timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        connection.rollback()


def test_four_worker_processes_share_the_default_sqlite_study_without_locking_errors(workdir: Path) -> None:
    url = "sqlite:///studies/s.db"
    optuna.create_study(study_name="s", storage=open_storage(url), direction="maximize")
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=_worker_process, args=(url, 24, "quick", results)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    outcomes = [results.get(timeout=5) for _ in processes]
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert sum(ran for _, ran in outcomes) == 24
    # Exactly the target: no extra trial started by a worker that counted before another one asked.
    assert Counter(_states(url)) == {TrialState.COMPLETE: 24}


def test_a_killed_workers_trial_is_failed_retried_elsewhere_and_linked(workdir: Path, short_heartbeats: None,
                                                                     run_cli) -> None:
    url = "sqlite:///studies/s.db"
    optuna.create_study(study_name="s", storage=open_storage(url), direction="maximize")
    results = SPAWN.Queue()
    victim = SPAWN.Process(target=_worker_process, args=(url, 2, "stuck", results))
    victim.start()
    watched = optuna.load_study(study_name="s", storage=open_storage(url))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        trials = watched.trials
        if trials and trials[0].intermediate_values:
            break
        time.sleep(0.2)
    else:
        victim.kill()
        pytest.fail("the worker never started its trial")
    victim.kill()  # SIGKILL: no chance to mark its trial failed
    victim.join()
    assert _states(url) == [TrialState.RUNNING]

    study = optuna.load_study(study_name="s", storage=open_storage(url))
    waits: list[int] = []
    ran = run_trials(study, quick_objective, n_trials=2, lock=study_lock(url, "s"),
                     on_wait=lambda _, running: waits.append(running), deadline=Deadline.after(60))
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert ran == 2 and waits == [1], "the survivor waited for the silent trial instead of starting a third one"
    retry = trials[2]
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.params == trials[0].params and retry.user_attrs["config"] == trials[0].user_attrs["config"]
    frame = trials_frame(study).set_index("number")
    assert frame.loc[2, "retry_of"] == 0
    assert "retried as trial 2" in frame.loc[0, "reason"]
    shown = run_cli("show", "s", "--storage", url)
    assert shown.code == 0, shown.err
    assert "retry_of" in shown.out and "worker lost" in shown.out


def test_the_study_lock_excludes_other_holders(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    first, second = study_lock(url, "s"), study_lock(url, "s")
    first.acquire()
    got = threading.Event()
    thread = threading.Thread(target=lambda: (second.acquire(), got.set(), second.release()))
    thread.start()
    assert not got.wait(0.5), "a second holder got in while the first held the lock"
    first.release()
    assert got.wait(10)
    thread.join()
    first.release()  # releasing twice is harmless
    assert type(study_lock("sqlite:///:memory:", "s")) is StudyLock


def test_search_with_four_workers_on_the_default_storage(run_cli, workdir: Path) -> None:
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    result = run_cli("search", "--dataset", "iris", "--space", "tiny.yaml", "--study", "four", "--n-trials", "5",
                     "--max-epochs", "1", "--no-baselines", "--no-final", "--workers", "4")
    assert result.code == 0, result.err
    assert "locked" not in result.out + result.err
    assert "[w1]" in result.out and "Best trial" in result.out
    trials = optuna.load_study(study_name="four", storage="sqlite:///studies/four.db").trials
    assert len(trials) == 5 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) >= 2
    assert len({t.params["learning_rate"] for t in trials}) == 5, "workers sampled the same configuration"


def test_plan_workers_pins_gpus_and_refuses_what_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [p.label for p in plan_workers(3)] == ["w1", "w2", "w3"]
    monkeypatch.setattr("autodnn.workers._processes.visible_gpu_indices", lambda: ["0", "1"])
    plans = plan_workers(gpus="0,1", trials_per_gpu=2)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plans] == ["0", "1", "0", "1"]
    assert [p.label for p in plans] == ["w1/gpu0", "w2/gpu1", "w3/gpu0", "w4/gpu1"]
    assert len(plan_workers(gpus="all")) == 2
    with pytest.raises(UsageError, match="no GPU 2 on this machine .its GPUs are 0, 1"):
        plan_workers(gpus="1,2")
    monkeypatch.setattr("autodnn.workers._processes.visible_gpu_indices", list)
    with pytest.raises(UsageError, match="no visible GPU"):
        plan_workers(gpus="0")
    with pytest.raises(UsageError, match="one process's memory"):
        plan_workers(2, storage="sqlite:///:memory:")
    assert parse_gpus(" 0, 1 ") == ["0", "1"] and parse_gpus("all") is None
    for bad in ("0,0", "a", "0,,1", ""):
        with pytest.raises(UsageError, match="--gpus"):
            parse_gpus(bad)


def test_worker_processes_get_the_storage_url_in_their_environment_not_their_command_line() -> None:
    url = "postgresql://alice:s3cret@db.example/studies"
    command = worker_command("s", timeout=30, quiet=True)
    assert "s3cret" not in " ".join(command) and command[-4:] == ["s", "--timeout", "30", "--quiet"]
    env = worker_environment(url, WorkerPlan(1, {"CUDA_VISIBLE_DEVICES": "1"}))
    assert env["AUTODNN_STORAGE"] == url and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert str(Path(__file__).resolve().parents[1]) in env["PYTHONPATH"].split(os.pathsep)
    assert redact(url) == "postgresql://alice:***@db.example/studies"


def test_heartbeat_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert heartbeat_settings() == (20, 60)
    monkeypatch.setenv("AUTODNN_HEARTBEAT_INTERVAL", "2")
    monkeypatch.setenv("AUTODNN_GRACE_PERIOD", "7")
    assert heartbeat_settings() == (2, 7)
    monkeypatch.setenv("AUTODNN_GRACE_PERIOD", "2")
    with pytest.raises(UsageError, match="must be longer than"):
        heartbeat_settings()
    monkeypatch.setenv("AUTODNN_HEARTBEAT_INTERVAL", "0.5")
    with pytest.raises(UsageError, match="whole number of seconds"):
        heartbeat_settings()


def test_trial_summaries_read_from_sqlite_tables_match_optunas_trials(sqlite_url: str) -> None:
    from test_storage_servers import varied_trials

    from autodnn.study.records import TrialSummary, best_trial, summaries_from_tables

    storage = open_storage(sqlite_url)
    study = optuna.create_study(study_name="t", storage=storage, direction="maximize")
    study.add_trials(varied_trials())
    fast = summaries_from_tables(storage, storage.get_study_id_from_name("t"))
    assert fast == [TrialSummary.of(t) for t in study.trials]
    assert best_trial(study).number == 0 and best_trial(study).user_attrs["history"] == {"loss": [1, 2]}


FAKE_MPS_CONTROL = """#!/bin/sh
# Stands in for NVIDIA's nvidia-cuda-mps-control, which needs the NVIDIA driver: records each call.
stdin=$(if [ -z "$1" ]; then cat; fi)
echo "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY stdin=$stdin" >> "$MPS_CALLS"
"""


@pytest.fixture
def fake_mps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``nvidia-cuda-mps-control`` on the PATH that logs its calls (this machine has no NVIDIA driver)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    control = folder / "nvidia-cuda-mps-control"
    control.write_text(FAKE_MPS_CONTROL)
    control.chmod(0o755)
    calls = tmp_path / "mps-calls.log"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MPS_CALLS", str(calls))
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    monkeypatch.setattr("autodnn.workers._processes.SYSTEM_MPS_PIPE", tmp_path / "no-system-daemon")
    return calls


def mps_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_workers_sharing_a_gpu_run_under_an_mps_daemon_of_their_own(fake_mps: Path) -> None:
    shared = [WorkerPlan(1, {"CUDA_VISIBLE_DEVICES": "0"}), WorkerPlan(2, {"CUDA_VISIBLE_DEVICES": "0"})]
    with gpu_sharing(shared) as env:
        pipe = Path(env["CUDA_MPS_PIPE_DIRECTORY"])
        assert pipe.is_dir() and Path(env["CUDA_MPS_LOG_DIRECTORY"]).is_dir()
        started = mps_calls(fake_mps)
        assert started == [f"args=-d pipe={pipe} log={env['CUDA_MPS_LOG_DIRECTORY']} stdin="]
    assert mps_calls(fake_mps)[1:] == [f"args= pipe={pipe} log={env['CUDA_MPS_LOG_DIRECTORY']} stdin=quit"]
    assert not pipe.parent.exists(), "the daemon's private folder was left behind"


@pytest.mark.parametrize("case", ["one worker per gpu", "cpu workers", "--no-mps", "daemon already running"])
def test_no_mps_daemon_is_started_where_none_is_needed_or_wanted(fake_mps: Path, case: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    plans = [WorkerPlan(1, {"CUDA_VISIBLE_DEVICES": "0"}), WorkerPlan(2, {"CUDA_VISIBLE_DEVICES": "0"})]
    if case == "one worker per gpu":
        plans = [WorkerPlan(1, {"CUDA_VISIBLE_DEVICES": "0"}), WorkerPlan(2, {"CUDA_VISIBLE_DEVICES": "1"})]
    elif case == "cpu workers":
        plans = plan_workers(3)
    elif case == "daemon already running":
        monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/var/run/users-mps")
    with gpu_sharing(plans, mps=case != "--no-mps") as env:
        assert env == {}
    assert mps_calls(fake_mps) == []


def test_search_with_two_workers_on_one_gpu_runs_them_under_mps(run_cli, workdir: Path, fake_mps: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers see "GPU 0" and train on the CPU, as JAX does where no GPU is found.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    result = run_cli("search", "--dataset", "iris", "--space", "tiny.yaml", "--study", "mps", "--n-trials", "2",
                     "--max-epochs", "1", "--no-baselines", "--no-final", "--gpus", "0", "--trials-per-gpu", "2")
    assert result.code == 0, result.err
    calls = mps_calls(fake_mps)
    assert [c.split(" ")[0] for c in calls] == ["args=-d", "args="] and calls[1].endswith("stdin=quit")
    pipe = calls[0].split(" ")[1].removeprefix("pipe=")
    assert f"[w1/gpu0] shares its GPU through NVIDIA MPS ({pipe})" in result.out
    assert f"[w2/gpu0] shares its GPU through NVIDIA MPS ({pipe})" in result.out


def test_a_study_keeps_its_precision_for_every_worker(run_cli, workdir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from autodnn.workers import run_worker

    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    url = "sqlite:///studies/bf16.db"
    result = run_cli("search", "--dataset", "iris", "--space", "tiny.yaml", "--study", "bf16", "--n-trials", "1",
                     "--max-epochs", "1", "--no-baselines", "--no-final", "--precision", "mixed_bfloat16")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="bf16", storage=url)
    assert study.user_attrs["settings"]["precision"] == "mixed_bfloat16"
    assert study.user_attrs["environment"]["precision"] == "mixed_bfloat16"
    assert "backend jax (mixed_bfloat16)" in run_cli("show", "bf16", "--storage", url).out
    # A worker started elsewhere, without the search's environment, trains in the study's precision.
    monkeypatch.delenv("AUTODNN_PRECISION")
    run_worker("bf16", url)
    assert os.environ["AUTODNN_PRECISION"] == "mixed_bfloat16"


def test_cpu_workers_are_pinned_to_equal_shares_of_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    assert [p.env[CPUS_ENV] for p in plan_workers(2)] == ["0,1", "2,3,4"]
    assert [p.env[CPUS_ENV] for p in plan_workers(5)] == ["0", "1", "2", "3", "4"]
    assert all(CPUS_ENV not in p.env for p in plan_workers(6)), "more workers than CPUs: the system spreads them"
    assert plan_workers(1)[0].env == {}
    assert split_cpus(2) == [[0, 1], [2, 3, 4]]


def test_a_worker_pins_itself_before_its_backend_starts(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    script = ("import os, sys; from autodnn.workers import pin_to_cpus; print(pin_to_cpus()); "
              "import jax; print(sorted(os.sched_getaffinity(0)), 'jax' in sys.modules)")
    env = {**os.environ, CPUS_ENV: str(cpu), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == [f"[{cpu}]", f"[{cpu}] True"]


@pytest.mark.parametrize(("value", "fragment"), [
    ("first", "AUTODNN_CPUS is 'first', not CPU ids such as 0,1"),
    ("4096", "AUTODNN_CPUS=4096: cannot pin this worker to those CPUs"),
])
def test_a_worker_refuses_cpus_it_cannot_pin_to(run_cli, monkeypatch: pytest.MonkeyPatch, value: str,
                                               fragment: str) -> None:
    monkeypatch.setenv(CPUS_ENV, value)
    before = os.sched_getaffinity(0)
    assert_user_error(run_cli("worker", "--study", "any", "--storage", "sqlite:///nowhere.db"), fragment)
    assert os.sched_getaffinity(0) == before


def test_ctrl_c_that_a_library_turned_into_an_error_still_stops_the_search(tmp_path: Path) -> None:
    # A Ctrl-C that lands in a database write can come out of the driver as an ordinary error: the trial would
    # fail and the search go on to the next one. The loop notes the signal itself and stops.
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'ctrl-c.db'}")
    started = []

    def objective(trial: optuna.Trial) -> float:
        started.append(trial.number)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise TrialFailed("OperationalError: interrupted") from None
        return 1.0

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a process started from a shell
    try:
        with pytest.raises(KeyboardInterrupt):
            run_trials(study, objective, n_trials=3)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert started == [0]
    assert [t.state for t in study.trials] == [TrialState.FAIL]
