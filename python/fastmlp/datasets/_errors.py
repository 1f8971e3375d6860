"""Exception types of ``fastmlp.datasets``.

Each subclasses the built-in a caller would naturally catch: a malformed file is a
``ValueError``, a dataset that no source could supply is a ``FileNotFoundError``.
"""

from __future__ import annotations

import pickle

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "UnsafePickleError",
]


class IDXFormatError(ValueError):
    """An IDX file is malformed: bad magic number, dimensions, length or compression.

    The message always starts with the file's path (or URL).
    """


class ChecksumError(ValueError):
    """Downloaded or packaged data does not match its published checksum."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle referenced something other than NumPy's array reconstruction."""


class DatasetNotFoundError(FileNotFoundError):
    """No source could supply the dataset; the message lists every source tried and why."""
