"""The final evaluation's progress, shown as a search's: a bar of the runs done of those planned (or of the time
left of the command's budget), the running training's epoch and validation score, and a line for each run."""

from __future__ import annotations

import time
from typing import IO, Any

from autodnn.progress._display import SearchProgress, Shown


class EvaluationProgress(Shown):
    """The callbacks of :func:`autodnn.evaluate.evaluate`, shown by a :class:`SearchProgress` that counts runs.

    Args:
        mode: ``"bar"``, ``"lines"`` or ``"off"`` (:func:`autodnn.progress.progress_mode`).
        score: The validation figure each epoch shows (``val_accuracy``, a regression's ``val_r2``, ...).
        test: The test figure each run's line shows (``test_accuracy``, ``test_rmse``, ...).
        deadline: ``time.monotonic()`` at which the command's budget ends, if it has one: the bar then counts the
            time left of it, as the search's bar does.
        file: Where everything goes; stdout by default.
        interval: Seconds between plain per-epoch lines.
    """

    def __init__(self, mode: str, *, score: str, test: str, deadline: float | None = None,
                 file: IO[str] | None = None, interval: float | None = None) -> None:
        self.display = SearchProgress(mode, file=file, interval=interval, noun="run", counted="done")
        self.score, self.test, self.deadline = score, test, deadline
        self.done = 0
        self._epochs = 0
        self._planned = False

    def callbacks(self) -> dict[str, Any]:
        """Every callback, as keyword arguments of :func:`autodnn.evaluate.evaluate`."""
        return {"on_plan": self.on_plan, "on_start": self.on_start, "on_epoch": self.on_epoch, "on_run": self.on_run}

    def on_plan(self, runs: int) -> None:
        """The evaluation will train (or reuse) ``runs`` runs in all: starts the display, or where it has started
        (the plan changed: a baseline chosen by cross-validation leaves the best's seeds untrained) sets its
        target."""
        if self._planned:
            self.display.retarget(runs)
            return
        self._planned = True
        timeout = None if self.deadline is None else max(1.0, self.deadline - time.monotonic())
        self.display.open(target=runs, timeout=timeout)

    def on_start(self, entry: dict[str, Any], seed: int, epochs: int) -> None:
        """A training of ``entry`` with ``seed`` starts, for at most ``epochs`` epochs."""
        self._epochs = epochs
        self.display.running(f"run {entry['name']} seed {seed}")

    def on_epoch(self, entry: dict[str, Any], seed: int, epoch: int, metrics: dict[str, float]) -> None:
        """The running training finished its (0-based) ``epoch``."""
        self.display.epoch(f"{entry['name']} seed {seed}", epoch + 1, self._epochs, metrics.get(self.score), self.score)

    def on_run(self, entry: dict[str, Any], run: dict[str, Any]) -> None:
        """A run ended (or a search run was reused): its line, and the bar moves on. A fold of the cross-validation
        (small validation: the best is chosen among the top few and the baselines) shows its validation figure
        only: it was never tested."""
        metric = self.score if entry["kind"] == "fold" else self.test
        unit = "boosting rounds" if entry["kind"] == "reference" else "epochs"
        self.done += 1
        value = run.get(metric)
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        self.display.trial_finished(f"  {entry['name']:<10} seed {run['seed']}: {metric} {shown} "
                                    f"({run['epochs']} {unit}, {run['seconds']:.1f} s)", self.done, None)
