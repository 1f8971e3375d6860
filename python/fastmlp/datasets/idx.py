"""Reader for the IDX format of MNIST-like datasets, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type, ``NN``
the number of dimensions), ``NN`` big-endian uint32 dimension sizes, then the elements
in C order, big-endian. Everything is checked: the magic number, the dimensions
(optionally against an expected shape), their size against a limit, and the exact
length, so a truncated, padded, oversized or wrong file raises :class:`IDXFormatError`
with the file's name in the message.

The header is parsed from the first bytes of the (decompressed) stream and checked
before any data is read. The data then goes, a bounded chunk at a time, into an array
allocated at exactly the declared size, and reading stops at the first inconsistency:
the stream ending early, or one byte more than declared. So a file costs at most the
memory its header declares (never more than ``max_bytes``) plus one chunk, and a file
that lies about its size fails after reading no more than it actually holds. Only
regular files are read: a pipe or device is refused before reading. The result is
writable and in native byte order.
"""

from __future__ import annotations

import gzip
import io
import math
import numbers
import os
import zlib
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

from ._errors import IDXFormatError
from ._files import open_regular

__all__ = ["MAX_DATA_BYTES", "IDXFormatError", "parse_idx", "read_idx"]

#: IDX element type code -> big-endian NumPy dtype.
_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NDIM = 16  # far beyond any real IDX file; stops a garbage header early
#: Default limit on the data size an IDX header may declare, in bytes (2 GiB): far above
#: the MNIST family (47 MB for MNIST's training images), far below what a lying header
#: can claim (a uint32 image count alone reaches 3.4 TB of 28x28 images).
MAX_DATA_BYTES = 1 << 31
# Largest single read: decompression output never exceeds it per call, so a gzip stream
# costs the array it fills plus one chunk, however far it would expand.
_CHUNK = 1 << 20

ShapeSpec = Sequence[Optional[int]]
DTypeSpec = Union[npt.DTypeLike, None]
PathLike = Union[str, "os.PathLike[str]"]


def read_idx(
    path: PathLike,
    *,
    dtype: DTypeSpec = None,
    shape: ShapeSpec | None = None,
    max_bytes: int = MAX_DATA_BYTES,
) -> npt.NDArray[Any]:
    """Read an IDX file (plain or gzip, detected from its first bytes).

    Args:
        path: the file; it must be a regular file (not a pipe or device).
        dtype: if given, the element type the file must declare (e.g. ``np.uint8``).
        shape: if given, the shape the file must declare; ``None`` entries match any
            size, e.g. ``(None, 28, 28)``.
        max_bytes: the most data bytes the header may declare (default
            :data:`MAX_DATA_BYTES`, 2 GiB); a zero dimension counts as one here, so it
            cannot excuse absurd other dimensions. Checked before any data is read.

    Raises:
        IDXFormatError: malformed file, a header declaring more than ``max_bytes``, or
            not the expected type or shape.
        OSError: the file cannot be opened or read, or is not a regular file.
    """
    name = os.fspath(path)
    limit = _check_max_bytes(max_bytes)
    with open_regular(name) as raw:
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            return _read_gzip(raw, name, dtype, shape, limit)
        size = os.fstat(raw.fileno()).st_size
        raw.seek(0)
        return _read_stream(raw, name, size, dtype, shape, limit)


def parse_idx(
    data: bytes,
    name: str,
    *,
    dtype: DTypeSpec = None,
    shape: ShapeSpec | None = None,
    max_bytes: int = MAX_DATA_BYTES,
) -> npt.NDArray[Any]:
    """Parse IDX content held in memory (plain or gzip); ``name`` is used in errors.

    The arguments and errors are those of :func:`read_idx`.
    """
    limit = _check_max_bytes(max_bytes)
    stream = io.BytesIO(data)
    if data[:2] == _GZIP_MAGIC:
        return _read_gzip(stream, name, dtype, shape, limit)
    return _read_stream(stream, name, len(data), dtype, shape, limit)


def _check_max_bytes(max_bytes: int) -> int:
    given: object = max_bytes  # validated here: users pass anything
    if isinstance(given, bool) or not isinstance(given, numbers.Integral) or int(given) < 0:
        raise ValueError(
            f"`max_bytes` must be a non-negative integer. Received: max_bytes={max_bytes!r}"
        )
    return int(given)


def _read_gzip(
    raw: io.BufferedIOBase,
    name: str,
    dtype: DTypeSpec,
    shape: ShapeSpec | None,
    max_bytes: int,
) -> npt.NDArray[Any]:
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            return _read_stream(stream, name, None, dtype, shape, max_bytes)
    except EOFError as exc:
        raise IDXFormatError(f"{name}: truncated gzip data ({exc})") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise IDXFormatError(f"{name}: corrupt gzip data ({exc})") from None


def _describe(dtype: np.dtype[Any], ndim: int) -> str:
    """``0x00000803 (uint8, 3 dimensions)`` for a native dtype and a dimension count."""
    code = next((c for c, t in _TYPES.items() if t.newbyteorder("=") == dtype), None)
    magic = "0x????????" if code is None else f"0x{code << 8 | ndim:08x}"
    plural = "" if ndim == 1 else "s"
    return f"{magic} ({dtype.name}, {ndim} dimension{plural})"


def _read_exact(stream: io.BufferedIOBase, n: int, name: str, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise IDXFormatError(
            f"{name}: truncated: file ends inside the {what} ({len(data)} of {n} bytes)"
        )
    return data


def _read_header(
    stream: io.BufferedIOBase, name: str, dtype: DTypeSpec, shape: ShapeSpec | None
) -> tuple[np.dtype[Any], tuple[int, ...]]:
    magic = _read_exact(stream, 4, name, "4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{name}: not an IDX file: magic number 0x{magic.hex()} "
            "(an IDX magic number starts with two zero bytes)"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code not in _TYPES:
        raise IDXFormatError(f"{name}: unknown IDX element type 0x{type_code:02x}")
    if not 1 <= ndim <= _MAX_NDIM:
        raise IDXFormatError(f"{name}: implausible number of dimensions {ndim}")
    file_dtype = _TYPES[type_code]
    native = file_dtype.newbyteorder("=")
    want_dtype = native if dtype is None else np.dtype(dtype)
    want_ndim = ndim if shape is None else len(shape)
    if want_dtype != native or want_ndim != ndim:
        raise IDXFormatError(
            f"{name}: wrong magic number: expected {_describe(want_dtype, want_ndim)}, "
            f"found {_describe(native, ndim)}"
        )
    raw_dims = _read_exact(stream, 4 * ndim, name, "dimension sizes")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    if shape is not None and any(w is not None and w != d for w, d in zip(shape, dims)):
        want = "(" + ", ".join("*" if w is None else str(w) for w in shape) + ")"
        raise IDXFormatError(f"{name}: wrong dimensions: expected {want}, found {dims}")
    return file_dtype, dims


def _truncated(name: str, dims: tuple[int, ...], nbytes: int, found: int) -> IDXFormatError:
    return IDXFormatError(
        f"{name}: truncated: the header declares shape {dims} = {nbytes} data bytes, "
        f"the file has {found}"
    )


def _too_large(
    name: str, dims: tuple[int, ...], file_dtype: np.dtype[Any], span: int, max_bytes: int
) -> IDXFormatError:
    zero = " (each zero dimension counted as 1)" if 0 in dims else ""
    return IDXFormatError(
        f"{name}: the header declares shape {dims} of {file_dtype.newbyteorder('=').name} = "
        f"{span} data bytes{zero}, more than the limit max_bytes={max_bytes}"
    )


def _read_stream(
    stream: io.BufferedIOBase,
    name: str,
    total_size: int | None,
    dtype: DTypeSpec,
    shape: ShapeSpec | None,
    max_bytes: int,
) -> npt.NDArray[Any]:
    file_dtype, dims = _read_header(stream, name, dtype, shape)
    # Python integers: the products are exact, so no wrap-around can make a huge shape
    # look small. The zero-as-one span keeps NumPy from ever seeing an absurd shape.
    count = math.prod(dims)
    span = math.prod(max(d, 1) for d in dims) * file_dtype.itemsize
    if span > max_bytes:
        raise _too_large(name, dims, file_dtype, span, max_bytes)
    nbytes = count * file_dtype.itemsize
    header_len = 4 + 4 * len(dims)
    if total_size is not None and total_size - header_len != nbytes:
        found = total_size - header_len
        problem = "truncated" if found < nbytes else "unexpected trailing bytes"
        raise IDXFormatError(
            f"{name}: {problem}: the header declares shape {dims} of "
            f"{file_dtype.newbyteorder('=').name} = {nbytes} data bytes, the file has {found}"
        )
    # Pages of the array are committed as they are filled, so a stream that ends early
    # has cost only what it held.
    out = np.empty(count, dtype=file_dtype)
    view = out.data.cast("B")
    filled = 0
    while filled < nbytes:
        got = stream.readinto(view[filled : filled + _CHUNK])
        if not got:
            raise _truncated(name, dims, nbytes, filled)
        filled += got
    if stream.read(1):
        raise IDXFormatError(
            f"{name}: unexpected trailing bytes after the {nbytes} data bytes "
            f"declared by the header (shape {dims})"
        )
    if not file_dtype.isnative:
        # In place: a copy would double the peak memory of a multi-byte file.
        out = out.byteswap(inplace=True).view(file_dtype.newbyteorder("="))
    return out.reshape(dims)
