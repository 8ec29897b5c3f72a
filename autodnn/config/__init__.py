"""The configuration of one trial: plain, validated, JSON-able.

A :class:`TrialConfig` is what a search space samples and what the trainer trains. Field names are the keys
of the YAML search spaces and of the parameters stored in the study, so one spelling is used everywhere.
"""

from autodnn.config._checks import field_problem, unknown_key_message, validate
from autodnn.config._trial import TrialConfig, field_names, field_type
from autodnn.config._values import (
    ACTIVATIONS,
    CLASS_WEIGHTINGS,
    CONV_BLOCKS,
    CONV_HEADS,
    DEFAULT_MC_SAMPLES,
    DOWNSAMPLES,
    DROPOUT_PLACEMENTS,
    FAMILIES,
    INIT_DISTRIBUTIONS,
    INIT_MODES,
    INITIALIZERS,
    MOMENTUM_OPTIMIZERS,
    NORMALIZATIONS,
    OPTIMIZERS,
    OUTPUT_BIASES,
    REGRESSION_LOSSES,
    RESTORES,
    SCHEDULES,
    SMALL_VALIDATION,
)

__all__ = [
    "ACTIVATIONS", "CLASS_WEIGHTINGS", "CONV_BLOCKS", "CONV_HEADS", "DEFAULT_MC_SAMPLES", "DOWNSAMPLES",
    "DROPOUT_PLACEMENTS", "FAMILIES", "INITIALIZERS", "INIT_DISTRIBUTIONS", "INIT_MODES", "MOMENTUM_OPTIMIZERS",
    "NORMALIZATIONS", "OPTIMIZERS", "OUTPUT_BIASES", "REGRESSION_LOSSES", "RESTORES", "SCHEDULES",
    "SMALL_VALIDATION", "TrialConfig", "field_names", "field_problem", "field_type", "unknown_key_message",
    "validate",
]
