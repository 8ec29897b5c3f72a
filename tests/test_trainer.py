"""The trainer: stopping rules, restored weights, pruning, seeding, the compiled epoch loop and device settings."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from autodnn.backend import PRECISION_VARIABLE, configure_device, configured_precision, visible_gpus
from autodnn.config import TrialConfig
from autodnn.datasets import Dataset
from autodnn.errors import UsageError
from autodnn.training import loops
from autodnn.training.trainer import TrialResult, train

SMALL = {"n_hidden": 2, "n_units": 16, "batch_size": 32, "learning_rate": 1e-2, "optimizer": "adam"}


def blobs(n_train: int = 600, n_valid: int = 150, n_test: int = 150, *, features: int = 12, classes: int = 3,
          noise: float = 1.0, random_labels: bool = False, seed: int = 0) -> Dataset:
    """Gaussian clusters around random centres (or random labels, which a net can only memorize)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, (classes, features))
    n = n_train + n_valid + n_test
    y = rng.integers(0, classes, n).astype(np.int32)
    x = (centres[y] + noise * rng.standard_normal((n, features))).astype(np.float32)
    if random_labels:
        y = rng.integers(0, classes, n).astype(np.int32)
    a, b = n_train, n_train + n_valid
    return Dataset(name="blobs", x_train=x[:a], y_train=y[:a], x_valid=x[a:b], y_valid=y[a:b], x_test=x[b:],
                   y_test=y[b:], class_names=tuple(f"c{i}" for i in range(classes)), fingerprint=f"blobs-{seed}",
                   source="tests")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return blobs()


@pytest.fixture(scope="module")
def completed(dataset: Dataset) -> TrialResult:
    return train(TrialConfig(**SMALL), dataset, max_epochs=4, seed=3)


class StopAt:
    """A reporter that records what it is told and asks to stop after epoch ``stop`` (0-based)."""

    def __init__(self, stop: int) -> None:
        self.stop = stop
        self.reports: list[tuple[int, dict[str, float]]] = []

    def report(self, epoch: int, metrics: dict[str, float]) -> None:
        self.reports.append((epoch, metrics))

    def should_stop(self) -> str | None:
        epoch = self.reports[-1][0]
        return f"stop asked at epoch {epoch + 1}" if epoch >= self.stop else None


def test_a_nan_loss_ends_training_with_stopped_nan_and_a_reason(dataset: Dataset) -> None:
    config = TrialConfig(**{**SMALL, "optimizer": "sgd", "learning_rate": 1e30})
    result = train(config, dataset, max_epochs=10, seed=0)
    assert result.stopped == "nan"
    assert "loss became" in result.reason and "epoch 1" in result.reason
    assert result.epochs == 1
    assert result.to_dict()["history"]["loss"][0] is None  # NaN is stored as null


def test_early_stopping_restores_the_weights_of_the_best_validation_loss() -> None:
    # Random labels: the validation loss can only get worse once the net starts memorizing.
    noisy = blobs(n_train=256, n_valid=256, n_test=32, random_labels=True, seed=1)
    config = TrialConfig(**{**SMALL, "n_units": 64, "learning_rate": 3e-2, "patience": 2})
    result = train(config, noisy, max_epochs=40, seed=0)
    assert result.stopped == "early_stopping", result.history["val_loss"]
    assert "2 epochs" in result.reason
    best = int(np.argmin(result.history["val_loss"]))
    assert result.best_epoch == best + 1 < result.epochs
    assert result.val_loss == pytest.approx(min(result.history["val_loss"]), rel=1e-5, abs=1e-6)
    assert result.val_accuracy == pytest.approx(result.history["val_accuracy"][best], abs=1e-6)


def test_restoring_the_best_accuracy_keeps_the_epoch_the_search_ranks_by() -> None:
    # Noisy clusters trained hard: the validation loss turns up while the accuracy still moves.
    noisy = blobs(n_train=256, n_valid=256, n_test=32, noise=2.5, seed=2)
    config = TrialConfig(**{**SMALL, "n_units": 64, "learning_rate": 3e-2, "patience": 4,
                            "restore_best": "val_accuracy"})
    result = train(config, noisy, max_epochs=30, seed=0)
    by_loss = train(config.replace(restore_best="val_loss"), noisy, max_epochs=30, seed=0)
    accuracies, losses = result.history["val_accuracy"], result.history["val_loss"]
    assert accuracies == by_loss.history["val_accuracy"]  # the same run; only the kept epoch differs
    best = min(range(len(accuracies)), key=lambda i: (-accuracies[i], losses[i]))
    assert result.best_epoch == best + 1
    assert result.val_accuracy == pytest.approx(max(accuracies), abs=1e-6)
    assert result.val_loss == pytest.approx(losses[best], rel=1e-5)
    assert by_loss.best_epoch == int(np.argmin(losses)) + 1
    assert result.val_accuracy >= by_loss.val_accuracy
    assert result.best_epoch != by_loss.best_epoch, "the data should make the two rules disagree"


def test_restoring_auto_keeps_the_steadier_loss_on_small_validation() -> None:
    from autodnn.config import SMALL_VALIDATION
    from autodnn.training.restore import restore_rule

    auto = TrialConfig(restore_best="auto")
    assert restore_rule(auto, SMALL_VALIDATION - 1) == "val_loss"
    assert restore_rule(auto, SMALL_VALIDATION) == "val_accuracy"
    assert restore_rule(auto.replace(restore_best="val_accuracy"), 10) == "val_accuracy"
    noisy = blobs(n_train=256, n_valid=256, n_test=32, noise=2.5, seed=2)
    config = TrialConfig(**{**SMALL, "n_units": 64, "learning_rate": 3e-2, "patience": 4, "restore_best": "auto"})
    result = train(config, noisy, max_epochs=30, seed=0)
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1  # 256 rows: small


def test_a_reporter_asking_to_stop_prunes_after_that_epoch(dataset: Dataset) -> None:
    reporter = StopAt(stop=1)
    result = train(TrialConfig(**SMALL), dataset, max_epochs=10, seed=0, reporter=reporter)
    assert result.stopped == "pruned"
    assert result.reason == "stop asked at epoch 2"
    assert result.epochs == 2
    assert [epoch for epoch, _ in reporter.reports] == [0, 1]
    for epoch, metrics in reporter.reports:
        assert metrics["val_accuracy"] == result.history["val_accuracy"][epoch]
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(metrics)


def test_the_same_seed_repeats_a_run_and_another_seed_does_not(dataset: Dataset) -> None:
    config = TrialConfig(**{**SMALL, "dropout": 0.2})
    first = train(config, dataset, max_epochs=3, seed=5)
    second = train(config, dataset, max_epochs=3, seed=5)
    other = train(config, dataset, max_epochs=3, seed=6)
    assert first.history == second.history
    assert first.val_loss == second.val_loss
    assert first.history["loss"] != other.history["loss"]


def test_history_has_one_value_per_epoch(completed: TrialResult) -> None:
    assert completed.stopped == "completed" and completed.reason == ""
    assert completed.epochs == 4 == len(completed.epoch_times)
    assert set(completed.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    for values in completed.history.values():
        assert len(values) == completed.epochs
        assert all(math.isfinite(v) for v in values)
    assert completed.history["learning_rate"] == pytest.approx([1e-2] * 4)


def test_training_learns_the_clusters(completed: TrialResult) -> None:
    assert completed.val_accuracy > 0.9
    assert completed.history["loss"][-1] < completed.history["loss"][0]
    assert completed.n_params == 12 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert completed.samples_per_second > 0


def test_test_evaluation_only_when_asked(dataset: Dataset, completed: TrialResult) -> None:
    assert completed.test_accuracy is None and completed.test_loss is None
    result = train(TrialConfig(**SMALL), dataset, max_epochs=2, seed=0, evaluate_test=True)
    assert 0.0 <= result.test_accuracy <= 1.0
    assert math.isfinite(result.test_loss)


def test_performance_scheduling_lowers_the_rate_between_compiled_epochs() -> None:
    noisy = blobs(n_train=256, n_valid=256, n_test=32, random_labels=True, seed=2)
    config = TrialConfig(**{**SMALL, "n_units": 64, "learning_rate": 3e-2, "schedule": "performance",
                            "plateau_patience": 1, "plateau_factor": 0.5, "patience": 50})
    result = train(config, noisy, max_epochs=8, seed=0)
    rates = result.history["learning_rate"]
    assert rates[0] == pytest.approx(3e-2)
    assert min(rates) <= 1.5e-2 + 1e-9, rates
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(rates))


def test_a_configuration_s_own_epochs_end_its_run_and_its_schedule_anneals_over_them(dataset: Dataset) -> None:
    config = TrialConfig(**{**SMALL, "schedule": "cosine", "epochs": 3, "patience": 50})
    result = train(config, dataset, max_epochs=10, seed=0)
    assert result.epochs == 3 and result.stopped == "completed"
    # The rate after each epoch: cosine over 3 epochs reaches 0 at the end, not 0.98 of the rate as over 10.
    assert result.history["learning_rate"] == pytest.approx([0.75e-2, 0.25e-2, 0.0], abs=1e-6)
    longer = train(config.replace(epochs=30), dataset, max_epochs=4, seed=0)
    assert longer.epochs == 4, "a budget below the configuration's epochs caps them"
    assert config.replace(epochs=None).trained_epochs(7) == 7


@pytest.mark.parametrize("epochs", [0, -2, 2.5, "ten", True])
def test_epochs_must_be_a_whole_number_of_at_least_one_or_null(epochs: object) -> None:
    from autodnn.errors import ConfigError

    with pytest.raises(ConfigError, match="epochs must be a whole number >= 1 or null"):
        TrialConfig(epochs=epochs)


def test_epochs_are_full_batches_and_tiny_datasets_train_one_batch_of_everything() -> None:
    assert loops.steps_per_epoch(1000, 32) == 31
    assert loops.steps_per_epoch(20, 32) == 1 and loops.effective_batch_size(20, 32) == 20
    tiny = blobs(n_train=20, n_valid=10, n_test=10)
    result = train(TrialConfig(**SMALL), tiny, max_epochs=2, seed=0)
    assert result.epochs == 2 and all(math.isfinite(v) for v in result.history["loss"])


def test_the_compiled_evaluation_matches_keras_evaluate_regularization_included(dataset: Dataset) -> None:
    from autodnn.network.model import build_model

    config = TrialConfig(**{**SMALL, "l2": 1e-2, "normalization": "batch_norm_after", "dropout": 0.3})
    keras.backend.clear_session()
    model = build_model(config, dataset.n_features, dataset.n_classes, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = loops.evaluate(model, dataset, "valid")
    expected_loss, expected_accuracy = model.evaluate(dataset.x_valid, dataset.y_valid, verbose=0)
    assert loss == pytest.approx(expected_loss, rel=1e-4)
    assert accuracy == pytest.approx(expected_accuracy, abs=1e-6)


def test_the_learning_rate_finder_runs_before_the_compiled_loop(dataset: Dataset) -> None:
    config = TrialConfig(**{**SMALL, "lr_finder": True})
    result = train(config, dataset, max_epochs=2, seed=0)
    assert result.lr_finder is not None
    assert result.learning_rate == pytest.approx(result.lr_finder["suggestion"])
    assert result.history["learning_rate"][0] == pytest.approx(result.learning_rate, rel=1e-6)


def test_mixed_precision_trains_and_the_next_trial_is_float32_again(dataset: Dataset) -> None:
    result = train(TrialConfig(**SMALL), dataset, max_epochs=2, seed=0, precision="mixed_bfloat16")
    assert all(math.isfinite(v) for v in result.history["val_loss"])
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    train(TrialConfig(**SMALL), dataset, max_epochs=1, seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"


# --- device configuration (autodnn.backend), which workers call before importing Keras ----------------------


def isolate_device_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unsets what configure_device may set, so that monkeypatch restores all of it after the test."""
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "XLA_PYTHON_CLIENT_PREALLOCATE",
                 "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION", "TF_FORCE_GPU_ALLOW_GROWTH",
                 PRECISION_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(keras.mixed_precision, "set_global_policy", lambda policy: None)


def test_configure_device_sets_memory_growth_visibility_and_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_device_variables(monkeypatch)
    settings = configure_device("mixed_float16", gpu="1", trials_per_gpu=4)
    assert settings["CUDA_VISIBLE_DEVICES"] == "1"
    assert settings["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert settings["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    # A per-process cap made four JAX processes sharing an H200 3.7x slower: JAX allocates on demand instead.
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in settings and "XLA_CLIENT_MEM_FRACTION" not in settings
    assert configured_precision() == "mixed_float16"
    assert visible_gpus() == ["1"]


def test_configure_device_without_gpu_leaves_visibility_and_one_trial_has_no_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolate_device_variables(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    settings = configure_device("float32")
    assert "CUDA_VISIBLE_DEVICES" not in settings and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in settings
    assert visible_gpus() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []


@pytest.mark.parametrize(("family", "gpus", "expected"), [
    ("dense", "", "jax"),
    ("conv", "", "tensorflow"),  # oneDNN's convolutions on a CPU
    ("conv", "0", "jax"),
])
def test_auto_backend_is_chosen_per_family_and_device(family: str, gpus: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["CUDA_VISIBLE_DEVICES"] = gpus
    code = ("import sys; from autodnn.backend import select_backend; print(select_backend('auto', family=sys.argv[1]));"
            "import os; print(os.environ['KERAS_BACKEND']); print('keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, family], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [expected, expected, "False"]


def test_auto_backend_keeps_the_one_the_user_set() -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": ""}
    code = "from autodnn.backend import select_backend; print(select_backend('auto', family='conv'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "jax"


@pytest.mark.parametrize(("precision", "per_gpu", "fragment"), [
    ("float16", 1, "--precision is 'float16'"),
    ("float32", 0, "--trials-per-gpu must be >= 1"),
])
def test_configure_device_refuses_bad_values(precision: str, per_gpu: int, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        configure_device(precision, trials_per_gpu=per_gpu)
