"""Studies: storages, samplers and pruners, resumable searches, and what a study records about itself."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

from autodnn.backend import PRECISIONS
from autodnn.errors import StudyError, UsageError

DEFAULT_STUDIES_DIR = Path("studies")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: Seconds between a running trial's heartbeats, and after which a silent trial counts as dead. The
#: environment variables ``AUTODNN_HEARTBEAT_INTERVAL`` and ``AUTODNN_GRACE_PERIOD`` override them (whole
#: seconds; every worker of a study should use the same ones).
HEARTBEAT_INTERVAL = 20
GRACE_PERIOD = 60
#: Where ``autodnn worker`` finds its storage URL when ``--storage`` is left out; keeps passwords out of
#: command lines (``ps``) and shell history.
STORAGE_ENV = "AUTODNN_STORAGE"
#: Seconds a PostgreSQL or MySQL server may take to accept a connection before the storage counts as down.
CONNECT_TIMEOUT = 10

ENGINES = ("optuna", "keras-tuner")
STRATEGIES = ("hyperband", "bayesian", "random")
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "halving", "none")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class SearchOptions:
    """Everything ``autodnn search`` takes, with the command line's defaults.

    Attributes:
        dataset: Dataset spec (``digits``, ``cifar10``, ``csv:PATH`` ...).
        space: Search-space name in ``search_spaces/`` or a YAML path.
        study: Study name; defaults to ``<dataset>-<space>``.
        storage: SQLAlchemy URL; defaults to ``sqlite:///studies/<study>.db``.
        n_trials: Finished (complete or pruned) trials the study should reach.
        timeout: Stop starting new trials after this many seconds.
        max_epochs: Epoch budget of each trial.
        seed: Seeds the sampler, the data split and every trial's training.
        data_dir: Where to look for dataset files.
        target: Target column of a CSV or parquet dataset.
        valid_fraction: Share of the training data held out for validation.
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
        sampler: Optuna engine's sampler: ``tpe`` (multivariate, grouped) or ``random``.
        pruner: Optuna engine's pruner: ``median``, ``hyperband``, ``halving`` or ``none``.
        lr_finder: Run the learning-rate finder in every searched trial, whatever the space says.
        epoch_budget: Stop starting searched trials once they have trained this many epochs in all.
    """

    dataset: str = "digits"
    space: str = "quick"
    study: str | None = None
    storage: str | None = None
    n_trials: int = 20
    timeout: float | None = None
    max_epochs: int = 50
    seed: int = 0
    data_dir: str | None = None
    target: str | None = None
    valid_fraction: float = 0.1
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
    sampler: str = "tpe"
    pruner: str = "hyperband"
    lr_finder: bool = False
    epoch_budget: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raises :class:`UsageError` for values no search can use (before any work is done)."""
        if self.n_trials < 1:
            raise UsageError(f"--n-trials must be >= 1, but got {self.n_trials}")
        if self.max_epochs < 1:
            raise UsageError(f"--max-epochs must be >= 1, but got {self.max_epochs}")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError(f"--timeout must be > 0 seconds, but got {self.timeout}")
        if not 0 < self.valid_fraction <= 0.5:
            raise UsageError(f"--valid-fraction must be in (0, 0.5], but got {self.valid_fraction}")
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


def _check_choice(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{flag} {value!r} is not one of {', '.join(allowed)}")


def default_study_name(dataset: str, space: str) -> str:
    """``<dataset>-<space>`` with file paths reduced to their stems, e.g. ``digits-quick``."""
    data = Path(dataset.split(":", 1)[-1]).name.split(".")[0] if ":" in dataset else dataset
    space_name = Path(space).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{data}-{space_name}")[:100]


def storage_url(study: str, storage: str | None = None) -> str:
    """The storage URL a study lives in: ``storage`` as given, or ``sqlite:///studies/<study>.db``."""
    if storage:
        return storage
    return f"sqlite:///{DEFAULT_STUDIES_DIR / f'{study}.db'}"


def redact(text: str) -> str:
    """Hides every database password in ``text`` (``postgresql://user:***@host/db``, ``?password=***``).

    The password runs to the last ``@`` before the host, so one holding ``@`` or ``/`` is hidden whole.
    """
    text = re.sub(r"(://[^:/@\s]*:)\S*?@(?=[^@\s]*(?:[\s/'\"]|$))", r"\1***@", text)
    return re.sub(r"(password=)[^&\s'\"]+", r"\1***", text, flags=re.IGNORECASE)


def heartbeat_settings() -> tuple[int, int]:
    """Heartbeat interval and grace period in seconds, from the environment or the module's defaults.

    Raises:
        UsageError: A variable is not a positive whole number, or the grace period is not longer than the
            interval (every live trial would then look dead).
    """
    values = []
    for name, default in (("AUTODNN_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL), ("AUTODNN_GRACE_PERIOD", GRACE_PERIOD)):
        raw = os.environ.get(name, "").strip()
        if not raw:
            values.append(default)
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise UsageError(f"{name} must be a whole number of seconds >= 1, but got {raw!r}")
        values.append(int(raw))
    interval, grace = values
    if grace <= interval:
        raise UsageError(f"AUTODNN_GRACE_PERIOD ({grace} s) must be longer than AUTODNN_HEARTBEAT_INTERVAL "
                         f"({interval} s), or live trials would be failed as lost")
    return interval, grace


def normalize_url(url: str) -> str:
    """Checks a storage URL and picks an installed driver where it names none.

    ``postgresql://`` gets psycopg2 when psycopg 3 (SQLAlchemy 2.1's default) is missing, and ``mysql://``
    or ``mariadb://`` get PyMySQL when mysqlclient is missing: the ``postgres`` and ``mysql`` extras install
    those.

    Raises:
        StudyError: The text is not a database URL.
    """
    import importlib.util

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if "://" not in url:
        raise StudyError(f"--storage {redact(url)!r} is not a database URL; use e.g. sqlite:///studies/x.db or "
                         "postgresql://user@host/db")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StudyError(f"--storage {redact(url)!r} is not a valid database URL ({redact(_first_line(exc))}); "
                         "use e.g. postgresql://user:password@host:5432/db") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise StudyError(f"--storage {redact(url)}: unknown database kind '{parsed.drivername}'; use "
                         "sqlite:///PATH, postgresql://... or mysql+pymysql://...") from None
    if "+" not in parsed.drivername:
        def missing(module: str) -> bool:
            return importlib.util.find_spec(module) is None

        backend = parsed.get_backend_name()
        if backend == "postgresql" and missing("psycopg") and not missing("psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg2")
        elif backend in ("mysql", "mariadb") and missing("MySQLdb") and not missing("pymysql"):
            parsed = parsed.set(drivername=f"{backend}+pymysql")
        else:
            return url
    return parsed.render_as_string(hide_password=False)


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Opens an Optuna storage with heartbeats, so that a killed worker's trial is failed and retried.

    SQLite is made safe for several processes: every transaction starts with ``BEGIN IMMEDIATE`` (takes the
    write lock up front, so the busy timeout applies instead of a lock-upgrade deadlock), and the journal is
    WAL (readers never block the writer).

    Args:
        url: A SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://...``, ``mysql+pymysql://...``).
        create: Whether a missing SQLite file may be created; when False, a missing file is an error.

    Raises:
        StudyError: The URL is malformed, its driver is missing, or the database does not answer.
        UsageError: The heartbeat settings in the environment are invalid.
    """
    from optuna.storages import RDBStorage
    from sqlalchemy.engine import make_url

    from autodnn.workers import StudyLock, schema_lock

    safe = redact(url)
    url = normalize_url(url)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    engine_kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:" and not path.startswith("file:"):
            if not create and not Path(path).exists():
                raise StudyError(f"no study database at {safe}: check --storage, or run 'autodnn search' first")
            if Path(path).is_dir():
                raise StudyError(f"cannot open storage {safe}: {path} is a folder; name a .db file in it")
            parent = Path(path).parent
            if not parent.exists() and create and parent == DEFAULT_STUDIES_DIR:
                parent.mkdir(parents=True)
            elif not parent.exists():
                raise StudyError(f"cannot create {safe}: folder {parent} does not exist")
        # isolation_level=None stops pysqlite's own BEGIN, so that _serialize_sqlite's BEGIN IMMEDIATE is the one.
        engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
        if parsed.get_driver_name() in ("psycopg2", "pymysql"):
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    interval, grace = heartbeat_settings()
    writable = backend != "sqlite" or _writable(parsed.database or "")
    try:
        # A lock of the database, so that processes opening a new one at once do not race to make its tables.
        lock = schema_lock(url) if writable else StudyLock()
        lock.acquire()
        try:
            storage = RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=_retry_lost_trial(),
            )
        finally:
            lock.release()
    except (ImportError, ValueError) as exc:
        # Optuna turns a missing driver into a ValueError ("Failed to import DB access module ...").
        if isinstance(exc, ValueError) and "import DB access module" not in str(exc):
            raise StudyError(f"cannot open storage {safe}: {redact(_first_line(exc))[:300]}") from None
        driver = getattr(exc, "name", None) or parsed.get_driver_name()
        hint = {"postgresql": ": pip install 'autodnn[postgres]' and write postgresql://...",
                "mysql": ": pip install 'autodnn[mysql]' and write mysql+pymysql://...",
                "mariadb": ": pip install 'autodnn[mysql]' and write mariadb+pymysql://..."}.get(backend, "")
        raise StudyError(f"the database driver for {safe} is not installed ({driver}){hint}") from None
    except Exception as exc:  # noqa: BLE001 - drivers raise many kinds; each is one line for the user
        raise StudyError(f"cannot open storage {safe}: {redact(_first_line(_cause(exc)))[:300]}") from None
    if backend == "sqlite" and writable:
        _serialize_sqlite(storage)
    return storage


def _writable(path: str) -> bool:
    """Whether this process may write the SQLite file (a read-only copy can still be shown and reported)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return True
    file = Path(path)
    folder_ok = os.access(file.parent if str(file.parent) else Path("."), os.W_OK)
    return folder_ok and (not file.exists() or os.access(file, os.W_OK))


def _cause(exc: BaseException) -> BaseException:
    """The driver's error behind Optuna's ``StorageInternalError``, whose own text names no cause."""
    from optuna.exceptions import StorageInternalError

    return exc.__cause__ if isinstance(exc, StorageInternalError) and exc.__cause__ is not None else exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _serialize_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Makes every SQLite transaction take the write lock first, and switches the journal to WAL.

    pysqlite opens transactions deferred: one that reads and then writes asks for the write lock while holding
    a read lock, and SQLite answers "database is locked" at once when another process waits for the reverse,
    whatever the busy timeout. ``BEGIN IMMEDIATE`` queues writers on the busy timeout instead.
    """
    import contextlib
    import sqlite3

    from sqlalchemy import event

    @event.listens_for(storage.engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        with contextlib.suppress(sqlite3.OperationalError):  # a read-only folder: stay on the rollback journal
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL syncs at checkpoints instead of at every commit (a trial commits dozens of times):
        # a killed process loses nothing, a power cut at most the last commits, and the file never corrupts.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(storage.engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Connections opened while RDBStorage set up its tables predate the listeners.
    storage.engine.dispose()


def _retry_lost_trial() -> Callable[[optuna.Study, FrozenTrial], None]:
    """Re-queues a trial whose worker stopped sending heartbeats, linked to it (``retry_of``), up to 3 times."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    return RetryHeartbeatStaleTrialCallback(max_retry=3)


def load_study(name: str, storage: str | None = None, **kwargs: Any) -> optuna.Study:
    """Loads an existing study by name, with a clear error listing the studies that do exist.

    Args:
        name: Study name.
        storage: Storage URL; defaults to ``sqlite:///studies/<name>.db``.
        **kwargs: ``sampler`` and ``pruner`` of :func:`optuna.load_study`.

    Raises:
        StudyError: No such storage or study.
    """
    url = storage_url(name, storage)
    backend = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=backend, **kwargs)
    except KeyError:
        names = optuna.get_all_study_names(backend)
        known = f"; studies there: {', '.join(names)}" if names else "; it holds no study"
        raise StudyError(f"no study named {name!r} in {redact(url)}{known}") from None


def finished_count(study: optuna.Study) -> int:
    """Trials that finished (complete or pruned): what ``--n-trials`` counts."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def make_sampler(seed: int | None, kind: str = "tpe") -> optuna.samplers.BaseSampler:
    """The sampler of ``--sampler``, seeded.

    ``tpe``: TPE over the whole (conditional) space at once; constant liar keeps parallel workers apart. It is
    Optuna's TPE with its bookkeeping made cheaper for large studies (:mod:`autodnn._tpe`).
    ``random``: independent uniform draws (random search).
    """
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    from autodnn._tpe import TPESampler

    return TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10)


#: Reduction factor of the ``hyperband`` and ``halving`` pruners; their rungs are at steps that are its powers.
HALVING_FACTOR = 3


def make_pruner(kind: str = "hyperband", max_epochs: int = 50) -> optuna.pruners.BasePruner:
    """The pruner of ``--pruner``.

    ``median``: stops a trial whose epoch falls below the median of earlier trials at that epoch, once five
    trials finished, never in a trial's first two epochs. ``hyperband``: Optuna's Hyperband over epochs 1 to
    ``max_epochs`` with reduction factor 3 (successive halving in several brackets). ``halving``: one bracket
    of asynchronous successive halving, rungs after epochs 2, 4 and 10 (0-based steps 1, 3, 9), keeping the
    best third at each. ``none``: never prunes.
    """
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs,
                                              reduction_factor=HALVING_FACTOR)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=HALVING_FACTOR)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)


def may_prune_at(pruner: optuna.pruners.BasePruner, step: int) -> bool:
    """Whether asking ``pruner`` about a trial's ``step`` can stop it.

    Successive halving and Hyperband (as :func:`make_pruner` makes them) decide only at their rungs, the steps
    that are powers of :data:`HALVING_FACTOR`; asking at other steps costs a read of the trial from the
    storage and answers no. Other pruners may decide at any step.
    """
    if not isinstance(pruner, (optuna.pruners.HyperbandPruner, optuna.pruners.SuccessiveHalvingPruner)):
        return True
    while step > 1 and step % HALVING_FACTOR == 0:
        step //= HALVING_FACTOR
    return step == 1


def epochs_spent(study: optuna.Study) -> int:
    """Epochs trained by the study's searched trials (baselines not counted): what ``--epoch-budget`` caps."""
    return sum(int((t.user_attrs.get("result") or {}).get("epochs") or 0)
               for t in study.get_trials(deepcopy=False) if not is_baseline(t))


def prepare(options: SearchOptions) -> tuple[Any, Any, str, str]:
    """Checks every input and loads dataset and space before anything is written.

    Returns:
        ``(dataset, space, study_name, storage_url)``.

    Raises:
        UsageError: Any input is wrong (its subclasses say which).
    """
    from autodnn.datasets import load_dataset
    from autodnn.space import load_space
    from autodnn.workers import plan_workers

    options.check()
    heartbeat_settings()
    space = load_space(options.space)
    dataset = load_dataset(
        options.dataset,
        data_dir=options.data_dir,
        target=options.target,
        valid_fraction=options.valid_fraction,
        seed=options.seed,
    )
    name = options.study or default_study_name(options.dataset, options.space)
    url = storage_url(name, options.storage)
    normalize_url(url)
    plan_workers(options.workers, options.gpus, options.trials_per_gpu, storage=url)
    return dataset, space, name, url


def create_or_resume(options: SearchOptions, dataset: Any, space: Any, name: str, url: str) -> optuna.Study:
    """Creates the study, or resumes it after checking that it was made for the same dataset and space.

    Raises:
        StudyError: The existing study holds another dataset or space and ``force`` is not set.
    """
    from autodnn.objective import METRIC

    storage = open_storage(url)
    if name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage,
                                  sampler=make_sampler(options.seed, options.sampler),
                                  pruner=make_pruner(options.pruner, options.max_epochs))
        _check_same(study, dataset, space, url, options)
        if options.force:
            _record(study, options, dataset, space)
        else:
            _update_settings(study, options)
    else:
        study = optuna.create_study(
            study_name=name, storage=storage, direction="maximize",
            sampler=make_sampler(options.seed, options.sampler),
            pruner=make_pruner(options.pruner, options.max_epochs),
        )
        # Names the objective in Optuna's own tools (optuna-dashboard shows "val_accuracy", not "Objective 0").
        study.set_metric_names([METRIC])
        _record(study, options, dataset, space)
    if options.baselines:
        enqueue_baselines(study, space)
    return study


def enqueue_baselines(study: optuna.Study, space: Any) -> int:
    """Enqueues the book's defaults (``autodnn.defaults``) that the study does not hold yet.

    Depth and width are the space's when it fixes both, else exercise 8's 20 x 100.

    Returns:
        How many were enqueued.
    """
    from autodnn.defaults import book_baselines

    fixed = {p.name: p.value for p in space.params if p.kind == "fixed" and not p.when}
    shape = {}
    if "n_hidden" in fixed and "n_units" in fixed:
        shape = {"n_hidden": fixed["n_hidden"], "n_units": fixed["n_units"]}
    present = {t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)}
    added = 0
    for baseline in book_baselines(**shape):
        if baseline.name in present:
            continue
        study.enqueue_trial({}, user_attrs={"baseline": baseline.name, "title": baseline.title,
                                            "config": baseline.config.to_dict()})
        added += 1
    return added


def is_baseline(trial: FrozenTrial) -> bool:
    """Whether a trial trains one of the book's defaults rather than a searched configuration."""
    return "baseline" in trial.user_attrs


def baseline_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The finished baseline trial of each book default (the latest one, when retried)."""
    latest: dict[str, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        if is_baseline(trial):
            latest[trial.user_attrs["baseline"]] = trial
    return list(latest.values())


def run_target(study: optuna.Study, n_trials: int) -> int:
    """Finished trials the study must hold for ``n_trials`` searched ones: baselines come on top."""
    names = {t.user_attrs["baseline"] for t in study.get_trials(deepcopy=False) if is_baseline(t)}
    return n_trials + len(names)


def searched_count(study: optuna.Study) -> int:
    """Finished trials that were searched (baselines not counted)."""
    return sum(not is_baseline(t) for t in study.get_trials(deepcopy=False, states=FINISHED))


def dataset_of(study: optuna.Study) -> Any:
    """Reloads the dataset a study was made for and checks that its fingerprint still matches.

    Raises:
        StudyError: The study lacks its settings, or the data changed since the search.
    """
    from autodnn.datasets import load_dataset

    settings = study.user_attrs.get("settings")
    stored = study.user_attrs.get("dataset", {})
    if not settings:
        raise StudyError(f"study '{study.study_name}' was not made by 'autodnn search': it has no settings")
    dataset = load_dataset(settings["dataset_spec"], data_dir=settings.get("data_dir"), target=settings.get("target"),
                           valid_fraction=settings["valid_fraction"], seed=settings["seed"])
    if stored.get("fingerprint") and stored["fingerprint"] != dataset.fingerprint:
        raise StudyError(
            f"dataset {dataset.name} changed since study '{study.study_name}' was made (fingerprint "
            f"{dataset.fingerprint}, not {stored['fingerprint']}); restore the data or start a new study"
        )
    return dataset


def _check_same(study: optuna.Study, dataset: Any, space: Any, url: str, options: SearchOptions) -> None:
    if options.force:
        return
    attrs = study.user_attrs
    stored = attrs.get("dataset", {}).get("fingerprint")
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
    settings = attrs.get("settings") or {}
    made_with = (settings.get("engine", "optuna"), settings.get("strategy"))
    asked = (options.engine, options.strategy if options.engine == "keras-tuner" else None)
    if settings and made_with != asked:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} was searched with engine {_engine_label(*made_with)}, "
            f"not {_engine_label(*asked)}; use another --study (one study per engine) or --force"
        )
    trained_in = precision_of(settings)
    if settings and trained_in != options.precision:
        raise StudyError(
            f"study '{study.study_name}' in {redact(url)} trains in {trained_in}, not {options.precision}; "
            f"resume with --precision {trained_in}, or use another --study or --force"
        )


def _engine_label(engine: str, strategy: str | None) -> str:
    """``keras-tuner (hyperband)``, or the engine alone when it has no strategy."""
    return f"{engine} ({strategy})" if strategy else engine


def precision_of(settings: dict[str, Any]) -> str:
    """The ``--precision`` a study trains in (studies from before the option trained in float32)."""
    return settings.get("precision") or "float32"


def pruner_of(settings: dict[str, Any]) -> str:
    """The ``--pruner`` a study searched with (studies from before the option used the median pruner)."""
    return settings.get("pruner") or "median"


def engine_label(settings: dict[str, Any]) -> str | None:
    """How a study searched, in words: ``keras-tuner (hyperband)``, ``optuna (tpe, hyperband pruner)``."""
    engine = settings.get("engine")
    if engine == "keras-tuner":
        return _engine_label(engine, settings.get("strategy") or "hyperband")
    if engine is None:
        return None
    parts = [settings.get("sampler") or "tpe", f"{pruner_of(settings)} pruner"]
    if settings.get("lr_finder"):
        parts.append("LR finder in every trial")
    return f"{engine} ({', '.join(parts)})"


#: What each ``--pruner`` did to a trial it stopped, in words for the report.
PRUNING_RULES = {
    "median": "once they fell below the median of earlier trials at the same epoch",
    "hyperband": "at a Hyperband rung (after epochs 2, 4, 10, 28, ...), for not being in the best third of their "
                 "bracket's trials at that epoch",
    "halving": "at a successive-halving rung (after epochs 2, 4, 10, 28, ...), for not being in the best third of "
               "the trials at that epoch",
    "none": "for a NaN loss (the search did not prune)",
}


def pruning_rule(settings: dict[str, Any]) -> str:
    """Why the study's pruned trials stopped, for the report."""
    if settings.get("engine") == "keras-tuner":
        return "when KerasTuner's Hyperband did not promote them to the next round"
    return PRUNING_RULES.get(pruner_of(settings), PRUNING_RULES["median"])


def _record(study: optuna.Study, options: SearchOptions, dataset: Any, space: Any) -> None:
    from autodnn.backend import environment

    study.set_user_attr("dataset", dataset.describe())
    study.set_user_attr("space", space.to_dict())
    study.set_user_attr("space_digest", space.digest)
    study.set_user_attr("environment", environment())
    study.set_user_attr("settings", _settings(options))


def _settings(options: SearchOptions) -> dict[str, Any]:
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
        "engine": options.engine,
        "strategy": options.strategy if options.engine == "keras-tuner" else None,
        "sampler": options.sampler,
        "pruner": options.pruner,
        "lr_finder": options.lr_finder,
        "epoch_budget": options.epoch_budget,
        "precision": options.precision,
    }


def _update_settings(study: optuna.Study, options: SearchOptions) -> None:
    """A resumed search may ask for more (or fewer) trials: workers that join later read the new target."""
    settings = dict(study.user_attrs.get("settings") or {})
    changed = {"n_trials": options.n_trials, "max_failures": options.max_failures,
               "epoch_budget": options.epoch_budget}
    if settings and any(settings.get(k) != v for k, v in changed.items()):
        study.set_user_attr("settings", {**settings, **changed})


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int,
    timeout: float | None = None,
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
        timeout: Stop starting new trials after this many seconds.
        max_failures: Stop with an error after this many consecutive failed trials (a broken setup, not
            an unlucky configuration).
        on_trial: Called after every trial, e.g. to print progress.
        on_wait: Called when every missing trial runs in another worker and this one waits for them.
        url: The study's storage URL, to share its lock with workers in other processes.
        epoch_budget: Start no searched trial once searched trials trained this many epochs in all.

    Returns:
        How many trials this call ran.

    Raises:
        StudyError: ``max_failures`` consecutive trials failed.
    """
    from autodnn.workers import StudyLock, study_lock
    from autodnn.workers import run_trials as loop

    def report(current: optuna.Study, progress: Any) -> None:
        if on_trial is not None:
            on_trial(current, progress.trial)

    lock = study_lock(url, study.study_name) if url else StudyLock()
    return loop(study, objective, n_trials=n_trials, lock=lock, timeout=timeout, max_failures=max_failures,
                on_trial=report, on_wait=on_wait, epoch_budget=epoch_budget)


def search(
    options: SearchOptions,
    *,
    on_start: Callable[[optuna.Study, Any, Any, str], None] | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_wait: Callable[[optuna.Study, int], None] | None = None,
    on_worker_line: Callable[[Any, str, str], None] | None = None,
) -> optuna.Study:
    """Runs (or resumes) a search: the function behind ``autodnn search``.

    With ``options.workers > 1`` or ``options.gpus``, this process creates the study and starts that many
    ``autodnn worker`` processes on it, then waits for them.

    Args:
        options: What to search, on which data, where to store it.
        on_start: Called with (study, dataset, space, storage URL) once the study is open, before any trial.
        on_trial: Called after every trial run in this process; worker processes print their own trials
            unless this is None.
        on_wait: Called when every missing trial runs elsewhere and this process waits for them.
        on_worker_line: Called with (worker plan, ``"stdout"``/``"stderr"``/``"exit"``, line) for what worker
            processes print, and for each that ended abnormally.

    Returns:
        The study, holding ``options.n_trials`` finished searched trials (and the baselines) unless a
        timeout or an error stopped it.

    Raises:
        UsageError: An input is wrong; nothing was written in that case.
        StudyError: The study cannot be used, or too many trials failed in a row.
        AutodnnError: Worker processes stopped before the study was complete.
    """
    from autodnn.objective import Objective
    from autodnn.workers import check_outcome, launch_workers, plan_workers, share_gpu_memory

    parallel = options.workers > 1 or options.gpus is not None
    if parallel:
        share_gpu_memory()  # before this process loads a framework: the workers need the GPU memory
    dataset, space, name, url = prepare(options)
    plans = plan_workers(options.workers, options.gpus, options.trials_per_gpu, storage=url)
    study = create_or_resume(options, dataset, space, name, url)
    if on_start is not None:
        on_start(study, dataset, space, url)
    target = run_target(study, options.n_trials)
    if parallel:
        if finished_count(study) < target:
            exits = launch_workers(name, normalize_url(url), plans, timeout=options.timeout,
                                   quiet=on_trial is None, on_line=on_worker_line, mps=options.mps)
            for stopped in exits:
                if stopped.code != 0 and on_worker_line is not None:
                    on_worker_line(stopped.plan, "exit", stopped.describe())
            check_outcome(study, target, exits, timed_out=options.timeout is not None)
        return study
    objective = Objective(space, dataset, options.max_epochs, seed=options.seed, mc_samples=options.mc_samples,
                          lr_finder=options.lr_finder)
    if options.engine == "keras-tuner":
        from autodnn.engines import run_keras_tuner

        # The book's baselines train through the same objective as in any study; KerasTuner then searches.
        run_trials(study, objective, n_trials=finished_count(study) + _queued_count(study),
                   max_failures=options.max_failures, on_trial=on_trial, url=url)
        run_keras_tuner(study, space, dataset, strategy=options.strategy, n_trials=options.n_trials,
                        max_epochs=options.max_epochs, seed=options.seed, timeout=options.timeout,
                        epoch_budget=options.epoch_budget, lr_finder=options.lr_finder,
                        max_failures=options.max_failures, on_trial=on_trial)
        return study
    run_trials(study, objective, n_trials=target, timeout=options.timeout, max_failures=options.max_failures,
               on_trial=on_trial, on_wait=on_wait, url=url, epoch_budget=options.epoch_budget)
    return study


def _queued_count(study: optuna.Study) -> int:
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
SUMMARY_USER_ATTRS = ("result", "reason", "baseline")


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
            return _summaries_from_tables(backend, study._study_id)
        except Exception:  # noqa: BLE001, S110 - another Optuna's schema: the slower full read still works
            pass
    return [TrialSummary.of(t) for t in study.get_trials(deepcopy=False)]


def _summaries_from_tables(storage: optuna.storages.RDBStorage, study_id: int) -> list[TrialSummary]:
    import json

    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models
    from sqlalchemy import func

    params = models.TrialParamModel.__table__.c
    users = models.TrialUserAttributeModel.__table__.c
    systems = models.TrialSystemAttributeModel.__table__.c
    steps = models.TrialIntermediateValueModel.__table__.c
    rows: dict[int, dict[str, Any]] = {}
    with storage.engine.connect() as connection:
        joined = _StudyRows(connection, study_id)
        for trial_id, number, state, start, end, value in joined.trials():
            rows[trial_id] = {"number": number, "trial_id": trial_id, "state": state, "value": value, "params": {},
                              "user_attrs": {}, "system_attrs": {}, "n_intermediate": 0,
                              "duration": end - start if start and end else None}
        # Each parameter has one distribution in nearly every study: read those once, not with every row.
        pairs = connection.execute(joined(params.param_name, params.distribution_json).distinct()).all()
        per_name = {name: json_to_distribution(text) for name, text in pairs}
        if len(per_name) == len(pairs):
            for trial_id, name, value in _raw_rows(connection, joined(params.trial_id, params.param_name,
                                                                      params.param_value)):
                rows[trial_id]["params"][name] = per_name[name].to_external_repr(value)
        else:
            distributions = {text: json_to_distribution(text) for _, text in pairs}
            for trial_id, name, value, text in connection.execute(
                    joined(params.trial_id, params.param_name, params.param_value, params.distribution_json)).all():
                rows[trial_id]["params"][name] = distributions[text].to_external_repr(value)
        for trial_id, key, text in connection.execute(
                joined(users.trial_id, users.key, users.value_json).where(users.key.in_(SUMMARY_USER_ATTRS))).all():
            rows[trial_id]["user_attrs"][key] = json.loads(text)
        for trial_id, key, text in connection.execute(
                joined(systems.trial_id, systems.key, systems.value_json)
                .where(systems.key.in_(("failed_trial", "retry_history")))).all():
            rows[trial_id]["system_attrs"][key] = json.loads(text)
        for trial_id, count in connection.execute(
                joined(steps.trial_id, func.count()).group_by(steps.trial_id)).all():
            rows[trial_id]["n_intermediate"] = count
    return sorted((TrialSummary(**row) for row in rows.values()), key=lambda t: t.number)


def read_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of ``study``, whole, in number order: what ``study.get_trials()`` returns, read faster.

    Optuna's read goes through its ORM, one object per row: about 25 s for 10,000 trials of 20 epochs on 2
    cores. From a SQL storage the tables are read here as plain rows (a few seconds); elsewhere, or if the
    tables do not look as expected, Optuna reads them.
    """
    backend = getattr(study._storage, "_backend", study._storage)
    if isinstance(backend, optuna.storages.RDBStorage) and len(study.directions) == 1:
        try:
            return _trials_from_tables(backend, study._study_id)
        except Exception:  # noqa: BLE001, S110 - another Optuna's schema: the slower full read still works
            pass
    return study.get_trials(deepcopy=False)


def _trials_from_tables(storage: optuna.storages.RDBStorage, study_id: int) -> list[FrozenTrial]:
    import json

    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models

    tables = {name: model.__table__.c for name, model in (
        ("params", models.TrialParamModel), ("users", models.TrialUserAttributeModel),
        ("systems", models.TrialSystemAttributeModel), ("steps", models.TrialIntermediateValueModel))}
    rows: dict[int, dict[str, Any]] = {}
    with storage.engine.connect() as connection:
        joined = _StudyRows(connection, study_id)
        for trial_id, number, state, start, end, value in joined.trials():
            rows[trial_id] = {"number": number, "trial_id": trial_id, "state": TrialState[state.name], "value": value,
                              "datetime_start": start, "datetime_complete": end, "params": {},
                              "distributions": {}, "user_attrs": {}, "system_attrs": {}, "intermediate_values": {}}
        params = tables["params"]
        distributions = {text: json_to_distribution(text) for (text,) in
                         connection.execute(joined(params.distribution_json).distinct()).all()}
        for trial_id, name, value, text in _raw_rows(connection, joined(params.trial_id, params.param_name,
                                                                        params.param_value, params.distribution_json)):
            row = rows[trial_id]
            row["distributions"][name] = distributions[text]
            row["params"][name] = distributions[text].to_external_repr(value)
        for kind in ("users", "systems"):
            table = tables[kind]
            field_name = "user_attrs" if kind == "users" else "system_attrs"
            for trial_id, key, text in _raw_rows(connection, joined(table.trial_id, table.key, table.value_json)):
                rows[trial_id][field_name][key] = json.loads(text)
        steps = tables["steps"]
        for trial_id, step, value, kind in connection.execute(
                joined(steps.trial_id, steps.step, steps.intermediate_value, steps.intermediate_value_type)).all():
            rows[trial_id]["intermediate_values"][step] = \
                models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
    return [FrozenTrial(**row) for row in sorted(rows.values(), key=lambda r: r["number"])]


class _StudyRows:
    """Queries over one study's rows of Optuna's trial tables, for the readers above."""

    def __init__(self, connection: Any, study_id: int) -> None:
        from optuna.storages._rdb import models

        self.connection = connection
        self.models = models
        self.trial_columns = models.TrialModel.__table__.c
        self.mine = self.trial_columns.study_id == study_id

    def __call__(self, *columns: Any) -> Any:
        """``SELECT columns`` of a per-trial table, restricted to the study's trials."""
        from sqlalchemy import select

        return select(*columns).join_from(columns[0].table, self.models.TrialModel.__table__,
                                          columns[0].table.c.trial_id == self.trial_columns.trial_id).where(self.mine)

    def trials(self) -> list[tuple]:
        """``(trial_id, number, state, start, end, value)`` per trial; value is the first objective's or None."""
        from sqlalchemy import select

        trials, values = self.trial_columns, self.models.TrialValueModel.__table__.c
        found = {}
        for trial_id, value, kind in self.connection.execute(
                self(values.trial_id, values.value, values.value_type).where(values.objective == 0)).all():
            found[trial_id] = self.models.TrialValueModel.stored_repr_to_value(value, kind)
        return [(*row, found.get(row[0])) for row in self.connection.execute(
            select(trials.trial_id, trials.number, trials.state, trials.datetime_start,
                   trials.datetime_complete).where(self.mine)).all()]


def _raw_rows(connection: Any, statement: Any) -> list[tuple]:
    """Rows of a query of plain columns (ints, floats, strings) straight from the driver's cursor.

    The parameters table holds a row per trial and parameter (250,000 for 10,000 trials); SQLAlchemy's
    per-row result processing would double the time to read it.
    """
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


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
        result = t.user_attrs.get("result") or {}
        duration = t.duration.total_seconds() if t.duration else None
        reason = t.user_attrs.get("reason", "")
        if not reason and t.number in retried_as:
            reason = f"worker lost (no heartbeat); retried as trial {retried_as[t.number]}"
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs": result.get("epochs", t.n_intermediate or None),
            "seconds": round(duration, 1) if duration is not None else None,
            "reason": reason,
            "baseline": t.user_attrs.get("baseline", ""),
            "retry_of": t.system_attrs.get("failed_trial"),
        }
        row.update(t.params)
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(study: optuna.Study, summaries: list[TrialSummary] | None = None) -> FrozenTrial | None:
    """The best complete searched trial (baselines excluded), or None when none completed.

    Args:
        study: The study.
        summaries: Its :func:`trial_summaries`, when already read.
    """
    complete = [t for t in (trial_summaries(study) if summaries is None else summaries)
                if t.state == TrialState.COMPLETE and t.value is not None and "baseline" not in t.user_attrs]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value if t.value is not None else float("-inf"))
    return study._storage.get_trial(best.trial_id)


def serve_dashboard(
    name: str,
    storage: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serves optuna-dashboard on the storage of study ``name`` until interrupted.

    Args:
        name: The study to open; the dashboard lists every study of its storage.
        storage: Storage URL; defaults to ``sqlite:///studies/<name>.db``.
        host: Address to listen on (127.0.0.1: this machine only).
        port: Port to listen on.
        on_ready: Called with the study's dashboard address before serving.

    Raises:
        UsageError: optuna-dashboard is not installed, the study does not exist, or the port is taken.
    """
    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535, but got {port}")
    try:
        import optuna_dashboard
    except ImportError:
        raise UsageError("optuna-dashboard is not installed: pip install 'autodnn[dashboard]'") from None
    load_study(name, storage)
    backend = open_storage(storage_url(name, storage), create=False)
    # Bind first: a taken port is the user's to fix, and Optuna's server would only print a traceback.
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    if on_ready is not None:
        on_ready(f"http://{host}:{port}/dashboard/studies/{backend.get_study_id_from_name(name)}")
    optuna_dashboard.run_server(backend, host=host, port=port)
