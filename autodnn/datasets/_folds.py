"""Cross-validation folds of a dataset: its training and validation rows together, dealt into ``k`` parts, each
part the validation split of one fold. The test split stays as it is, unread by anything that chooses."""

from __future__ import annotations

import dataclasses

import numpy as np

from autodnn.datasets._dataset import Dataset


def folds(dataset: Dataset, k: int, seed: int = 0) -> list[Dataset]:
    """``k`` datasets whose validation rows partition ``dataset``'s training and validation rows.

    A classification is stratified by class where every class has ``k`` rows or more (else plain shuffled
    folds); a regression is shuffled. Features and targets keep the scaling fitted on the original training
    rows, so every fold's networks see the numbers the study's did. Each fold is a new object with its own
    fingerprint (``<fingerprint>/fold-<i>-of-<k>``).

    Raises:
        ValueError: ``k`` < 2, or fewer rows than folds.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    x = np.concatenate([dataset.x_train, dataset.x_valid])
    y = np.concatenate([dataset.y_train, dataset.y_valid])
    if k < 2 or len(y) < k:
        raise ValueError(f"{k} folds of {len(y)} rows: need k >= 2 and at least k rows")
    stratified = not dataset.is_regression and np.bincount(y).min(initial=len(y)) >= k
    splitter = (StratifiedKFold if stratified else KFold)(n_splits=k, shuffle=True, random_state=seed)
    return [dataclasses.replace(dataset, x_train=x[train], y_train=y[train], x_valid=x[valid], y_valid=y[valid],
                                fingerprint=f"{dataset.fingerprint}/fold-{i + 1}-of-{k}")
            for i, (train, valid) in enumerate(splitter.split(x, y))]
