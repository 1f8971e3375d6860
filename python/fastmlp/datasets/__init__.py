"""Datasets for examples and benchmarks, loaded like ``keras.datasets``.

>>> from fastmlp.datasets import mnist
>>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP

Both loaders return uint8 arrays: images ``(n, 28, 28)``, labels ``(n,)``. They read
local IDX files, a cache, the published files (downloaded and checksum-verified), or a
local fallback, in that order; see :mod:`fastmlp.datasets.mnist` and
:mod:`fastmlp.datasets.fashion_mnist`. :func:`read_idx` reads any IDX file.
"""

from __future__ import annotations

from . import fashion_mnist, mnist
from ._errors import ChecksumError, DatasetNotFoundError, IDXFormatError, UnsafePickleError
from .idx import parse_idx, read_idx

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "UnsafePickleError",
    "fashion_mnist",
    "mnist",
    "parse_idx",
    "read_idx",
]
