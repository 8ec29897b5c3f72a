"""The trial record: every user attribute a trial of an autodnn study carries, by name, and the one function
that writes what a training produced into it.

Two writers train trials, the objective (:mod:`autodnn.objective`, autodnn's own loop) and the KerasTuner
engine (:mod:`autodnn.engines`); both write through :func:`write_training`, so every trial of a study holds
the same keys whoever ran it. The readers (records, the cost model, the budget, the evaluation, the report)
name the keys through the constants below.
"""

from __future__ import annotations

import statistics
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autodnn.config import TrialConfig
    from autodnn.training.trainer import TrialResult

#: The trained configuration (:meth:`autodnn.config.TrialConfig.to_dict`).
CONFIG = "config"
#: The seed the trial trained with.
SEED = "seed"
#: The name of the book default a baseline trial trains (absent on searched trials).
BASELINE = "baseline"
#: A baseline's title, as the report shows it.
TITLE = "title"
#: The name of the designed configuration an enqueued warm start trains.
WARM_START = "warm_start"
#: The number of the incumbent a local move stepped from (:mod:`autodnn.study._local`); absent on TPE's draws.
LOCAL_MOVE = "local_move_of"
#: What the training measured on validation (``val_accuracy``, ``val_loss``, ``epochs`` ...), never the test split.
RESULT = "result"
#: Per-epoch metrics.
HISTORY = "history"
#: Wall seconds of every epoch.
EPOCH_TIMES = "epoch_times"
#: The measured cost: the steady epoch's seconds (:func:`steady_epoch_seconds`).
MEASURED = "epoch_seconds"
#: The predicted cost: seconds of one epoch by the cost model, before training.
PREDICTED = "predicted_epoch_seconds"
#: The learning-rate finder's sweep, where it ran.
LR_FINDER = "lr_finder"
#: Why the trial was pruned, failed or not started.
REASON = "reason"
#: The last lines of the traceback of a failed trial.
TRACEBACK = "traceback"
#: A baseline's search run as tested (it counts as one of its seeds in the final evaluation).
TEST_RUN = "test_run"
#: Set on a trial the search did not start (the time left or its cost frontier could not pay for it): kept,
#: pruned, with its reason, but not counted in ``--n-trials``.
NOT_STARTED = "not_started"
#: ``host:pid`` of the worker that ran the trial.
WORKER = "worker"
#: A study's attribute: why each book baseline its budget could not pay for is not trained (one line each).
BASELINES_LEFT_OUT = "baselines_left_out"
#: What KerasTuner said of a trial it drove (strategy, its trial id, the bracket's epochs).
ENGINE = "engine"
#: What a training measures on the test split: kept out of :data:`RESULT`, which the search reads.
TEST_METRICS = ("test_accuracy", "test_loss", "mc_test_accuracy", "test_r2", "test_rmse", "test_mae")

#: Characters of a failure's reason and of its traceback that are kept.
REASON_CHARS = 500
TRACEBACK_CHARS = 4000


def steady_epoch_seconds(epoch_times: list[float]) -> float | None:
    """The median epoch after the first (which also compiles), or None with fewer than two epochs.

    A trial pruned after its first epoch measured its compiling along with it, up to seconds on a net whose
    steady epochs take a tenth of one: no steady rate to calibrate the cost model with.
    """
    if len(epoch_times) < 2:
        return None
    return statistics.median(epoch_times[1:])


def failure_reason(error: BaseException) -> str:
    """One line naming an error: its type and the first line of its message."""
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message}"[:REASON_CHARS]


def write_training(
    set_attr: Callable[[str, Any], None],
    config: TrialConfig,
    *,
    seed: int,
    predicted: float | None = None,
    result: TrialResult | None = None,
    error: BaseException | None = None,
) -> str | None:
    """Writes a training's outcome into a trial's user attributes.

    Args:
        set_attr: Sets one attribute: ``optuna.Trial.set_user_attr`` of a running trial, or ``dict.__setitem__``
            of the attributes of a trial recorded once it ended.
        config: What was trained.
        seed: Its seed.
        predicted: The cost model's seconds of one epoch, where it was asked.
        result: What the training returned; None when it failed.
        error: What made it fail (written with the traceback being handled, so call it inside ``except``).

    Returns:
        Why the trial did not complete (failed, pruned, or stopped at a NaN loss), or None when it completed.
    """
    set_attr(CONFIG, config.to_dict())
    set_attr(SEED, seed)
    if predicted is not None:
        set_attr(PREDICTED, predicted)
    if result is None:
        reason = failure_reason(error) if error is not None else "the training returned no result"
        set_attr(REASON, reason)
        set_attr(TRACEBACK, traceback.format_exc()[-TRACEBACK_CHARS:])
        return reason
    stored = result.to_dict()
    set_attr(RESULT, {k: v for k, v in result.metrics.items() if k not in TEST_METRICS})
    set_attr(HISTORY, stored["history"])
    set_attr(EPOCH_TIMES, result.epoch_times)
    set_attr(MEASURED, steady_epoch_seconds(result.epoch_times))
    if result.lr_finder is not None:
        set_attr(LR_FINDER, stored["lr_finder"])
    if result.stopped in ("pruned", "nan"):
        set_attr(REASON, result.reason)
        return result.reason
    return None
