"""The on-disk cache: one uncompressed uint8 ``.npz`` per dataset, written atomically.

The cache lives in ``$FASTMLP_DATA`` if set, else ``$XDG_CACHE_HOME/fastmlp``, else
``~/.cache/fastmlp``. It is uncompressed on purpose: MNIST loads from it in a few tens
of milliseconds, where a compressed archive would spend about half a second in zlib.

Reading it is bounded like reading any other data: only a regular file is opened, and
the file and each of its four arrays must be within limits that a dataset of
:data:`~fastmlp.datasets._splits.MAX_EXAMPLES` examples per split fits, checked from the
zip directory before any array is read (a member is never inflated past the size its
directory entry declares).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ._files import open_regular
from ._splits import IMAGE_BYTES, KEYS, MAX_EXAMPLES, Splits, check_splits

__all__ = ["cache_dir", "cache_path", "load_cache", "save_cache"]

ENV_VAR = "FASTMLP_DATA"

# Limits. Each array: MAX_EXAMPLES images plus room for the .npy header (NumPy refuses
# headers over 10000 bytes). The file: two such image arrays, two label arrays of
# MAX_EXAMPLES bytes with their headers, and room for the zip's own records.
_MAX_MEMBER_BYTES = MAX_EXAMPLES * IMAGE_BYTES + (64 << 10)
_MAX_FILE_BYTES = 2 * _MAX_MEMBER_BYTES + 2 * (MAX_EXAMPLES + (64 << 10)) + (1 << 20)


def cache_dir() -> Path:
    """``$FASTMLP_DATA``, else ``$XDG_CACHE_HOME/fastmlp``, else ``~/.cache/fastmlp``."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fastmlp"


def cache_path(dataset: str) -> Path:
    """Where the cache of ``dataset`` (e.g. ``"mnist"``) lives."""
    return cache_dir() / f"{dataset}.npz"


def load_cache(path: Path) -> Splits:
    """Load and validate a cache file.

    Raises:
        FileNotFoundError: there is no cache yet.
        ValueError: the file exists but is unreadable or not a valid dataset; the
            caller treats that as a miss (and overwrites it later).
    """
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{path}: no cache file")
    try:
        # Our own file object: np.load leaks the one it opens when the zip is corrupt.
        with open_regular(path) as file:
            _check_sizes(file)
            file.seek(0)
            with np.load(file, allow_pickle=False) as archive:
                arrays = [archive[k] for k in KEYS]
        return check_splits(arrays, [f"{path}[{k}]" for k in KEYS])
    except Exception as exc:  # any failure to read the cache is a miss, never a crash
        raise ValueError(f"{path}: unusable cache: {type(exc).__name__}: {exc}") from exc


def _check_sizes(file: BinaryIO) -> None:
    """Refuse a file or array beyond the limits, and a missing array, reading nothing
    but the zip directory."""
    size = os.fstat(file.fileno()).st_size
    if size > _MAX_FILE_BYTES:
        raise ValueError(f"{size} bytes, more than the limit of {_MAX_FILE_BYTES}")
    with zipfile.ZipFile(file) as archive:  # the entries np.load will open
        names = set(archive.namelist())
        missing = [k for k in KEYS if f"{k}.npy" not in names]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        for key in KEYS:
            declared = archive.getinfo(f"{key}.npy").file_size
            if declared > _MAX_MEMBER_BYTES:
                raise ValueError(
                    f"{key}.npy declares {declared} bytes, "
                    f"more than the limit of {_MAX_MEMBER_BYTES}"
                )


def save_cache(path: Path, splits: Splits) -> None:
    """Write ``splits`` to ``path`` atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed,
    then renamed over ``path``: a reader sees the old file or the new one, never a
    partial one, and a failed write leaves an existing cache untouched.
    """
    (x_train, y_train), (x_test, y_test) = splits
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX); best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
