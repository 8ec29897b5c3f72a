"""The search: check the inputs, create or resume the study, enqueue the book's baselines, run the trials.

The top floor of the search: with :mod:`autodnn.tuning.budget`, the only place that imports
:mod:`autodnn.workers` and :mod:`autodnn.engines`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from autodnn.config import DEFAULT_MC_SAMPLES, TrialConfig
from autodnn.errors import UsageError
from autodnn.study.deadline import Deadline
from autodnn.study.records import finished_count, queued_count, run_target
from autodnn.study.storage import heartbeat_settings, open_storage
from autodnn.study.strategy import TPE_SAMPLERS, make_pruner, make_sampler, resumed_seed
from autodnn.study.trial_record import BASELINE, BASELINES_LEFT_OUT, CONFIG, TITLE
from autodnn.study.urls import default_study_name, normalize_url, storage_url
from autodnn.tuning.budget import TimeBudget, default_seconds
from autodnn.tuning.options import SearchOptions, check_same, record_options, space_name, update_options
from autodnn.tuning.warm_start import enqueue_warm_starts
from autodnn.workers import StudyLock, check_outcome, launch_workers, plan_workers, share_gpu_memory, study_lock
from autodnn.workers import run_trials as loop

if TYPE_CHECKING:
    from autodnn.defaults import Baseline


def prepare(options: SearchOptions) -> tuple[Any, Any, str, str]:
    """Checks every input and loads dataset and space before anything is written.

    Returns:
        ``(dataset, space, study_name, storage_url)``.

    Raises:
        UsageError: Any input is wrong (its subclasses say which).
    """
    from autodnn.datasets import load_dataset
    from autodnn.space import load_space

    options.check()
    heartbeat_settings()
    options.space = space_name(options.space, options.dataset)
    space = load_space(options.space)
    dataset = load_dataset(
        options.dataset,
        data_dir=options.data_dir,
        target=options.target,
        drop=options.drop,
        task=options.task,
        valid_fraction=options.valid_fraction,
        seed=options.seed,
    )
    if space.family == "conv" and dataset.image_shape is None:
        raise UsageError(f"--space {options.space} searches convolutional nets, which need images, but "
                         f"{options.dataset} is a table: search it with a dense space such as --space default")
    from autodnn.metrics import resolve

    options.extra["asked"] = {"metric": options.metric, "class_weight": options.class_weight}
    options.metric, options.class_weight, options.extra["metric_line"] = resolve(
        options.metric, options.class_weight, dataset.task, dataset.y_train, dataset.n_classes)
    name = options.study or default_study_name(options.dataset, options.space)
    url = storage_url(name, options.storage)
    normalize_url(url)
    plan_workers(options.workers, options.gpus, options.trials_per_gpu, storage=url)
    return dataset, space, name, url


def create_or_resume(options: SearchOptions, dataset: Any, space: Any, name: str, url: str,
                     reused: dict[str, str] | None = None, budget: TimeBudget | None = None,
                     left_out: list[str] | None = None) -> optuna.Study:
    """Creates the study, or resumes it after checking that it was made for the same dataset and space.

    ``reused`` is filled with the book baselines taken from another study (:func:`enqueue_baselines`);
    ``left_out`` with a line for each that ``budget`` cannot pay for in a convolutional study
    (:class:`autodnn.tuning.budget.BaselineGate`), whose designed start shortens to what the budget leaves it.

    Raises:
        StudyError: The existing study holds another dataset or space and ``force`` is not set.
    """
    from autodnn.metrics import searched_of

    storage = open_storage(url)
    if name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage,
                                  pruner=make_pruner(options.pruner, options.max_epochs))
        held = len(study.get_trials(deepcopy=False))
        study.sampler = make_sampler(resumed_seed(options.seed, held), options.sampler)
        check_same(study, dataset, space, url, options)
        if options.force:
            record_options(study, options, dataset, space)
        else:
            update_options(study, options)
    else:
        study = optuna.create_study(
            study_name=name, storage=storage, direction="maximize",
            sampler=make_sampler(options.seed, options.sampler),
            pruner=make_pruner(options.pruner, options.max_epochs),
        )
        # Names the objective in Optuna's own tools (optuna-dashboard shows "val_accuracy", not "Objective 0").
        study.set_metric_names([f"val_{searched_of(dataset.task, options.metric)}"])
        record_options(study, options, dataset, space)
    conv = space.family == "conv"
    gate = budget.baseline_gate(study, dataset) if budget is not None and conv else None
    # A convolutional designed start shortens to what the budget leaves it after the baselines it can pay for.
    reserved = (gate.plan(to_train(study, offered_baselines(space, regression=dataset.is_regression)))
                if gate and options.baselines else 0.0)
    # The warm starts first: they are cheap and reach a good result in the search's first minutes; the
    # baselines follow, and the sampler learns from both before its own draws.
    if options.warm_start and options.engine == "optuna" and options.sampler in TPE_SAMPLERS:
        kind = "conv" if conv else "images" if dataset.image_shape is not None else "tables"
        epochs = None if gate is None else partial(gate.budget.start_epochs, study, dataset, reserved=reserved)
        enqueue_warm_starts(study, space, options.n_trials, n_train=len(dataset.x_train), kind=kind, epochs=epochs)
    if options.baselines:
        lines: list[str] = []
        enqueue_baselines(study, space, regression=dataset.is_regression, reused=reused, dear=gate, left_out=lines)
        study.set_user_attr(BASELINES_LEFT_OUT, lines)  # the report says which the budget could not pay for
        if left_out is not None:
            left_out.extend(lines)
    return study


def reused_line(reused: dict[str, str]) -> str:
    """The line that says which book baselines a study took from others, and why it may."""
    by_study: dict[str, list[str]] = {}
    for baseline, donor in reused.items():
        by_study.setdefault(donor, []).append(baseline)
    said = "; ".join(f"{', '.join(names)} from study '{donor}'" for donor, names in by_study.items())
    return (f"Reused the book baselines' runs {said}: the same data, backend, seed and settings train them alike, "
            "so they are not trained again.")


def offered_baselines(space: Any, *, regression: bool = False) -> tuple[Baseline, ...]:
    """The book's defaults a study of ``space`` trains, in order: the dense ones, with the space's depth and width
    where it fixes both (else exercise 8's 20 x 100), and in a convolutional space chapter 14's CNN
    (:data:`autodnn.defaults.BOOK_CNN`)."""
    from autodnn.defaults import BOOK_CNN, book_baselines

    fixed = {p.name: p.value for p in space.params if p.kind == "fixed" and not p.when}
    shape = {}
    if "n_hidden" in fixed and "n_units" in fixed:
        shape = {"n_hidden": fixed["n_hidden"], "n_units": fixed["n_units"]}
    cnn = (BOOK_CNN,) if space.family == "conv" else ()
    return (*book_baselines(**shape, regression=regression), *cnn)


def to_train(study: optuna.Study, baselines: tuple[Baseline, ...]) -> tuple[Baseline, ...]:
    """``baselines`` less those that another study of the storage trained on the same data and settings: those
    are reused (:func:`enqueue_baselines`), so they cost this study nothing."""
    from autodnn.study.reuse import donor_run

    return tuple(b for b in baselines if donor_run(study, b.name, b.config.to_dict()) is None)


def enqueue_baselines(study: optuna.Study, space: Any, *, regression: bool = False,
                      reused: dict[str, str] | None = None,
                      dear: Callable[[str, TrialConfig], str | None] | None = None,
                      left_out: list[str] | None = None) -> int:
    """Enqueues the book's defaults (``autodnn.defaults``) that the study does not hold yet; one that another study
    of the storage trained on the same data and settings is taken from there instead (:mod:`autodnn.study.reuse`).

    Depth and width are the space's when it fixes both, else exercise 8's 20 x 100. A convolutional space's study
    (images) also trains chapter 14's CNN (:data:`autodnn.defaults.BOOK_CNN`).

    Args:
        reused: Filled with baseline name -> the study its run was taken from.
        dear: Says why a baseline that no study of the storage trained is too dear to train here (None where it
            is not; :class:`autodnn.tuning.budget.BaselineGate`); such a baseline is left out, and the line
            appended to ``left_out``.

    Returns:
        How many were enqueued or reused.
    """
    from autodnn.study.reuse import reuse_baseline

    present = {t.user_attrs.get(BASELINE) for t in study.get_trials(deepcopy=False)}
    added = 0
    for baseline in offered_baselines(space, regression=regression):
        if baseline.name in present:
            continue
        added += 1
        donor = reuse_baseline(study, baseline.name, baseline.config.to_dict())
        if donor is not None:
            if reused is not None:
                reused[baseline.name] = donor
            continue
        why = None if dear is None else dear(baseline.name, baseline.config)
        if why is not None:
            added -= 1
            if left_out is not None:
                left_out.append(why)
            continue
        study.enqueue_trial({}, user_attrs={BASELINE: baseline.name, TITLE: baseline.title,
                                            CONFIG: baseline.config.to_dict()})
    return added


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int,
    deadline: Deadline | None = None,
    max_failures: int = 5,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_wait: Callable[[optuna.Study, int], None] | None = None,
    url: str | None = None,
    epoch_budget: int | None = None,
) -> int:
    """Runs trials until the study holds ``n_trials`` finished ones (other workers' count too).

    Args:
        study: The study, possibly shared with other workers.
        objective: What a trial runs.
        n_trials: Target number of finished (complete or pruned) trials in the whole study.
        deadline: Start no trial once it has passed (moved after every trial, where it moves).
        max_failures: Stop with an error after this many consecutive failed trials (a broken setup, not
            an unlucky configuration).
        on_trial: Called after every trial, e.g. to print progress.
        on_wait: Called when every missing trial runs in another worker and this one waits for them.
        url: The study's storage URL, to share its lock with workers in other processes.
        epoch_budget: Start no searched trial once searched trials trained this many epochs in all.

    Returns:
        How many trials this call ran.

    Raises:
        SearchFailed: ``max_failures`` consecutive trials failed.
    """

    def report(current: optuna.Study, progress: Any) -> None:
        if on_trial is not None:
            on_trial(current, progress.trial)

    lock = study_lock(url, study.study_name) if url else StudyLock()
    return loop(study, objective, n_trials=n_trials, lock=lock, deadline=deadline, max_failures=max_failures,
                on_trial=report, on_wait=on_wait, epoch_budget=epoch_budget)


def search(
    options: SearchOptions,
    *,
    on_start: Callable[[optuna.Study, Any, Any, str], None] | None = None,
    on_trial_start: Callable[[optuna.Study, Any], None] | None = None,
    on_epoch: Callable[[Any, int, dict[str, float]], None] | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_wait: Callable[[optuna.Study, int], None] | None = None,
    on_worker_line: Callable[[Any, str, str], None] | None = None,
    on_budget: Callable[[str], None] | None = None,
) -> optuna.Study:
    """Runs (or resumes) a search: the function behind ``autodnn search``.

    With ``options.workers > 1`` or ``options.gpus``, this process creates the study and starts that many
    ``autodnn worker`` processes on it, then waits for them.

    Args:
        options: What to search, on which data, where to store it.
        on_start: Called with (study, dataset, space, storage URL) once the study is open, before any trial.
        on_trial_start: Called with (study, trial) when a trial starts in this process, its configuration
            in ``trial.user_attrs[CONFIG]``. The trial is the running ``optuna.Trial``; with the
            keras-tuner engine, an object with its future ``number`` and its ``user_attrs``.
        on_epoch: Called with (trial as for ``on_trial_start``, 0-based epoch, that epoch's metrics) after
            every epoch of a trial in this process (worker processes show their own progress).
        on_trial: Called after every trial run in this process; worker processes print their own trials
            unless this is None.
        on_wait: Called when every missing trial runs elsewhere and this process waits for them.
        on_worker_line: Called with (worker plan, ``"stdout"``/``"stderr"``/``"exit"``, line) for what worker
            processes print, and for each that ended abnormally.
        on_budget: Called with a line saying how ``options.timeout`` divides between the search and the final
            evaluation, once the study is open (only with a timeout).

    Returns:
        The study, holding ``options.n_trials`` finished searched trials (and the baselines) unless a
        timeout or an error stopped it.

    Raises:
        UsageError: An input is wrong; nothing was written in that case.
        StudyError: The study cannot be used.
        SearchFailed: Too many trials failed in a row.
        AutodnnError: Worker processes stopped before the study was complete.
    """
    from autodnn.objective import build_objective

    started = time.monotonic()
    parallel = options.workers > 1 or options.gpus is not None
    if parallel:
        share_gpu_memory()  # before this process loads a framework: the workers need the GPU memory
    dataset, space, name, url = prepare(options)
    why = ""
    if options.timeout == "auto":
        options.timeout, why = default_seconds(dataset)
    budget = None if options.timeout is None else TimeBudget(
        options.timeout, options.final_seeds, options.max_epochs, start=started,
        mc_samples=options.mc_samples or DEFAULT_MC_SAMPLES, reference=options.reference, why=why,
        reload=time.monotonic() - started)
    plans = plan_workers(options.workers, options.gpus, options.trials_per_gpu, storage=url)
    reused: dict[str, str] = {}
    left_out: list[str] = []
    study = create_or_resume(options, dataset, space, name, url, reused=reused, budget=budget, left_out=left_out)
    if on_start is not None:
        on_start(study, dataset, space, url)
    if reused and on_budget is not None:
        on_budget(reused_line(reused))
    for line in left_out if on_budget is not None else ():
        on_budget(f"Book baseline {line}.")
    if budget is not None and on_budget is not None:
        on_budget(budget.describe(study, dataset))
    deadline = Deadline() if budget is None else budget.deadline(study, dataset)
    target = run_target(study, options.n_trials)
    if parallel:
        if finished_count(study) < target:
            search_seconds = deadline.left() if deadline.bounded else None
            exits = launch_workers(name, normalize_url(url), plans, timeout=search_seconds,
                                   quiet=on_trial is None, on_line=on_worker_line, mps=options.mps)
            for stopped in exits:
                if stopped.code != 0 and on_worker_line is not None:
                    on_worker_line(stopped.plan, "exit", stopped.describe())
            check_outcome(study, target, exits, timed_out=options.timeout is not None)
        return study
    objective = build_objective(study, dataset, space, deadline=deadline, on_trial_start=on_trial_start,
                                on_epoch=on_epoch)
    if options.engine == "keras-tuner":
        from autodnn.engines import run_keras_tuner

        # The book's baselines train through the same objective as in any study; KerasTuner then searches.
        run_trials(study, objective, n_trials=finished_count(study) + queued_count(study), deadline=deadline,
                   max_failures=options.max_failures, on_trial=on_trial, url=url)
        run_keras_tuner(study, space, dataset, strategy=options.strategy, n_trials=options.n_trials,
                        max_epochs=options.max_epochs, seed=options.seed, deadline=deadline,
                        epoch_budget=options.epoch_budget, lr_finder=options.lr_finder,
                        max_failures=options.max_failures, on_trial=on_trial, on_trial_start=on_trial_start,
                        on_epoch=on_epoch)
        return study
    run_trials(study, objective, n_trials=target, deadline=deadline, max_failures=options.max_failures,
               on_trial=on_trial, on_wait=on_wait, url=url, epoch_budget=options.epoch_budget)
    return study
