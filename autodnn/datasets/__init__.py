"""Datasets: built-in names and files, loaded into train / valid / test arrays with a fingerprint.

``load_dataset("digits")`` (bundled with scikit-learn, no network), ``"iris"``, ``"wine"``,
``"breast_cancer"``; ``"mnist"``, ``"fashion_mnist"`` and ``"cifar10"`` from ``--data-dir`` or Keras' cache
(never downloaded here); and files: ``csv:PATH`` / ``parquet:PATH`` with a target column, ``npz:PATH``,
``images:PATH`` (a folder or tar of ``train/<class>/*``).

Importing this package loads neither Keras, TensorFlow, JAX nor Optuna.
"""

from __future__ import annotations

from autodnn.datasets._dataset import Dataset
from autodnn.datasets._folds import folds
from autodnn.datasets._load import dataset_names, is_image_spec, load_dataset

__all__ = ["Dataset", "dataset_names", "folds", "is_image_spec", "load_dataset"]
