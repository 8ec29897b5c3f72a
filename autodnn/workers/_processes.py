"""Worker processes on one machine: which to start (one per GPU, or N on the CPU), their environment, and
starting, watching and stopping them for ``autodnn search --workers N``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import optuna

from autodnn.errors import AutodnnError, UsageError
from autodnn.study.records import finished_count
from autodnn.study.urls import STORAGE_ENV, redact

#: Seconds Ctrl-C gives worker processes to mark their trials failed before they are killed.
STOP_GRACE = 30.0
#: NVIDIA's Multi-Process Service control program, which starts and stops the MPS daemon.
MPS_CONTROL = "nvidia-cuda-mps-control"
#: Where an MPS daemon started by the machine's administrator listens (CUDA's default pipe folder).
SYSTEM_MPS_PIPE = Path("/tmp/nvidia-mps")
#: The CPUs a worker process pins itself to (comma-separated ids), set by :func:`plan_workers` for CPU workers.
CPUS_ENV = "AUTODNN_CPUS"


@dataclass
class WorkerPlan:
    """One worker process to start: its number and what its environment adds (the GPU it sees).

    Attributes:
        index: 1-based worker number, used in output prefixes.
        env: Environment variables set for this worker only.
    """

    index: int
    env: dict[str, str]

    @property
    def label(self) -> str:
        """``w1``, or ``w1/gpu0`` for a worker pinned to a GPU."""
        gpu = self.env.get("CUDA_VISIBLE_DEVICES")
        return f"w{self.index}" if gpu is None else f"w{self.index}/gpu{gpu}"


def parse_gpus(text: str) -> list[str] | None:
    """``"0,1"`` -> ``["0", "1"]``; ``"all"`` -> None (every visible GPU).

    Raises:
        UsageError: The list is not comma-separated GPU indices, or names one twice.
    """
    if text.strip().lower() == "all":
        return None
    items = [item.strip() for item in text.split(",")]
    if not items or not all(item.isdigit() for item in items):
        raise UsageError(f"--gpus {text!r} is not a list of GPU indices; write e.g. --gpus 0,1 or --gpus all")
    if len(set(items)) != len(items):
        raise UsageError(f"--gpus {text!r} names a GPU twice; use --trials-per-gpu to run several trials on one")
    return [str(int(item)) for item in items]


def visible_gpu_indices() -> list[str]:
    """Indices of the GPUs this process can use, as ``autodnn.backend.visible_gpus`` reports them."""
    from autodnn import backend

    visible = getattr(backend, "visible_gpus", None)
    if visible is None:
        return _nvidia_smi_gpus()
    indices = []
    for position, gpu in enumerate(visible()):
        if isinstance(gpu, int):
            indices.append(str(gpu))
        else:
            digits = "".join(ch for ch in str(getattr(gpu, "id", gpu)).rsplit(":", 1)[-1] if ch.isdigit())
            indices.append(digits or str(position))
    return indices


def _nvidia_smi_gpus() -> list[str]:
    """GPU indices from ``nvidia-smi -L`` (narrowed by CUDA_VISIBLE_DEVICES), without importing a framework."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = [str(i) for i, line in enumerate(listed.stdout.splitlines()) if line.startswith("GPU ")]
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is not None:
        found = [g.strip() for g in mask.split(",") if g.strip() in found]
    return found


def plan_workers(workers: int = 1, gpus: str | None = None, trials_per_gpu: int = 1,
                 storage: str | None = None) -> list[WorkerPlan]:
    """The worker processes ``autodnn search`` starts, checked before anything is written.

    Args:
        workers: Processes on the CPU (without ``gpus``).
        gpus: GPU indices or ``"all"``: ``trials_per_gpu`` processes per GPU, each seeing only its GPU.
            Without GPUs, each of several workers is pinned to its own share of this process's CPUs
            (:func:`split_cpus`).
        trials_per_gpu: Processes sharing one GPU.
        storage: The study's storage URL (an in-memory database cannot be shared between processes).

    Raises:
        UsageError: A GPU is not there, or the storage is private to one process.
    """
    if gpus is None:
        groups = split_cpus(workers)
        plans = [WorkerPlan(i + 1, {CPUS_ENV: ",".join(map(str, groups[i]))} if groups else {})
                 for i in range(workers)]
    else:
        visible = visible_gpu_indices()
        wanted = parse_gpus(gpus)
        if wanted is None:
            if not visible:
                raise UsageError("--gpus all: this machine has no visible GPU; leave out --gpus to train on the CPU")
            wanted = visible
        missing = [g for g in wanted if g not in visible]
        if missing:
            have = f"its GPUs are {', '.join(visible)}" if visible else "it has no visible GPU"
            raise UsageError(f"--gpus {gpus}: no GPU {', '.join(missing)} on this machine ({have}); "
                             f"{'choose among them' if visible else 'leave out --gpus to train on the CPU'}")
        plans = [WorkerPlan(len(wanted) * k + i + 1, {"CUDA_VISIBLE_DEVICES": g})
                 for k in range(trials_per_gpu) for i, g in enumerate(wanted)]
        plans.sort(key=lambda plan: plan.index)
    if len(plans) > 1 and storage is not None and (storage.rstrip("/") in ("sqlite:", "sqlite://")
                                                   or ":memory:" in storage):
        raise UsageError(f"--storage {redact(storage)} lives in one process's memory; several workers need a "
                         "file or a server (the default sqlite:///studies/STUDY.db works)")
    return plans


def split_cpus(workers: int) -> list[list[int]] | None:
    """This process's CPUs in ``workers`` groups as equal as can be, or None where pinning does not apply.

    Two unpinned workers on two cores trained the exercise-8 net at batch 32 about 9% slower in all than two
    pinned one per core: each unpinned process runs its small matrix products on two threads that wait on
    each other and on the other process. There is nothing to split for one worker, or with fewer CPUs than
    workers (the system spreads them), or where the platform cannot pin (not Linux).
    """
    getaffinity = getattr(os, "sched_getaffinity", None)
    if workers < 2 or getaffinity is None:
        return None
    cpus = sorted(getaffinity(0))
    if len(cpus) < workers:
        return None
    return [cpus[i * len(cpus) // workers:(i + 1) * len(cpus) // workers] for i in range(workers)]


def pin_to_cpus() -> list[int] | None:
    """Pins this process to the CPUs ``AUTODNN_CPUS`` names, before JAX or TensorFlow size their thread pools.

    Returns:
        The CPUs, or None when the variable is unset.

    Raises:
        UsageError: The variable is not a list of CPU ids, or this process cannot be pinned to them.
    """
    text = os.environ.get(CPUS_ENV, "").strip()
    if not text:
        return None
    try:
        cpus = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise UsageError(f"{CPUS_ENV} is {text!r}, not CPU ids such as 0,1; fix or unset it") from None
    try:
        os.sched_setaffinity(0, cpus)
    except (AttributeError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or "not supported here"
        raise UsageError(f"{CPUS_ENV}={text}: cannot pin this worker to those CPUs ({reason}); "
                         "fix or unset it") from None
    return cpus


def worker_command(study_name: str, *, timeout: float | None = None, quiet: bool = False) -> list[str]:
    """The command line of one ``autodnn worker`` process; the storage URL travels in its environment."""
    command = [sys.executable, "-m", "autodnn", "worker", "--study", study_name]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    if quiet:
        command.append("--quiet")
    return command


def worker_environment(url: str, plan: WorkerPlan) -> dict[str, str]:
    """The environment of a worker process: this one's, the storage URL, the plan's GPU, and this process's
    ``autodnn`` first on the path (workers run the same code as the search that starts them).
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, STORAGE_ENV: url, **plan.env}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    share_gpu_memory(env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@contextlib.contextmanager
def gpu_sharing(plans: Sequence[WorkerPlan], *, mps: bool = True) -> Iterator[dict[str, str]]:
    """Runs NVIDIA's Multi-Process Service (MPS) while several workers share one GPU.

    Processes on one GPU otherwise take turns on it, one at a time: four workers training the exercise-8 net
    on one H200 together trained 1.21 times one worker's samples per second, and 2.64 times under MPS
    (benchmarks/RESULTS.md). The daemon is autodnn's own, in a private folder, started only when some GPU has
    more than one worker, ``nvidia-cuda-mps-control`` is installed and no MPS daemon runs already (one named
    by ``CUDA_MPS_PIPE_DIRECTORY``, or the machine's in ``/tmp/nvidia-mps``, which the workers use as it is);
    it is told to quit when the block ends.

    Args:
        plans: The workers, from :func:`plan_workers`.
        mps: False never starts a daemon (``--no-mps``).

    Yields:
        The variables that connect a worker to the daemon; empty when none was started.
    """
    gpus = [plan.env["CUDA_VISIBLE_DEVICES"] for plan in plans if "CUDA_VISIBLE_DEVICES" in plan.env]
    control = shutil.which(MPS_CONTROL)
    running = "CUDA_MPS_PIPE_DIRECTORY" in os.environ or (SYSTEM_MPS_PIPE / "control").exists()
    if not mps or len(set(gpus)) == len(gpus) or control is None or running:
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="autodnn-mps-"))
    env = {"CUDA_MPS_PIPE_DIRECTORY": str(folder / "pipe"), "CUDA_MPS_LOG_DIRECTORY": str(folder / "log")}
    for path in env.values():
        Path(path).mkdir()
    try:
        started = subprocess.run([control, "-d"], env={**os.environ, **env}, capture_output=True, text=True,
                                 timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        started = None
    if started is None or started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        yield {}
        return
    try:
        yield env
    finally:
        try:
            subprocess.run([control], input="quit\n", env={**os.environ, **env}, capture_output=True, text=True,
                           timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(folder, ignore_errors=True)


def share_gpu_memory(env: Any = None) -> None:
    """Stops JAX and TensorFlow from taking most of a GPU's memory at start, so that several processes (the
    workers of one GPU, and the search that started them) fit on it; each takes what it uses.

    Args:
        env: The environment to change; this process's by default.
    """
    env = os.environ if env is None else env
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


@dataclass
class WorkerExit:
    """How a worker process ended: its plan, exit code (negative: killed by that signal) and last error line."""

    plan: WorkerPlan
    code: int
    error: str = ""

    def describe(self) -> str:
        """``w2 was killed by SIGKILL`` or ``w1 exited with code 2: Error: ...``."""
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = f"signal {-self.code}"
            return f"{self.plan.label} was killed by {name}"
        return f"{self.plan.label} exited with code {self.code}" + (f": {self.error}" if self.error else "")


def launch_workers(
    study_name: str,
    url: str,
    plans: Sequence[WorkerPlan],
    *,
    timeout: float | None = None,
    quiet: bool = False,
    on_line: Callable[[WorkerPlan, str, str], None] | None = None,
    mps: bool = True,
) -> list[WorkerExit]:
    """Starts one ``autodnn worker`` process per plan and waits for all of them.

    Workers that share a GPU run under an MPS daemon (:func:`gpu_sharing`) unless ``mps`` is False.

    Args:
        study_name: The study, already created (workers read everything from it).
        url: Its storage URL (passed in the environment, never on a command line).
        plans: From :func:`plan_workers`.
        timeout: Each worker stops starting trials after this many seconds.
        quiet: Workers print only errors.
        on_line: Called with (plan, ``"stdout"`` or ``"stderr"``, line) for each line a worker prints.
        mps: Whether workers sharing a GPU may run under an MPS daemon.

    Returns:
        How each worker ended.

    Raises:
        KeyboardInterrupt: After Ctrl-C, once the workers marked their trials failed (or were killed).
    """
    with gpu_sharing(plans, mps=mps) as mps_env:
        if mps_env and on_line is not None:
            for plan in plans:
                on_line(plan, "stdout", f"shares its GPU through NVIDIA MPS ({mps_env['CUDA_MPS_PIPE_DIRECTORY']})")
        return _run_workers(study_name, url, plans, timeout, quiet, on_line, mps_env)


def _run_workers(study_name: str, url: str, plans: Sequence[WorkerPlan], timeout: float | None, quiet: bool,
                 on_line: Callable[[WorkerPlan, str, str], None] | None,
                 extra_env: dict[str, str]) -> list[WorkerExit]:
    errors: dict[int, str] = {}
    processes: list[tuple[WorkerPlan, subprocess.Popen[str]]] = []
    pumps: list[threading.Thread] = []

    def pump(plan: WorkerPlan, stream: IO[str], name: str) -> None:
        for line in stream:
            line = redact(line.rstrip("\n"))
            if name == "stderr" and line.startswith("Error: "):
                errors[plan.index] = line
            if on_line is not None:
                on_line(plan, name, line)

    try:
        for plan in plans:
            process = subprocess.Popen(worker_command(study_name, timeout=timeout, quiet=quiet),
                                       env={**worker_environment(url, plan), **extra_env}, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, bufsize=1)
            processes.append((plan, process))
            for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr")):
                thread = threading.Thread(target=pump, args=(plan, stream, name), daemon=True)
                thread.start()
                pumps.append(thread)
        for _, process in processes:
            process.wait()
    except KeyboardInterrupt:
        _stop(process for _, process in processes)
        raise
    finally:
        for thread in pumps:
            thread.join(timeout=5)
    return [WorkerExit(plan, process.returncode, errors.get(plan.index, "")) for plan, process in processes]


def _stop(processes: Any) -> None:
    """Stops the workers after Ctrl-C, letting each mark its running trial failed first.

    A terminal's Ctrl-C reaches the workers too, so they get a moment to stop on their own (a second SIGINT
    could cut their cleanup short); only then are the rest (this process alone was interrupted, ``kill
    -INT``) sent one, and killed after :data:`STOP_GRACE` seconds.
    """
    alive = [p for p in processes if p.poll() is None]
    deadline = time.monotonic() + 5
    for process in alive:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    alive = [p for p in alive if p.poll() is None]
    for process in alive:
        try:
            process.send_signal(signal.SIGINT)
        except OSError:
            pass
    deadline = time.monotonic() + STOP_GRACE
    for process in alive:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def check_outcome(study: optuna.Study, target: int, exits: Sequence[WorkerExit], *, timed_out: bool) -> None:
    """Raises when the workers stopped before the study reached its target (and no timeout explains it).

    Raises:
        AutodnnError: Fewer than ``target`` finished trials; names how each failed worker ended.
    """
    finished = finished_count(study)
    if finished >= target or timed_out:
        return
    failed = [e.describe() for e in exits if e.code != 0] or ["every worker exited"]
    raise AutodnnError(f"the workers stopped with {finished} of {target} trials finished: {'; '.join(failed)}; "
                       f"resume with the same command or 'autodnn worker --study {study.study_name}'")
