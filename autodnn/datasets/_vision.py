"""CIFAR-10, MNIST and Fashion-MNIST from files already on disk: ``--data-dir`` first, then Keras' cache.

Nothing is downloaded. Keras keeps its downloads in ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``);
this module reads the files Keras 2 and Keras 3 leave there, the official archives, and for CIFAR-10 an image
folder or a tar of one (``train/<class>/*.jpg``).
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from autodnn.datasets._dataset import RawData, one_line
from autodnn.datasets._images import is_tar, load_images
from autodnn.datasets._unpickle import restricted_load
from autodnn.errors import DatasetError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

_CIFAR_BATCH_DIRS = ("cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py")
_CIFAR_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz", "cifar-10-batches-py-target_archive")
_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def keras_datasets_dir() -> Path:
    """Keras' download cache: ``$KERAS_HOME/datasets`` if ``KERAS_HOME`` is set, else ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path("~/.keras")).expanduser() / "datasets"


def search_dirs(data_dir: str | Path | None) -> list[Path]:
    """Folders searched for built-in datasets, in order: ``data_dir`` (if given), then Keras' cache.

    Raises:
        DatasetError: ``data_dir`` is given but is not a folder.
    """
    dirs = []
    if data_dir is not None:
        folder = Path(data_dir).expanduser().absolute()
        if not folder.is_dir():
            raise DatasetError(f"--data-dir {data_dir} is not a folder; pass the folder that holds the dataset files")
        dirs.append(folder)
    dirs.append(keras_datasets_dir())
    return dirs


def load_cifar10(data_dir: str | Path | None) -> RawData:
    """Reads CIFAR-10 from the official batches (extracted or archived), an image folder or a tar of one.

    Raises:
        DatasetError: Nothing usable is found, or what is found cannot be read.
    """
    dirs = search_dirs(data_dir)
    for folder in dirs:
        found = _find_cifar10(folder)
        if found is not None:
            return found()
    raise _not_found("cifar10", "cifar-10-python.tar.gz (or an image folder / tar of one)", dirs)


def load_mnist(data_dir: str | Path | None) -> RawData:
    """Reads MNIST from Keras' ``mnist.npz``.

    Raises:
        DatasetError: ``mnist.npz`` is not found, or is not Keras' file.
    """
    dirs = search_dirs(data_dir)
    for folder in dirs:
        if (folder / "mnist.npz").is_file():
            return _read_mnist_npz(folder / "mnist.npz")
    raise _not_found("mnist", "mnist.npz", dirs)


def load_fashion_mnist(data_dir: str | Path | None) -> RawData:
    """Reads Fashion-MNIST from its four IDX ``.gz`` files, in ``fashion-mnist/`` or directly in a folder.

    Raises:
        DatasetError: The files are not found, or are not IDX files.
    """
    dirs = search_dirs(data_dir)
    for folder in dirs:
        for candidate in (folder / "fashion-mnist", folder):
            if all((candidate / name).is_file() for name in FASHION_MNIST_FILES):
                x_train, y_train, x_test, y_test = (_read_idx(candidate / name) for name in FASHION_MNIST_FILES)
                return _image_parts("fashion_mnist", x_train, y_train, x_test, y_test, FASHION_MNIST_CLASSES,
                                    source=str(candidate))
    raise _not_found("fashion_mnist", ", ".join(FASHION_MNIST_FILES), dirs, subdir="fashion-mnist")


def _not_found(name: str, what: str, dirs: list[Path], subdir: str = "") -> DatasetError:
    searched = ", ".join(str(d) for d in dirs)
    place = keras_datasets_dir() / subdir if subdir else keras_datasets_dir()
    return DatasetError(f"{name} not found offline: put {what} in {place} or pass --data-dir DIR "
                        f"(searched {searched})")


def _find_cifar10(folder: Path) -> Callable[[], RawData] | None:
    """Returns a reader for the first CIFAR-10 copy in ``folder``, or ``None``."""
    for name in _CIFAR_BATCH_DIRS:
        if (folder / name / "data_batch_1").is_file():
            return partial(_read_cifar_dir, folder / name)
    for name in _CIFAR_ARCHIVES:
        if (folder / name).is_file():
            return partial(_read_cifar_tar, folder / name)
    candidates = [p for p in sorted(folder.iterdir()) if _looks_like_cifar10(p.name)] if folder.is_dir() else []
    for path in candidates:
        if path.is_dir() and _has_train(path):
            return partial(load_images, path)
        if path.is_file() and is_tar(path):
            return partial(_read_cifar_archive, path)
    if (folder / "train").is_dir():
        return partial(load_images, folder)
    return None


def _read_cifar_archive(path: Path) -> RawData:
    """Reads a tar archive of either the official batches or an image folder."""
    return _read_cifar_tar(path) if _holds_batches(path) else load_images(path)


def _has_train(path: Path) -> bool:
    """Whether ``path`` holds ``train/``, directly or inside one of its folders."""
    return (path / "train").is_dir() or any((sub / "train").is_dir() for sub in path.iterdir() if sub.is_dir())


def _looks_like_cifar10(name: str) -> bool:
    squeezed = re.sub(r"[-_ ]", "", name.lower())
    return squeezed.startswith("cifar10") and not squeezed.startswith("cifar100")


def _holds_batches(path: Path) -> bool:
    """Whether the first file of a tar archive is a CIFAR batch (else the archive is taken for images)."""
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if member.isfile():
                    return PurePosixPath(member.name).name in (*_CIFAR_BATCHES, "batches.meta", "readme.html")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"cifar10: cannot read the tar archive {path} ({one_line(exc)}); "
                           "check that the file is complete") from None
    return False


def _read_cifar_dir(path: Path) -> RawData:
    objects: dict[str, Any] = {}
    for name in (*_CIFAR_BATCHES, "batches.meta"):
        file = path / name
        if file.is_file():
            try:
                with open(file, "rb") as handle:
                    objects[name] = restricted_load(handle, str(file))
            except OSError as exc:
                raise DatasetError(f"cifar10: cannot read {file} ({one_line(exc)})") from None
    return _cifar_from_batches(objects, path)


def _read_cifar_tar(path: Path) -> RawData:
    objects: dict[str, Any] = {}
    wanted = (*_CIFAR_BATCHES, "batches.meta")
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        objects[name] = restricted_load(handle, f"{path}:{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"cifar10: cannot read the tar archive {path} ({one_line(exc)}); "
                           "check that the file is complete") from None
    return _cifar_from_batches(objects, path)


def _cifar_from_batches(objects: dict[str, Any], path: Path) -> RawData:
    missing = [name for name in _CIFAR_BATCHES if name not in objects]
    if missing:
        raise DatasetError(f"cifar10: {path} lacks {', '.join(missing)}; it should hold data_batch_1..5 and "
                           "test_batch, as the official cifar-10-python.tar.gz does")
    parts = [_cifar_batch(objects[name], f"{path}:{name}") for name in _CIFAR_BATCHES]
    x_train = np.concatenate([x for x, _ in parts[:5]])
    y_train = np.concatenate([y for _, y in parts[:5]])
    classes = _cifar_class_names(objects.get("batches.meta"))
    return _image_parts("cifar10", x_train, y_train, parts[5][0], parts[5][1], classes, source=str(path))


def _cifar_batch(batch: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(pixels (n, 32, 32, 3) uint8, labels)`` of one batch dict."""
    if not isinstance(batch, dict):
        raise DatasetError(f"cifar10: {where} is not a CIFAR batch (a {type(batch).__name__}, not a dict)")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072
            or labels is None or len(labels) != len(data)):
        raise DatasetError(f"cifar10: {where} is not a CIFAR batch: expected 'data' as uint8 rows of 3072 bytes "
                           "and one label per row; replace it with the official cifar-10-python.tar.gz")
    pixels = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(pixels), np.asarray(labels, dtype=np.int64)


def _cifar_class_names(meta: Any) -> tuple[str, ...]:
    names = _get(meta, "label_names") if isinstance(meta, dict) else None
    if not names:
        return CIFAR10_CLASSES
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names)


def _get(batch: dict[Any, Any], key: str) -> Any:
    return batch.get(key.encode(), batch.get(key))


def _read_mnist_npz(path: Path) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as stored:
            x_train, y_train, x_test, y_test = (stored[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    except KeyError:
        raise DatasetError(f"mnist: {path} lacks x_train, y_train, x_test or y_test; replace it with Keras' "
                           "mnist.npz") from None
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise DatasetError(f"mnist: cannot read {path} ({one_line(exc)}); replace it with Keras' mnist.npz") from None
    return _image_parts("mnist", x_train, y_train, x_test, y_test, tuple(str(d) for d in range(10)),
                        source=str(path))


def _read_idx(path: Path) -> np.ndarray:
    """Reads a gzipped IDX file (the MNIST format) of unsigned bytes."""
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"cannot read {path} ({one_line(exc)}); replace it with the original file") from None
    ndim = data[3] if len(data) >= 4 else 0
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or ndim == 0:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes; replace it with the original file")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise DatasetError(f"{path} is truncated: its header promises shape {shape}; replace it with the original file")
    return values.reshape(shape)


def _image_parts(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 class_names: tuple[str, ...], *, source: str) -> RawData:
    """Checks the arrays of a built-in image dataset and adds the channel axis of grayscale images."""
    x_train, x_test = (x[..., None] if x.ndim == 3 else x for x in (x_train, x_test))
    y_train, y_test = (np.asarray(y).reshape(-1).astype(np.int64) for y in (y_train, y_test))
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim != 4 or len(x) != len(y) or (len(y) and (y.min() < 0 or
                                                                                  y.max() >= len(class_names))):
            raise DatasetError(f"{name}: {source} holds arrays of unexpected shape or type ({x.dtype} {x.shape}, "
                               f"{len(y)} labels); replace it with the original file")
    return RawData(x_train, y_train, x_test, y_test, tuple(class_names), source=source)
