"""The convolutional family: its networks, the book's CNN, augmentation inside the step, label smoothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.datasets import Dataset
from autodnn.defaults import BOOK_CNN
from autodnn.errors import ConfigError
from autodnn.network.augment import FlipShift
from autodnn.network.conv import build_conv_model
from autodnn.training.losses import WeightedCrossEntropy
from autodnn.training.trainer import train


def test_the_books_cnn_is_chapter_14s_network_layer_for_layer() -> None:
    default_conv = partial(keras.layers.Conv2D, kernel_size=3, padding="same", activation="relu",
                           kernel_initializer="he_normal")
    book = keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        default_conv(filters=64, kernel_size=7), keras.layers.MaxPool2D(),
        default_conv(filters=128), default_conv(filters=128), keras.layers.MaxPool2D(),
        default_conv(filters=256), default_conv(filters=256), keras.layers.MaxPool2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu", kernel_initializer="he_normal"), keras.layers.Dropout(0.5),
        keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"), keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    mine = build_conv_model(BOOK_CNN.config, (32, 32, 3), 10, seed=0)
    held_rates = 2  # the two dropout layers hold their rate in a weight
    assert mine.count_params() - held_rates == book.count_params()
    kernels = [layer.kernel.shape for layer in mine.layers if isinstance(layer, keras.layers.Conv2D)]
    assert kernels == [layer.kernel.shape for layer in book.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.name for layer in mine.layers if "pool" in layer.name] == ["stem_pool", "g1_pool", "g2_pool"]
    assert BOOK_CNN.config.epochs == 10 and BOOK_CNN.config.optimizer == "nadam"


def test_a_residual_block_projects_its_shortcut_only_where_the_width_or_size_changes() -> None:
    config = TrialConfig(family="conv", conv_block="residual", conv_groups=2, conv_blocks=2, conv_filters=8,
                         downsample="stride", normalization="batch_norm_before", n_hidden=0)
    model = build_conv_model(config, (16, 16, 3), 4, seed=0)
    names = {layer.name for layer in model.layers}
    # Each group's first block widens (8 -> 16 -> 32) and its last one halves the size: both project.
    assert {"g1b1_project", "g1b2_project", "g2b1_project", "g2b2_project"} <= names
    assert model.get_layer("g2b2_add").output.shape[1:] == (4, 4, 32)
    assert not model.get_layer("g1b1a_conv").use_bias  # batch norm before the activation drops the bias
    same = TrialConfig(family="conv", conv_block="residual", conv_groups=1, conv_blocks=2, conv_filters=8,
                       filter_growth=1.0, n_hidden=0)
    plain_names = {layer.name for layer in build_conv_model(same, (16, 16, 3), 4, seed=0).layers}
    assert "g1b1_project" not in plain_names and "g1b2_project" not in plain_names


def test_augmentation_flips_and_shifts_in_training_and_leaves_inference_alone() -> None:
    images = np.arange(2 * 8 * 8 * 1, dtype="float32").reshape(2, 8, 8, 1) + 1.0
    layer = FlipShift(flip=True, shift=0.25, seed=3)
    assert np.array_equal(np.asarray(layer(images, training=False)), images)
    seen = set()
    for _ in range(30):
        out = np.asarray(layer(images, training=True))
        for original, moved in zip(images, out):
            seen.add(_which_move(original[..., 0], moved[..., 0]))
    assert None not in seen  # every output is the input, mirrored or not, moved by at most 2 pixels
    assert {flip for flip, _, _ in seen} == {False, True}
    assert len({(dy, dx) for _, dy, dx in seen}) > 10


def _which_move(original: np.ndarray, moved: np.ndarray) -> tuple[bool, int, int] | None:
    for flip in (False, True):
        source = original[:, ::-1] if flip else original
        padded = np.pad(source, 2)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if np.array_equal(padded[2 + dy:10 + dy, 2 + dx:10 + dx], moved):
                    return flip, dy, dx
    return None


def test_label_smoothing_is_kerass_on_one_hot_targets() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype="float32")
    labels = np.array([0, 2])
    smoothed = WeightedCrossEntropy(smoothing=0.2)(labels, probabilities)
    keras_loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(np.eye(3)[labels], probabilities)
    assert float(smoothed) == pytest.approx(float(keras_loss), rel=1e-5)


def _bright_half(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8 x 8 x 3 noise; the class is which half (top or bottom) and which channel is bright: a flip keeps it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype("int32")
    x = rng.normal(0.0, 0.5, (n, 8, 8, 3)).astype("float32")
    for i, c in enumerate(y):
        half, channel = divmod(int(c), 2)
        x[i, half * 4:(half + 1) * 4, :, channel] += 1.5
    return x.reshape(n, -1), y


def test_a_convnet_with_augmentation_learns_small_images_in_the_compiled_step() -> None:
    (xt, yt), (xv, yv), (xs, ys) = _bright_half(384, 0), _bright_half(128, 1), _bright_half(128, 2)
    data = Dataset("halves", xt, yt, xv, yv, xs, ys, ("a", "b", "c", "d"), "halves", "test", image_shape=(8, 8, 3))
    config = TrialConfig(family="conv", conv_groups=1, conv_filters=8, conv_block="residual",
                         normalization="batch_norm_before", augment_flip=True, augment_shift=0.125,
                         label_smoothing=0.1, n_hidden=0, batch_size=32, epochs=6, learning_rate=3e-3)
    result = train(config, data, max_epochs=6, seed=0, evaluate_test=True)
    assert result.val_accuracy > 0.9 and result.test_accuracy > 0.9


def test_a_convnet_learns_on_tensorflow_the_backend_auto_picks_for_convnets_on_a_cpu() -> None:
    code = """
import json, sys, warnings
sys.path.insert(0, sys.argv[1])
import keras
from test_conv import _bright_half
from autodnn.config import TrialConfig
from autodnn.datasets import Dataset
from autodnn.training.trainer import train
(xt, yt), (xv, yv), (xs, ys) = _bright_half(384, 0), _bright_half(128, 1), _bright_half(128, 2)
data = Dataset("halves", xt, yt, xv, yv, xs, ys, ("a", "b", "c", "d"), "halves", "test", image_shape=(8, 8, 3))
config = TrialConfig(family="conv", conv_groups=1, conv_filters=8, normalization="batch_norm_before",
                     augment_flip=True, augment_shift=0.125, n_hidden=0, batch_size=32, epochs=6, learning_rate=3e-3)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    result = train(config, data, max_epochs=6, seed=0, evaluate_test=True)
print(json.dumps({"backend": keras.backend.backend(), "val": result.val_accuracy, "test": result.test_accuracy,
                  "warnings": [str(w.message) for w in caught
                               if "keras" in w.filename and w.category is UserWarning]}))
"""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], env=env, capture_output=True,
                          text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["backend"] == "tensorflow"
    assert outcome["val"] > 0.9 and outcome["test"] > 0.9
    # Python shows a UserWarning (not a DeprecationWarning): Keras' "shuffle=True ... will be ignored" landed in a
    # search's output.
    assert outcome["warnings"] == []


def test_the_conv_family_on_a_table_says_it_needs_images() -> None:
    from autodnn import load_dataset

    with pytest.raises(ConfigError, match="family 'conv' needs images"):
        train(TrialConfig(family="conv"), load_dataset("digits"), max_epochs=1)


def _write_halves(root: Path, per_class: int = 40) -> Path:
    """An image folder of 8 x 8 RGB PNGs whose class is which half and channel is bright (as above)."""
    from PIL import Image

    x, y = _bright_half(per_class * 4, 7)
    pixels = np.clip((x.reshape(-1, 8, 8, 3) + 1.5) * 60, 0, 255).astype("uint8")
    for i, (image, label) in enumerate(zip(pixels, y)):
        folder = root / "train" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    return root


def test_images_get_the_convolutional_space_by_default_and_everything_else_the_dense_one() -> None:
    from autodnn.tuning.options import space_name

    for images in ("cifar10", "mnist", "fashion_mnist", "images:/data/flowers", "images:shapes.tar.gz"):
        assert space_name("auto", images) == "conv"
    for table in ("digits", "iris", "csv:cars.csv", "npz:x.npz"):
        assert space_name("auto", table) == "default"
    assert space_name("default", "cifar10") == "default" and space_name("quick", "cifar10") == "quick"


def test_a_search_on_an_image_folder_without_space_searches_convnets(run_cli, tmp_path: Path) -> None:
    import optuna

    root = _write_halves(tmp_path / "halves", per_class=8)
    url = f"sqlite:///{tmp_path / 'auto.db'}"
    done = run_cli("search", "--dataset", f"images:{root}", "--storage", url, "--n-trials", "1", "--max-epochs", "1",
                   "--no-baselines", "--no-final", "--no-warm-start", "--quiet")
    assert done.code == 0, done.err
    (name,) = optuna.get_all_study_names(url)
    study = optuna.load_study(study_name=name, storage=url)
    assert name.endswith("-conv") and study.user_attrs["space"]["name"] == "conv"
    assert [t.user_attrs["config"]["family"] for t in study.trials] == ["conv"]


def test_a_conv_study_under_a_short_budget_records_the_baselines_left_out_and_shortens_its_start(
        tmp_path: Path) -> None:
    from autodnn.study.trial_record import BASELINE, BASELINES_LEFT_OUT, WARM_START
    from autodnn.tuning import SearchOptions, create_or_resume, prepare
    from autodnn.tuning.budget import MIN_START_EPOCHS, TimeBudget
    from autodnn.tuning.warm_start import designed_start

    root = _write_halves(tmp_path / "halves", per_class=8)
    options = SearchOptions(dataset=f"images:{root}", storage=f"sqlite:///{tmp_path / 'b.db'}", final_seeds=3)
    dataset, space, _, url = prepare(options)
    assert space.family == "conv"

    def study_under(seconds: float, study: str) -> list:
        budget = TimeBudget(seconds, seeds=3, max_epochs=options.max_epochs)
        left_out: list[str] = []
        made = create_or_resume(options, dataset, space, study, url, budget=budget, left_out=left_out)
        assert made.user_attrs[BASELINES_LEFT_OUT] == left_out
        assert [line.split(" is not trained: ")[0] for line in left_out] == [
            b for b in ("book-2e", "book-3e", "book-selu", "book-cnn")
            if b not in {t.user_attrs.get(BASELINE) for t in made.get_trials(deepcopy=False)}]
        return made.get_trials(deepcopy=False)

    tight = study_under(0.01, "tight")
    assert [t.user_attrs[WARM_START] for t in tight] == ["small-convnet"]  # and not one baseline
    assert tight[0].system_attrs["fixed_params"]["epochs"] == MIN_START_EPOCHS
    roomy = study_under(24 * 3600.0, "roomy")
    assert [t.user_attrs.get(BASELINE) for t in roomy[1:]] == ["book-2e", "book-3e", "book-selu", "book-cnn"]
    assert roomy[0].system_attrs["fixed_params"]["epochs"] == designed_start("conv")[0].values["epochs"]


@pytest.mark.slow
def test_a_conv_study_searches_convnets_and_trains_the_books_cnn_beside_the_dense_defaults(
        run_cli, tmp_path: Path) -> None:
    import optuna

    root = _write_halves(tmp_path / "halves")
    url = f"sqlite:///{tmp_path / 'conv.db'}"
    done = run_cli("search", "--dataset", f"images:{root}", "--study", "halves", "--storage", url,
                   "--n-trials", "4", "--max-epochs", "2", "--no-final", "--quiet")
    assert done.code == 0, done.err
    trials = optuna.load_study(study_name="halves", storage=url).trials
    baselines = {t.user_attrs["baseline"]: t for t in trials if "baseline" in t.user_attrs}
    assert set(baselines) == {"book-2e", "book-3e", "book-selu", "book-cnn"}
    assert baselines["book-cnn"].user_attrs["config"]["family"] == "conv"
    assert baselines["book-2e"].user_attrs["config"]["family"] == "dense"
    searched = [t for t in trials if "baseline" not in t.user_attrs]
    assert searched and all(t.user_attrs["config"]["family"] == "conv" for t in searched)
    # The conv space's own designed start, never a dense one.
    assert [t.user_attrs["warm_start"] for t in trials if "warm_start" in t.user_attrs] == ["small-convnet"]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in baselines.values())
    assert not any(t.state == optuna.trial.TrialState.FAIL for t in trials), [t.user_attrs.get("reason") for t in trials]


def test_the_exported_convnet_takes_raw_images_and_scales_them_itself() -> None:
    from autodnn.export import load_model_bytes, model_bytes

    raw, y = _bright_half(64, 3)
    raw = (raw + 2.0) * 50.0  # pixel-like values
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scaled = ((raw - mean) / scale).astype("float32")
    data = Dataset("halves", scaled, y, scaled[:16], y[:16], scaled[:16], y[:16], ("a", "b", "c", "d"), "halves",
                   "test", image_shape=(8, 8, 3), feature_mean=mean, feature_scale=scale)
    network = build_conv_model(TrialConfig(family="conv", conv_groups=1, conv_filters=4, n_hidden=0), (8, 8, 3), 4,
                               seed=0)
    exported = load_model_bytes(model_bytes(network, data))
    images = raw[:5].reshape(5, 8, 8, 3)
    assert exported.input_shape == (None, 8, 8, 3)
    assert np.allclose(exported.predict(images, verbose=0), network.predict(scaled[:5], verbose=0), atol=1e-4)
