"""Chooses the Keras backend and sets up the device before Keras is imported; describes the environment.

A process that trains calls, in this order and before anything imports Keras::

    from autodnn.backend import configure_device, select_backend

    select_backend("auto")                      # KERAS_BACKEND
    configure_device("float32", gpu="0")         # device visibility, GPU memory, precision
    ...                                         # now import autodnn.training.trainer / autodnn.study

:func:`configure_device` works through environment variables, so worker processes started afterwards
inherit its settings.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from autodnn.errors import UsageError

BACKENDS = ("jax", "tensorflow", "torch")
#: ``auto`` takes the first installed one. On the 2-core CPU machine the trainer ran the exercise-8 network
#: 4-6x faster on JAX than on TensorFlow at batch 32, and 1.5-2x at batch 512 (benchmarks/RESULTS.md): JAX
#: compiles a whole epoch into one call, TensorFlow one epoch into one XLA graph that still costs more per
#: step. PyTorch has no compiled-epoch loop here, so it comes last. On an H200 the JAX trainer ran an epoch of
#: the same net in 0.10 s at batch 128 (31x the book's plain fit on the same GPU at batch 32); TensorFlow and
#: PyTorch were not measured there, so the order is kept.
AUTO_ORDER = ("jax", "tensorflow", "torch")
#: ``auto`` for convolutional nets on a machine without a GPU: TensorFlow's oneDNN convolutions beat XLA:CPU's
#: (benchmarks/conv_throughput.py, RESULTS.md); on a GPU :data:`AUTO_ORDER` holds for them too.
AUTO_ORDER_CONV_CPU = ("tensorflow", "jax", "torch")

#: The ``--precision`` choices: Keras dtype policies. Mixed policies compute in 16 bits and keep variables in
#: float32; they pay on GPUs with bfloat16 / float16 units, and cost time on CPUs without them.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PRECISION_VARIABLE = "AUTODNN_PRECISION"
#: Share of a GPU's memory that the trials of one GPU may use together; the rest is left to the driver.
GPU_MEMORY_SHARE = 0.9


def installed_backends() -> tuple[str, ...]:
    """The Keras backends whose library can be imported here."""
    return tuple(b for b in BACKENDS if importlib.util.find_spec(b) is not None)


def select_backend(name: str = "auto", family: str = "dense") -> str:
    """Sets ``KERAS_BACKEND`` for this process and returns the backend that will be used.

    Args:
        name: ``auto``, ``jax``, ``tensorflow`` or ``torch``. ``auto`` keeps a ``KERAS_BACKEND`` that is
            already set, else takes the first installed backend of :func:`auto_order`.
        family: The family of networks the process will train (``dense`` or ``conv``), for ``auto``.

    Raises:
        UsageError: The backend is unknown, not installed, or Keras is already running on another one.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name not in BACKENDS + ("auto",):
        raise UsageError(f"--backend is {name!r}, not one of auto, {', '.join(BACKENDS)}")
    installed = installed_backends()
    if name == "auto":
        current = os.environ.get("KERAS_BACKEND")
        if current in installed:
            name = current
        elif installed:
            name = next(b for b in auto_order(family) if b in installed)
        else:
            raise UsageError("no Keras backend is installed: pip install jax (or tensorflow, or torch)")
    elif name not in installed:
        raise UsageError(f"backend {name} is not installed: pip install {name}, or use --backend auto")
    if name != "tensorflow":
        # Keras' saving and the TensorBoard logs import TensorFlow on any backend, and its oneDNN start-up note
        # (printed whatever TF_CPP_MIN_LOG_LEVEL says) would land in the search's output; TensorFlow trains
        # nothing there, so its oneDNN kernels change no result.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise UsageError(
                f"Keras already runs on {keras.backend.backend()} in this process; start a new one for {name}"
            )
        return name
    os.environ["KERAS_BACKEND"] = name
    return name


def auto_order(family: str = "dense") -> tuple[str, ...]:
    """The backends ``auto`` tries, fastest first, for ``family`` on this machine (no library is imported)."""
    if family == "conv" and not visible_gpus():
        return AUTO_ORDER_CONV_CPU
    return AUTO_ORDER


def environment() -> dict[str, object]:
    """Backend, devices and package versions of this process, as stored in a study (imports Keras)."""
    import keras

    backend = keras.backend.backend()
    versions = {}
    for package in ("autodnn", "keras", "optuna", "numpy", backend if backend != "torch" else "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "backend": backend,
        "precision": configured_precision(),
        "devices": _devices(backend),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def _devices(backend: str) -> list[str]:
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices()]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    return ["cpu"]


def configure_device(precision: str = "float32", gpu: str | None = None, *, trials_per_gpu: int = 1) -> dict[str, str]:
    """Sets the precision, the visible GPUs and GPU memory behaviour of this process and of its children.

    Call it after :func:`select_backend` and before Keras is imported (worker processes: first thing, with
    their own ``gpu``). It only sets environment variables, except for the settings that need the library:
    the dtype policy when Keras is already imported, and TensorFlow's or PyTorch's per-process memory cap when
    several trials share a GPU. On a machine without GPUs it only records the precision.

    - ``CUDA_VISIBLE_DEVICES`` (and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so ids match ``nvidia-smi``): ``gpu``.
    - JAX: ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (allocate on demand instead of 75% of the GPU up front), and
      no per-process cap: on an H200, four processes training the exercise-8 net together ran 3.7 times slower
      with ``XLA_PYTHON_CLIENT_MEM_FRACTION`` = 0.9 / 4 than without it (benchmarks/RESULTS.md).
    - TensorFlow: ``TF_FORCE_GPU_ALLOW_GROWTH=true`` (TensorFlow grabs the whole GPU otherwise); with K > 1
      a logical-device memory limit of 0.9 / K of the GPU, set right after importing TensorFlow.
    - PyTorch: allocates on demand already; with K > 1 ``torch.cuda.set_per_process_memory_fraction(0.9 / K)``.
    - ``AUTODNN_PRECISION``: read by :func:`autodnn.training.trainer.train` for every trial (``clear_session`` resets
      Keras' dtype policy, so the trainer applies it again after clearing).

    Args:
        precision: One of :data:`PRECISIONS`.
        gpu: ``None`` leaves device visibility alone; ``""`` hides every GPU; ``"1"`` or ``"0,1"`` shows
            those (ids as :func:`visible_gpus` lists them).
        trials_per_gpu: Processes that will train on each GPU at once (``--trials-per-gpu``).

    Returns:
        The environment variables it set, for the study's ``environment`` attribute.

    Raises:
        UsageError: ``precision`` is unknown or ``trials_per_gpu`` < 1.
    """
    if precision not in PRECISIONS:
        raise UsageError(f"--precision is {precision!r}, not one of {', '.join(PRECISIONS)}")
    if trials_per_gpu < 1:
        raise UsageError(f"--trials-per-gpu must be >= 1, but got {trials_per_gpu}")
    settings = {PRECISION_VARIABLE: precision}
    if gpu is not None:
        settings["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        settings["CUDA_VISIBLE_DEVICES"] = gpu
    settings["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    settings["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    share = GPU_MEMORY_SHARE / trials_per_gpu
    os.environ.update(settings)
    if "keras" in sys.modules:
        import keras

        keras.mixed_precision.set_global_policy(precision)
    if trials_per_gpu > 1 and gpu != "" and visible_gpus():
        _cap_gpu_memory(os.environ.get("KERAS_BACKEND", ""), share)
    return settings


def configured_precision() -> str:
    """The precision :func:`configure_device` set for this process (``float32`` when it was not called)."""
    precision = os.environ.get(PRECISION_VARIABLE, "float32")
    if precision not in PRECISIONS:
        raise UsageError(f"{PRECISION_VARIABLE} is {precision!r}, not one of {', '.join(PRECISIONS)}")
    return precision


def visible_gpus() -> list[str]:
    """Ids of the NVIDIA GPUs this process may use, without importing any deep-learning library.

    ``CUDA_VISIBLE_DEVICES``, when set, is the answer (an empty value or ``-1`` means none); otherwise
    ``nvidia-smi`` lists the GPUs. A machine without the NVIDIA driver has none. The study starts one worker
    per id (``--gpus``), K per id with ``--trials-per-gpu K``, each calling :func:`configure_device` with
    its id as ``gpu``.
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [part.strip() for part in listed.split(",") if part.strip()]
        return [] if not ids or ids[0] == "-1" else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


def _cap_gpu_memory(backend: str, share: float) -> None:
    if backend == "tensorflow":
        import tensorflow as tf

        for device in tf.config.list_physical_devices("GPU"):
            total = _gpu_memory_mib()
            if total:
                # A memory limit replaces growth; both cannot be set on one device.
                tf.config.set_logical_device_configuration(
                    device, [tf.config.LogicalDeviceConfiguration(memory_limit=int(total * share))]
                )
    elif backend == "torch":
        import torch

        for index in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(share, index)


def _gpu_memory_mib() -> int | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        return min(int(line) for line in out.split())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


#: Where trials keep JAX's compiled programs unless ``AUTODNN_COMPILATION_CACHE`` names another folder
#: (``off`` turns the cache off).
CACHE_VARIABLE = "AUTODNN_COMPILATION_CACHE"
_cache_on: bool | None = None


def use_compilation_cache() -> bool:
    """Turns :func:`enable_compilation_cache` on once per process, in ``$AUTODNN_COMPILATION_CACHE`` or
    ``~/.cache/autodnn/jax`` (under ``$XDG_CACHE_HOME`` when set); the trainer calls it before every trial.

    Returns:
        Whether the cache is on.
    """
    global _cache_on
    if _cache_on is None:
        choice = os.environ.get(CACHE_VARIABLE, "").strip()
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        try:
            _cache_on = choice.lower() != "off" and enable_compilation_cache(choice or home / "autodnn" / "jax")
        except OSError:  # a read-only home: trials compile as before
            _cache_on = False
    return _cache_on


def enable_compilation_cache(directory: str | os.PathLike[str]) -> bool:
    """Keeps JAX's compiled programs in ``directory``, so a trial whose program was compiled before skips XLA.

    Every trial builds a new model, so its epoch is traced and compiled again: about 2.5 s for a 20 x 100 net
    and 1.5 s for a 2 x 64 net on 2 cores, of which the cache saves the compilation (1.1 s and 0.9 s; tracing
    remains). A program repeats when the architecture, optimizer, constant hyperparameters, batch size and
    steps per epoch do: repeated or resumed trials, baselines, fixed-architecture spaces such as exercise 8
    (learning rates and seeds are state, not constants). Workers may share one directory.

    Args:
        directory: Cache folder, created when missing.

    Returns:
        True when the backend is JAX and the cache is on; False otherwise (nothing is changed).
    """
    if os.environ.get("KERAS_BACKEND", "jax") != "jax" or importlib.util.find_spec("jax") is None:
        return False
    import jax

    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.fspath(directory))
    # The default skips programs that compile in under a second, which would leave out the small nets.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    # Least recently used programs go once the folder passes 2 GiB (JAX keeps everything by default).
    jax.config.update("jax_compilation_cache_max_size", 2 * 1024**3)
    return True
