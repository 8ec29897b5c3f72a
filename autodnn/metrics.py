"""What a study optimizes (``--metric``) and every figure of its task, measured with scikit-learn.

Classification: ``accuracy``, ``balanced_accuracy``, ``f1_macro``, ``roc_auc`` (binary, or one-vs-rest macro over
the classes), ``log_loss``. Regression: ``rmse``, ``mae``, ``r2``, in the target's own units.

Optuna maximizes one number a trial: the chosen metric where more is better, else a *skill score* that ranks
exactly as the metric does and reads like R²: 1 is perfect and 0 is what the constant answer scores:

- ``rmse`` is searched as R² (1 - MSE / the split's variance: the same order as the RMSE on one split);
- ``mae`` as 1 - MAE / (MAE of answering the training median);
- ``log_loss`` as 1 - log loss / (log loss of answering the training class shares).

:func:`default_metric` is the documented rule for ``--metric auto``: balanced accuracy where the rarest class holds
less than :data:`IMBALANCED_SHARE` of the training rows and less than half of an even share (1 / (2 x classes):
5% of 10 classes is not rare, 3% of 2 is), since accuracy would then reward answering the majority; accuracy
elsewhere; RMSE for a regression. ``--class-weight auto`` weighs the classes alike by the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from autodnn.errors import ConfigError

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
#: A class under this share of the training rows (and under half an even share) is rare: ``--metric auto`` then
#: chooses balanced accuracy.
IMBALANCED_SHARE = 0.10
CLASS_WEIGHTS = ("auto", "none", "balanced")
#: The score each task's training loop measures in its compiled evaluation every epoch (``val_`` + it):
#: accuracy, or a regression's R² (1 - squared error / the split's variance).
IN_GRAPH_SCORES = {"classification": "accuracy", "regression": "r2"}


@dataclass(frozen=True)
class Metric:
    """One figure of a task.

    Attributes:
        name: Its ``--metric`` name.
        title: What people read.
        greater_is_better: Whether more is better.
        searched: The name of the number Optuna maximizes for it (the metric itself, or its skill score).
    """

    name: str
    title: str
    greater_is_better: bool
    searched: str


METRICS = {
    "accuracy": Metric("accuracy", "accuracy", True, "accuracy"),
    "balanced_accuracy": Metric("balanced_accuracy", "balanced accuracy", True, "balanced_accuracy"),
    "f1_macro": Metric("f1_macro", "macro F1", True, "f1_macro"),
    "roc_auc": Metric("roc_auc", "ROC AUC", True, "roc_auc"),
    "log_loss": Metric("log_loss", "log loss", False, "log_loss_skill"),
    "rmse": Metric("rmse", "RMSE", False, "r2"),
    "mae": Metric("mae", "MAE", False, "mae_skill"),
    "r2": Metric("r2", "R²", True, "r2"),
}


def task_metrics(task: str) -> tuple[str, ...]:
    """The metrics of a task, in the order tables show them."""
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def searched_of(task: str, metric: str | None) -> str:
    """The number searched for ``metric`` (None: accuracy, or a regression's RMSE, searched as R²)."""
    return METRICS[metric or ("rmse" if task == "regression" else "accuracy")].searched


def check_metric(name: str, task: str) -> str:
    """Returns ``name`` when it measures ``task`` (``auto`` included).

    Raises:
        ConfigError: It is unknown, or belongs to the other task.
    """
    if name == "auto" or name in task_metrics(task):
        return name
    if name in METRICS:
        other = "classification" if task == "regression" else "regression"
        raise ConfigError(f"--metric {name} measures a {other}, but this target is a {task}; use one of "
                          f"{', '.join(task_metrics(task))}, or leave out --metric")
    raise ConfigError(f"unknown --metric {name!r}; use one of {', '.join(METRICS)} (or auto)")


def resolve(metric: str, class_weight: str, task: str, y_train: np.ndarray, n_classes: int) -> tuple[str, str, str]:
    """What ``--metric`` and ``--class-weight`` mean for this data, and the line that says so.

    ``auto`` follows :func:`default_metric`; ``--class-weight auto`` is ``balanced`` where that rule finds a class
    under :data:`IMBALANCED_SHARE`, else ``none``.

    Returns:
        ``(metric, class weighting, line)``.

    Raises:
        ConfigError: The metric belongs to the other task, or class weights are asked for a regression.
    """
    check_metric(metric, task)
    if class_weight not in CLASS_WEIGHTS:
        raise ConfigError(f"--class-weight must be one of {', '.join(CLASS_WEIGHTS)}, but got {class_weight!r}")
    chosen, why = default_metric(task, y_train, n_classes)
    if task == "regression":
        if class_weight == "balanced":
            raise ConfigError("--class-weight balanced weighs classes, and a regression has none; leave it out")
        name = chosen if metric == "auto" else metric
        said = "auto: " + why if metric == "auto" else "asked"
        searched = METRICS[name].searched
        how = "" if searched == name else f", searched as validation {searched.replace('_', ' ')}, which ranks alike"
        return name, "none", f"Metric: {METRICS[name].title} ({said}){how}."
    name = chosen if metric == "auto" else metric
    imbalanced = chosen == "balanced_accuracy"
    weighting = ("balanced" if imbalanced else "none") if class_weight == "auto" else class_weight
    said = f"auto: {why}" if metric == "auto" else "asked"
    weighed = (f"auto: {'a class is rare' if imbalanced else 'no class is rare'}" if class_weight == "auto"
               else "asked")
    searched = METRICS[name].searched
    how = "" if searched == name else f", searched as validation {searched.replace('_', ' ')}, which ranks alike"
    return name, weighting, f"Metric: {METRICS[name].title} ({said}){how}; class weights: {weighting} ({weighed})."


def default_metric(task: str, y_train: np.ndarray, n_classes: int) -> tuple[str, str]:
    """``--metric auto``'s choice and why, in words (module docstring)."""
    if task == "regression":
        return "rmse", "a regression"
    shares = np.bincount(np.asarray(y_train), minlength=n_classes) / max(len(y_train), 1)
    rarest = float(shares.min()) if len(shares) else 1.0
    limit = min(IMBALANCED_SHARE, 0.5 / max(n_classes, 1))
    if rarest < limit:
        return "balanced_accuracy", (f"the rarest class holds {100 * rarest:.1f}% of the training rows, under "
                                     f"{100 * limit:.3g}%")
    return "accuracy", f"no class holds under {100 * limit:.3g}% of the training rows"


def class_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """``balanced`` weights: ``n / (n_classes * count)`` a class (scikit-learn's rule), 0 for an absent class."""
    counts = np.bincount(np.asarray(y_train), minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = len(y_train) / (present.sum() * counts[present])
    return weights


def classification_figures(y_true: np.ndarray, probabilities: np.ndarray, priors: np.ndarray) -> dict[str, float]:
    """Every classification metric, and the log loss's skill score, of predicted class probabilities.

    Args:
        y_true: Class indices, shape ``(n,)``.
        probabilities: Predicted probabilities, shape ``(n, n_classes)``.
        priors: The training class shares (the constant answer of the log loss's skill score).
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    p = np.asarray(probabilities, dtype=np.float64)
    if not np.isfinite(p).all():
        return {name: float("nan") for name in (*CLASSIFICATION_METRICS, "log_loss_skill")}
    p = np.clip(p, 1e-12, None)
    p /= p.sum(axis=1, keepdims=True)
    labels = np.arange(p.shape[1])
    predicted = p.argmax(axis=1)
    loss = float(log_loss(y_true, p, labels=labels))
    reference = float(log_loss(y_true, np.broadcast_to(np.clip(priors, 1e-12, None), p.shape), labels=labels))
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
        "f1_macro": float(f1_score(y_true, predicted, labels=np.unique(y_true), average="macro", zero_division=0)),
        "roc_auc": _roc_auc(y_true, p),
        "log_loss": loss,
        "log_loss_skill": 1.0 - loss / reference if reference > 0 else float("nan"),
    }


def _roc_auc(y_true: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return float(roc_auc_score(y_true, p[:, 1]))
    # One-vs-rest over the classes present in the split, each column renormalized as scikit-learn asks.
    columns = p[:, present] / p[:, present].sum(axis=1, keepdims=True)
    if len(present) == 2:
        return float(roc_auc_score(y_true == present[1], columns[:, 1]))
    return float(roc_auc_score(y_true, columns, multi_class="ovr", labels=present))


def regression_figures(actual: np.ndarray, predicted: np.ndarray, train_median: float) -> dict[str, float]:
    """Every regression metric of predictions in the target's units, and the MAE's skill score.

    Args:
        actual: The true targets.
        predicted: The predictions.
        train_median: The training target's median (the constant answer of the MAE's skill score).
    """
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    actual, predicted = np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64).reshape(-1)
    if not np.isfinite(predicted).all():
        return {name: float("nan") for name in (*REGRESSION_METRICS, "mae_skill")}
    mae = float(mean_absolute_error(actual, predicted))
    reference = float(np.mean(np.abs(actual - train_median)))
    return {
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "mae": mae,
        "r2": float(r2_score(actual, predicted)),
        "mae_skill": 1.0 - mae / reference if reference > 0 else float("nan"),
    }


def figures_of(task: str, y_true: np.ndarray, predicted: np.ndarray, reference: Any) -> dict[str, float]:
    """:func:`classification_figures` or :func:`regression_figures`; ``reference`` is the priors or the median."""
    if task == "regression":
        return regression_figures(y_true, predicted, float(reference))
    return classification_figures(y_true, predicted, np.asarray(reference))
