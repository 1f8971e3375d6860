"""Save and load: round trips, exact resumption, atomic writes, and hostile files."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Optional

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import _atomic_write, saving

RNG = np.random.default_rng(0)
X = RNG.random((300, 12)).astype(np.float32)
Y = RNG.integers(0, 4, 300)


def make_model(optimizer: Any = None, dtype: str = "float32") -> fm.Sequential:
    fm.utils.set_random_seed(5)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(12,)),
            fm.layers.Dense(9, activation="tanh"),
            fm.layers.Dense(7, activation="relu", use_bias=False),
            fm.layers.Dense(4, activation="softmax"),
        ],
        dtype=dtype,
    )
    model.compile(
        optimizer=optimizer if optimizer is not None else fm.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def same_weights(a: fm.Sequential, b: fm.Sequential) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights())) and len(
        a.get_weights()
    ) == len(b.get_weights())


@pytest.mark.parametrize(
    "optimizer",
    [
        fm.optimizers.SGD(0.1),
        fm.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        fm.optimizers.Adam(0.01, amsgrad=True),
        fm.optimizers.AdamW(0.01),
        fm.optimizers.Adagrad(0.1),
        fm.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        fm.optimizers.Adam(fm.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)),
    ],
    ids=repr,
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resuming_equals_uninterrupted_training(tmp_path: Path, optimizer: Any, dtype: str) -> None:
    config = optimizer.get_config()
    uninterrupted = make_model(fm.optimizers.from_config(config), dtype)
    uninterrupted.fit(X, Y, batch_size=32, epochs=5, verbose=0)

    first = make_model(fm.optimizers.from_config(config), dtype)
    first.fit(X, Y, batch_size=32, epochs=2, verbose=0)
    first.save(tmp_path / "m.fastmlp")
    resumed = fm.models.load_model(tmp_path / "m.fastmlp")
    assert resumed.optimizer is not None and resumed.optimizer.iterations == first.optimizer.iterations  # type: ignore[union-attr]
    resumed.fit(X, Y, batch_size=32, epochs=3, verbose=0)
    assert same_weights(uninterrupted, resumed)


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    model = make_model()
    model.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "model.fastmlp"
    model.save(path)
    loaded = fm.models.load_model(str(path))
    assert same_weights(model, loaded)
    assert loaded.get_config() == model.get_config()
    assert loaded.get_compile_config() == model.get_compile_config()
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    assert loaded.evaluate(X, Y, verbose=0) == model.evaluate(X, Y, verbose=0)


def test_weights_only(tmp_path: Path) -> None:
    model = make_model()
    model.fit(X, Y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.fastmlp")
    other = make_model()
    assert not same_weights(model, other)
    other.load_weights(tmp_path / "w.fastmlp")
    assert same_weights(model, other)
    with pytest.raises(ValueError, match="only weights"):
        fm.models.load_model(tmp_path / "w.fastmlp")


def test_loading_weights_into_another_architecture_fails(tmp_path: Path) -> None:
    make_model().save_weights(tmp_path / "w.fastmlp")
    other = fm.Sequential([fm.layers.Input(shape=(12,)), fm.layers.Dense(3)])
    with pytest.raises(ValueError, match="do not fit"):
        other.load_weights(tmp_path / "w.fastmlp")


def test_pickle_round_trip() -> None:
    model = make_model()
    model.fit(X, Y, epochs=1, verbose=0)
    copy = pickle.loads(pickle.dumps(model))
    assert same_weights(model, copy)
    model.fit(X, Y, epochs=1, verbose=0)
    copy.fit(X, Y, epochs=1, verbose=0)
    assert same_weights(model, copy)  # the optimizer state and shuffle stream came along


def test_file_holds_no_pickle(tmp_path: Path) -> None:
    make_model().save(tmp_path / "m.fastmlp")
    with zipfile.ZipFile(tmp_path / "m.fastmlp") as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name.endswith(".npy"):
                np.load(io.BytesIO(data), allow_pickle=False)  # raises if an object array hid in it
            else:
                json.loads(data)


def test_failed_save_leaves_existing_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.fastmlp"
    model = make_model()
    model.save(path)
    before = path.read_bytes()
    model.fit(X, Y, epochs=1, verbose=0)

    def broken(archive: zipfile.ZipFile, model: Any, kind: str) -> None:
        archive.writestr("fastmlp.json", "{}")
        raise OSError("disk full")

    monkeypatch.setattr(saving, "_write_archive", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.fastmlp"]  # no temporary file left behind


def test_unbuilt_model_cannot_be_saved(tmp_path: Path) -> None:
    model = fm.Sequential([fm.layers.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        model.save(tmp_path / "m.fastmlp")


def _rewrite(path: Path, change: Any) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    "case,match",
    [
        ("truncated", "not a fastmlp file"),
        ("flipped", "corrupted|not a fastmlp file"),
        ("foreign zip", "no fastmlp manifest"),
        ("not a zip", "not a fastmlp file"),
        ("newer version", "version 99"),
        ("missing weights", "do not fit|missing"),
        ("pickled array", "not a plain array"),
        ("bad json", "corrupted member 'config.json'"),
    ],
)
def test_hostile_files_raise_clear_errors(tmp_path: Path, case: str, match: str) -> None:
    path = tmp_path / "m.fastmlp"
    make_model().save(path)
    data = path.read_bytes()
    if case == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif case == "flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif case == "foreign zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not ours")
    elif case == "not a zip":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    elif case == "newer version":
        _rewrite(path, lambda m: {**m, "fastmlp.json": json.dumps({"format": "fastmlp", "version": 99, "kind": "model"})})
    elif case == "missing weights":
        _rewrite(path, lambda m: {k: v for k, v in m.items() if not k.startswith("weights/00001")})
    elif case == "pickled array":
        buffer = io.BytesIO()
        np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
        _rewrite(path, lambda m: {**m, "weights/00000.npy": buffer.getvalue()})
    elif case == "bad json":
        _rewrite(path, lambda m: {**m, "config.json": b"{not json"})
    with pytest.raises(ValueError, match=match) as error:
        fm.models.load_model(path)
    assert "m.fastmlp" in str(error.value)  # the message names the file


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        fm.models.load_model("/nowhere/model.fastmlp")


# ------------------------------------------------------------------ temporary files


def _temporary(directory: Path, pid: int, host: Optional[str] = None) -> Path:
    name = f".fastmlp-{host or _atomic_write._host()}-{pid}-abc123_x.tmp"
    path = directory / name
    path.write_bytes(b"partial")
    return path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_save_and_load_remove_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    dead = _dead_pid()
    orphan = _temporary(tmp_path, dead)
    live = _temporary(tmp_path, os.getpid())
    other_host = _temporary(tmp_path, dead, host="0badcafe" if _atomic_write._host() != "0badcafe" else "0badcaff")
    not_ours = tmp_path / f".fastmlp-{dead}.tmp"
    not_ours.write_bytes(b"x")
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep me")
    link = tmp_path / f".fastmlp-{_atomic_write._host()}-{dead}-link.tmp"
    link.symlink_to(target)
    make_model().save(tmp_path / "m.fastmlp")
    assert not orphan.exists()
    assert live.exists() and other_host.exists() and not_ours.exists() and link.is_symlink()
    assert target.read_bytes() == b"keep me"
    again = _temporary(tmp_path, dead)
    fm.models.load_model(tmp_path / "m.fastmlp")
    assert not again.exists()


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")
def test_a_writer_killed_mid_save_leaves_no_torn_file_and_its_temporary_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "m.fastmlp"
    script = (
        "import sys, fastmlp as fm\n"
        "model = fm.Sequential([fm.layers.Input(shape=(300,)), fm.layers.Dense(2000), fm.layers.Dense(10)])\n"
        "model.compile(optimizer='adam', loss='mse')\n"
        "model.save(sys.argv[1])\n"
        "print('saved', flush=True)\n"
        "while True:\n"
        "    model.save(sys.argv[1])\n"
    )
    with subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "saved\n"
            time.sleep(0.3)
        finally:
            child.kill()
    assert fm.models.load_model(path).count_params() == 300 * 2000 + 2000 + 2000 * 10 + 10  # never torn
    make_model().save(tmp_path / "other.fastmlp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fastmlp", "other.fastmlp"]


def test_saving_into_a_missing_directory_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "m.fastmlp"
    with pytest.raises(FileNotFoundError) as error:
        make_model().save(target)
    assert error.value.filename == str(target)
    assert error.value.errno == errno.ENOENT
