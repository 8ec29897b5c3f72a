"""The search's top floor (``autodnn.search`` is the function users call): its options, the time budget, the designed start, creating or resuming a study
and running it (:func:`search`)."""

from __future__ import annotations

from autodnn.tuning.options import SearchOptions
from autodnn.tuning.run import create_or_resume, enqueue_baselines, prepare, search

__all__ = ["SearchOptions", "create_or_resume", "enqueue_baselines", "prepare", "search"]
