"""Reading a fastmlp model file's members within declared, checked bounds.

The file is opened only if it is a regular file; the zip directory is sized before zipfile reads
it; every member's declared size is checked against the archive's size and the limits in
``_model_file_format`` before it is read, and a member is read in bounded chunks that stop at
its declared size. JSON is parsed with bounded integers and no NaN; an ``.npy`` member's header is
parsed (no evaluation) and its shape checked against the member's size before its data is
allocated. Every problem becomes a ``FileFormatError`` naming the file.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, NoReturn, Optional

import numpy as np

from ._model_file_format import (
    ARRAY_NAME,
    FORMAT,
    MANIFEST,
    MAX_DIRECTORY_BYTES,
    MAX_INFLATION_RATIO,
    MAX_JSON_BYTES,
    MAX_JSON_INT_DIGITS,
    MAX_NPY_HEADER_BYTES,
    MIN_INFLATION_ALLOWANCE,
    READ_CHUNK_BYTES,
    VERSION,
    FileFormatError,
)

# What zipfile raises (or lets through from zlib, struct and the file) on a damaged archive.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    struct.error,
    zlib.error,
)
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
# General-purpose flag bits zipfile cannot read: encrypted (0), patched data (5), strong
# encryption (6).
_UNREADABLE_FLAGS = 0x1 | 0x20 | 0x40

_END_RECORD = struct.Struct("<4s4H2LH")  # the end of central directory record
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")

_NPY_MAGIC = b"\x93NUMPY"
_NPY_ITEM = r"'(descr|fortran_order|shape)'\s*:\s*('[^']*'|True|False|\((?:\s*\d{1,19}\s*,)*(?:\s*\d{1,19}\s*)?\))"
_NPY_HEADER = re.compile(rf"\{{\s*(?:{_NPY_ITEM}\s*,\s*){{2}}{_NPY_ITEM}\s*,?\s*\}}\s*")
_NPY_ITEMS = re.compile(_NPY_ITEM)
_NPY_DESCR = re.compile(r"[<>|=]?f\d{1,2}")


def open_regular_file(path: str) -> IO[bytes]:
    """``path`` opened for reading if it is a regular file. A FIFO would block ``open()`` and a
    device would never end, so the type is checked before opening, and again on the opened
    descriptor in case the path changed in between (opened non-blocking, so that a FIFO put
    there meanwhile cannot block either)."""
    status = os.stat(path)  # FileNotFoundError, PermissionError, as open() raises them
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(status.st_mode):
        _not_regular(path, status.st_mode)
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"):
        flags |= getattr(os, name, 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            _not_regular(path, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_regular(path: str, mode: int) -> NoReturn:
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    kind = next((text for test, text in kinds if test(mode)), "an unknown kind of file")
    raise FileFormatError(f"{path!r}: not a fastmlp file ({kind}, not a regular file)")


@dataclass(frozen=True)
class ArrayHeader:
    """An ``.npy`` member's header: its data is ``prod(shape)`` items from ``offset`` to the end."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int


class ModelFileReader:
    """A zip archive whose directory and manifest were checked; reads members within bounds."""

    def __init__(self, handle: IO[bytes], label: str, format_name: str = FORMAT) -> None:
        """Takes ``handle`` over: closes it on failure here, else in ``close()``. An archive of
        another ``format_name`` (``"Keras"``) has no fastmlp manifest: its ``kind`` is None."""
        self.label = label
        self._handle = handle
        self._what = f"a {format_name} file"
        try:
            size = self._open_archive()
            self.members = self._check_members(size)
            self.kind = self._check_manifest() if format_name == FORMAT else None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        archive = getattr(self, "_archive", None)
        if archive is not None:
            archive.close()
        self._handle.close()

    def fail(self, problem: str, cause: Optional[BaseException] = None) -> NoReturn:
        raise FileFormatError(f"{self.label}: {problem}") from cause

    # ------------------------------------------------------------ directory

    def _open_archive(self) -> int:
        """Open the zip archive once its directory is known to be of bounded size; its size."""
        try:
            size = self._handle.seek(0, io.SEEK_END)
            extent = _directory_extent(self._handle, size)
            if extent is None:
                self.fail(f"not {self._what} (not a zip archive)")
            entries, directory = extent
            if directory > MAX_DIRECTORY_BYTES:
                self.fail(f"not {self._what} (a zip directory of {directory} bytes; the limit is {MAX_DIRECTORY_BYTES})")
            self._handle.seek(0)
            self._archive = zipfile.ZipFile(self._handle)
        except _ZIP_ERRORS as error:
            if isinstance(error, FileFormatError):
                raise
            self.fail(f"not {self._what} (not a readable zip archive: {error})", error)
        listed = len(self._archive.infolist())
        if listed != entries:  # zipfile reads entries by the directory's size, not its count
            self.fail(f"corrupted (its zip directory lists {listed} members, its end record {entries})")
        return size

    def _check_members(self, size: int) -> dict[str, zipfile.ZipInfo]:
        members: dict[str, zipfile.ZipInfo] = {}
        stored = declared = 0
        for info in self._archive.infolist():
            name = info.filename
            if name in members:
                self.fail(f"corrupted (member {name!r} appears twice)")
            members[name] = info
            if info.flag_bits & _UNREADABLE_FLAGS:
                self.fail(f"member {name!r} is encrypted or patched; fastmlp reads neither")
            if info.compress_type not in _METHODS:
                self.fail(f"member {name!r} uses zip compression method {info.compress_type}; only stored and deflated members are read")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                self.fail(f"corrupted (stored member {name!r} declares {info.file_size} bytes in {info.compress_size})")
            if info.header_offset < 0 or info.header_offset + info.compress_size > size:
                self.fail(f"corrupted (member {name!r} extends past the end of the file)")
            stored += info.compress_size
            declared += info.file_size
        if stored > size:
            self.fail("corrupted (its members overlap: they hold more bytes than the file)")
        allowance = MAX_INFLATION_RATIO * size + MIN_INFLATION_ALLOWANCE
        if declared > allowance:
            self.fail(
                f"its members declare {declared} bytes in a {size}-byte file, over {MAX_INFLATION_RATIO} "
                "times its size (a decompression bomb, or a damaged directory)"
            )
        return members

    def _check_manifest(self) -> str:
        if MANIFEST not in self.members:
            self.fail("not a fastmlp file (no fastmlp manifest)")
        manifest = self.json(MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            self.fail("not a fastmlp file (no fastmlp manifest)")
        version = manifest.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.fail(f"not a fastmlp file (invalid format version {version!r})")
        if version > VERSION:
            self.fail(
                f"written in fastmlp file format version {version!r}; this fastmlp reads "
                f"up to version {VERSION}. Upgrade fastmlp to load it."
            )
        kind = manifest.get("kind")
        if kind not in ("model", "weights"):
            self.fail(f"not a fastmlp file (its manifest's kind is {kind!r}, not 'model' or 'weights')")
        return str(kind)

    def array_names(self, folder: str) -> list[str]:
        """The members ``folder/00000.npy``, ``folder/00001.npy``, ... in order; a gap is an error."""
        indices = sorted(
            int(match[2]) for match in map(ARRAY_NAME.fullmatch, self.members) if match and match[1] == folder
        )
        for expected, index in enumerate(indices):
            if index != expected:
                self.fail(f"incomplete (member '{folder}/{expected:05d}.npy' is missing)")
        return [f"{folder}/{index:05d}.npy" for index in indices]

    # ------------------------------------------------------------ members

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.members.get(name)
        if info is None:
            self.fail(f"incomplete (member {name!r} is missing)")
        return info

    def _open(self, name: str) -> IO[bytes]:
        info = self._info(name)
        try:
            return self._archive.open(info)
        except _ZIP_ERRORS as error:
            self.fail(f"corrupted member {name!r} ({error})", error)

    def _read_into(self, name: str, stream: IO[bytes], target: memoryview) -> None:
        """Fill ``target`` from ``stream`` in bounded chunks; the member must end exactly there."""
        filled = 0
        try:
            while filled < len(target):
                chunk = stream.read(min(READ_CHUNK_BYTES, len(target) - filled))
                if not chunk:
                    self.fail(f"corrupted member {name!r} (shorter than it declares)")
                target[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
            if stream.read(1):
                self.fail(f"corrupted member {name!r} (longer than it declares)")
        except _ZIP_ERRORS as error:
            if isinstance(error, FileFormatError):
                raise
            self.fail(f"corrupted member {name!r} ({error})", error)

    def read(self, name: str, limit: int) -> bytes:
        """A whole member of at most ``limit`` declared bytes."""
        info = self._info(name)
        if info.file_size > limit:
            self.fail(f"member {name!r} declares {info.file_size} bytes; the limit is {limit}")
        data = bytearray(info.file_size)
        with self._open(name) as stream:
            self._read_into(name, stream, memoryview(data))
        return bytes(data)

    def json(self, name: str) -> Any:
        """A JSON member: integers of bounded length, no NaN or infinity."""
        text = self.read(name, MAX_JSON_BYTES)
        try:
            return json.loads(text.decode("utf-8"), parse_int=_bounded_int, parse_constant=_no_constant)
        except RecursionError as error:
            self.fail(f"corrupted member {name!r} (JSON nested too deeply)", error)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.fail(f"corrupted member {name!r} ({error})", error)

    def array_header(self, name: str) -> ArrayHeader:
        """The header of an ``.npy`` member, its data size checked against the member's size."""
        size = self._info(name).file_size
        with self._open(name) as stream:
            prefix = self._read_exactly(name, stream, 8)
            if prefix[:6] != _NPY_MAGIC or prefix[6] not in (1, 2, 3):
                self.fail(f"member {name!r} is not a plain array (not an .npy file)")
            major = prefix[6]
            length_format = "<H" if major == 1 else "<I"
            length_bytes = self._read_exactly(name, stream, struct.calcsize(length_format))
            (length,) = struct.unpack(length_format, length_bytes)
            if length > MAX_NPY_HEADER_BYTES:
                self.fail(f"member {name!r} has an .npy header of {length} bytes; the limit is {MAX_NPY_HEADER_BYTES}")
            raw = self._read_exactly(name, stream, length)
        header = _parse_npy_header(raw.decode("utf-8" if major == 3 else "latin-1", errors="replace"))
        if header is None:
            self.fail(f"member {name!r} is not a plain array (its header is not that of a float array)")
        dtype, shape, fortran_order = header
        offset = 8 + len(length_bytes) + length
        count = math.prod(shape)
        if offset + count * dtype.itemsize != size:
            self.fail(
                f"corrupted member {name!r} (its header declares {count} values of {dtype.itemsize} "
                f"bytes, the member holds {size - offset} bytes of data)"
            )
        return ArrayHeader(name, dtype, shape, fortran_order, offset)

    def _read_exactly(self, name: str, stream: IO[bytes], n: int) -> bytes:
        try:
            data = stream.read(n)
        except _ZIP_ERRORS as error:
            self.fail(f"corrupted member {name!r} ({error})", error)
        if len(data) != n:
            self.fail(f"corrupted member {name!r} (shorter than its header says)")
        return data

    def array(self, header: ArrayHeader, dtype: str) -> np.ndarray[Any, Any]:
        """The member's array, C-contiguous in ``dtype``; NaN or infinity (also from a value out of
        ``dtype``'s range) is an error."""
        raw = np.empty(header.dtype.itemsize * math.prod(header.shape), dtype=np.uint8)
        with self._open(header.name) as stream:
            self._read_exactly(header.name, stream, header.offset)
            self._read_into(header.name, stream, raw.data)
        values = raw.view(header.dtype).reshape(header.shape, order="F" if header.fortran_order else "C")
        with np.errstate(over="ignore"):
            array = np.asarray(values, dtype=dtype, order="C")  # ascontiguousarray makes 0-d 1-d
        if not np.isfinite(array).all():
            self.fail(f"member {header.name!r} holds NaN or infinity (or values beyond the range of {dtype})")
        return array


def _parse_npy_header(text: str) -> Optional[tuple[np.dtype[Any], tuple[int, ...], bool]]:
    """(dtype, shape, fortran_order) of a float array's header, read without evaluating it; None
    for anything else (object, structured or integer arrays, unknown keys)."""
    if _NPY_HEADER.fullmatch(text) is None:
        return None
    items = dict(_NPY_ITEMS.findall(text))
    if len(items) != 3 or _NPY_DESCR.fullmatch(items["descr"].strip("'")) is None:
        return None
    try:
        dtype = np.dtype(items["descr"].strip("'"))
    except TypeError:
        return None
    if dtype.kind != "f" or items["fortran_order"] not in ("True", "False") or not items["shape"].startswith("("):
        return None
    shape = tuple(int(dim) for dim in re.findall(r"\d+", items["shape"]))
    return dtype, shape, items["fortran_order"] == "True"


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (the limit is {MAX_JSON_INT_DIGITS})")
    return int(text)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number fastmlp writes")


def _directory_extent(handle: IO[bytes], size: int) -> Optional[tuple[int, int]]:
    """(members, bytes) of the zip directory as its end record declares them, or None for no end
    record. Finds the record the way zipfile does: first as the file's last 22 bytes (no
    comment), else as the last signature in the final 64 KiB, then a ZIP64 end record before it.
    """
    if size < _END_RECORD.size:
        return None
    handle.seek(size - _END_RECORD.size)
    record = handle.read(_END_RECORD.size)
    where = size - _END_RECORD.size
    if not (record[:4] == _END_SIGNATURE and record[-2:] == b"\0\0"):
        start = max(size - (1 << 16) - _END_RECORD.size, 0)
        handle.seek(start)
        tail = handle.read(size - start)
        found = tail.rfind(_END_SIGNATURE)
        if found < 0 or found + _END_RECORD.size > len(tail):
            return None
        record = tail[found : found + _END_RECORD.size]
        where = start + found
    fields = _END_RECORD.unpack(record)
    entries, directory = fields[4], fields[5]
    if where >= _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size:
        handle.seek(where - _ZIP64_LOCATOR.size)
        locator = handle.read(_ZIP64_LOCATOR.size)
        if locator[:4] == b"PK\x06\x07":
            handle.seek(where - _ZIP64_LOCATOR.size - _ZIP64_END_RECORD.size)
            end64 = _ZIP64_END_RECORD.unpack(handle.read(_ZIP64_END_RECORD.size))
            if end64[0] == b"PK\x06\x06":
                entries, directory = end64[7], end64[8]
    return entries, directory
