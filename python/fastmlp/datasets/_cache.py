"""The on-disk cache: one uncompressed uint8 ``.npz`` per dataset, written atomically.

The cache lives in ``$FASTMLP_DATA`` if set, else ``$XDG_CACHE_HOME/fastmlp``, else
``~/.cache/fastmlp``. It is uncompressed on purpose: MNIST loads from it in a few tens
of milliseconds, where a compressed archive would spend about half a second in zlib.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ._files import open_regular
from ._splits import KEYS, Splits, check_splits

__all__ = ["cache_dir", "cache_path", "load_cache", "save_cache"]

ENV_VAR = "FASTMLP_DATA"


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
        with open_regular(path) as file, np.load(file, allow_pickle=False) as archive:
            missing = [k for k in KEYS if k not in archive.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            arrays = [archive[k] for k in KEYS]
        return check_splits(arrays, [f"{path}[{k}]" for k in KEYS])
    except Exception as exc:  # any failure to read the cache is a miss, never a crash
        raise ValueError(f"{path}: unusable cache: {type(exc).__name__}: {exc}") from exc


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
