"""Search engines other than autodnn's own Optuna loop. Each drives the same trainer over the same YAML space
and records every trial in the same Optuna study, so that reports compare engines on one page.
"""

from __future__ import annotations

from autodnn.engines._keras_tuner import run_keras_tuner
from autodnn.engines._kt_space import KerasTunerSpace

__all__ = ["KerasTunerSpace", "run_keras_tuner"]
