"""The display of a search's progress: a tqdm bar, plain lines, or nothing, fed by the search's callbacks."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any, Self

from tqdm.std import tqdm as text_tqdm

from autodnn.progress._lines import (
    FINISHED_LINE,
    describe_config,
    score_name,
    study_line,
    tally,
    trial_label,
    trial_line,
    wait_line,
)
from autodnn.study.options import stored_options
from autodnn.study.trial_record import CONFIG, ENGINE, LOCAL_MOVE, WARM_START

#: Seconds between two plain progress lines of a running trial where output is not a terminal.
INTERVAL_ENV = "AUTODNN_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0
#: A bar refreshes this often (seconds) without news, so its clock and ETA keep moving during long epochs.
TICK = 1.0


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (where tqdm.auto draws a widget); never imports IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_mode(stream: IO[str], show: bool | None = True) -> str:
    """How to show a search's progress on ``stream``: ``"bar"``, ``"lines"`` or ``"off"``.

    Args:
        stream: Where the progress goes.
        show: False shows nothing; True a bar on a terminal or in a notebook, else plain lines; None (auto)
            a bar on a terminal or in a notebook, else nothing.
    """
    if show is False:
        return "off"
    isatty = getattr(stream, "isatty", None)
    if in_notebook() or (isatty is not None and isatty()):
        return "bar"
    return "lines" if show else "off"


def progress_interval() -> float:
    """Seconds between plain per-epoch lines: ``$AUTODNN_PROGRESS_INTERVAL``, else 30 (0 prints every epoch)."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


class SearchProgress:
    """Shows a search: a tqdm bar (``"bar"``), plain complete lines (``"lines"``) or only what is written
    (``"off"``).

    The bar counts finished searched trials of the target, or with a timeout the seconds used of it; its
    postfix holds the best validation accuracy so far and the running trial's epoch and validation accuracy,
    and changes after every epoch. Lines written meanwhile (finished trials) appear above it. Plain lines are
    for logs: no carriage return, no escape code, one line per started and finished trial, and at most one
    per-epoch line each ``interval`` seconds of a running trial, so a log of a long search stays readable.

    Args:
        mode: ``"bar"``, ``"lines"`` or ``"off"`` (see :func:`progress_mode`).
        file: Where everything goes; stdout by default.
        interval: Seconds between plain per-epoch lines; :func:`progress_interval` by default.
        notebook: Draw the bar with ``tqdm.auto`` (a widget in Jupyter).
        noun: What the bar counts: ``trial`` (a search) or ``run`` (the final evaluation's trainings).
        counted: How the plain lines call a counted one: ``searched`` trials, ``done`` runs.
    """

    def __init__(self, mode: str, *, file: IO[str] | None = None, interval: float | None = None,
                 notebook: bool = False, noun: str = "trial", counted: str = "searched") -> None:
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"mode must be 'bar', 'lines' or 'off', but got {mode!r}")
        self.mode = mode
        self.noun, self.counted = noun, counted
        self.file = file
        self.interval = progress_interval() if interval is None else interval
        self.notebook = notebook
        self.target = 0
        self.timeout: float | None = None
        self.finished = 0
        self.best: float | None = None
        self._initial = 0
        self._running = ""
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def stream(self) -> IO[str]:
        # Looked up late: tests, notebooks and pytest's capture replace sys.stdout after this is made.
        return self.file if self.file is not None else sys.stdout

    def open(self, *, target: int, finished: int = 0, best: float | None = None,
             timeout: float | None = None) -> None:
        """Starts the display once the study is open.

        Args:
            target: Finished searched trials the search aims at.
            finished: How many the study holds already (a resumed search).
            best: Best validation accuracy so far, if any.
            timeout: The search's time budget in seconds; the bar then counts seconds instead of trials.
        """
        with self._lock:
            self.target, self.finished, self.best, self.timeout = target, finished, best, timeout
            self._initial = finished
            self._started = self._last_line = time.monotonic()
            if self.mode != "bar" or self._bar is not None:
                return
            self._bar = self._make_bar()
            self._ticker = threading.Thread(target=self._tick, name="autodnn-progress", daemon=True)
            self._ticker.start()

    def retarget(self, target: int) -> None:
        """The target changed while the display is open (the final evaluation's plan shrank)."""
        with self._lock:
            self.target = target
            if self._bar is not None and not self.timeout:
                self._bar.total = target
            if self._bar is not None:
                self._bar.set_postfix_str(self._postfix(), refresh=True)

    def _make_bar(self) -> Any:
        bar_class = text_tqdm
        if self.notebook:
            from tqdm.auto import tqdm as bar_class
        if self.timeout:
            total: float = self.timeout
            form = (f"{{percentage:3.0f}}%|{{bar}}| {{elapsed}} of {text_tqdm.format_interval(self.timeout)} "
                    "[{remaining} left{postfix}]")
        else:
            total = self.target
            form = f"{{percentage:3.0f}}%|{{bar}}| {{n_fmt}}/{{total_fmt}} {self.noun}s [{{elapsed}}<{{remaining}}{{postfix}}]"
        options = {"total": total, "initial": 0 if self.timeout else self.finished, "file": self.stream,
                   "bar_format": form, "dynamic_ncols": True, "leave": True, "postfix": self._postfix()}
        try:
            return bar_class(**options)
        except ImportError:  # tqdm.auto in a notebook without ipywidgets: the text bar works there too
            return text_tqdm(**options)

    def _postfix(self) -> str:
        parts = [] if not self.timeout else [f"{self.finished}/{self.target} {self.noun}s"]
        if self.best is not None or self.noun == "trial":
            parts.append(f"best {'-' if self.best is None else f'{self.best:.4f}'}")
        if self._running:
            parts.append(self._running)
        return ", ".join(parts)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                if self._bar is None:
                    return
                self._show()

    def trial_started(self, label: str, description: str) -> None:
        """A trial started: a line saying what it trains (bar and lines), and the bar names it."""
        if self.mode == "off":
            return
        with self._lock:
            self._running = f"trial {label.strip()}"
            self.write(f"Trial {label:<9} {'started':<8}  {description}")
            self._show()

    def running(self, text: str) -> None:
        """Names what runs now on the bar, without a line of its own."""
        with self._lock:
            self._running = text
            self._show()

    def epoch(self, label: str, epoch: int, max_epochs: int, val_accuracy: float | None,
              metric: str = "val_accuracy") -> None:
        """A running trial finished epoch ``epoch`` (1-based) of at most ``max_epochs``; ``val_accuracy`` is its
        score, named ``metric`` (a regression's ``val_r2``)."""
        if self.mode == "off":
            return
        value = "nan" if val_accuracy is None else f"{val_accuracy:.4f}"
        with self._lock:
            self._running = f"{self.noun} {label.strip()} epoch {epoch}/{max_epochs} val {value}"
            if self.mode == "bar":
                self._show()
            elif time.monotonic() - self._last_line >= self.interval:
                self.write(f"{self.noun.title()} {label:<9} {'epoch':<8}  {epoch}/{max_epochs}  {metric} {value}  "
                           f"[{self._summary()}]")

    def _summary(self) -> str:
        elapsed = time.monotonic() - self._started
        best = "" if self.best is None and self.noun != "trial" else \
            f", best {'-' if self.best is None else f'{self.best:.4f}'}"
        if self.timeout:
            left = f"{text_tqdm.format_interval(max(0.0, self.timeout - elapsed))} left of the time budget"
        elif self.finished > self._initial:
            eta = elapsed / (self.finished - self._initial) * max(0, self.target - self.finished)
            left = f"ETA {text_tqdm.format_interval(eta)}"
        else:
            left = "ETA ?"
        return (f"{self.finished} of {self.target} {self.counted}{best}, "
                f"{text_tqdm.format_interval(elapsed)} elapsed, {left}")

    def trial_finished(self, line: str, finished: int, best: float | None) -> None:
        """A trial ended: writes its line (above the bar) and moves the bar to the study's new counts."""
        with self._lock:
            self._running = ""
            self.write(line)
            self.update(finished, best)

    def update(self, finished: int, best: float | None) -> None:
        """New counts of the whole study (under ``--workers``, read from the study as workers report)."""
        with self._lock:
            moved, self.finished, self.best = finished - self.finished, finished, best
            if self._bar is None:
                return
            if moved > 0 and not self.timeout:
                self._bar.update(moved)  # through update(), so that tqdm's rate and ETA count the trial
            self._show()

    def _show(self) -> None:
        """Redraws the bar with the current postfix; in time mode its count is the seconds used, brought up to
        the moment first (a count that lags the clock would make tqdm's time left jump about)."""
        if self._bar is None:
            return
        if self.timeout:
            self._bar.n = min(self.timeout, time.monotonic() - self._started)
        self._bar.set_postfix_str(self._postfix(), refresh=False)
        self._bar.refresh()

    def write(self, line: str, *, file: IO[str] | None = None) -> None:
        """Writes one complete line (above the bar, which is redrawn below it)."""
        stream = file or self.stream
        with self._lock:
            if self._bar is not None:
                self._bar.write(line, file=stream)
            else:
                print(line, file=stream)
            stream.flush()
            self._last_line = time.monotonic()

    def close(self) -> None:
        """Leaves the bar's last state on screen, so what is printed next starts on a line of its own."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self._bar is not None:
                self._running = ""
                self._show()
                self._bar.close()
                self._bar = None


class Shown:
    """What feeds a :class:`SearchProgress` (its ``display``), as a context that closes it."""

    display: SearchProgress

    def close(self) -> None:
        """Closes the display (the bar stays on screen in its last state)."""
        self.display.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StudyProgress(Shown):
    """The callbacks of :func:`autodnn.tuning.run.search`, shown by a :class:`SearchProgress`.

    ``search(options, **progress.callbacks())`` wires every one; each method can be passed alone too.

    Args:
        mode: ``"bar"``, ``"lines"`` or ``"off"`` (see :func:`progress_mode`); with ``"off"`` only the study
            line and what is passed to :meth:`on_trial` and :meth:`on_wait` is printed.
        n_trials: The search's target of finished searched trials; the study's setting by default.
        max_epochs: Epoch budget of a trial; the study's setting by default.
        timeout: The search's time budget in seconds, if any.
        baselines: Whether the search trains the book's baselines too (said in the study line).
        file: Where everything goes; stdout by default.
        interval: Seconds between plain per-epoch lines.
        notebook: Draw the bar with ``tqdm.auto``.
    """

    def __init__(self, mode: str, *, n_trials: int | None = None, max_epochs: int | None = None,
                 timeout: float | None = None, baselines: bool = True, file: IO[str] | None = None,
                 interval: float | None = None, notebook: bool = False) -> None:
        self.display = SearchProgress(mode, file=file, interval=interval, notebook=notebook)
        self.n_trials, self.max_epochs, self.timeout, self.baselines = n_trials, max_epochs, timeout, baselines
        self.study: Any = None
        self._epochs: dict[int, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def callbacks(self) -> dict[str, Any]:
        """Every callback, as keyword arguments of :func:`autodnn.tuning.run.search`."""
        return {"on_start": self.on_start, "on_trial_start": self.on_trial_start, "on_epoch": self.on_epoch,
                "on_trial": self.on_trial, "on_wait": self.on_wait, "on_worker_line": self.on_worker_line}

    def on_start(self, study: Any, dataset: Any, space: Any, url: str) -> None:
        """The study is open: prints the study line and what the search optimizes, and starts the display."""
        self.display.write(study_line(study, dataset, space, url, self._targets(study)[0], self.baselines))
        said = stored_options(study).get("metric_line")
        if said:
            self.display.write(said)
        self.open(study)

    def open(self, study: Any) -> None:
        """Starts the display on ``study`` (an ``autodnn worker`` prints its own first line)."""
        self.study = study
        n_trials, self.max_epochs = self._targets(study)
        finished, best = tally(study)
        self.display.open(target=n_trials, finished=finished, best=best, timeout=self.timeout)

    def _targets(self, study: Any) -> tuple[int, int]:
        """Trials and epochs to show progress against: as given, else as the study stores them."""
        if self.n_trials is not None and self.max_epochs is not None:
            return self.n_trials, self.max_epochs
        options = stored_options(study)
        return (self.n_trials if self.n_trials is not None else int(options.get("n_trials", 0)),
                self.max_epochs if self.max_epochs is not None else int(options.get("max_epochs", 0)))

    def on_trial_start(self, study: Any, trial: Any) -> None:
        """A trial starts in this process: its line and the bar's running trial."""
        attrs = trial.user_attrs
        # A KerasTuner Hyperband trial trains its bracket's epochs, fewer than the study's budget; a configuration
        # with epochs of its own trains those.
        epochs = int(attrs.get(ENGINE, {}).get("epochs", self.max_epochs or 0))
        if attrs.get(CONFIG) and epochs:
            from autodnn.config import TrialConfig

            epochs = TrialConfig.from_dict(attrs[CONFIG]).trained_epochs(epochs)
        label = trial_label(trial)
        self._epochs[trial.number] = (label, epochs)
        description = describe_config(attrs.get(CONFIG, {}))
        if attrs.get(WARM_START):
            description += f" (warm start {attrs['warm_start']})"
        elif attrs.get(LOCAL_MOVE) is not None:
            description += f" (a move from trial {attrs[LOCAL_MOVE]})"
        self.display.trial_started(label, description)

    def on_epoch(self, trial: Any, epoch: int, metrics: dict[str, float]) -> None:
        """A running trial finished an epoch (0-based ``epoch``, as the trainer reports it)."""
        label, epochs = self._epochs.get(trial.number, (f"{trial.number:>3}", self.max_epochs or 0))
        metric = score_name(self.study) if self.study is not None else "val_accuracy"
        metric = metric if metric in metrics else "val_accuracy"
        self.display.epoch(label, epoch + 1, epochs, metrics.get(metric), metric)

    def on_trial(self, study: Any, trial: Any) -> None:
        """A trial ended in this process: its line, and the study's counts on the bar."""
        self._epochs.pop(trial.number, None)
        finished, best = tally(study)
        self.display.trial_finished(trial_line(study, trial, finished), finished, best)

    def on_wait(self, study: Any, running: int) -> None:
        """Every missing trial runs elsewhere and this process waits."""
        self.display.write(wait_line(running))

    def on_worker_line(self, plan: Any, stream: str, line: str) -> None:
        """Relays a worker process's line with its label (``stream``: ``"stdout"``, ``"stderr"``, or ``"exit"``
        for how it ended, on stderr); a finished trial there moves the bar."""
        self.display.write(f"[{plan.label}] {line}", file=None if stream == "stdout" else sys.stderr)
        if stream == "stdout" and self.study is not None and FINISHED_LINE.match(line):
            with self._lock:  # the lines of several workers arrive on threads of their own
                finished, best = tally(self.study)
            self.display.update(finished, best)
