"""The searches a user writes by hand, without autodnn: a plain Optuna script and KerasTuner.

``benchmarks/search_quality.py`` runs these against ``autodnn search`` at an equal wall time. They are written
the way the libraries' tutorials write them, on purpose: plain ``model.fit`` with Keras' own callbacks, one
``keras.Sequential`` per trial, an in-memory Optuna study, KerasTuner's files in a temporary folder.

The space, the same for every competitor, is like autodnn's default space for what these libraries offer a user
without hand-written parts (Keras' own optimizers, schedules and regularizers):

=====================  ===============================================================================
``n_hidden``           hidden Dense layers, integer 1 .. 10
``n_units``            units of every hidden layer, integer 16 .. 1024, log scale
``activation``         relu, elu, selu, swish, gelu, tanh
``kernel_initializer`` he_normal, glorot_uniform, lecun_normal
``batch_norm``         a BatchNormalization between each Dense and its activation (the book's place), or none
``dropout``            rate of a Dropout after every hidden layer, 0 .. 0.5 (none below 0.001)
``l2``                 an L2 penalty on every hidden kernel: 0, 1e-4, 1e-3, 1e-2
``optimizer``          sgd (momentum 0.9), nesterov (momentum 0.9), rmsprop, adam, nadam, adamw
``weight_decay``       AdamW's, 1e-6 .. 1e-2, log scale (sampled for adamw only)
``clipnorm``           none, 1, 5
``learning_rate``      1e-5 .. 1e-1, log scale
``schedule``           constant, exponential (a tenth every 20 epochs), cosine (to zero over the run's epochs)
``batch_size``         16, 32, 64, 128, 256, 512
``epochs``             10, 20, 30 or ``max_epochs`` (not with Hyperband, which sets each trial's epochs itself)
=====================  ===============================================================================

Every trial trains for at most its epochs with Keras' ``EarlyStopping(patience=10)`` (on ``val_loss``, its
default, with autodnn's patience) and scores its best epoch's ``val_accuracy``, as KerasTuner does; autodnn
scores the accuracy of the best-``val_loss`` epoch, which is never higher. KerasTuner tunes the batch size and
the epochs the documented way, with ``hp.Choice`` in an overridden ``HyperModel.fit``.

A search ends at a deadline the way Ctrl-C ends it for a user: a callback raises :class:`OutOfTime` in the
middle of the trial in flight, that trial is lost (Optuna marks it failed), and the caller catches the error.
"""

from __future__ import annotations

import datetime
import math
import tempfile
import time
from typing import Any

import keras
import keras_tuner
import optuna

ACTIVATIONS = ["relu", "elu", "selu", "swish", "gelu", "tanh"]
INITIALIZERS = ["he_normal", "glorot_uniform", "lecun_normal"]
OPTIMIZERS = ["sgd", "nesterov", "rmsprop", "adam", "nadam", "adamw"]
BATCH_SIZES = [16, 32, 64, 128, 256, 512]
L2 = [0.0, 1e-4, 1e-3, 1e-2]
CLIPNORMS = [0.0, 1.0, 5.0]  # 0: none (KerasTuner's choices take no None)
SCHEDULES = ["constant", "exponential", "cosine"]
EPOCHS = [10, 20, 30]  # and the search's max_epochs
PATIENCE = 10
#: The hyperparameters of a network; KerasTuner's values also hold its own ``tuner/...`` bookkeeping.
PARAMS = ("n_hidden", "n_units", "activation", "kernel_initializer", "batch_norm", "dropout", "l2", "optimizer",
          "weight_decay", "clipnorm", "learning_rate", "schedule", "batch_size", "epochs")


class OutOfTime(Exception):
    """The search's wall-time budget is spent."""


class TunerOutOfTime(OutOfTime, keras_tuner.errors.FatalError):
    """:class:`OutOfTime` for KerasTuner, which records any other exception as an invalid trial and goes on.

    ``BaseTuner._try_run_and_update_trial`` re-raises only ``keras_tuner.errors.FatalError``.
    """


class Deadline(keras.callbacks.Callback):
    """Raises ``error`` after the first training batch that ends past ``deadline`` (``time.monotonic()``)."""

    def __init__(self, deadline: float, error: type[OutOfTime] = OutOfTime) -> None:
        super().__init__()
        self.deadline = deadline
        self.error = error

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if time.monotonic() > self.deadline:
            raise self.error("out of time")


class OptunaPruning(keras.callbacks.Callback):
    """Reports each epoch's validation accuracy to the trial and stops the trial when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.trial.report(logs["val_accuracy"], epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")


def build_model(params: dict[str, Any], n_features: int, n_classes: int, n_train: int) -> keras.Model:
    """The compiled network of ``params`` (the names in :data:`PARAMS`), for ``n_train`` training rows (the
    schedule's steps)."""
    model = keras.Sequential([keras.Input(shape=(n_features,))])
    regularizer = keras.regularizers.L2(params["l2"]) if params["l2"] else None
    for _ in range(params["n_hidden"]):
        if params["batch_norm"]:
            model.add(keras.layers.Dense(params["n_units"], kernel_initializer=params["kernel_initializer"],
                                         kernel_regularizer=regularizer, use_bias=False))
            model.add(keras.layers.BatchNormalization())
            model.add(keras.layers.Activation(params["activation"]))
        else:
            model.add(keras.layers.Dense(params["n_units"], activation=params["activation"],
                                         kernel_initializer=params["kernel_initializer"],
                                         kernel_regularizer=regularizer))
        if params["dropout"] >= 0.001:
            model.add(keras.layers.Dropout(params["dropout"]))
    model.add(keras.layers.Dense(n_classes, activation="softmax"))
    model.compile(loss="sparse_categorical_crossentropy", optimizer=make_optimizer(params, n_train),
                  metrics=["accuracy"])
    return model


def make_optimizer(params: dict[str, Any], n_train: int) -> keras.optimizers.Optimizer:
    steps = max(1, n_train // params["batch_size"])  # a step an optimizer update, as Keras' schedules count
    rate: Any = params["learning_rate"]
    if params["schedule"] == "exponential":
        rate = keras.optimizers.schedules.ExponentialDecay(rate, decay_steps=20 * steps, decay_rate=0.1)
    elif params["schedule"] == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=params["epochs"] * steps)
    common = {"learning_rate": rate, **({"clipnorm": params["clipnorm"]} if params["clipnorm"] else {})}
    if params["optimizer"] == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **common)
    if params["optimizer"] == "nesterov":
        return keras.optimizers.SGD(momentum=0.9, nesterov=True, **common)
    if params["optimizer"] == "adamw":
        return keras.optimizers.AdamW(weight_decay=params["weight_decay"], **common)
    optimizers = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "nadam": keras.optimizers.Nadam}
    return optimizers[params["optimizer"]](**common)


def epoch_choices(max_epochs: int) -> list[int]:
    """:data:`EPOCHS` under ``max_epochs``, and ``max_epochs``."""
    return [*(e for e in EPOCHS if e < max_epochs), max_epochs]


def suggest_params(trial: optuna.Trial, max_epochs: int) -> dict[str, Any]:
    """The space as a user writes it for Optuna."""
    params = {
        "n_hidden": trial.suggest_int("n_hidden", 1, 10),
        "n_units": trial.suggest_int("n_units", 16, 1024, log=True),
        "activation": trial.suggest_categorical("activation", ACTIVATIONS),
        "kernel_initializer": trial.suggest_categorical("kernel_initializer", INITIALIZERS),
        "batch_norm": trial.suggest_categorical("batch_norm", [False, True]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "l2": trial.suggest_categorical("l2", L2),
        "optimizer": trial.suggest_categorical("optimizer", OPTIMIZERS),
        "clipnorm": trial.suggest_categorical("clipnorm", CLIPNORMS),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True),
        "schedule": trial.suggest_categorical("schedule", SCHEDULES),
        "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
        "epochs": trial.suggest_categorical("epochs", epoch_choices(max_epochs)),
    }
    params["weight_decay"] = (trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
                              if params["optimizer"] == "adamw" else 0.0)
    return params


#: autodnn's configuration values as this space writes them (the nearest where it has no equal: Keras has no
#: 1cycle schedule, and cosine decay is its nearest; autodnn's ``momentum`` is SGD with momentum 0.9 here).
_AS_HERE = {"he": "he_normal", "glorot": "glorot_uniform", "lecun": "lecun_normal", "auto": "glorot_uniform",
            "1cycle": "cosine", "momentum": "sgd", "none": False, "batch_norm_before": True,
            "batch_norm_after": True}


def designed_start_params(kind: str, max_epochs: int) -> list[dict[str, Any]]:
    """autodnn's designed start for ``kind`` data (:func:`autodnn.tuning.warm_start.designed_start`) in this
    space, for a plain Optuna script to enqueue as autodnn does."""
    from autodnn.tuning.warm_start import designed_start

    starts = []
    for start in designed_start(kind):
        v = start.values
        epochs = v.get("epochs") or max_epochs
        starts.append({
            "n_hidden": min(10, v["n_hidden"]), "n_units": v["n_units"], "activation": v["activation"],
            "kernel_initializer": _AS_HERE[v["initializer"]], "batch_norm": _AS_HERE[v["normalization"]],
            "dropout": v["dropout"], "l2": v.get("l2", 0.0), "optimizer": _AS_HERE.get(v["optimizer"], v["optimizer"]),
            "clipnorm": v.get("clipnorm") or 0.0, "learning_rate": v["learning_rate"],
            "schedule": _AS_HERE.get(v["schedule"], v["schedule"]), "batch_size": v["batch_size"],
            "epochs": min(epochs, max_epochs) if min(epochs, max_epochs) in epoch_choices(max_epochs) else max_epochs,
            **({"weight_decay": v["weight_decay"]} if v["optimizer"] == "adamw" else {}),
        })
    return starts


def run_optuna(dataset: Any, *, sampler: str, budget: float, max_epochs: int, seed: int,
               start: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A plain Optuna script: TPE with the median pruner (``sampler="tpe"``) or random search without pruning.

    Args:
        dataset: An ``autodnn`` Dataset (standardized float32 features, integer classes).
        sampler: ``"tpe"`` or ``"random"``.
        budget: Wall seconds from the start of ``study.optimize``.
        max_epochs: Epochs a trial may train at most.
        seed: Seeds the sampler and Keras.
        start: Configurations enqueued before the sampler draws (``study.enqueue_trial``), e.g. autodnn's
            designed start (:func:`designed_start_params`), so that a table can tell what the start is worth
            from what the search is worth.

    Returns:
        The search's outcome (see :func:`outcome`).
    """
    keras.utils.set_random_seed(seed)
    n_classes = len(dataset.class_names)
    if sampler == "tpe":
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                    pruner=optuna.pruners.MedianPruner())
    else:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed),
                                    pruner=optuna.pruners.NopPruner())
    for params in start or ():
        study.enqueue_trial(params)
    began, started = time.monotonic(), datetime.datetime.now()
    deadline = began + budget

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        params = suggest_params(trial, max_epochs)
        model = build_model(params, dataset.x_train.shape[1], n_classes, len(dataset.x_train))
        history = model.fit(dataset.x_train, dataset.y_train, validation_data=(dataset.x_valid, dataset.y_valid),
                            epochs=params["epochs"], batch_size=params["batch_size"], verbose=0,
                            callbacks=[keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True),
                                       OptunaPruning(trial), Deadline(deadline)])
        return max(history.history["val_accuracy"])

    try:
        study.optimize(objective, n_trials=100_000)
    except OutOfTime:
        pass
    seconds = time.monotonic() - began
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = max(complete, key=lambda t: t.value) if complete else None
    finished = [t for t in study.trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]
    trace, running = [], -math.inf
    for t in sorted(complete, key=lambda t: t.datetime_complete):
        running = max(running, t.value)
        trace.append(((t.datetime_complete - started).total_seconds(), running))
    return outcome(best.params if best else None, best.value if best else None, len(finished), seconds, trace)


class DenseHyperModel(keras_tuner.HyperModel):
    """The space as a user writes it for KerasTuner, and the time each trial ended with its best score.

    Attributes:
        trace: ``(seconds since start, best val_accuracy so far)`` after each trial that finished training.
        start: ``time.monotonic()`` at the start of the search; set it before ``tuner.search``.
    """

    def __init__(self, n_features: int, n_classes: int, n_train: int, max_epochs: int, *, epochs: bool) -> None:
        super().__init__()
        self.n_features, self.n_classes, self.n_train, self.max_epochs = n_features, n_classes, n_train, max_epochs
        self.epochs = epochs  # whether the space holds the epochs (Hyperband sets them itself)
        self.trace: list[tuple[float, float]] = []
        self.start = time.monotonic()

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        optimizer = hp.Choice("optimizer", OPTIMIZERS)
        params = {
            "n_hidden": hp.Int("n_hidden", 1, 10),
            "n_units": hp.Int("n_units", 16, 1024, sampling="log"),
            "activation": hp.Choice("activation", ACTIVATIONS),
            "kernel_initializer": hp.Choice("kernel_initializer", INITIALIZERS),
            "batch_norm": hp.Boolean("batch_norm"),
            "dropout": hp.Float("dropout", 0.0, 0.5),
            "l2": hp.Choice("l2", L2),
            "optimizer": optimizer,
            "clipnorm": hp.Choice("clipnorm", CLIPNORMS),
            "learning_rate": hp.Float("learning_rate", 1e-5, 1e-1, sampling="log"),
            "schedule": hp.Choice("schedule", SCHEDULES),
            "batch_size": hp.Choice("batch_size", BATCH_SIZES),
            "epochs": hp.Choice("epochs", epoch_choices(self.max_epochs)) if self.epochs else self.max_epochs,
        }
        with hp.conditional_scope("optimizer", ["adamw"]):
            decay = hp.Float("weight_decay", 1e-6, 1e-2, sampling="log")
        params["weight_decay"] = decay if optimizer == "adamw" else 0.0
        return build_model(params, self.n_features, self.n_classes, self.n_train)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        if self.epochs:
            kwargs["epochs"] = hp.get("epochs")
        history = model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)
        # KerasTuner scores a trial by its best epoch, as this does.
        best = max(history.history["val_accuracy"])
        running = max(best, self.trace[-1][1]) if self.trace else best
        self.trace.append((time.monotonic() - self.start, running))
        return history


def run_keras_tuner(dataset: Any, *, algorithm: str, budget: float, max_epochs: int, seed: int) -> dict[str, Any]:
    """KerasTuner's Hyperband (factor 3) or Bayesian optimization, in a temporary project folder.

    Hyperband runs as many of its iterations as the budget allows (``hyperband_iterations`` 100,000, where
    the default 1 would end the search early on small data), Bayesian optimization as many trials.

    Args:
        dataset: An ``autodnn`` Dataset.
        algorithm: ``"hyperband"`` or ``"bayesian"``.
        budget: Wall seconds from the start of ``tuner.search``.
        max_epochs: Epochs a trial may train at most (Hyperband's ``max_epochs``).
        seed: Seeds the oracle and Keras.

    Returns:
        The search's outcome (see :func:`outcome`).
    """
    keras.utils.set_random_seed(seed)
    hypermodel = DenseHyperModel(dataset.x_train.shape[1], len(dataset.class_names), len(dataset.x_train), max_epochs,
                                 epochs=algorithm != "hyperband")
    with tempfile.TemporaryDirectory() as directory:
        if algorithm == "hyperband":
            tuner = keras_tuner.Hyperband(hypermodel, objective="val_accuracy", max_epochs=max_epochs, factor=3,
                                          hyperband_iterations=100_000, seed=seed, directory=directory,
                                          project_name="hyperband", overwrite=True)
        else:
            tuner = keras_tuner.BayesianOptimization(hypermodel, objective="val_accuracy", max_trials=100_000,
                                                     seed=seed, directory=directory, project_name="bayesian",
                                                     overwrite=True)
        hypermodel.start = time.monotonic()
        seconds, best, finished = search_until(tuner, hypermodel.start + budget, dataset.x_train, dataset.y_train,
                                               validation_data=(dataset.x_valid, dataset.y_valid), epochs=max_epochs)
    params = None
    if best:
        values = best[0].hyperparameters.values
        params = {name: values.get(name) for name in PARAMS}
        params["epochs"] = values.get("epochs", max_epochs)
        params["weight_decay"] = values.get("weight_decay") if params["optimizer"] == "adamw" else 0.0
    return outcome(params, best[0].score if best else None, finished, seconds, hypermodel.trace)


def search_until(tuner: keras_tuner.Tuner, deadline: float, *args: Any, **kwargs: Any) -> tuple[float, list[Any], int]:
    """``tuner.search(*args, **kwargs)`` with early stopping after :data:`PATIENCE` epochs, stopped at
    ``deadline`` (``time.monotonic()``) as Ctrl-C stops it (the trial in flight is lost).

    Returns:
        The search's wall seconds, its best completed trial (a list of at most one: KerasTuner pads its best
        trials with unfinished ones, whose checkpoint may not exist), and how many trials completed.
    """
    start = time.monotonic()
    try:
        tuner.search(*args, verbose=0, callbacks=[keras.callbacks.EarlyStopping(patience=PATIENCE),
                                                  Deadline(deadline, TunerOutOfTime)], **kwargs)
    except TunerOutOfTime:
        pass
    finished = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    best = [t for t in tuner.oracle.get_best_trials(1) if t.status == "COMPLETED"]
    return time.monotonic() - start, best, finished


def outcome(params: dict[str, Any] | None, best_val: float | None, trials: int, seconds: float,
            trace: list[tuple[float, float]]) -> dict[str, Any]:
    """What a competitor's search gives back.

    Args:
        params: The winner's hyperparameters (``None`` when no trial finished).
        best_val: The winner's validation accuracy.
        trials: Trials that finished (completed or pruned); the one the deadline stopped is not counted.
        seconds: Wall seconds of the search, deadline overrun included.
        trace: ``(seconds since the search started, best validation accuracy so far)`` after each finished trial.
    """
    return {"best_params": params, "best_val_accuracy": best_val, "trials": trials, "seconds": seconds,
            "trace": trace}


def test_accuracy(params: dict[str, Any], dataset: Any, *, max_epochs: int, seed: int) -> float:
    """Retrains the winner once with ``seed`` as its search trained it (early stopping, best weights kept) and
    returns its accuracy on the test split."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_model(params, dataset.x_train.shape[1], len(dataset.class_names), len(dataset.x_train))
    model.fit(dataset.x_train, dataset.y_train, validation_data=(dataset.x_valid, dataset.y_valid),
              epochs=params.get("epochs") or max_epochs, batch_size=params["batch_size"], verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)])
    return float(model.evaluate(dataset.x_test, dataset.y_test, verbose=0)[1])
