"""Image folders and tar archives of them, laid out as ``train/<class>/*`` and optionally ``test/<class>/*``.

The layout may sit under one top-level folder (``cifar10/train/cat/0001.jpg``). Class names are the sorted
folder names of ``train/``. Examples are ordered by their path inside the layout, so a folder and a tar of it
give the same arrays. Decoding tens of thousands of small JPEG files takes a while, so the decoded uint8
arrays are cached in an ``.npz`` file under :func:`cache_dir`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from autodnn.datasets._dataset import RawData, one_line
from autodnn.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
SPLITS = ("train", "test")

_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_CACHE_VERSION = 1
_LOG = logging.getLogger(__name__)

Wants = Callable[[str], "tuple[str, str, str] | None"]


def is_tar(path: Path) -> bool:
    """Whether ``path`` names a tar archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``)."""
    name = path.name.lower()
    return name.endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz"))


def cache_dir() -> Path:
    """Returns the folder of decoded-image caches.

    That is ``$AUTODNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/autodnn``, else ``~/.cache/autodnn``.
    """
    if os.environ.get("AUTODNN_CACHE_DIR"):
        return Path(os.environ["AUTODNN_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "autodnn"
    return Path("~/.cache/autodnn").expanduser()


def load_images(path: Path) -> RawData:
    """Reads an image folder or a tar archive of one, through the decoded-image cache.

    Args:
        path: Absolute path of the folder or archive.

    Returns:
        uint8 pixels of shape ``(n, height, width, channels)``; channels is 3 (RGB) unless every image is
        grayscale, then 1.

    Raises:
        DatasetError: The layout holds no images, an image cannot be decoded, or the sizes differ.
    """
    key = _cache_key(path)
    cache_file = cache_dir() / f"images-{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.npz"
    raw = _read_cache(cache_file, key, path)
    if raw is None:
        collector = _Collector(path)
        members = _tar_members if path.is_file() else _folder_members
        for relpath, target, data in members(path, collector.wants):
            collector.add(relpath, target, data)
        raw = collector.finish()
        _write_cache(cache_file, key, raw)
    return raw


class _Collector:
    """Decodes the images of one layout and checks that they share one size."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._root: tuple[str, ...] | None = None
        self._items: dict[str, list[tuple[str, str, np.ndarray]]] = {split: [] for split in SPLITS}
        self._first: tuple[str, tuple[int, int]] | None = None

    def wants(self, relpath: str) -> tuple[str, str, str] | None:
        """Returns ``(split, class, path inside the layout)`` for an image file of the layout, else ``None``."""
        parts = tuple(p for p in relpath.split("/") if p not in ("", "."))
        if any(p.startswith(".") or p == "__MACOSX" for p in parts) or len(parts) < 3:
            return None
        if os.path.splitext(parts[-1])[1].lower() not in IMAGE_SUFFIXES:
            return None
        depth = next((i for i in (0, 1) if len(parts) > i + 2 and parts[i] in SPLITS), None)
        if depth is None:
            return None
        root = parts[:depth]
        if self._root is None:
            self._root = root
        elif root != self._root:
            raise DatasetError(f"images:{self._path} holds train/ or test/ folders both under "
                               f"'{'/'.join(self._root) or '.'}' and '{'/'.join(root) or '.'}'; keep one layout")
        return parts[depth], parts[depth + 1], "/".join(parts[depth:])

    def add(self, relpath: str, target: tuple[str, str, str], data: bytes) -> None:
        """Decodes one file of the layout; ``target`` is what :meth:`wants` returned for ``relpath``."""
        split, label, inner = target
        pixels = self._decode(data, relpath)
        size = (pixels.shape[1], pixels.shape[0])
        if self._first is None:
            self._first = (relpath, size)
        elif size != self._first[1]:
            (first, (w, h)) = self._first
            raise DatasetError(f"images:{self._path}: {relpath} is {size[0]}x{size[1]} pixels but {first} is "
                               f"{w}x{h}; every image must have the same size, so resize them first")
        self._items[split].append((inner, label, pixels))

    def _decode(self, data: bytes, relpath: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.mode in _GRAY_MODES:
                    image = image if image.mode == "L" else image.convert("L")
                elif image.mode != "RGB":
                    image = image.convert("RGB")
                return np.asarray(image, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"images:{self._path}: cannot decode {relpath} ({one_line(exc)}); "
                               "remove or replace that file") from None

    def finish(self) -> RawData:
        """Stacks the decoded images into arrays ordered by path."""
        train, test = self._items["train"], self._items["test"]
        if not train:
            raise DatasetError(f"images:{self._path} holds no images under train/<class>/; expected files like "
                               "train/cat/0001.jpg (and optionally test/cat/0001.jpg), possibly inside one folder")
        class_names = tuple(sorted({label for _, label, _ in train}))
        unknown = sorted({label for _, label, _ in test} - set(class_names))
        if unknown:
            raise DatasetError(f"images:{self._path}: test/ has classes without train/ folder: "
                               f"{', '.join(unknown)}; add training images for them or remove them from test/")
        gray = all(p.ndim == 2 for _, _, p in train + test)
        index = {name: i for i, name in enumerate(class_names)}

        def stack(items: list[tuple[str, str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
            items.sort(key=lambda item: item[0])
            pixels = [p[..., None] if gray else _to_rgb(p) for _, _, p in items]
            return np.stack(pixels), np.array([index[label] for _, label, _ in items], dtype=np.int64)

        x_train, y_train = stack(train)
        x_test, y_test = stack(test) if test else (None, None)
        return RawData(x_train, y_train, x_test, y_test, class_names, source=str(self._path))


def _to_rgb(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels[..., None], 3, axis=-1) if pixels.ndim == 2 else pixels


def _folder_members(path: Path, wants: Wants) -> Iterator[tuple[str, tuple[str, str, str], bytes]]:
    """Yields the image files of a folder that ``wants`` accepts, in sorted order."""
    for relpath in _folder_files(path):
        target = wants(relpath)
        if target is not None:
            try:
                data = (path / relpath).read_bytes()
            except OSError as exc:
                raise DatasetError(f"images:{path}: cannot read {relpath} ({one_line(exc)})") from None
            yield relpath, target, data


def _folder_files(path: Path) -> list[str]:
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        rel = Path(dirpath).relative_to(path)
        files.extend((rel / name).as_posix() for name in sorted(filenames))
    return files


def _tar_members(path: Path, wants: Wants) -> Iterator[tuple[str, tuple[str, str, str], bytes]]:
    """Yields the files of a tar archive that ``wants`` accepts, streaming in archive order, never seeking back."""
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                target = wants(member.name) if member.isfile() else None
                if target is not None:
                    handle = tar.extractfile(member)
                    yield member.name, target, handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"images:{path}: cannot read the tar archive ({one_line(exc)}); "
                           "check that the file is a complete .tar or .tar.gz") from None


def _cache_key(path: Path) -> str:
    """Identifies the content of a file (path, size, mtime) or of a folder (the same for each file)."""
    h = hashlib.sha256(f"v{_CACHE_VERSION}|{path}".encode())
    try:
        files = [""] if path.is_file() else _folder_files(path)
        for relpath in files:
            stat = (path / relpath).stat() if relpath else path.stat()
            h.update(f"|{relpath}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    except OSError as exc:
        raise DatasetError(f"images:{path}: cannot read ({one_line(exc)})") from None
    return h.hexdigest()


def _read_cache(cache_file: Path, key: str, path: Path) -> RawData | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            x_train, y_train = stored["x_train"], stored["y_train"]
            x_test = stored["x_test"] if "x_test" in stored.files else None
            y_test = stored["y_test"] if "y_test" in stored.files else None
            class_names = tuple(str(name) for name in stored["class_names"])
        _check_cached(x_train, y_train, x_test, y_test, len(class_names))
    # A cache is only a shortcut: whatever is wrong with it (truncated, foreign, older layout), read the source.
    except Exception as exc:  # noqa: BLE001 - any unusable cache is skipped
        _LOG.info("ignoring unusable image cache %s: %s", cache_file, one_line(exc))
        return None
    return RawData(x_train, y_train, x_test, y_test, class_names, source=str(path))


def _check_cached(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray | None,
                  y_test: np.ndarray | None, n_classes: int) -> None:
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if x is None and y is None:
            continue
        if x is None or y is None or x.dtype != np.uint8 or x.ndim != 4 or y.shape != (len(x),):
            raise ValueError("arrays of unexpected shape or type")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError("labels out of range")


def _write_cache(cache_file: Path, key: str, raw: RawData) -> None:
    arrays: dict[str, Any] = {"key": np.array(key), "x_train": raw.x_train, "y_train": raw.y_train,
              "class_names": np.array(raw.class_names, dtype=str)}
    if raw.x_test is not None and raw.y_test is not None:
        arrays.update(x_test=raw.x_test, y_test=raw.y_test)
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, cache_file)
    except OSError as exc:
        _LOG.warning("cannot write the image cache %s: %s", cache_file, one_line(exc))
        tmp.unlink(missing_ok=True)
