"""A regression's kept network on its test split: what the predicted-against-actual and residuals plots draw.

The final evaluation stores the kept run's test predictions and the true targets, in the target's units
(``evaluation["predictions"]``, at most :data:`autodnn.evaluate.MAX_POINTS` rows, an even sample beyond), so
the report reads them from the study's database like every other figure: no data file, no Keras. Where they
are missing (an evaluation from before they were stored, or none kept), the report leaves the plots out and
says why in one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna


@dataclass
class Predictions:
    """The kept network's predictions on the test split, in the target's units.

    Attributes:
        target: The target's name.
        actual: True targets of the drawn rows.
        predicted: Predictions for the drawn rows.
        n_rows: Test rows in all (more than drawn when sampled).
        rmse: RMSE over the stored rows (every test row up to the stored sample).
        mae: MAE over the stored rows.
        r2: R² over the stored rows.
        recorded_rmse: The test RMSE the final evaluation recorded for this network's run, when known.
        trial_number: The trial whose configuration the network has.
        seed: The seed of the run kept.
    """

    target: str
    actual: list[float]
    predicted: list[float]
    n_rows: int
    rmse: float
    mae: float
    r2: float
    recorded_rmse: float | None
    trial_number: int | None
    seed: int | None

    @property
    def residuals(self) -> list[float]:
        """Actual minus predicted, for each drawn row."""
        return [a - p for a, p in zip(self.actual, self.predicted, strict=True)]


def gather_predictions(study: optuna.Study, evaluation: dict[str, Any], task: str) -> tuple[Predictions | None, str]:
    """The kept network's test predictions of an evaluated regression.

    Args:
        study: The study (its storage holds the kept network).
        evaluation: Its ``evaluation`` user attribute (empty when never evaluated).
        task: ``classification`` or ``regression``.

    Returns:
        The predictions and ``""``; or None and one line that says why there are none (``""`` for a
        classification, which has no such plots).
    """
    if task != "regression":
        return None, ""
    if not evaluation.get("entries"):
        return None, (f"No final evaluation yet, so no kept network to plot; run 'autodnn evaluate "
                      f"{study.study_name}'.")
    record = evaluation.get("model")
    stored = _dict(evaluation.get("predictions"))
    if not isinstance(record, dict) or not stored:
        why = ("it kept no network (every seed diverged, or the database refused it)" if not isinstance(record, dict)
               else "it ran before test predictions were stored; run 'autodnn evaluate "
                    f"{study.study_name}' again")
        return None, f"The predicted-against-actual and residuals plots are left out: {why}."
    actual = np.asarray(stored.get("actual") or [], dtype=np.float64)
    predicted = np.asarray(stored.get("predicted") or [], dtype=np.float64)
    broken = int(np.count_nonzero(~np.isfinite(predicted)))
    if broken or len(actual) != len(predicted) or not len(actual):
        return None, (f"The predicted-against-actual and residuals plots are left out: the kept network predicts "
                      f"NaN or infinity for {broken} of {len(predicted)} test rows.")
    errors = actual - predicted
    variance = float(np.var(actual))
    return Predictions(
        target=str(_dict(evaluation.get("target")).get("name") or "target"),
        actual=actual.tolist(),
        predicted=predicted.tolist(),
        n_rows=int(stored.get("n_rows") or len(actual)),
        rmse=float(np.sqrt(np.mean(errors ** 2))),
        mae=float(np.mean(np.abs(errors))),
        r2=1.0 - float(np.mean(errors ** 2)) / variance if variance > 0 else math.nan,
        recorded_rmse=_recorded_rmse(evaluation, record),
        trial_number=stored.get("trial_number") if isinstance(stored.get("trial_number"), int) else None,
        seed=stored.get("seed") if isinstance(stored.get("seed"), int) else None,
    ), ""


def _recorded_rmse(evaluation: dict[str, Any], record: dict[str, Any]) -> float | None:
    """The test RMSE the evaluation measured for the kept run (the best entry's run of the kept seed)."""
    entries = evaluation.get("entries") or []
    runs = _dict(entries[0]).get("runs") if entries else None
    for run in runs or ():
        if isinstance(run, dict) and run.get("seed") == record.get("seed"):
            value = run.get("test_rmse")
            return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
