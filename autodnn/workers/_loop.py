"""The loop every worker runs: admit a trial only while the study misses one, train it with heartbeats, retry
lost ones; and :func:`run_worker`, the body of ``autodnn worker``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from autodnn.errors import SearchFailed, TrialFailed
from autodnn.study.deadline import Deadline
from autodnn.study.locks import StudyLock, study_lock
from autodnn.study.records import counts, epochs_spent
from autodnn.study.trial_record import BASELINE, REASON, WORKER
from autodnn.study.urls import STORAGE_ENV, redact

#: Seconds between checks of a worker that waits for trials running elsewhere (a heartbeat interval when
#: that is shorter).
WAIT_POLL = 5.0


def worker_id() -> str:
    """``host:pid`` of this process, as stored in the trials it runs (find the process of a stuck trial)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class TrialOutcome:
    """What a worker's loop reports after each trial.

    Attributes:
        trial: The trial as stored after it ended.
        lost: Another worker declared this trial lost (no heartbeat within the grace period) while it ran; its
            retry elsewhere counts instead, and this run's result was discarded.
    """

    trial: FrozenTrial
    lost: bool = False


@dataclass
class _FailureGuard:
    """Stops a worker after too many consecutive failed trials (a broken setup, not a bad configuration)."""

    limit: int
    count: int = 0
    last_reason: str = ""

    def record(self, trial: FrozenTrial) -> bool:
        """Counts a finished trial; returns True when the limit is reached."""
        if trial.state != TrialState.FAIL:
            self.count = 0
            return False
        self.count += 1
        self.last_reason = trial.user_attrs.get(REASON, "unknown")
        return self.count >= self.limit


@dataclass
class _Heartbeat:
    """Records a running trial's heartbeat every ``interval`` seconds from a thread.

    A failed write (the database briefly away) is skipped: the next one may succeed before the grace period
    ends, and failing the trial over it would waste the training.
    """

    storage: Any
    trial_id: int
    interval: int | None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:  # noqa: PYI034 - a dataclass, never subclassed
        if self.interval:
            self._thread = threading.Thread(target=self._beat, name="autodnn-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001, S110 - see the class docstring
                pass
            if self._stop.wait(self.interval):
                return


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int,
    lock: StudyLock | None = None,
    deadline: Deadline | None = None,
    max_failures: int = 5,
    on_trial: Callable[[optuna.Study, TrialOutcome], None] | None = None,
    on_wait: Callable[[optuna.Study, int], None] | None = None,
    epoch_budget: int | None = None,
) -> int:
    """Runs trials until the study holds ``n_trials`` finished ones, counting every worker's.

    Args:
        study: The study, possibly shared with other workers.
        objective: What a trial runs; raises :class:`TrialFailed` for a trial that failed on its own.
        n_trials: Finished (complete or pruned) trials the whole study should hold.
        lock: The study's :func:`study_lock`; without it, only this process's threads are coordinated.
        deadline: Start (or wait for) no trial once it has passed; after every trial it is told the study, so
            a deadline that follows an estimate (:class:`autodnn.tuning.budget.BudgetDeadline`) can move. The
            objective shares it: the trial in flight stops there.
        max_failures: Stop with an error after this many consecutive failed trials.
        on_trial: Called after every trial this worker ran.
        on_wait: Called with the number of trials running elsewhere when this worker starts to wait for them.
        epoch_budget: Start no searched trial once the study's searched trials trained this many epochs (the
            baselines still run).

    Returns:
        How many trials this worker ran.

    Raises:
        SearchFailed: ``max_failures`` consecutive trials failed.
    """
    with _stopping_on_ctrl_c():
        return _run_trials(study, objective, n_trials=n_trials, lock=lock or StudyLock(), deadline=deadline or Deadline(),
                           max_failures=max_failures, on_trial=on_trial, on_wait=on_wait, epoch_budget=epoch_budget)


#: Set when Ctrl-C (SIGINT) reached this process while it ran trials.
_CTRL_C = threading.Event()


@contextlib.contextmanager
def _stopping_on_ctrl_c() -> Iterator[None]:
    """Makes Ctrl-C stop the loop even where a library turned the ``KeyboardInterrupt`` into another error.

    A trial on a small dataset spends much of each epoch writing to the study's database. An interrupt that
    lands there can come out of the database driver as an ordinary error, which would fail one trial and let
    the search go on. So SIGINT is noted as it raises ``KeyboardInterrupt``, and any error raised after it is
    turned back into ``KeyboardInterrupt``. Only the main thread can handle signals, and a handler that is
    not Python's default one is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or (
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def note(signum: int, frame: Any) -> None:
        _CTRL_C.set()
        signal.default_int_handler(signum, frame)

    _CTRL_C.clear()
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    except Exception as exc:
        if _CTRL_C.is_set():
            raise KeyboardInterrupt from exc
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        _CTRL_C.clear()


def _run_trials(study: optuna.Study, objective: Callable[[optuna.Trial], float], *, n_trials: int,
                lock: StudyLock, deadline: Deadline, max_failures: int,
                on_trial: Callable[[optuna.Study, TrialOutcome], None] | None,
                on_wait: Callable[[optuna.Study, int], None] | None, epoch_budget: int | None) -> int:
    guard = _FailureGuard(max_failures)
    interval = study._storage.get_heartbeat_interval() if hasattr(study._storage, "get_heartbeat_interval") else None
    poll = min(WAIT_POLL, float(interval)) if interval else WAIT_POLL
    ran = 0
    waiting = False
    while not deadline.passed():
        lock.acquire()
        try:
            if interval:
                optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            finished = sum(counts(t) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if finished >= n_trials:
                return ran
            if epoch_budget is not None and not _baseline_queued(study) and epochs_spent(study) >= epoch_budget:
                return ran
            if finished + running >= n_trials:
                lock.release()
                if not waiting and on_wait is not None:
                    on_wait(study, running)
                waiting = True
                time.sleep(max(0.0, min(poll, deadline.left())))
                continue
            waiting = False
            progress = _run_one(study, objective, lock, interval)
        finally:
            lock.release()
        ran += 1
        deadline.update(study)
        gc.collect()
        if on_trial is not None:
            on_trial(study, progress)
        if not progress.lost and guard.record(progress.trial):
            raise SearchFailed(f"{max_failures} trials in a row failed, the last with: {guard.last_reason}; "
                             f"see 'autodnn show {study.study_name}'")
    return ran


def _baseline_queued(study: optuna.Study) -> bool:
    return any(BASELINE in t.user_attrs for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _run_one(study: optuna.Study, objective: Callable[[optuna.Trial], float], lock: StudyLock,
             interval: int | None) -> TrialOutcome:
    """Starts a trial (a queued one first: baselines, retries), releases the lock, trains and records it."""
    with warnings.catch_warnings():
        # Optuna warns that heartbeats expect Study.optimize; this loop keeps them itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()
    lock.release()
    value: float | None = None
    state = TrialState.FAIL
    lost = False
    # study._storage and trial._trial_id: the heartbeat API is keyed by Optuna's internal trial id.
    with _Heartbeat(study._storage, trial._trial_id, interval):
        try:
            trial.set_user_attr(WORKER, worker_id())
            value = objective(trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except TrialFailed:
            state = TrialState.FAIL
        except UpdateFinishedTrialError:
            lost = True
        except BaseException:
            _fail(study, trial)
            raise
        if _CTRL_C.is_set():
            _fail(study, trial)
            raise KeyboardInterrupt
    frozen = study.tell(trial, value if state == TrialState.COMPLETE else None, state=state,
                        skip_if_finished=True)
    return TrialOutcome(frozen, lost=lost or frozen.state != state)


def _fail(study: optuna.Study, trial: optuna.Trial) -> None:
    """Records a trial that an interrupt or an error cut short as failed, so a resumed search runs it again.

    An interrupt inside a database write can leave the pooled connections unusable, so after a failed try the
    pool is replaced and the write tried again; if every try fails, the trial's heartbeat stops and another
    worker fails it later.
    """
    for _ in range(3):
        try:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            return
        except Exception:  # noqa: BLE001 - any failed write: a fresh pool, then the next try
            storage = getattr(study._storage, "_backend", study._storage)
            engine = getattr(storage, "engine", None)
            if engine is not None:
                engine.dispose()


# --- One worker -----------------------------------------------------------------------------------------------


def run_worker(
    study_name: str,
    storage: str | None = None,
    *,
    backend: str = "auto",
    timeout: float | None = None,
    on_start: Callable[[optuna.Study, Any, int], None] | None = None,
    on_trial: Callable[[optuna.Study, TrialOutcome], None] | None = None,
    on_wait: Callable[[optuna.Study, int], None] | None = None,
    on_trial_start: Callable[[optuna.Study, optuna.Trial], None] | None = None,
    on_epoch: Callable[[optuna.Trial, int, dict[str, float]], None] | None = None,
) -> optuna.Study:
    """Joins a study made by ``autodnn search`` and runs its missing trials: the body of ``autodnn worker``.

    Everything else comes from the study: dataset (reloaded and checked against its fingerprint), space,
    epochs, seed and the target number of trials.

    Args:
        study_name: The study to join.
        storage: Its storage URL; defaults to ``$AUTODNN_STORAGE``, then ``sqlite:///studies/<study>.db``.
        backend: Keras backend of this worker.
        timeout: Seconds this worker's trials may take: none starts after them, and the one in flight stops
            after its current epoch and is kept, pruned.
        on_start: Called with (study, dataset, target) before the first trial.
        on_trial: Called after every trial.
        on_wait: Called when the worker starts waiting for trials running elsewhere.
        on_trial_start: Called with (study, trial) when a trial starts, its configuration known.
        on_epoch: Called with (trial, 0-based epoch, metrics) after every epoch.

    Returns:
        The study.

    Raises:
        UsageError: The study does not exist, was not made by ``autodnn search``, or its data changed; or
            the study asks for TensorBoard logs (``--tensorboard``) that this worker cannot write.
        SearchFailed: Too many trials failed in a row.
    """
    from autodnn.backend import configure_device, select_backend
    from autodnn.objective import build_objective
    from autodnn.space import space_from_stored, stored_family
    from autodnn.study.options import check_tensorboard, dataset_of, require_options
    from autodnn.study.records import run_target
    from autodnn.study.storage import load_study
    from autodnn.study.strategy import make_pruner, make_sampler, precision_of, pruner_of
    from autodnn.study.urls import storage_url

    url = storage_url(study_name, storage or os.environ.get(STORAGE_ENV))
    study = load_study(study_name, url)
    select_backend(backend, family=stored_family(study.user_attrs))
    options = require_options(study, redact(url))
    if options.get("tensorboard"):
        # A relative folder is this worker's own: its working directory may not be the search's.
        check_tensorboard(options["tensorboard"])
    configure_device(precision_of(options))
    # Workers sharing the search's seed would draw the same random startup trials: derive one per process.
    study.sampler = make_sampler(zlib.crc32(f"{options['seed']}:{worker_id()}".encode()),
                                 options.get("sampler") or "tpe")
    study.pruner = make_pruner(pruner_of(options), int(options["max_epochs"]))
    dataset = dataset_of(study)
    space = space_from_stored(study.user_attrs["space"])
    target = run_target(study, int(options["n_trials"]))
    if on_start is not None:
        on_start(study, dataset, target)
    deadline = Deadline.after(timeout)
    objective = build_objective(study, dataset, space, deadline=deadline, on_trial_start=on_trial_start,
                                on_epoch=on_epoch)
    run_trials(study, objective, n_trials=target, lock=study_lock(url, study_name), deadline=deadline,
               max_failures=int(options.get("max_failures", 5)), on_trial=on_trial, on_wait=on_wait,
               epoch_budget=options.get("epoch_budget"))
    return study
