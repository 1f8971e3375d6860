"""Where a dataset may come from, tried in order: the first source that works wins.

Each failure is recorded with its reason; when every source fails, the error lists
them all and says how to supply the files. A success from a remote or system source is
written to the cache, so the next load is local, quiet and fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._cache import ENV_VAR, cache_path, load_cache, save_cache
from ._download import RemoteFile, download_all
from ._errors import DatasetNotFoundError
from ._idx_set import FILE_NAMES, find_idx_files, load_idx_dir, parse_idx_set
from ._log import note
from ._splits import Splits

__all__ = [
    "Source",
    "cache_source",
    "directory_source",
    "download_source",
    "env_source",
    "load_first",
]


@dataclass(frozen=True)
class Source:
    """One place to try: a label for messages, a loader, and whether to cache its result."""

    label: str
    load: Callable[[], Splits]
    write_cache: bool = False


def load_first(title: str, dataset: str, sources: Sequence[Source]) -> Splits:
    """Return the result of the first source that works.

    Raises:
        DatasetNotFoundError: every source failed; the message lists each one and why.
    """
    tried: list[str] = []
    for source in sources:
        try:
            splits = source.load()
        except Exception as exc:  # any failure just moves on to the next source
            reason = str(exc) if isinstance(exc, (OSError, ValueError)) else repr(exc)
            tried.append(f"{source.label}: {reason}".replace("\n", "\n     "))
            continue
        if source.write_cache:
            target = cache_path(dataset)
            try:
                save_cache(target, splits)
            except OSError as exc:
                note(f"could not write the cache {target}: {exc}")
        return splits
    steps = "\n".join(f"  {i}. {line}" for i, line in enumerate(tried, 1))
    names = ", ".join(FILE_NAMES)
    raise DatasetNotFoundError(
        f"could not load {title}. Tried, in order:\n{steps}\n"
        f"To provide the files yourself, put the four IDX files ({names}; each may also "
        f"end in .gz) in a directory and call load_data(path=that_directory), or put "
        f"them in ${ENV_VAR}/{dataset_dir_name(dataset)}/ (${ENV_VAR} is also where "
        "the cache is written)."
    )


def dataset_dir_name(dataset: str) -> str:
    """Subdirectory of ``$FASTMLP_DATA`` that holds a dataset's IDX files."""
    return dataset.replace("_", "-")


def env_source(dataset: str) -> Source:
    """The IDX files in ``$FASTMLP_DATA/<dataset>/`` (e.g. ``fashion-mnist``)."""
    subdir = dataset_dir_name(dataset)
    label = f"${ENV_VAR}/{subdir}"

    def load() -> Splits:
        root = os.environ.get(ENV_VAR)
        if not root:
            raise FileNotFoundError(f"${ENV_VAR} is not set")
        directory = Path(root).expanduser() / subdir
        if not directory.is_dir() and any(find_idx_files(Path(root).expanduser())):
            raise FileNotFoundError(
                f"{directory}: no such directory (IDX files found directly in "
                f"${ENV_VAR}; move them into {directory}/)"
            )
        return load_idx_dir(directory)

    return Source(label, load)


def directory_source(label: str, directory: Path) -> Source:
    """The IDX files in a fixed directory (e.g. one a system package installs)."""
    return Source(label, lambda: load_idx_dir(directory), write_cache=True)


def cache_source(dataset: str) -> Source:
    """The uint8 ``.npz`` cache of ``dataset``."""
    return Source("cache", lambda: load_cache(cache_path(dataset)))


def download_source(files: Sequence[RemoteFile], mirrors: Sequence[str]) -> Source:
    """The published ``.gz`` files, fetched from ``mirrors`` and checked against hashes."""
    return Source(
        "download",
        lambda: parse_idx_set(download_all(files, mirrors)),
        write_cache=True,
    )
