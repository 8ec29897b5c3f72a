"""When the search's time is up: one object that the trial loop, the objective and the budget share."""

from __future__ import annotations

import math
import time
from typing import Any


class Deadline:
    """A point in ``time.monotonic()`` time after which no trial starts and the one in flight stops.

    The trial loop asks :meth:`passed` before it starts a trial and calls :meth:`update` after each one; the
    objective asks :meth:`left` before training and the trainer's reporter asks :meth:`passed` after every
    epoch. A fixed deadline never moves; :class:`autodnn.tuning.budget.BudgetDeadline` moves after every trial
    as the final evaluation's estimate changes. :meth:`spend` ends it early, when no configuration the search
    could start fits in the time left.

    Args:
        end: The ``time.monotonic()`` value at which time is up; None for no deadline.
    """

    def __init__(self, end: float | None = None) -> None:
        self._end = end
        self._spent = False

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """A deadline ``seconds`` from now; none at all for None."""
        return cls(None if seconds is None else time.monotonic() + seconds)

    @property
    def end(self) -> float | None:
        """The ``time.monotonic()`` value at which time is up, or None."""
        return self._end

    @property
    def bounded(self) -> bool:
        """Whether there is a deadline at all."""
        return self._end is not None

    def left(self) -> float:
        """Seconds until the deadline (negative once passed); infinite without one."""
        return math.inf if self._end is None else self._end - time.monotonic()

    def passed(self) -> bool:
        """Whether time is up, or spent (:meth:`spend`)."""
        return self._spent or self.left() <= 0

    def spend(self) -> None:
        """Ends the search's time now: nothing it could start fits in what is left."""
        self._spent = True

    @property
    def spent(self) -> bool:
        """Whether :meth:`spend` ended it before its time."""
        return self._spent

    def update(self, study: Any) -> None:
        """Called after every trial with the study; a fixed deadline stays where it is."""

    def move_to(self, end: float | None) -> None:
        """Sets a new end (for deadlines that follow an estimate)."""
        self._end = end
