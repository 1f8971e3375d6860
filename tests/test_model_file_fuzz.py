"""Fuzzing the model-file reader: every truncation of a small saved model, seeded byte flips, every
JSON node replaced by values of other types, crafted bombs and special files.

Each case must end in a model that loads and then predicts finite outputs of the right shape (and
takes a training step), or in a ``FileFormatError``; a directory is an ``IsADirectoryError``. Any other
exception fails the test, a hang is cut by the timeout, and the bombs' memory is measured.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import fastmlp as fm
import forged_model_files as forged
import numpy as np
import pytest
from fastmlp import saving

TINY = saving.model_to_bytes(forged.tiny_model())


def check(load: Callable[[], fm.Sequential]) -> str:
    """'refused' for a FileFormatError, 'loaded' for a model that works; anything else raises."""
    try:
        model = load()
    except saving.FileFormatError:
        return "refused"
    out = model.predict(forged.X, verbose=0)
    assert out.shape == (2, 2) and np.isfinite(out).all()
    if model.loss is not None:  # the optimizer state fits the optimizer (its result may not be
        # finite: a file may hold any valid setting, e.g. Adam's epsilon=0)
        assert np.isfinite(model.train_on_batch(forged.X, forged.Y, return_dict=True)["loss"])
    return "loaded"


def from_bytes(data: bytes) -> str:
    return check(lambda: saving.model_from_bytes(data))


def from_file(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return check(lambda: fm.models.load_model(path))


def into_model(path: Path, data: bytes) -> str:
    path.write_bytes(data)

    def load() -> fm.Sequential:
        model = forged.tiny_model()
        model.load_weights(path)
        return model

    return check(load)


def test_the_unchanged_file_loads() -> None:
    assert from_bytes(TINY) == "loaded"


@pytest.mark.timeout(60)
def test_every_truncation_is_refused(tmp_path: Path) -> None:
    assert all(from_bytes(TINY[:end]) == "refused" for end in range(len(TINY)))
    ends = sorted({*range(0, len(TINY), 97), *range(512), *range(len(TINY) - 512, len(TINY))})
    path = tmp_path / "m.fastmlp"
    assert all(from_file(path, TINY[:end]) == "refused" for end in ends)
    assert all(into_model(path, TINY[:end]) == "refused" for end in ends[::4])


def _flipped(seed: int) -> bytes:
    rng = random.Random(seed)
    data = bytearray(TINY)
    for _ in range(rng.choice((1, 1, 1, 2, 4))):
        position = rng.randrange(len(data))
        data[position] = data[position] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(data)


@pytest.mark.timeout(60)
def test_byte_flips_load_a_working_model_or_are_refused(tmp_path: Path) -> None:
    outcomes = [from_bytes(_flipped(seed)) for seed in range(400)]
    assert outcomes.count("refused") > 300  # nearly every byte is checked (the dates are not)
    path = tmp_path / "m.fastmlp"
    for seed in range(400, 500):
        from_file(path, _flipped(seed))
        into_model(path, _flipped(seed))


_OTHER_VALUES: list[Any] = [None, True, 0, -1, 2**64, 1.5, "x", [], [1], {}, {"a": 1}]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@pytest.mark.timeout(120)
@pytest.mark.parametrize("member", ["fastmlp.json", "config.json", "training.json"])
def test_every_json_node_replaced_by_another_type(member: str) -> None:
    document = json.loads(forged.members(TINY)[member])
    outcomes = []
    for path in _nodes(document):
        for value in _OTHER_VALUES:
            changed = _replaced(document, path, value)
            outcomes.append(from_bytes(forged.with_member(TINY, member, json.dumps(changed).encode())))
    assert "refused" in outcomes


def _bombs() -> dict[str, bytes]:
    members = forged.members(TINY)
    config = json.loads(members["config.json"])

    def with_config(change: Callable[[dict[str, Any]], None]) -> bytes:
        edited = json.loads(json.dumps(config))
        change(edited)
        return forged.with_member(TINY, "config.json", json.dumps(edited).encode())

    def inflating(name: str, gib: float, declared: int) -> bytes:
        stream = forged.deflate_repeated(b"\0" * (1 << 20), int(gib * 1024))
        entries = [forged.stored(n, c) for n, c in members.items() if n != name]
        return forged.zip_bytes([forged.Entry(name, stream, zipfile.ZIP_DEFLATED, size=declared, crc=0), *entries])

    def huge_units(c: dict[str, Any]) -> None:
        c["model"]["input_shape"] = [784]
        c["model"]["layers"][0]["config"]["units"] = 500_000

    def huge_input(c: dict[str, Any]) -> None:
        c["model"]["input_shape"] = [10**9]

    def float_input(c: dict[str, Any]) -> None:
        c["model"]["input_shape"] = [1e9]

    many = [forged.stored(f"x/{i:06d}" + "-" * 60, b"") for i in range(50_000)]
    return {
        "config inflating to 1 GiB": inflating("config.json", 1.0, 1 << 30),
        "config declaring 3 KB, inflating to 1 GiB": inflating("config.json", 1.0, 3000),
        "kernel inflating to 1.5 GB": _inflating_kernel(members),
        "npy header of 1e12 values": forged.with_member(TINY, "weights/00000.npy", forged.npy_header("<f4", (10**6, 10**6))),
        "layer of 784 x 500,000": with_config(huge_units),
        "input_shape of 1e9": with_config(huge_input),
        "input_shape of 1e9 as a float": with_config(float_input),
        "config nested 100,000 deep": forged.with_member(TINY, "config.json", b"[" * 100_000 + b"]" * 100_000),
        "integer of 1,000,000 digits": forged.with_member(TINY, "training.json", b'{"iterations": ' + b"9" * 10**6 + b"}"),
        "zip directory of 50,000 members, 5 MB": forged.zip_bytes([*(forged.stored(n, c) for n, c in members.items()), *many]),
    }


def _inflating_kernel(members: dict[str, bytes]) -> bytes:
    """A consistent file whose first kernel is a (784, 500000) float32 array of zeros, deflated:
    1.5 MB in the file, 1.5 GB declared."""
    config = json.loads(members["config.json"])
    config["model"]["input_shape"] = [784]
    config["model"]["layers"][0]["config"]["units"] = 500_000
    config["model"]["layers"][1]["config"]["units"] = 2
    header = forged.npy_header("<f4", (784, 500_000))
    body_blocks = 784 * 500_000 * 4 // (1 << 20)
    stream = forged.deflate_repeated(b"\0" * (1 << 20), body_blocks)
    declared = len(header) + 784 * 500_000 * 4
    # The header is stored in its own leading deflate block: a stored block followed by the zeros.
    stored_block = b"\x00" + len(header).to_bytes(2, "little") + (len(header) ^ 0xFFFF).to_bytes(2, "little") + header
    kernel = forged.Entry("weights/00000.npy", stored_block + stream, zipfile.ZIP_DEFLATED, size=declared, crc=0)
    entries = [forged.stored(n, c) for n, c in members.items() if n not in ("weights/00000.npy", "config.json")]
    entries.append(forged.stored("config.json", json.dumps(config).encode()))
    return forged.zip_bytes([kernel, *entries])


BOMBS = _bombs()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_are_refused(name: str) -> None:
    assert from_bytes(BOMBS[name]) == "refused"


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_bombs_allocate_little(tmp_path: Path) -> None:
    (tmp_path / "good.fastmlp").write_bytes(TINY)
    paths = []
    for index, data in enumerate(BOMBS.values()):
        paths.append(str(tmp_path / f"{index}.fastmlp"))
        Path(paths[-1]).write_bytes(data)
    results = forged.load_in_subprocess(str(tmp_path / "good.fastmlp"), paths)
    for name, (outcome, growth_mib) in zip(BOMBS, results):
        assert outcome.startswith("FileFormatError"), (name, outcome)
        assert growth_mib < 64, (name, growth_mib)


def _special(tmp_path: Path, kind: str) -> str:
    path = tmp_path / "m.fastmlp"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    elif kind == "socket":
        if not hasattr(socket, "AF_UNIX"):
            pytest.skip("no Unix sockets here")
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path = Path(kind)
    if not path.exists() and not path.is_symlink():
        pytest.skip(f"no {kind} here")
    return str(path)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "socket", "/dev/zero", "/dev/urandom", "symlink to /dev/zero", "directory"])
def test_special_files_are_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    path = _special(tmp_path, kind)
    expected: type[Exception] = IsADirectoryError if kind == "directory" else saving.FileFormatError
    with pytest.raises(expected):
        fm.models.load_model(path)
    with pytest.raises(expected):
        forged.tiny_model().load_weights(path)
