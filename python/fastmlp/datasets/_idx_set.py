"""The four standard IDX files of an MNIST-like dataset, found in one directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ._errors import DatasetNotFoundError, IDXFormatError
from ._splits import IMAGE_BYTES, IMAGE_SHAPE, MAX_EXAMPLES, Splits, check_splits
from .idx import parse_idx, read_idx

__all__ = ["FILE_NAMES", "find_idx_files", "load_idx_dir", "parse_idx_set"]

#: The standard names, in the order x_train, y_train, x_test, y_test; each file may
#: also be gzip-compressed with a ``.gz`` suffix.
FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def find_idx_files(directory: str | os.PathLike[str]) -> list[Path | None]:
    """Each standard file in ``directory`` (plain preferred over ``.gz``), or None."""
    base = Path(directory)
    found: list[Path | None] = []
    for stem in FILE_NAMES:
        candidates = (base / stem, base / f"{stem}.gz")
        found.append(next((p for p in candidates if p.is_file()), None))
    return found


def load_idx_dir(directory: str | os.PathLike[str]) -> Splits:
    """Read and validate the four standard IDX files in ``directory``.

    Raises:
        DatasetNotFoundError: the directory is missing or lacks some of the files.
        IDXFormatError: a file is malformed or does not fit the others (the message
            names the file).
    """
    base = Path(directory)
    if not base.is_dir():
        raise DatasetNotFoundError(f"{base}: not a directory")
    paths = find_idx_files(base)
    found = [p for p in paths if p is not None]
    if len(found) != len(paths):
        missing = [stem for stem, p in zip(FILE_NAMES, paths) if p is None]
        raise DatasetNotFoundError(
            f"{base}: missing {', '.join(missing)} (each may also end in .gz)"
        )
    arrays = [
        read_idx(path, dtype="uint8", shape=_shape(i), max_bytes=_max_bytes(i)) for i, path in enumerate(found)
    ]
    return check_splits(arrays, [str(p) for p in found], error=IDXFormatError)


def parse_idx_set(items: Sequence[tuple[str, bytes]]) -> Splits:
    """Parse the four standard files held in memory, as ``(name, content)`` pairs in
    the order of :data:`FILE_NAMES` (``name`` is used in errors, e.g. the URL)."""
    if len(items) != len(FILE_NAMES):
        raise ValueError(f"expected {len(FILE_NAMES)} files, got {len(items)}")
    arrays = [
        parse_idx(data, name, dtype="uint8", shape=_shape(i), max_bytes=_max_bytes(i))
        for i, (name, data) in enumerate(items)
    ]
    return check_splits(arrays, [name for name, _ in items], error=IDXFormatError)


def _shape(index: int) -> tuple[int | None, ...]:
    """Expected shape of file ``index``: images (any, 28, 28), labels (any,)."""
    return (None, *IMAGE_SHAPE) if index % 2 == 0 else (None,)


def _max_bytes(index: int) -> int:
    """Data size limit of file ``index``: :data:`MAX_EXAMPLES` images or labels."""
    return MAX_EXAMPLES * (IMAGE_BYTES if index % 2 == 0 else 1)
