"""Tests of autodnn.datasets: every loader, the splits, the scaling, the fingerprint and every user error."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from autodnn.datasets import Dataset, dataset_names, load_dataset
from autodnn.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
CIFAR10_JPG = Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpg.tar.gz"

IMAGE_CLASSES = ("cat", "dog", "bird")
IMAGE_SIZE = (6, 5)


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Points the image cache and Keras' cache at empty temporary folders."""
    monkeypatch.setenv("AUTODNN_CACHE_DIR", str(tmp_path / "autodnn-cache"))
    keras_home = tmp_path / "keras-home"
    (keras_home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return keras_home / "datasets"


# ----------------------------------------------------------------------------------------------------- helpers


def _pixels(label: int, index: int, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """A small RGB image, unique for each (label, index), which its top-left pixel holds as (label, index, 0)."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    base = label * 60 + index * 7
    pixels = np.stack([(base + yy * 3 + xx + c * 20) % 256 for c in range(3)], axis=-1).astype(np.uint8)
    pixels[0, 0] = (label, index, 0)
    return pixels


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_files(n_train: int = 6, n_test: int = 2) -> dict[str, np.ndarray]:
    """Relative path -> pixels of a layout train/<class>/NN.png, test/<class>/NN.png (classes not sorted)."""
    files = {}
    for label, name in enumerate(IMAGE_CLASSES):
        for i in range(n_train):
            files[f"train/{name}/{i:02d}.png"] = _pixels(label, i)
        for i in range(n_test):
            files[f"test/{name}/{i:02d}.png"] = _pixels(label, 30 + i)
    return files


def _write_tree(root: Path, files: dict[str, np.ndarray]) -> Path:
    for rel, pixels in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_png(pixels))
    return root


def _write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _all_rows(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([ds.x_train, ds.x_valid, ds.x_test]), np.concatenate([ds.y_train, ds.y_valid, ds.y_test])


def _sorted_rows(x: np.ndarray) -> np.ndarray:
    return x[np.lexsort(x.T[::-1])]


def _assert_contract(ds: Dataset) -> None:
    for part in ("train", "valid", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == ds.n_features
        assert y.dtype == np.int32 and y.shape == (len(x),)
        assert y.min() >= 0 and y.max() < ds.n_classes
    assert set(np.unique(ds.y_train)) == set(range(ds.n_classes))
    json.dumps(ds.describe())


def _cifar_row(index: int) -> np.ndarray:
    """3072 bytes, channel-first like the official batches, unique for each index."""
    return ((np.arange(3072) * (index + 1) + index * 17) % 256).astype(np.uint8)


def _cifar_batches(n_per_batch: int = 4) -> dict[str, bytes]:
    """Pickled batches like the official ones: 5 training batches, a test batch and batches.meta."""
    files, index = {}, 0
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = np.stack([_cifar_row(index + k) for k in range(n_per_batch)])
        labels = [(index + k) % 10 for k in range(n_per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                 b"filenames": [f"img{index + k}.png".encode() for k in range(n_per_batch)]}
        files[name] = pickle.dumps(batch, protocol=4)
        index += n_per_batch
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    files["batches.meta"] = pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=4)
    return files


def _check_cifar(ds: Dataset, n_per_batch: int = 4) -> None:
    """The pixels and labels of the fake batches come back exactly, as (32, 32, 3) images."""
    assert ds.name == "cifar10"
    assert ds.class_names[:3] == ("airplane", "automobile", "bird")
    assert ds.image_shape == (32, 32, 3)
    assert ds.sizes["train"] + ds.sizes["valid"] == 5 * n_per_batch
    assert ds.sizes["test"] == n_per_batch
    expected = {}
    for index in range(6 * n_per_batch):
        image = _cifar_row(index).reshape(3, 32, 32).transpose(1, 2, 0)
        expected[image.tobytes()] = (index, index % 10)
    test_indices = set()
    for part in ("train", "valid", "test"):
        for x, y in zip(getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}"), strict=True):
            index, label = expected[x.astype(np.uint8).tobytes()]
            assert y == label
            if part == "test":
                test_indices.add(index)
    assert test_indices == set(range(5 * n_per_batch, 6 * n_per_batch))


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


# ------------------------------------------------------------------------------------------ scikit-learn sets


@pytest.mark.parametrize(("name", "n", "n_features", "n_classes"), [
    ("digits", 1797, 64, 10), ("iris", 150, 4, 3), ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2),
])
def test_sklearn_sets_split_every_example_once(name: str, n: int, n_features: int, n_classes: int) -> None:
    import sklearn.datasets

    ds = load_dataset(name, scaling="none")
    _assert_contract(ds)
    assert (ds.name, ds.n_features, ds.n_classes) == (name, n_features, n_classes)
    assert ds.sizes["test"] == int(np.ceil(0.2 * n))
    assert ds.sizes["valid"] == int(np.ceil(ds.valid_fraction * (n - ds.sizes["test"])))
    assert sum(ds.sizes.values()) == n
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    x, y = _all_rows(ds)
    expected = np.column_stack([bunch.data.astype(np.float32), bunch.target])
    np.testing.assert_array_equal(_sorted_rows(np.column_stack([x, y])), _sorted_rows(expected))
    assert ds.class_names == tuple(str(c) for c in bunch.target_names)
    assert "scikit-learn" in ds.source


def test_splits_are_stratified_and_shuffled() -> None:
    ds = load_dataset("digits")
    counts = np.bincount(_all_rows(ds)[1], minlength=10)
    test = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(test - counts * ds.sizes["test"] / counts.sum()) <= 1), test
    pool = counts - test
    valid = np.bincount(ds.y_valid, minlength=10)
    assert np.all(np.abs(valid - pool * ds.sizes["valid"] / pool.sum()) <= 1), valid
    assert not np.all(np.diff(ds.y_train) >= 0), "training examples come out sorted by class"


def test_same_seed_same_arrays_other_settings_other_fingerprint() -> None:
    first, again = load_dataset("iris", seed=3), load_dataset("iris", seed=3)
    assert first.fingerprint == again.fingerprint and len(first.fingerprint) == 16
    for part in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, part), getattr(again, part))
    other = load_dataset("iris", seed=4)
    assert other.fingerprint != first.fingerprint
    assert not np.array_equal(other.y_train, first.y_train)
    assert load_dataset("iris", seed=3, valid_fraction=0.2).fingerprint != first.fingerprint
    assert load_dataset("iris", seed=3, scaling="unit").fingerprint != first.fingerprint


def test_standard_scaling_uses_training_statistics_only() -> None:
    raw, ds = load_dataset("digits", scaling="none"), load_dataset("digits")
    mean, std = raw.x_train.astype(np.float64).mean(axis=0), raw.x_train.astype(np.float64).std(axis=0)
    varying = std > 0
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(ds.x_train.std(axis=0)[varying], 1, atol=1e-4)
    assert np.all(ds.x_train[:, ~varying] == 0), "constant features are centered, not divided by 0"
    for part in ("x_valid", "x_test"):
        expected = (getattr(raw, part) - mean) / np.where(varying, std, 1)
        np.testing.assert_allclose(getattr(ds, part), expected, atol=1e-5)
        assert not np.allclose(getattr(ds, part).mean(axis=0)[varying], 0, atol=1e-3)


def test_unit_scaling_maps_training_range_to_0_1() -> None:
    ds = load_dataset("wine", scaling="unit")
    assert np.allclose(ds.x_train.min(axis=0), 0) and np.allclose(ds.x_train.max(axis=0), 1)
    assert ds.describe()["scaling"] == "unit"


# ---------------------------------------------------------------------------------------------- csv, parquet


def _table(n: int = 60):
    import pandas as pd

    colors = ["red", "green", "blue"]
    animals = ["dog", "cat", "bird"]
    return pd.DataFrame({
        "weight": [float(i) + 0.5 for i in range(n)],
        "color": [colors[(i // 3) % 3] for i in range(n)],
        "kind": [animals[i % 3] for i in range(n)],
    })


def _check_table(ds: Dataset, n: int = 60) -> None:
    """Each row comes back with its one-hot color and its label, whatever split it went to."""
    _assert_contract(ds)
    assert ds.class_names == ("bird", "cat", "dog")
    assert ds.n_features == 4
    assert sum(ds.sizes.values()) == n and ds.sizes["test"] == 12
    colors = ["red", "green", "blue"]
    dummy_order = sorted(colors)
    x, y = _all_rows(ds)
    for row, label in zip(x, y, strict=True):
        i = int(row[0] - 0.5)
        assert ds.class_names[label] == ["dog", "cat", "bird"][i % 3]
        onehot = np.zeros(3)
        onehot[dummy_order.index(colors[(i // 3) % 3])] = 1
        np.testing.assert_array_equal(row[1:], onehot)


def test_csv_one_hot_features_and_text_target(tmp_path: Path) -> None:
    path = tmp_path / "animals.csv"
    _table().to_csv(path, index=False)
    ds = load_dataset(f"csv:{path}", target="kind", scaling="none")
    _check_table(ds)
    assert ds.name == f"csv:{path}"
    assert str(path) in ds.source


def test_parquet_one_hot_features_and_text_target(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="reading parquet needs pyarrow")
    path = tmp_path / "animals.parquet"
    _table().to_parquet(path)
    _check_table(load_dataset(f"parquet:{path}", target="kind", scaling="none"))


def test_parquet_column_of_lists_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="reading parquet needs pyarrow")
    table = _table()
    table["tags"] = [[1, 2]] * len(table)
    path = tmp_path / "lists.parquet"
    table.to_parquet(path)
    with pytest.raises(DatasetError, match=r"column 'tags' holds .* values"):
        load_dataset(f"parquet:{path}", target="kind")


@pytest.mark.parametrize(("text", "target", "message"), [
    ("a,b,kind\n1,2,x\n3,4,y\n", None, r"needs --target COLUMN; columns are: a, b, kind"),
    ("a,b,kind\n1,2,x\n3,4,y\n", "knid", r"no column 'knid' for --target. Did you mean 'kind'\?"),
    ("", "kind", r"is empty"),
    ("a,b,kind\n", "kind", r"header but no rows"),
    ("a,kind\n1,x\n2,\n3,y\n4,\n5,x\n", "kind", r"2 of 5 rows have no value in target column 'kind'"),
    ("a,d,kind\n1,2020-01-01,x\n2,2020-01-02,y\n", "kind", r"column 'd' holds dates .* --drop d"),
    ("a,kind\n1.5,0.5\n2.5,1.5\n", "kind", r"too few examples to split"),
])
def test_bad_csv_is_refused_with_a_reason(tmp_path: Path, text: str, target: str | None, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"csv:{path}", target=target)


def test_continuous_labels_asked_as_classes_point_to_regression(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a,kind\n" + "".join(f"{i % 7},{i / 7:.3f}\n" for i in range(40)))
    with pytest.raises(DatasetError, match=r"continuous numbers \(e.g. 0.143\).*--task regression"):
        load_dataset(f"csv:{path}", target="kind", task="classification")
    assert load_dataset(f"csv:{path}", target="kind").is_regression


# ------------------------------------------------------------------------------------------------------- npz


def test_npz_keeps_the_given_test_part_and_encodes_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 50, (40, 4, 3)), rng.integers(0, 50, (9, 4, 3))
    y_train, y_test = np.array([3, 7, 9, 7] * 10), np.array([9, 3, 7] * 3)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ds = load_dataset(f"npz:{path}", scaling="none")
    _assert_contract(ds)
    assert ds.class_names == ("3", "7", "9") and ds.n_features == 12
    labels = {"3": 0, "7": 1, "9": 2}
    got = _sorted_rows(np.column_stack([ds.x_test, ds.y_test]))
    want = _sorted_rows(np.column_stack([x_test.reshape(9, -1), [labels[str(v)] for v in y_test]]))
    np.testing.assert_array_equal(got, want)
    got = _sorted_rows(np.column_stack([np.concatenate([ds.x_train, ds.x_valid]),
                                        np.concatenate([ds.y_train, ds.y_valid])]))
    want = _sorted_rows(np.column_stack([x_train.reshape(40, -1), [labels[str(v)] for v in y_train]]))
    np.testing.assert_array_equal(got, want)


def test_npz_with_x_and_y_carves_a_test_part(tmp_path: Path) -> None:
    path = tmp_path / "xy.npz"
    np.savez(path, X=np.arange(100.0).reshape(50, 2), y=np.array(["no", "yes"] * 25))
    ds = load_dataset(f"npz:{path}")
    assert ds.class_names == ("no", "yes") and ds.sizes == {"train": 30, "valid": 10, "test": 10}


def test_npz_without_the_arrays_lists_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "wrong.npz"
    np.savez(path, features=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(DatasetError, match=r"needs arrays x_train and y_train \(or x and y\), but holds: "
                                           r"features, labels"):
        load_dataset(f"npz:{path}")


# ------------------------------------------------------------------------------------------------ image files


def _check_images(ds: Dataset, with_test: bool = True) -> None:
    """Every generated image comes back with its exact pixels and its label; test/ stays the test part."""
    _assert_contract(ds)
    assert ds.class_names == ("bird", "cat", "dog")
    assert ds.image_shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3)
    seen = set()
    for part in ("train", "valid", "test"):
        for x, y in zip(getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}"), strict=True):
            image = x.reshape(ds.image_shape).astype(np.uint8)
            label, index = int(image[0, 0, 0]), int(image[0, 0, 1])
            np.testing.assert_array_equal(image, _pixels(label, index))
            assert ds.class_names[y] == IMAGE_CLASSES[label]
            if with_test:
                assert (index >= 30) == (part == "test")
            seen.add((label, index))
    assert len(seen) == (24 if with_test else 18)


def test_image_folder_round_trips_pixels_and_labels(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "pets", _image_files())
    ds = load_dataset(f"images:{root}", scaling="none")
    _check_images(ds)
    assert ds.sizes == {"train": 13, "valid": 5, "test": 6}, "every one of the 3 classes is in the validation part"
    assert ds.name == f"images:{root}"


def test_image_tar_under_a_top_folder_gives_the_same_arrays_as_the_folder(tmp_path: Path) -> None:
    files = _image_files()
    folder = load_dataset(f"images:{_write_tree(tmp_path / 'pets', files)}", scaling="none")
    archive = {"pets/README.md": b"not an image", "pets/.DS_Store": b"junk"}
    archive.update({f"pets/{rel}": _png(pixels) for rel, pixels in reversed(list(files.items()))})
    tarred = load_dataset(f"images:{_write_tar(tmp_path / 'pets.tar.gz', archive)}", scaling="none")
    _check_images(tarred)
    for part in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(tarred, part), getattr(folder, part))


def test_images_without_test_folder_get_a_stratified_test_part(tmp_path: Path) -> None:
    files = {rel: p for rel, p in _image_files().items() if rel.startswith("train/")}
    ds = load_dataset(f"images:{_write_tree(tmp_path / 'pets', files)}", scaling="none")
    _check_images(ds, with_test=False)
    assert sorted(np.bincount(ds.y_test)) == [1, 1, 2]


def test_grayscale_images_keep_one_channel(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("a", "b"):
        for i in range(5):
            (tmp_path / "g" / "train" / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 3), i * 10 + (label == "b"), np.uint8), "L").save(
                tmp_path / "g" / "train" / label / f"{i}.png")
    ds = load_dataset(f"images:{tmp_path / 'g'}", scaling="unit")
    assert ds.image_shape == (4, 3, 1) and ds.n_features == 12
    values = np.unique(np.round(_all_rows(ds)[0] * 255).astype(int))
    assert values.tolist() == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41]


def test_images_of_different_sizes_are_refused_naming_the_odd_file(tmp_path: Path) -> None:
    files = _image_files()
    files["train/dog/03.png"] = _pixels(0, 3, size=(8, 8))
    root = _write_tree(tmp_path / "pets", files)
    with pytest.raises(DatasetError, match=r"train/dog/03.png is 8x8 pixels but .* is 6x5"):
        load_dataset(f"images:{root}")


def test_decoded_images_are_cached_and_a_bad_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autodnn.datasets import _images

    archive = {rel: _png(p) for rel, p in _image_files().items()}
    path = _write_tar(tmp_path / "pets.tar.gz", archive)
    first = load_dataset(f"images:{path}", scaling="none")
    (cache_file,) = (tmp_path / "autodnn-cache").glob("images-*.npz")

    def refuse(*args: object) -> None:
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(_images._Collector, "_decode", refuse)
    cached = load_dataset(f"images:{path}", scaling="none")
    np.testing.assert_array_equal(cached.x_train, first.x_train)
    assert cached.fingerprint == first.fingerprint
    monkeypatch.undo()
    monkeypatch.setenv("AUTODNN_CACHE_DIR", str(tmp_path / "autodnn-cache"))

    cache_file.write_bytes(b"not an npz file")
    rebuilt = load_dataset(f"images:{path}", scaling="none")
    assert rebuilt.fingerprint == first.fingerprint
    assert np.load(cache_file)["x_train"].shape == (18, 5, 6, 3)

    archive["train/cat/00.png"] = _png(_pixels(1, 5))
    _write_tar(path, archive)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert load_dataset(f"images:{path}", scaling="none").fingerprint != first.fingerprint


# ----------------------------------------------------------------------------------- cifar10, mnist, fashion


def test_cifar10_official_archive_in_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    files = {f"cifar-10-batches-py/{name}": data for name, data in _cifar_batches().items()}
    _write_tar(data_dir / "cifar-10-python.tar.gz", files)
    ds = load_dataset("cifar10", data_dir=data_dir, scaling="none")
    _check_cifar(ds)
    assert ds.source == str(data_dir / "cifar-10-python.tar.gz")


def test_cifar10_extracted_batches_in_keras_cache(tmp_path: Path, isolated_caches: Path) -> None:
    folder = isolated_caches / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in _cifar_batches().items():
        (folder / name).write_bytes(data)
    _check_cifar(load_dataset("cifar10", scaling="none"))


def test_cifar10_data_dir_comes_before_keras_cache(tmp_path: Path, isolated_caches: Path) -> None:
    for folder in (isolated_caches / "cifar-10-batches-py", tmp_path / "mine" / "cifar-10-batches-py"):
        folder.mkdir(parents=True)
        for name, data in _cifar_batches().items():
            (folder / name).write_bytes(data)
    assert load_dataset("cifar10", data_dir=tmp_path / "mine").source == str(tmp_path / "mine" / "cifar-10-batches-py")


def test_cifar10_from_an_image_tar_in_data_dir(tmp_path: Path) -> None:
    archive = {rel: _png(p) for rel, p in _image_files().items()}
    _write_tar(tmp_path / "cifar10-jpg.tar.gz", archive)
    ds = load_dataset("cifar10", data_dir=tmp_path, scaling="none")
    assert ds.name == "cifar10"
    _check_images(ds)


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'touch MARKER'\ntR.",
    b"cposix\nsystem\n(S'touch MARKER'\ntR.",
    b"cbuiltins\nexec\n(S'open(\"MARKER\", \"w\")'\ntR.",
])
def test_cifar_batches_cannot_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in _cifar_batches().items():
        (folder / name).write_bytes(data)
    (folder / "data_batch_1").write_bytes(payload)
    module, name = payload[1:].split(b"\n")[:2]
    with pytest.raises(DatasetError, match=rf"refusing to unpickle {module.decode()}\.{name.decode()} from "
                                           rf".*data_batch_1"):
        load_dataset("cifar10", data_dir=tmp_path / "data")
    assert not (tmp_path / "MARKER").exists()


def test_mnist_npz_in_keras_cache(isolated_caches: Path) -> None:
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y_train, y_test = np.arange(30) % 10, np.arange(5)
    np.savez(isolated_caches / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ds = load_dataset("mnist", scaling="none")
    _assert_contract(ds)
    assert ds.image_shape == (28, 28, 1) and ds.n_features == 784
    assert ds.class_names == tuple("0123456789")
    np.testing.assert_array_equal(_sorted_rows(np.column_stack([ds.x_test, ds.y_test])),
                                  _sorted_rows(np.column_stack([x_test.reshape(5, -1), y_test])))


def test_fashion_mnist_idx_files_in_keras_cache(isolated_caches: Path) -> None:
    folder = isolated_caches / "fashion-mnist"
    folder.mkdir()
    x = np.arange(40 * 28 * 28).reshape(40, 28, 28) % 251
    parts = {"train-images-idx3-ubyte.gz": x[:30], "train-labels-idx1-ubyte.gz": np.arange(30) % 10,
             "t10k-images-idx3-ubyte.gz": x[30:], "t10k-labels-idx1-ubyte.gz": np.arange(10)}
    for name, array in parts.items():
        (folder / name).write_bytes(_idx(array))
    ds = load_dataset("fashion_mnist", scaling="none")
    assert ds.class_names[0] == "T-shirt/top" and ds.sizes == {"train": 20, "valid": 10, "test": 10}
    assert set(ds.y_valid.tolist()) == set(range(10)), "every class is in the validation part"
    np.testing.assert_array_equal(_sorted_rows(ds.x_test), _sorted_rows(x[30:].reshape(10, -1).astype(np.float32)))


@pytest.mark.parametrize(("name", "message"), [
    ("cifar10", r"cifar10 not found offline: put cifar-10-python.tar.gz \(or an image folder / tar of one\) in "),
    ("mnist", r"mnist not found offline: put mnist.npz in "),
    ("fashion_mnist", r"fashion_mnist not found offline: put train-images-idx3-ubyte.gz"),
])
def test_builtin_image_sets_absent_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    where = r".*empty-home/\.keras/datasets(/fashion-mnist)? or pass --data-dir DIR"
    with pytest.raises(DatasetError, match=message + where):
        load_dataset(name)


# ---------------------------------------------------------------------------------------------- other errors


@pytest.mark.parametrize(("spec", "message"), [
    ("digit", r"unknown dataset 'digit'. Did you mean 'digits'\? Known datasets: digits, iris"),
    ("cifar-100", r"Did you mean 'cifar10'\?"),
    ("cvs:data.csv", r"Did you mean 'csv:data.csv'\?"),
    ("data.csv", r"Did you mean 'csv:data.csv'\?"),
    ("", r"must be a name or PREFIX:PATH"),
])
def test_unknown_spec_suggests_a_name(spec: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(spec)


@pytest.mark.parametrize("spec", ["csv:{}/nope.csv", "parquet:{}/nope.parquet", "npz:{}/nope.npz",
                                  "images:{}/nope"])
def test_missing_file_is_named(tmp_path: Path, spec: str) -> None:
    with pytest.raises(DatasetError, match=rf"no such file or folder: {tmp_path}/nope"):
        load_dataset(spec.format(tmp_path), target="y" if spec.startswith(("csv", "parquet")) else None)


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1, float("nan"), True, "0.1"])
def test_valid_fraction_out_of_range(fraction: object) -> None:
    with pytest.raises(DatasetError, match=r"valid_fraction must be 'auto' or in \(0, 0.5\], but got"):
        load_dataset("iris", valid_fraction=fraction)  # type: ignore[arg-type]


def test_bad_seed_scaling_and_target_are_refused() -> None:
    with pytest.raises(DatasetError, match="seed must be an integer >= 0"):
        load_dataset("iris", seed=-1)
    with pytest.raises(DatasetError, match="scaling must be one of standard, unit, none"):
        load_dataset("iris", scaling="minmax")
    with pytest.raises(DatasetError, match="--target label only applies to csv: and parquet:"):
        load_dataset("iris", target="label")


def test_missing_data_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=rf"--data-dir {tmp_path}/nowhere is not a folder"):
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")


def test_truncated_image_archive_is_refused(tmp_path: Path) -> None:
    path = _write_tar(tmp_path / "pets.tar.gz", {rel: _png(p) for rel, p in _image_files().items()})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cannot read the tar archive"):
        load_dataset(f"images:{path}")


def test_describe_and_repr_are_short_and_json_able() -> None:
    ds = load_dataset("iris")
    summary = json.loads(json.dumps(ds.describe()))
    assert summary == {
        "name": "iris", "fingerprint": ds.fingerprint, "sizes": {"train": 90, "valid": 30, "test": 30},
        "n_features": 4, "n_classes": 3, "class_names": ["setosa", "versicolor", "virginica"],
        "source": "scikit-learn bundled (load_iris)", "scaling": "standard", "valid_fraction": 0.25, "seed": 0,
        "image_shape": None, "notes": [], "task": "classification", "target_name": "", "target_mean": 0.0,
        "target_std": 1.0,
    }
    assert len(repr(ds)) < 200 and "iris" in repr(ds)
    assert set(dataset_names()) == {"digits", "iris", "wine", "breast_cancer", "diabetes", "mnist", "fashion_mnist",
                                    "cifar10"}


def test_dataset_checks_its_arrays() -> None:
    ds = load_dataset("iris")
    with pytest.raises(DatasetError, match=r"x_train is float64 .* expected a float32"):
        Dataset(ds.name, ds.x_train.astype(np.float64), ds.y_train, ds.x_valid, ds.y_valid, ds.x_test, ds.y_test,
                ds.class_names, ds.fingerprint, ds.source)


def test_importing_loads_no_deep_learning_framework() -> None:
    code = ("import sys, autodnn.datasets as d; d.load_dataset('iris'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'keras', 'tensorflow', 'jax', 'optuna', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# ---------------------------------------------------------------------------------------- the real CIFAR-10


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR10_JPG.is_file(), reason=f"the real CIFAR-10 is not at {CIFAR10_JPG}")
def test_real_cifar10_jpg_archive_as_builtin_and_as_images() -> None:
    start = time.perf_counter()
    ds = load_dataset("cifar10", data_dir=CIFAR10_JPG.parent, scaling="none")
    first = time.perf_counter() - start
    assert ds.sizes == {"train": 45000, "valid": 5000, "test": 10000}
    assert ds.class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                              "truck")
    assert np.bincount(np.concatenate([ds.y_train, ds.y_valid])).tolist() == [5000] * 10
    assert np.bincount(ds.y_valid).tolist() == [500] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    means = np.concatenate([ds.x_train, ds.x_valid]).reshape(-1, 3).mean(axis=0, dtype=np.float64) / 255
    np.testing.assert_allclose(means, [0.491, 0.482, 0.447], atol=0.002)
    start = time.perf_counter()
    again = load_dataset(f"images:{CIFAR10_JPG}")
    assert time.perf_counter() - start < first / 2, "the second load did not use the decoded-image cache"
    assert again.sizes == ds.sizes and again.image_shape == (32, 32, 3)
    assert abs(float(again.x_train.mean())) < 1e-4


@pytest.mark.parametrize(("spec", "fraction", "valid"), [("iris", 0.25, 30), ("breast_cancer", 100 / 455, 100),
                                                          ("digits", 0.1, 144)])
def test_auto_validation_holds_about_100_rows_on_a_small_table_and_a_tenth_on_a_larger_one(
        spec: str, fraction: float, valid: int) -> None:
    data = load_dataset(spec)
    assert data.valid_fraction == pytest.approx(fraction) and data.sizes["valid"] == valid
    assert load_dataset(spec, valid_fraction=0.1).sizes["valid"] == int(np.ceil(0.1 * (len(data.y_train) + valid)))
    assert load_dataset(spec, valid_fraction=fraction).fingerprint == data.fingerprint, "auto is its resolved share"
