"""What every training starts from in a process: a cleared Keras session, collected garbage, the precision, seeds."""

from __future__ import annotations

import keras
import numpy as np

from autodnn.backend import configured_precision, use_compilation_cache

__all__ = ["collect_garbage", "seed_everything", "start_session"]


def start_session(precision: str | None = None) -> None:
    """Frees the previous trial's networks and sets the precision: what every training starts with.

    Clearing Keras' session also resets the dtype policy, so the precision is applied after it.
    """
    keras.backend.clear_session(free_memory=False)
    collect_garbage()
    keras.mixed_precision.set_global_policy(precision or configured_precision())
    use_compilation_cache()


def collect_garbage() -> None:
    """A full garbage collection that skips what was alive before the first one (modules, the dataset).

    The previous trial's network, optimizer and device buffers are cyclic garbage, so each trial collects.
    A full collection walks every tracked object, about 0.25 s with Keras, JAX and TensorFlow loaded; objects
    alive at the first collection are frozen out of later ones, so those walk only what trials made since.
    """
    import gc

    gc.collect()
    if gc.get_freeze_count() == 0:
        gc.freeze()


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and Keras' global generator for the current backend.

    ``keras.utils.set_random_seed`` would also import TensorFlow just to seed it, which costs seconds and
    memory on the JAX and PyTorch backends.
    """
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import random

    random.seed(seed)
    np.random.seed(seed)
    try:
        from keras.src.backend.common import global_state
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
