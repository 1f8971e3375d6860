"""Building damaged and hostile model files byte by byte, for the saving and fuzz tests.

``zip_bytes`` writes a zip archive from entries whose every field is given, so an entry can lie
about its size, checksum or compression method, as a hostile file would.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

import fastmlp as fm
import numpy as np

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
Y = np.array([0, 1])


def tiny_model() -> fm.Sequential:
    """A 3-4-2 model compiled with Adam (two slots per weight) and trained one step."""
    fm.utils.set_random_seed(7)
    model = fm.Sequential(
        [fm.layers.Input(shape=(3,)), fm.layers.Dense(4, activation="relu"), fm.layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer=fm.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.train_on_batch(X, Y)
    return model


@dataclass
class Entry:
    """One archive member as written: ``payload`` is the stored (maybe compressed) bytes."""

    name: str
    payload: bytes
    method: int = zipfile.ZIP_STORED
    size: Optional[int] = None  # declared uncompressed size; default: the payload's
    crc: Optional[int] = None  # default: the payload's (right for stored members)
    version: int = 20  # version needed to extract, times 10


def stored(name: str, content: bytes) -> Entry:
    return Entry(name, content)


def deflated(name: str, content: bytes) -> Entry:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(content) + compressor.flush()
    return Entry(name, payload, zipfile.ZIP_DEFLATED, size=len(content), crc=zlib.crc32(content))


def deflate_repeated(block: bytes, repeats: int) -> bytes:
    """A raw deflate stream of ``block`` repeated ``repeats`` times, built without inflating it
    all: after a full flush the compressor starts afresh, so every block compresses alike."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + again * (repeats - 1) + compressor.flush(zlib.Z_FINISH)


_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_DATE = 0x21  # 1980-01-01


def zip_bytes(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    directory = io.BytesIO()
    for entry in entries:
        name = entry.name.encode()
        size = len(entry.payload) if entry.size is None else entry.size
        crc = zlib.crc32(entry.payload) if entry.crc is None else entry.crc
        common = (entry.version, 0, entry.method, 0, _DATE, crc, len(entry.payload), size, len(name))
        offset = out.tell()
        out.write(_LOCAL.pack(b"PK\x03\x04", *common, 0) + name + entry.payload)
        directory.write(_CENTRAL.pack(b"PK\x01\x02", 20, *common, 0, 0, 0, 0, 0, offset) + name)
    start = out.tell()
    listing = directory.getvalue()
    out.write(listing + _END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(listing), start, 0))
    return out.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(data: bytes, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> bytes:
    """The archive ``data`` with its members changed (all stored)."""
    return zip_bytes([stored(name, content) for name, content in change(members(data)).items()])


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    return rezip(data, lambda m: {**m, name: content})


def without_members(data: bytes, *names: str) -> bytes:
    return rezip(data, lambda m: {k: v for k, v in m.items() if not any(k.startswith(n) for n in names)})


def edit_json(data: bytes, name: str, change: Callable[[Any], Any]) -> bytes:
    return with_member(data, name, json.dumps(change(json.loads(members(data)[name]))).encode())


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple[int, ...], body: bytes = b"", fortran: bool = False) -> bytes:
    """An .npy file (format 1.0) with this header and body, whether or not they agree."""
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin-1") + body


_LOADER = """
import json, resource, sys
import fastmlp as fm

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

fm.models.load_model(sys.argv[1])  # warm up: first-use imports and allocations
results = []
for path in sys.argv[2:]:
    before = peak_mib()
    try:
        fm.models.load_model(path)
        outcome = "loaded"
    except Exception as error:
        outcome = f"{type(error).__name__}: {error}"
    results.append((outcome, peak_mib() - before))
print(json.dumps(results))
"""


def load_in_subprocess(warm_up: str, paths: list[str], timeout: float = 100) -> list[tuple[str, float]]:
    """Load each file in turn in a fresh interpreter (Linux): for each, the outcome ("loaded" or
    "Type: message") and how far the peak resident memory grew, in MiB."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, warm_up, *paths], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [(outcome, growth) for outcome, growth in json.loads(done.stdout)]
