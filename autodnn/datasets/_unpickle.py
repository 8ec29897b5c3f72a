"""A pickle reader that can build numpy arrays, lists, dicts, bytes and numbers, and nothing else.

CIFAR-10's official batches are pickles. Unpickling calls whatever the file names, so a file from elsewhere
could run any code; this reader refuses every global except the three numpy needs to rebuild an array.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

import numpy as np

from autodnn.datasets._dataset import one_line
from autodnn.errors import DatasetError


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only returns numpy's array builders.

    Args:
        file: Binary file to read the pickle from.
        where: Name of the file, for messages.
    """

    def __init__(self, file: IO[bytes], where: str) -> None:
        super().__init__(file, encoding="bytes")
        self._where = where
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global, or raises :class:`DatasetError` for any other."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DatasetError(f"refusing to unpickle {module}.{name} from {self._where}: a CIFAR batch holds "
                               "only numpy arrays, lists and bytes; the file is not what it claims to be, "
                               "so replace it with the official cifar-10-python.tar.gz") from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuses persistent ids, which a CIFAR batch never has."""
        raise DatasetError(f"refusing to unpickle a persistent id from {self._where}: not a CIFAR batch")


def restricted_load(file: IO[bytes], where: str) -> Any:
    """Reads one pickle from ``file`` with :class:`RestrictedUnpickler`.

    Args:
        file: Binary file to read.
        where: Name of the file, for messages.

    Returns:
        The unpickled object.

    Raises:
        DatasetError: The pickle names a global other than numpy's array builders, or is not a valid pickle.
    """
    try:
        return RestrictedUnpickler(file, where).load()
    except DatasetError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise DatasetError(f"cannot read {where}: not a valid pickle ({one_line(exc)}); "
                           "replace it with the official cifar-10-python.tar.gz") from None
