"""Search spaces: YAML files turned into validated spaces that sample :class:`TrialConfig` define-by-run.

The format (documented in ``docs/search-spaces.md``)::

    name: quick
    description: A small space for demos.
    params:
      n_hidden: {low: 1, high: 3}                 # integer range
      n_units: {low: 16, high: 256, log: true}    # log scale
      activation: {choices: [relu, elu, swish]}   # categorical
      activation_alpha: {low: 0.01, high: 0.3, log: true, when: {activation: leaky_relu}}
      learning_rate: finder                       # run the LR finder; or a range, or a fixed value
      batch_size: 64                              # fixed
    constraints:
      - if: {activation: selu}
        then: {initializer: lecun, normalization: none, dropout: 0.0}

Parameters are sampled in file order. A ``when`` condition and a constraint's ``if`` may only refer to
parameters listed before the ones they govern; a constraint's ``then`` fixes values and wins over sampling.
This package imports neither Optuna nor Keras: :meth:`SearchSpace.sample` takes any object with Optuna's
``suggest_*`` methods.

:mod:`autodnn.space._model` holds the space and its sampling; :mod:`autodnn.space._yaml` reads and validates
the YAML. Import both from here.
"""

from __future__ import annotations

from autodnn.space._model import Constraint, Param, SearchSpace, TrialLike, config_from_values
from autodnn.space._yaml import SPACES_DIR, load_space, space_from_dict, space_from_stored, stored_family

__all__ = ["SPACES_DIR", "Constraint", "Param", "SearchSpace", "TrialLike", "config_from_values", "load_space",
           "space_from_dict", "space_from_stored", "stored_family"]
