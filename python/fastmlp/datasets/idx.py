"""Reader for the IDX format of MNIST-like datasets, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type, ``NN``
the number of dimensions), ``NN`` big-endian uint32 dimension sizes, then the elements
in C order, big-endian. Everything is checked: the magic number, the dimensions
(optionally against an expected shape) and the exact length, so a truncated, padded or
wrong file raises :class:`IDXFormatError` with the file's name in the message.

The data is read straight into a preallocated NumPy array (no Python loop per image,
no intermediate copy for uint8); the result is writable and in native byte order.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

from ._errors import IDXFormatError
from ._files import open_regular

__all__ = ["IDXFormatError", "parse_idx", "read_idx"]

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
_DIRECT_READ_LIMIT = 256 << 20  # MNIST's largest file is 47 MB
_CHUNK = 64 << 20

ShapeSpec = Sequence[Optional[int]]
DTypeSpec = Union[npt.DTypeLike, None]
PathLike = Union[str, "os.PathLike[str]"]


def read_idx(
    path: PathLike, *, dtype: DTypeSpec = None, shape: ShapeSpec | None = None
) -> npt.NDArray[Any]:
    """Read an IDX file (plain or gzip, detected from its first bytes).

    Args:
        path: the file; it must be a regular file (not a pipe or device).
        dtype: if given, the element type the file must declare (e.g. ``np.uint8``).
        shape: if given, the shape the file must declare; ``None`` entries match any
            size, e.g. ``(None, 28, 28)``.

    Raises:
        IDXFormatError: malformed file, or not the expected type or shape.
        OSError: the file cannot be opened or read, or is not a regular file.
    """
    name = os.fspath(path)
    with open_regular(name) as raw:
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            return _read_gzip(raw, name, dtype, shape)
        size = os.fstat(raw.fileno()).st_size
        raw.seek(0)
        return _read_stream(raw, name, size, dtype, shape)


def parse_idx(
    data: bytes, name: str, *, dtype: DTypeSpec = None, shape: ShapeSpec | None = None
) -> npt.NDArray[Any]:
    """Parse IDX content held in memory (plain or gzip); ``name`` is used in errors."""
    stream = io.BytesIO(data)
    if data[:2] == _GZIP_MAGIC:
        return _read_gzip(stream, name, dtype, shape)
    return _read_stream(stream, name, len(data), dtype, shape)


def _read_gzip(
    raw: io.BufferedIOBase, name: str, dtype: DTypeSpec, shape: ShapeSpec | None
) -> npt.NDArray[Any]:
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            return _read_stream(stream, name, None, dtype, shape)
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


def _read_stream(
    stream: io.BufferedIOBase,
    name: str,
    total_size: int | None,
    dtype: DTypeSpec,
    shape: ShapeSpec | None,
) -> npt.NDArray[Any]:
    file_dtype, dims = _read_header(stream, name, dtype, shape)
    count = 1
    for d in dims:
        count *= d
    nbytes = count * file_dtype.itemsize
    header_len = 4 + 4 * len(dims)
    if total_size is not None and total_size - header_len != nbytes:
        found = total_size - header_len
        problem = "truncated" if found < nbytes else "unexpected trailing bytes"
        raise IDXFormatError(
            f"{name}: {problem}: the header declares shape {dims} of "
            f"{file_dtype.newbyteorder('=').name} = {nbytes} data bytes, the file has {found}"
        )
    if total_size is None and nbytes > _DIRECT_READ_LIMIT:
        # Length unknown (gzip) and large: grow a buffer chunk by chunk, so a header that
        # claims terabytes fails as "truncated" instead of allocating them.
        buffer = bytearray()
        while len(buffer) < nbytes:
            chunk = stream.read(min(_CHUNK, nbytes - len(buffer)))
            if not chunk:
                raise _truncated(name, dims, nbytes, len(buffer))
            buffer += chunk
        out = np.frombuffer(buffer, dtype=file_dtype)
    else:
        out = np.empty(count, dtype=file_dtype)
        view = out.data.cast("B")
        filled = 0
        while filled < nbytes:
            got = stream.readinto(view[filled:])
            if not got:
                raise _truncated(name, dims, nbytes, filled)
            filled += got
    if stream.read(1):
        raise IDXFormatError(
            f"{name}: unexpected trailing bytes after the {nbytes} data bytes "
            f"declared by the header (shape {dims})"
        )
    if file_dtype.itemsize > 1:
        out = out.astype(file_dtype.newbyteorder("="))
    return out.reshape(dims)
