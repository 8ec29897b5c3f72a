"""The time budget of a search command: what the final evaluation will take, and what is left to search.

``autodnn search --timeout T`` bounds the whole command, final evaluation included. The evaluation
(:mod:`autodnn.evaluate`) retrains the best configuration with every seed (on small validation it first
cross-validates the top few and the baselines, a run a fold) and each book baseline with every seed but one
(its search run was tested and counts as one). Each training costs about what the same configuration took in the search; one the search has not trained yet costs its
predicted epoch time (:mod:`autodnn.study.cost`) times the epochs the study's trials train before early
stopping (all of the budget, until one has). On a table, gradient-boosted trees with every seed add
:func:`autodnn.training.reference.estimated_seconds` each. The search's deadline is the
command's end less that estimate, and moves after every trial as measurements replace predictions: a cheap
best leaves more time to search, an expensive one less.

A convolutional study trains the book baselines only while every seed of them fits half the budget
(:class:`BaselineGate`), and its designed start's epochs shrink to a share of what is left
(:meth:`TimeBudget.start_epochs`): on 2 CPU cores a seed of a dense baseline takes minutes there, one of the
book's CNN over an hour.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optuna.trial import TrialState

from autodnn.config import DEFAULT_MC_SAMPLES, SMALL_VALIDATION, TrialConfig
from autodnn.evaluate import FINALISTS, SEED_OFFSET
from autodnn.space import stored_family
from autodnn.study import cost
from autodnn.study.deadline import Deadline
from autodnn.study.options import stored_options
from autodnn.study.records import best_trial, is_baseline
from autodnn.study.reuse import reused_evaluation_runs
from autodnn.study.trial_record import BASELINE, CONFIG, MEASURED, RESULT, TEST_RUN, WARM_START
from autodnn.training import reference as trees
from autodnn.training.crossval import FOLDS

if TYPE_CHECKING:
    from collections.abc import Iterable

    import optuna

#: The search's least share of the budget, when the evaluation's estimate would leave less: the command
#: then overruns, and says so at the start.
MIN_SEARCH_SHARE = 0.25
#: Seconds of the evaluation besides its trainings and reading the data again (which costs what reading it
#: took the command, :attr:`TimeBudget.reload`): storing the kept network, the trees' encoding.
EVALUATION_OVERHEAD = 10.0
#: Another seed of a configuration trains another number of epochs before early stopping: on CIFAR-10's
#: headline command (benchmarks/RESULTS.md, 2026-12-03) the evaluation's runs took 0.86 to 1.53 times their
#: configuration's search run, 1.15 times in all, and the command ended 87 s past its hour. A training the
#: evaluation repeats is estimated this much above its search run (a prediction already counts every epoch the
#: study's trials train).
SEED_SPREAD = 1.2
#: A forward pass costs about this share of a training step's multiply-adds (backward is twice the forward).
FORWARD_SHARE = 1 / 3
#: In a convolutional study the book baselines, every seed of them, get at most this share of the budget: those
#: that would pass it are not trained (and the search says so and which ``--timeout`` pays for them). On 2 CPU
#: cores a convolutional study runs on TensorFlow, where the dense baselines train 2.7x slower than on JAX (book-2e:
#: 43 epochs in about 6 minutes a seed), and the book's CNN takes about 70 minutes a seed: a 30-minute conv study
#: that started with them searched nothing (benchmarks/RESULTS.md, 2026-12-06). In a dense study the dense
#: baselines always train: they cost minutes there, and every figure of the dense study compares with them.
BASELINE_SHARE = 0.5
#: A convolutional designed start, its search run and the final evaluation's seeds of it, gets at most this share
#: of what the budget leaves after the baselines: its epochs (under its own 1cycle schedule) shrink to fit.
START_SHARE = 0.8
#: The fewest epochs a designed start is shortened to.
MIN_START_EPOCHS = 2


#: ``--timeout auto``: (training cells under which, seconds) for tables; anything larger, and images, get
#: :data:`LARGE_DATA_SECONDS`, and above :data:`HUGE_DATA_CELLS` training cells :data:`HUGE_DATA_SECONDS`. A small
#: table's epochs take a fraction of a second: a few minutes train dozens of configurations and the final
#: evaluation. On CIFAR-10 (45,000 x 3,072 = 138M cells), a 2-core Intel Xeon took 5 min 44 s for the designed
#: start, 4 min 31 s for two book baselines and 16 min 10 s for a 3-seed final evaluation (benchmarks/RESULTS.md,
#: 2026-12-02), and a 2-core AMD EPYC trains those nets about half as fast: 30 minutes left the sampler nothing.
TABLE_BUDGETS = ((100_000, 300.0), (1_000_000, 900.0))
LARGE_DATA_SECONDS = 1800.0
HUGE_DATA_CELLS = 50_000_000
HUGE_DATA_SECONDS = 3600.0


def default_seconds(dataset: Any) -> tuple[float, str]:
    """``--timeout auto``'s budget for ``dataset``, and why, in words (:data:`TABLE_BUDGETS`)."""
    rows, features = len(dataset.x_train), dataset.n_features
    cells = rows * features
    if dataset.image_shape is None:
        for limit, seconds in TABLE_BUDGETS:
            if cells < limit:
                return seconds, (f"auto: a table of {rows:,} training rows x {features:,} features, under "
                                 f"{limit:,} cells")
    what = "images" if dataset.image_shape is not None else "a table"
    if cells >= HUGE_DATA_CELLS:
        return HUGE_DATA_SECONDS, (f"auto: {what}, {rows:,} training rows x {features:,} features, over "
                                   f"{HUGE_DATA_CELLS // 1_000_000}M cells")
    if dataset.image_shape is not None:
        return LARGE_DATA_SECONDS, "auto: images"
    return LARGE_DATA_SECONDS, f"auto: {cells:,} training cells"


@dataclass
class TimeBudget:
    """The seconds a search command may take, and the seeds of its final evaluation.

    Attributes:
        total: Seconds of the whole command (``--timeout``).
        seeds: Trainings per configuration in the final evaluation; 0 when there is none (``--no-final``).
        max_epochs: Epoch budget of every training.
        start: ``time.monotonic()`` when the command's clock started.
        mc_samples: MC-dropout passes of the evaluation for nets with dropout.
        reference: Whether the evaluation trains gradient-boosted trees beside the nets (on a table).
        why: How ``total`` was chosen, when the command did not name it (``--timeout auto``).
        reload: Seconds the command took to read the data, which the evaluation reads again.
    """

    total: float
    seeds: int
    max_epochs: int
    start: float = field(default_factory=time.monotonic)
    mc_samples: int = DEFAULT_MC_SAMPLES
    reference: bool = False
    why: str = ""
    reload: float = 0.0

    @property
    def end(self) -> float:
        return self.start + self.total

    def evaluation_seconds(self, study: optuna.Study, dataset: Any) -> float:
        """Estimated seconds of the final evaluation, from what ``study`` has measured so far."""
        if self.seeds < 1:
            return 0.0
        trials = study.get_trials(deepcopy=False)
        rows = len(dataset.x_train)
        shape = getattr(dataset, "image_shape", None)
        rates = {family: cost.calibrate(trials, dataset.n_features, dataset.n_outputs, rows, shape, family)
                 for family in ("dense", "conv")}
        epochs = epoch_share(trials, self.max_epochs) * self.max_epochs
        fixed = cost.fixed_seconds(trials)

        def epoch_of(config: dict[str, Any]) -> float:
            parsed = TrialConfig.from_dict(config)
            return cost.predict_epoch_seconds(parsed, dataset.n_features, dataset.n_outputs, rows,
                                              rates[parsed.family], shape)

        def predicted(config: dict[str, Any]) -> float:
            planned = min(epochs, TrialConfig.from_dict(config).trained_epochs(self.max_epochs))
            return epoch_of(config) * planned + fixed + mc_dropout(config)

        def mc_dropout(config: dict[str, Any]) -> float:
            """The evaluation's MC-dropout passes over validation and test, which the search did not run."""
            if not TrialConfig.from_dict(config).has_dropout:
                return 0.0
            tested = len(dataset.y_valid) + len(dataset.x_test)
            return self.mc_samples * tested / rows * FORWARD_SHARE * epoch_of(config)

        baselines: dict[str, tuple[float, int]] = {}  # a name: (seconds of one run, runs to train)
        first = int(stored_options(study).get("seed", 0)) + SEED_OFFSET
        seeds = [first + i for i in range(self.seeds)]
        for trial in trials:
            if not is_baseline(trial) or CONFIG not in trial.user_attrs:
                continue
            name = trial.user_attrs[BASELINE]
            if trial.state == TrialState.COMPLETE:  # its search run, tested, counts as one seed
                reused = 1 if TEST_RUN in trial.user_attrs else 0
                if reused:  # and a baseline reused from another study brings that study's evaluation runs
                    reused += len(reused_evaluation_runs(trial, seeds, self.max_epochs, self.mc_samples))
                # MC dropout is included in its run; another seed may train longer (SEED_SPREAD).
                baselines[name] = (SEED_SPREAD * trained_seconds(trial), max(0, self.seeds - reused))
            elif name not in baselines:
                baselines[name] = (predicted(trial.user_attrs[CONFIG]), self.seeds)
        # On small validation the finalists and the baselines are cross-validated first, a run a fold.
        folds = FOLDS if len(dataset.y_valid) < SMALL_VALIDATION else 0
        best = best_trial(study)
        if best is not None:
            per_run = SEED_SPREAD * trained_seconds(best) + mc_dropout(best.user_attrs[CONFIG])
        else:  # the dearest baseline to come, or where none comes the dearest convolutional start (whose prior
            # was measured on it; the dense prior errs long on the dense starts' wide nets)
            pending = [predicted(t.user_attrs[CONFIG]) for t in trials
                       if is_baseline(t) and CONFIG in t.user_attrs]
            pending = pending or [predicted(c) for c in waiting_starts(study) if c["family"] == "conv"]
            per_run = max(pending, default=fixed)
        tree_seconds = 0.0
        if self.reference and getattr(dataset, "image_shape", None) is None:
            tree_seconds = self.seeds * trees.estimated_seconds(rows, dataset.n_features, dataset.n_outputs)
        trainings = (sum(one * runs for one, runs in baselines.values()) + self.seeds * per_run
                     + folds * (FINALISTS * per_run + sum(one for one, _ in baselines.values())))
        return trainings + tree_seconds + EVALUATION_OVERHEAD + self.reload

    def epoch_seconds(self, study: optuna.Study, dataset: Any, config: TrialConfig) -> float:
        """Predicted seconds of one epoch of ``config`` at the study's measured rates (the priors before)."""
        trials = study.get_trials(deepcopy=False)
        shape = getattr(dataset, "image_shape", None)
        rows = len(dataset.x_train)
        rates = cost.calibrate(trials, dataset.n_features, dataset.n_outputs, rows, shape, config.family)
        return cost.predict_epoch_seconds(config, dataset.n_features, dataset.n_outputs, rows, rates, shape)

    def one_training_seconds(self, study: optuna.Study, dataset: Any, config: TrialConfig) -> float:
        """Predicted seconds of one training of ``config``, every epoch it may train counted."""
        epochs = config.trained_epochs(self.max_epochs)
        return self.epoch_seconds(study, dataset, config) * epochs + cost.fixed_seconds(study.get_trials(deepcopy=False))

    def baseline_gate(self, study: optuna.Study, dataset: Any) -> BaselineGate:
        """The gate that admits a convolutional study's book baselines in their order while they fit
        :data:`BASELINE_SHARE` of this budget."""
        return BaselineGate(self, study, dataset)

    def start_epochs(self, study: optuna.Study, dataset: Any, config: TrialConfig, reserved: float = 0.0) -> int:
        """The epochs a designed start of ``config`` trains so that its search run and the final evaluation's
        seeds of it fit :data:`START_SHARE` of the budget left after ``reserved`` seconds (the baselines'): at
        most its own, at least :data:`MIN_START_EPOCHS`."""
        fixed = cost.fixed_seconds(study.get_trials(deepcopy=False))
        per_run = START_SHARE * (self.total - reserved - self.reload) / (1 + max(0, self.seeds)) - fixed
        affordable = int(per_run / self.epoch_seconds(study, dataset, config))
        return max(MIN_START_EPOCHS, min(config.trained_epochs(self.max_epochs), affordable))

    def deadline(self, study: optuna.Study, dataset: Any) -> BudgetDeadline:
        """The search's deadline, moved after every trial as measurements replace predictions."""
        return BudgetDeadline(self, dataset, self.search_deadline(study, dataset))

    def search_deadline(self, study: optuna.Study, dataset: Any) -> float:
        """``time.monotonic()`` value at which the search must stop for the evaluation to end in time."""
        share = self.total - self.evaluation_seconds(study, dataset)
        return self.start + max(share, MIN_SEARCH_SHARE * self.total)

    def describe(self, study: optuna.Study, dataset: Any) -> str:
        """The budget's shares in one line, printed at the start of the search."""
        evaluation = self.evaluation_seconds(study, dataset)
        left = self.end - time.monotonic()
        said = f" ({self.why})" if self.why else ""
        if self.seeds < 1:
            return f"Time budget {clock(self.total)}{said}: all of it to the search (no final evaluation)."
        baselines = " and of each book baseline" if any(map(is_baseline, study.get_trials(deepcopy=False))) else ""
        folds = ""
        if len(dataset.y_valid) < SMALL_VALIDATION:
            among = f"the top {FINALISTS}" + (" and the baselines" if baselines else "")
            folds = f", after {FOLDS}-fold cross-validation of {among} to choose it"
        line = (f"Time budget {clock(self.total)}{said}: the final evaluation ({self.seeds} seed(s) of the best"
                f"{baselines}{folds}) is estimated at {clock(evaluation)}")
        if not any(t.user_attrs.get(MEASURED) for t in study.get_trials(deepcopy=False)):
            return (f"{line} before any epoch is measured (every epoch of the budget at the cost model's prior "
                    f"rates, an upper bound); the first trials measure it, and the search stops in time for it.")
        if evaluation > left - MIN_SEARCH_SHARE * self.total:
            return (f"{line}, more than the budget leaves: the search gets {clock(MIN_SEARCH_SHARE * self.total)} "
                    f"and the command will overrun; give --timeout {clock(2 * evaluation)} or more, or fewer --seeds.")
        return f"{line}, the search about {clock(left - evaluation)} (re-estimated after every trial)."


class BaselineGate:
    """Admits book baselines in the order they are offered while the trainings of those admitted (every seed,
    each at :meth:`TimeBudget.one_training_seconds`) fit :data:`BASELINE_SHARE` of the budget.

    Called with a baseline's name and configuration, it returns None where the baseline is admitted, else why it
    is not, with the ``--timeout`` that would pay for it; a baseline is judged once, so :meth:`plan` may decide
    before the trials are enqueued. :attr:`admitted` holds the seconds of those admitted.
    """

    def __init__(self, budget: TimeBudget, study: optuna.Study, dataset: Any) -> None:
        self.budget = budget
        self.study = study
        self.dataset = dataset
        self.admitted = 0.0
        self._offered = 0.0
        self._decided: dict[str, str | None] = {}

    def plan(self, baselines: Iterable[Any]) -> float:
        """Judges ``baselines`` (:class:`autodnn.defaults.Baseline`) in order; returns the seconds admitted."""
        for baseline in baselines:
            self(baseline.name, baseline.config)
        return self.admitted

    def __call__(self, name: str, config: TrialConfig) -> str | None:
        if name in self._decided:
            return self._decided[name]
        trainings = max(1, self.budget.seeds)
        seconds = trainings * self.budget.one_training_seconds(self.study, self.dataset, config)
        self._offered += seconds
        why = None
        if self.admitted + seconds <= BASELINE_SHARE * self.budget.total:
            self.admitted += seconds
        else:  # a budget that pays for it pays for the baselines before it too
            need = self._offered / BASELINE_SHARE
            what = "its training is" if trainings == 1 else f"its {trainings} trainings are"
            why = (f"{name} is not trained: {what} predicted at {clock(seconds)} on this machine, and the baselines "
                   f"would take more than half of the {clock(self.budget.total)} budget; give --timeout "
                   f"{clock(need)} or more to compare with it")
        self._decided[name] = why
        return why


class BudgetDeadline(Deadline):
    """The search's deadline under a :class:`TimeBudget`: the command's end less the final evaluation's
    estimate, re-estimated from the study after every trial (a cheap best leaves more time to search)."""

    def __init__(self, budget: TimeBudget, dataset: Any, end: float) -> None:
        super().__init__(end)
        self.budget = budget
        self.dataset = dataset

    def update(self, study: optuna.Study) -> None:
        self.move_to(self.budget.search_deadline(study, self.dataset))


def waiting_starts(study: optuna.Study) -> list[dict[str, Any]]:
    """The configurations of the designed start's trials that wait to run (their enqueued parameters in the
    study's family)."""
    family = stored_family(study.user_attrs)
    return [{"family": family, **t.system_attrs.get("fixed_params", {})}
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) if WARM_START in t.user_attrs]


def epoch_share(trials: list[optuna.trial.FrozenTrial], max_epochs: int) -> float:
    """The median share of ``max_epochs`` that the study's complete trials trained before early stopping.

    1 (every epoch) before any trial completed: the evaluation's first estimate errs long.
    """
    shares = [t.user_attrs[RESULT]["epochs"] / max_epochs for t in trials
              if t.state == TrialState.COMPLETE and "epochs" in t.user_attrs.get(RESULT, {})]
    return min(1.0, statistics.median(shares)) if shares else 1.0


def trained_seconds(trial: optuna.trial.FrozenTrial) -> float:
    """Wall seconds a finished trial took from start to end."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def clock(seconds: float) -> str:
    """``"1h05m"``, ``"12m30s"``, ``"45s"``: a duration as ``--timeout`` accepts it."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"
