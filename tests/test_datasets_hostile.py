"""Hostile data files: headers that lie about their size, streams that never end, gzip
bombs and special files. Each must fail with a clear error, promptly, after using no more
memory than the data actually read. Cases that could hang or exhaust memory run in a
subprocess with a timeout, so the suite survives a regression."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastmlp.datasets import DatasetNotFoundError, mnist, read_idx


# ------------------------------------------------------------------------ special files

_READ = textwrap.dedent(
    """
    import sys
    from fastmlp.datasets import read_idx
    try:
        read_idx(sys.argv[1])
    except OSError as exc:
        print(type(exc).__name__, exc)
    """
)


def run_reader(path: str) -> str:
    """read_idx(path) in a subprocess: a hang fails the test instead of the suite."""
    proc = subprocess.run(
        [sys.executable, "-c", _READ, path], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(fifo)
    assert run_reader(str(fifo)) == (
        f"OSError {fifo}: is a named pipe (FIFO), not a regular file; refusing to read it"
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused_even_through_a_symlink(tmp_path: Path) -> None:
    link = tmp_path / "t10k-images-idx3-ubyte.gz"
    link.symlink_to("/dev/zero")
    assert run_reader(str(link)) == (
        f"OSError {link}: is a character device, not a regular file; refusing to read it"
    )


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="is a directory, not a regular file"):
        read_idx(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_as_cache_is_a_miss_not_a_hang(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.mkfifo(data / "mnist.npz")
    script = textwrap.dedent(
        """
        from fastmlp.datasets import _cache
        try:
            _cache.load_cache(_cache.cache_path("mnist"))
        except ValueError as exc:
            print(exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "FASTMLP_DATA": str(data)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"{data / 'mnist.npz'}: unusable cache: OSError: {data / 'mnist.npz'}: "
        "is a named pipe (FIFO), not a regular file; refusing to read it"
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_special_files_in_a_dataset_directory_count_as_missing(tmp_path: Path) -> None:
    (tmp_path / "train-images-idx3-ubyte").symlink_to("/dev/zero")
    (tmp_path / "train-labels-idx1-ubyte").mkdir()
    with pytest.raises(DatasetNotFoundError, match="missing train-images-idx3-ubyte, "
                       "train-labels-idx1-ubyte, t10k-images"):  # fmt: skip
        mnist.load_data(path=tmp_path)
