"""Live progress of a search: one tqdm bar where a person watches, plain complete lines where a log records.

:class:`SearchProgress` is the display and receives plain values only (counts, labels, accuracies);
:class:`StudyProgress` turns the callbacks of :func:`autodnn.tuning.run.search` (studies and trials) into
those values, :class:`EvaluationProgress` those of the final evaluation (:func:`autodnn.evaluate.evaluate`). The command line and the Python API use both, so a search looks the same in a terminal, in a
log file and in a notebook. Neither imports Keras or Optuna at the top: importing this module stays cheap.
"""

from __future__ import annotations

from autodnn.progress._display import (
    DEFAULT_INTERVAL,
    INTERVAL_ENV,
    TICK,
    SearchProgress,
    StudyProgress,
    in_notebook,
    progress_interval,
    progress_mode,
)
from autodnn.progress._evaluation import EvaluationProgress
from autodnn.progress._lines import describe_config, score_name, study_line, trial_label, trial_line, wait_line

__all__ = [
    "DEFAULT_INTERVAL",
    "INTERVAL_ENV",
    "TICK",
    "EvaluationProgress",
    "SearchProgress",
    "StudyProgress",
    "describe_config",
    "in_notebook",
    "progress_interval",
    "progress_mode",
    "score_name",
    "study_line",
    "trial_label",
    "trial_line",
    "wait_line",
]
