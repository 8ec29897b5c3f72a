"""What ``autodnn search`` takes (:class:`SearchOptions`), and what a study stores of it to be resumed
(:mod:`autodnn.study.options` reads it back)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import optuna

from autodnn.backend import PRECISIONS
from autodnn.errors import StudyError, UsageError
from autodnn.study.options import OPTIONS, check_tensorboard, stored_options
from autodnn.study.strategy import (
    ENGINES,
    FIRST_STEP,
    PRUNERS,
    SAMPLERS,
    STRATEGIES,
    describe_engine,
    precision_of,
)
from autodnn.study.urls import redact

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class SearchOptions:
    """Everything ``autodnn search`` takes, with the command line's defaults but one: no ``timeout`` (the
    command's is 30 minutes).

    Attributes:
        dataset: Dataset spec (``digits``, ``cifar10``, ``csv:PATH`` ...).
        space: Search-space name in ``search_spaces/`` or a YAML path; ``auto`` (:func:`space_name`): ``conv`` for
            images, ``default`` for anything else.
        study: Study name; defaults to ``<dataset>-<space>``.
        storage: SQLAlchemy URL; defaults to ``sqlite:///studies/<study>.db``.
        n_trials: Finished (complete or pruned) trials the study should reach.
        timeout: Seconds the whole command may take, the final evaluation of ``final_seeds`` included
            (:mod:`autodnn.tuning.budget`): no trial starts once the search's share is spent, and the one in
            flight stops after its current epoch and is kept (pruned, with its curve and the reason).
        final_seeds: Seeds of the final evaluation that follows the search (``--seeds``; 0 with ``--no-final``
            or when the caller evaluates later), for which ``timeout`` leaves time.
        max_epochs: Epoch budget of each trial.
        seed: Seeds the sampler, the data split and every trial's training.
        data_dir: Where to look for dataset files.
        target: Target column of a CSV or parquet dataset.
        drop: Columns of a CSV or parquet dataset to leave out (``--drop``).
        task: ``auto``, ``classification`` or ``regression`` (``--task``; :mod:`autodnn.datasets._targets`).
        metric: What the search optimizes (``--metric``; :mod:`autodnn.metrics`); ``auto`` by the class shares.
            :func:`autodnn.tuning.run.prepare` replaces ``auto`` by what it chose.
        class_weight: ``auto``, ``none`` or ``balanced`` (``--class-weight``); resolved likewise.
        valid_fraction: Share of the training data held out for validation, or ``auto``
            (:func:`autodnn.datasets._prepare.auto_valid_fraction`).
        force: Continue a study made for another dataset or space.
        mc_samples: MC-dropout passes at evaluation, for nets with dropout.
        max_failures: Stop the search after this many consecutive failed trials.
        baselines: Train the book's default configurations in the study first (in addition to ``n_trials``).
        workers: Worker processes on this machine; 1 runs the trials in this process.
        gpus: GPU indices (``"0,1"``) or ``"all"``: one worker process per GPU (times ``trials_per_gpu``),
            each seeing only its GPU.
        trials_per_gpu: Worker processes sharing each GPU of ``gpus``, for nets too small to fill one.
        mps: Run the workers that share a GPU under NVIDIA's Multi-Process Service when it is installed
            (:func:`autodnn.workers.gpu_sharing`).
        precision: Keras dtype policy of every trial: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.
        engine: ``optuna`` (autodnn's own loop) or ``keras-tuner`` (KerasTuner's oracles drive the same
            trainer; every trial is recorded in the same study).
        strategy: KerasTuner's search algorithm: ``hyperband``, ``bayesian`` or ``random``.
        sampler: Optuna engine's sampler: ``tpe-local`` (TPE, multivariate and grouped, with a third of the
            trials moving around the best so far), ``tpe`` (TPE alone) or ``random``.
        pruner: Optuna engine's pruner: ``median``, ``hyperband``, ``halving`` or ``none``.
        lr_finder: Run the learning-rate finder in every searched trial, whatever the space says.
        epoch_budget: Stop starting searched trials once they have trained this many epochs in all.
        warm_start: Enqueue :mod:`autodnn.tuning.warm_start`'s designed configurations (at most a quarter of
            ``n_trials``) before TPE's own draws; only with the optuna engine and a TPE sampler.
        reference: On a table, the final evaluation also trains gradient-boosted trees with the same seeds
            (:mod:`autodnn.training.reference`); ``--no-reference`` leaves them out.
        tensorboard: Folder of TensorBoard logs, one subfolder per trial, and the HParams experiment at its
            top (:mod:`autodnn.training.tensorboard`). Recorded in the study as given: a relative path is relative to
            the working directory of each process that runs trials (``autodnn worker`` included).
    """

    dataset: str = "digits"
    space: str = "auto"
    study: str | None = None
    storage: str | None = None
    n_trials: int = 100
    timeout: float | str | None = None
    final_seeds: int = 0
    max_epochs: int = 50
    seed: int = 0
    data_dir: str | None = None
    target: str | None = None
    drop: tuple[str, ...] = ()
    task: str = "auto"
    metric: str = "auto"
    class_weight: str = "auto"
    valid_fraction: float | str = "auto"
    force: bool = False
    mc_samples: int = 0
    max_failures: int = 5
    baselines: bool = True
    workers: int = 1
    gpus: str | None = None
    trials_per_gpu: int = 1
    mps: bool = True
    precision: str = "float32"
    engine: str = "optuna"
    strategy: str = "hyperband"
    sampler: str = "tpe-local"
    pruner: str = "hyperband"
    lr_finder: bool = False
    epoch_budget: int | None = None
    warm_start: bool = True
    reference: bool = True
    tensorboard: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raises :class:`UsageError` for values no search can use (before any work is done)."""
        if self.n_trials < 1:
            raise UsageError(f"--n-trials must be >= 1, but got {self.n_trials}")
        if self.max_epochs < 1:
            raise UsageError(f"--max-epochs must be >= 1, but got {self.max_epochs}")
        if isinstance(self.timeout, str) and self.timeout != "auto":
            raise UsageError(f"--timeout must be a number of seconds, 'auto' or none, but got {self.timeout!r}")
        if isinstance(self.timeout, (int, float)) and self.timeout <= 0:
            raise UsageError(f"--timeout must be > 0 seconds, but got {self.timeout}")
        if self.valid_fraction != "auto" and (isinstance(self.valid_fraction, str) or not 0 < self.valid_fraction <= 0.5):
            raise UsageError(f"--valid-fraction must be 'auto' or in (0, 0.5], but got {self.valid_fraction}")
        if self.mc_samples < 0:
            raise UsageError(f"--mc-samples must be >= 0, but got {self.mc_samples}")
        if self.max_failures < 1:
            raise UsageError(f"--max-failures must be >= 1, but got {self.max_failures}")
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, but got {self.workers}")
        if self.trials_per_gpu < 1:
            raise UsageError(f"--trials-per-gpu must be >= 1, but got {self.trials_per_gpu}")
        if self.trials_per_gpu > 1 and self.gpus is None:
            raise UsageError("--trials-per-gpu needs --gpus (which GPUs to share); without GPUs use --workers")
        if self.gpus is not None and self.workers > 1:
            raise UsageError(f"--workers {self.workers} and --gpus {self.gpus} both set the number of workers; "
                             "leave out --workers (--gpus starts one per GPU, times --trials-per-gpu)")
        _check_choice("--engine", self.engine, ENGINES)
        _check_choice("--strategy", self.strategy, STRATEGIES)
        _check_choice("--sampler", self.sampler, SAMPLERS)
        _check_choice("--pruner", self.pruner, PRUNERS)
        _check_choice("--precision", self.precision, PRECISIONS)
        if self.epoch_budget is not None and self.epoch_budget < 1:
            raise UsageError(f"--epoch-budget must be >= 1 epochs, but got {self.epoch_budget}")
        if self.engine == "keras-tuner" and (self.workers > 1 or self.gpus is not None):
            raise UsageError("--engine keras-tuner runs in one process: leave out --workers and --gpus "
                             "(KerasTuner's oracle cannot be shared through the study database)")
        if self.study is not None and not _NAME.match(self.study):
            raise UsageError(
                f"--study {self.study!r} is not a valid name: use letters, digits, '_', '-' and '.' (at most 100)"
            )
        if self.tensorboard is not None:
            if self.engine == "keras-tuner":
                raise UsageError("--tensorboard writes the logs of autodnn's own trial loop, not of --engine "
                                 "keras-tuner; leave out one of the two")
            check_tensorboard(self.tensorboard)


def space_name(space: str, dataset: str) -> str:
    """The search space ``--space`` names; ``auto`` is the convolutional space for image data (``mnist``,
    ``fashion_mnist``, ``cifar10``, ``images:PATH``) and chapter 11's dense ``default`` for anything else."""
    from autodnn.datasets import is_image_spec

    if space != "auto":
        return space
    return "conv" if is_image_spec(dataset) else "default"


def _check_choice(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{flag} {value!r} is not one of {', '.join(allowed)}")


def check_same(study: optuna.Study, dataset: Any, space: Any, url: str, options: SearchOptions) -> None:
    """Refuses to resume a study made for other data, space, engine or precision, unless ``options.force``.

    Raises:
        StudyError: What differs, and how to go on.
    """
    if options.force:
        return
    attrs = study.user_attrs
    stored = attrs.get("dataset", {}).get("fingerprint")
    held = attrs.get("dataset", {}).get("valid_fraction")
    same_data = attrs.get("dataset", {}).get("name") == dataset.name
    if stored and stored != dataset.fingerprint and same_data and isinstance(held, (int, float)) \
            and abs(held - dataset.valid_fraction) > 1e-9:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} holds out {held:g} of the training part for validation, "
            f"not {dataset.valid_fraction:g}; resume with --valid-fraction {held:g}, or use another --study")
    if stored and stored != dataset.fingerprint:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} was made for dataset "
            f"{attrs['dataset'].get('name')} (fingerprint {stored}), not {dataset.name} "
            f"(fingerprint {dataset.fingerprint}); use another --study or --force"
        )
    digest = attrs.get("space_digest")
    if digest and digest != space.digest:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} was made with search space "
            f"{attrs.get('space', {}).get('name')} ({digest}), not {space.name} ({space.digest}); "
            "use another --study or --force"
        )
    recorded = stored_options(study)
    made_with = (recorded.get("engine", "optuna"), recorded.get("strategy"))
    asked = (options.engine, options.strategy if options.engine == "keras-tuner" else None)
    if recorded and made_with != asked:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} was searched with engine {describe_engine(*made_with)}, "
            f"not {describe_engine(*asked)}; use another --study (one study per engine) or --force"
        )
    asked = options.extra.get("asked", {})
    for key, flag in (("metric", "--metric"), ("class_weight", "--class-weight")):
        if recorded.get(key) and asked.get(key, "auto") == "auto":
            setattr(options, key, recorded[key])
        elif recorded.get(key) and recorded[key] != getattr(options, key):
            raise StudyError(
                f"study '{study.study_name}' in {redact(url)} searches with {flag} {recorded[key]}, not "
                f"{getattr(options, key)}; resume with {flag} {recorded[key]} (or leave it out), or use another --study"
            )
    trained_in = precision_of(recorded)
    if recorded and trained_in != options.precision:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} trains in {trained_in}, not {options.precision}; "
            f"resume with --precision {trained_in}, or use another --study or --force"
        )


def record_options(study: optuna.Study, options: SearchOptions, dataset: Any, space: Any) -> None:
    """Writes into the study what a resumed search, a worker and the report read back."""
    from autodnn.backend import environment

    study.set_user_attr("dataset", dataset.describe())
    study.set_user_attr("space", space.to_dict())
    study.set_user_attr("space_digest", space.digest)
    study.set_user_attr("environment", environment())
    study.set_user_attr(OPTIONS, options_record(options))


def options_record(options: SearchOptions) -> dict[str, Any]:
    """What a worker on any machine needs besides the space and the dataset's fingerprint."""
    return {
        "n_trials": options.n_trials,
        "max_epochs": options.max_epochs,
        "seed": options.seed,
        "valid_fraction": options.valid_fraction,
        "mc_samples": options.mc_samples,
        "max_failures": options.max_failures,
        "dataset_spec": options.dataset,
        "data_dir": options.data_dir,
        "target": options.target,
        "drop": [options.drop] if isinstance(options.drop, str) else list(options.drop),
        "task": options.task,
        "metric": options.metric,
        "class_weight": options.class_weight,
        "metric_line": options.extra.get("metric_line"),
        "engine": options.engine,
        "strategy": options.strategy if options.engine == "keras-tuner" else None,
        "sampler": options.sampler,
        "pruner": options.pruner,
        "lr_finder": options.lr_finder,
        "epoch_budget": options.epoch_budget,
        "warm_start": options.warm_start,
        "reference": options.reference,
        "precision": options.precision,
        "tensorboard": options.tensorboard,
        "first_step": FIRST_STEP,
    }


def update_options(study: optuna.Study, options: SearchOptions) -> None:
    """A resumed search may ask for more (or fewer) trials, epochs or MC-dropout passes, or no trees: the study
    stores what this command asks, and this process and the workers that join later train by it
    (:func:`autodnn.objective.build_objective`)."""
    stored = stored_options(study)
    changed = {"n_trials": options.n_trials, "max_failures": options.max_failures,
               "epoch_budget": options.epoch_budget, "tensorboard": options.tensorboard,
               "max_epochs": options.max_epochs, "mc_samples": options.mc_samples, "lr_finder": options.lr_finder,
               "reference": options.reference}
    if stored and any(stored.get(k) != v for k, v in changed.items()):
        study.set_user_attr(OPTIONS, {**stored, **changed})
