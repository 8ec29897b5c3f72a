"""Workers: the trial loop every worker runs, the lock that keeps a study at exactly its trial count, and the
processes ``autodnn search --workers N`` starts.

Any number of workers, on any machines, share one study through its database. Each one repeats: take the
study's lock, fail trials whose worker stopped sending heartbeats (Optuna re-queues them, linked to the
original), count, and start a trial only while finished plus running trials stay below the target; release
the lock and train. The lock makes "count, then start" one step, so N workers never start more trials than are
missing, and a worker that finds every missing trial running elsewhere waits instead of leaving: if one of
those workers dies, a survivor retries its trial.
"""

from __future__ import annotations

from autodnn.study.locks import StudyLock, schema_lock, study_lock
from autodnn.workers._loop import TrialOutcome, run_trials, run_worker, worker_id
from autodnn.workers._processes import (
    CPUS_ENV,
    WorkerExit,
    WorkerPlan,
    check_outcome,
    gpu_sharing,
    launch_workers,
    parse_gpus,
    pin_to_cpus,
    plan_workers,
    share_gpu_memory,
    split_cpus,
    visible_gpu_indices,
    worker_command,
    worker_environment,
)

__all__ = [
    "CPUS_ENV",
    "StudyLock",
    "TrialOutcome",
    "WorkerExit",
    "WorkerPlan",
    "check_outcome",
    "gpu_sharing",
    "launch_workers",
    "parse_gpus",
    "pin_to_cpus",
    "plan_workers",
    "run_trials",
    "run_worker",
    "schema_lock",
    "share_gpu_memory",
    "split_cpus",
    "study_lock",
    "visible_gpu_indices",
    "worker_command",
    "worker_environment",
    "worker_id",
]
