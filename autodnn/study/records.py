"""What a study holds, read back: counts, baselines, trial summaries and tables, the best trial, study lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodnn.study._tables import summary_rows, trials_from_tables
from autodnn.study.storage import open_storage
from autodnn.study.trial_record import BASELINE, MEASURED, NOT_STARTED, PREDICTED, REASON, RESULT, WARM_START

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial counts toward ``--n-trials``: it finished, and it trained."""
    return trial.state in FINISHED and not trial.user_attrs.get(NOT_STARTED)


def finished_count(study: optuna.Study) -> int:
    """Trials that finished (complete or pruned) after training: what ``--n-trials`` counts."""
    return sum(counts(t) for t in study.get_trials(deepcopy=False, states=FINISHED))


def epochs_spent(study: optuna.Study) -> int:
    """Epochs trained by the study's searched trials (baselines not counted): what ``--epoch-budget`` caps."""
    return sum(int((t.user_attrs.get(RESULT) or {}).get("epochs") or 0)
               for t in study.get_trials(deepcopy=False) if not is_baseline(t))


def is_baseline(trial: FrozenTrial) -> bool:
    """Whether a trial trains one of the book's defaults rather than a searched configuration."""
    return BASELINE in trial.user_attrs


def baseline_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The finished baseline trial of each book default (the latest one, when retried)."""
    latest: dict[str, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        if is_baseline(trial):
            latest[trial.user_attrs[BASELINE]] = trial
    return list(latest.values())


def run_target(study: optuna.Study, n_trials: int) -> int:
    """Finished trials the study must hold for ``n_trials`` searched ones: baselines come on top."""
    names = {t.user_attrs[BASELINE] for t in study.get_trials(deepcopy=False) if is_baseline(t)}
    return n_trials + len(names)


def searched_count(study: optuna.Study) -> int:
    """Finished trials that were searched (baselines and trials not started not counted)."""
    return sum(counts(t) and not is_baseline(t) for t in study.get_trials(deepcopy=False, states=FINISHED))


def queued_count(study: optuna.Study) -> int:
    """Trials waiting in the queue (enqueued, not started yet)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def study_summaries(storage: str) -> list[dict[str, Any]]:
    """One row per study in ``storage``: name, dataset, trial counts by state, best value, start time."""
    backend = open_storage(storage, create=False)
    rows = []
    for summary in optuna.get_all_study_summaries(backend, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=backend)
        trials = study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in TrialState}
        complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        rows.append(
            {
                "study": summary.study_name,
                "dataset": summary.user_attrs.get("dataset", {}).get("name", "?"),
                "space": summary.user_attrs.get("space", {}).get("name", "?"),
                "complete": counts[TrialState.COMPLETE],
                "pruned": counts[TrialState.PRUNED],
                "failed": counts[TrialState.FAIL],
                "running": counts[TrialState.RUNNING],
                "best_value": max(complete) if complete else None,
                "started": summary.datetime_start.strftime("%Y-%m-%d %H:%M") if summary.datetime_start else "",
            }
        )
    return rows


#: The user attributes tables and counts need; the rest (history, configuration, timings) stays unread.
SUMMARY_USER_ATTRS = (RESULT, REASON, BASELINE, WARM_START, PREDICTED, MEASURED)


@dataclass(frozen=True)
class TrialSummary:
    """What ``autodnn show`` and counts need of a trial, read without its history (cheap for 10,000 trials).

    Attributes:
        number: The trial's number in its study.
        trial_id: Its id in the storage, to fetch the whole trial.
        state: Its state.
        value: Its objective value (None unless finished with one).
        params: Its parameters, as sampled.
        user_attrs: Only the keys of :data:`SUMMARY_USER_ATTRS`.
        system_attrs: Only ``failed_trial`` and ``retry_history`` (the links of a retried trial).
        duration: Wall time from start to end, when it ended.
        n_intermediate: How many intermediate values (epochs) it reported.
    """

    number: int
    trial_id: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    user_attrs: dict[str, Any]
    system_attrs: dict[str, Any]
    duration: Any
    n_intermediate: int

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialSummary:
        """The summary of a trial already in memory."""
        return cls(trial.number, trial._trial_id, trial.state, trial.value, trial.params,
                   {k: trial.user_attrs[k] for k in SUMMARY_USER_ATTRS if k in trial.user_attrs},
                   {k: trial.system_attrs[k] for k in ("failed_trial", "retry_history") if k in trial.system_attrs},
                   trial.duration, len(trial.intermediate_values))


def trial_summaries(study: optuna.Study) -> list[TrialSummary]:
    """Every trial of ``study`` in number order, without histories.

    From a SQL storage, only the needed columns are read (Optuna's own read builds every attribute and
    intermediate value of every trial: about 30 s for 10,000 trials on 2 cores); elsewhere, or if the tables
    do not look as expected, the trials are read whole.
    """
    backend = getattr(study._storage, "_backend", study._storage)  # RDBStorage behind Optuna's cache
    if isinstance(backend, optuna.storages.RDBStorage):
        try:
            return summaries_from_tables(backend, study._study_id)
        except Exception:  # noqa: BLE001, S110 - another Optuna's schema: the slower full read still works
            pass
    return [TrialSummary.of(t) for t in study.get_trials(deepcopy=False)]


def summaries_from_tables(storage: optuna.storages.RDBStorage, study_id: int) -> list[TrialSummary]:
    """The :func:`trial_summaries` of a study in a SQL storage, read from its tables as plain rows."""
    rows = summary_rows(storage, study_id, SUMMARY_USER_ATTRS)
    return sorted((TrialSummary(**row) for row in rows), key=lambda t: t.number)


def read_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of ``study``, whole, in number order: what ``study.get_trials()`` returns, read faster.

    Optuna's read goes through its ORM, one object per row: about 25 s for 10,000 trials of 20 epochs on 2
    cores. From a SQL storage the tables are read here as plain rows (a few seconds); elsewhere, or if the
    tables do not look as expected, Optuna reads them.
    """
    backend = getattr(study._storage, "_backend", study._storage)
    if isinstance(backend, optuna.storages.RDBStorage) and len(study.directions) == 1:
        try:
            return trials_from_tables(backend, study._study_id)
        except Exception:  # noqa: BLE001, S110 - another Optuna's schema: the slower full read still works
            pass
    return study.get_trials(deepcopy=False)


def trials_frame(study: optuna.Study, summaries: list[TrialSummary] | None = None):  # -> pandas.DataFrame
    """The trials of a study as a table: number, state, value, epochs, seconds, reason and parameters.

    A trial whose worker was lost names its retry in ``reason``; the retry names the original in ``retry_of``.

    Args:
        study: The study.
        summaries: Its :func:`trial_summaries`, when already read.
    """
    import pandas as pd

    trials = trial_summaries(study) if summaries is None else summaries
    retried_as: dict[int, int] = {}
    for t in trials:
        history = t.system_attrs.get("retry_history") or []
        if history:
            retried_as[history[-1]] = t.number
    rows = []
    for t in trials:
        result = t.user_attrs.get(RESULT) or {}
        duration = t.duration.total_seconds() if t.duration else None
        reason = t.user_attrs.get(REASON, "")
        if not reason and t.number in retried_as:
            reason = f"worker lost (no heartbeat); retried as trial {retried_as[t.number]}"
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs": result.get("epochs", t.n_intermediate or None),
            "seconds": round(duration, 1) if duration is not None else None,
            "reason": reason,
            "baseline": t.user_attrs.get(BASELINE, ""),
            "retry_of": t.system_attrs.get("failed_trial"),
            "predicted_s": _rounded(t.user_attrs.get(PREDICTED)),
            "epoch_s": _rounded(t.user_attrs.get(MEASURED)),
        }
        row.update(t.params)
        rows.append(row)
    return pd.DataFrame(rows)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def best_trial(study: optuna.Study, summaries: list[TrialSummary] | None = None) -> FrozenTrial | None:
    """The best complete searched trial (baselines excluded), or None when none completed.

    Args:
        study: The study.
        summaries: Its :func:`trial_summaries`, when already read.
    """
    complete = [t for t in (trial_summaries(study) if summaries is None else summaries)
                if t.state == TrialState.COMPLETE and t.value is not None and BASELINE not in t.user_attrs]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value if t.value is not None else float("-inf"))
    return study._storage.get_trial(best.trial_id)
