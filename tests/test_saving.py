"""Save and load: round trips, exact resumption, atomic writes, and hostile files."""

from __future__ import annotations

import errno
import importlib.util
import io
import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Optional

import fastmlp as fm
import forged_model_files as forged
import numpy as np
import pytest
from fastmlp import _atomic_write, _model_file, _model_file_format, saving

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


def test_the_training_state_carries_training_over_to_another_model() -> None:
    """``get_training_state`` with the weights is what a saved file holds: a model given both
    trains on exactly as the one they came from."""
    model = make_model()
    model.fit(X, Y, epochs=1, verbose=0)
    other = make_model(fm.optimizers.Adam(0.01))
    other.fit(X[:50], Y[:50], epochs=1, verbose=0)  # other weights, slots, steps and shuffle
    state = model.get_training_state()
    assert state is not None and state["iterations"] == 10
    other.set_weights(model.get_weights())
    other.set_training_state(state)
    assert other.optimizer is not None and other.optimizer.iterations == 10
    model.fit(X, Y, epochs=2, verbose=0)
    other.fit(X, Y, epochs=2, verbose=0)
    assert same_weights(model, other)


def test_the_training_state_exists_once_compiled_and_built() -> None:
    model = fm.Sequential([fm.layers.Dense(3)])
    assert not model.built and model.get_training_state() is None
    model.compile("adam", "mse")
    assert model.get_training_state() is None
    model.build((None, 5))
    state = model.get_training_state()
    assert model.built and state is not None and state["iterations"] == 0
    assert [slot.size for slot in state["slots"]] == [15, 15, 3, 3]  # Adam: m and v per array
    uncompiled = fm.Sequential([fm.layers.Input((5,)), fm.layers.Dense(3)])
    with pytest.raises(RuntimeError, match="compile"):
        uncompiled.set_training_state(state)
    sgd = fm.Sequential([fm.layers.Input((5,)), fm.layers.Dense(3)])
    sgd.compile("sgd", "mse")  # no slots without momentum
    with pytest.raises((ValueError, TypeError)):
        sgd.set_training_state(state)


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

    monkeypatch.setattr(_model_file, "_write_archive", broken)
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


# ---------------------------------------------------------------- damaged and hostile files


@pytest.fixture
def tiny() -> bytes:
    """The bytes of a small saved model with optimizer slots."""
    return saving.model_to_bytes(forged.tiny_model())


def load(tmp_path: Path, data: bytes) -> fm.Sequential:
    path = tmp_path / "m.fastmlp"
    path.write_bytes(data)
    return fm.models.load_model(path)


def refused(tmp_path: Path, data: bytes, match: Optional[str] = None) -> saving.FileFormatError:
    with pytest.raises(saving.FileFormatError, match=match) as error:
        load(tmp_path, data)
    assert "m.fastmlp" in str(error.value)
    return error.value


@pytest.mark.parametrize(
    "change",
    [{"method": 99}, {"method": zipfile.ZIP_BZIP2}, {"version": 64}],
    ids=["unknown method", "bzip2", "zip version 6.4"],
)
def test_unsupported_zip_features_are_format_errors(tmp_path: Path, tiny: bytes, change: dict[str, int]) -> None:
    entries = [forged.stored(name, content) for name, content in forged.members(tiny).items()]
    for key, value in change.items():
        setattr(entries[1], key, value)
    refused(tmp_path, forged.zip_bytes(entries), "config.json|version")


@pytest.mark.parametrize(
    "training",
    [
        {"iterations": 2**70, "rng": [1, 2, 3, 4]},
        {"iterations": -1, "rng": [1, 2, 3, 4]},
        {"iterations": "1", "rng": [1, 2, 3, 4]},
        {"iterations": True, "rng": [1, 2, 3, 4]},
        {"iterations": 1.5, "rng": [1, 2, 3, 4]},
        {"iterations": 1, "rng": [2**64, 2, 3, 4]},
        {"iterations": 1, "rng": [-1, 2, 3, 4]},
        {"iterations": 1, "rng": ["1", 2, 3, 4]},
        {"iterations": 1, "rng": [1, 2, 3]},
        {"iterations": 1, "rng": [0, 0, 0, 0]},  # xoshiro's fixed point: no shuffle would end
        {"iterations": 1},
        [1, [1, 2, 3, 4]],
    ],
    ids=repr,
)
def test_invalid_training_state_is_a_format_error(tmp_path: Path, tiny: bytes, training: Any) -> None:
    refused(tmp_path, forged.with_member(tiny, "training.json", json.dumps(training).encode()), "training")


def _set(path: str, value: Any) -> Any:
    """A change to config.json setting the field at a dotted path (list indices as numbers)."""

    def change(config: Any) -> Any:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
        return config

    return change


@pytest.mark.parametrize(
    "path,value",
    [
        ("model", ["a", "list"]),
        ("model", None),
        ("model.layers", "Dense"),
        ("model.layers", {"class_name": "Dense"}),
        ("model.layers.0", 4),
        ("model.layers.0", {"class_name": "Dense"}),
        ("model.layers.0.class_name", "Conv2D"),
        ("model.layers.0.config", [4]),
        ("model.layers.0.config.units", "4"),
        ("model.layers.0.config.units", 4.0),
        ("model.layers.0.config.units", True),
        ("model.layers.0.config.units", -4),
        ("model.layers.0.config.units", None),
        ("model.layers.0.config.activation", "bogus"),
        ("model.layers.0.config.activation", 3),
        ("model.layers.0.config.use_bias", "yes"),
        ("model.layers.0.config.use_bias", 1),
        ("model.layers.0.config.kernel_initializer", "glorot_uniform"),
        ("model.layers.0.config.kernel_initializer.config.seed", "7"),
        ("model.layers.0.config.kernel_regularizer", {"l1": "0.1", "l2": 0}),
        ("model.layers.0.config.extra", 1),
        ("model.dtype", "float16"),
        ("model.dtype", None),
        ("model.name", 5),
        ("model.input_shape", [3.0]),
        ("model.input_shape", "3"),
        ("model.input_shape", []),
        ("model.input_shape", [0]),
        ("model.input_shape", None),
        ("compile", [1]),
        ("compile.loss", "mse"),
        ("compile.loss.name", "focal_hinge"),
        ("compile.loss.from_logits", "yes"),
        ("compile.optimizer.name", "adabelief"),
        ("compile.optimizer.learning_rate", "0.01"),
        ("compile.optimizer.learning_rate", {"kind": "exponential_decay", "initial_learning_rate": 0.1}),
        ("compile.optimizer.amsgrad", "no"),
        ("compile.optimizer.beta_1", 1.5),
        ("compile.metrics", "accuracy"),
        ("compile.metrics", ["accuracy", 3]),
    ],
)
def test_config_field_of_wrong_type_or_value_is_a_format_error(tmp_path: Path, tiny: bytes, path: str, value: Any) -> None:
    refused(tmp_path, forged.edit_json(tiny, "config.json", _set(path, value)), "config")


def test_layers_in_an_order_add_refuses_are_a_format_error(tmp_path: Path, tiny: bytes) -> None:
    dropout = {"class_name": "Dropout", "config": {"name": "d", "rate": 0.5}}
    first = forged.edit_json(tiny, "config.json", lambda c: {**c, "model": {**c["model"], "layers": [dropout, *c["model"]["layers"]]}})
    refused(tmp_path, first, "Dropout")


MISPLACED = {
    "a Dropout before any Dense": ([fm.layers.Flatten, lambda: fm.layers.Dropout(0.5)], "Dropout must follow a Dense layer"),
    "an activation after an activation": (
        [lambda: fm.layers.Dense(4, activation="relu"), lambda: fm.layers.LeakyReLU()],
        "LeakyReLU must follow a Dense layer without an activation",
    ),
    "two activation layers": (
        [lambda: fm.layers.Dense(4), fm.layers.ELU, lambda: fm.layers.GELU()],
        "GELU must follow a Dense layer without an activation",
    ),
    "two Dropouts": (
        [lambda: fm.layers.Dense(4), lambda: fm.layers.Dropout(0.1), lambda: fm.layers.Dropout(0.2)],
        "Two Dropout layers in a row",
    ),
}


def layer_configs(layers: list[fm.layers.Layer]) -> list[dict[str, Any]]:
    return [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in layers]


def with_layers(data: bytes, layers: list[fm.layers.Layer]) -> bytes:
    return forged.edit_json(data, "config.json", lambda c: {**c, "model": {**c["model"], "layers": layer_configs(layers)}})


@pytest.mark.parametrize(("makers", "problem"), MISPLACED.values(), ids=MISPLACED.keys())
def test_add_from_config_and_load_apply_one_order_rule(tmp_path: Path, tiny: bytes, makers: list[Any], problem: str) -> None:
    """The rule is written once (fastmlp._layer_order) for add, which sees layers one at a time,
    and for a config, whose layers from_config sets at once."""
    model = fm.Sequential([fm.layers.Input((3,))])
    with pytest.raises(ValueError, match=problem):
        for make in makers:
            model.add(make())
    layers = [make() for make in makers]
    config = {"name": "m", "dtype": "float32", "input_shape": [3], "layers": layer_configs(layers)}
    with pytest.raises(ValueError, match=f"Layer {len(makers) - 1} of the config is misplaced: {problem}"):
        fm.Sequential.from_config(config)
    refused(tmp_path, with_layers(tiny, layers), rf"`model.layers\[{len(makers) - 1}\]` is misplaced: {problem}")


def test_a_flatten_between_a_dense_layer_and_its_activation_is_allowed(tmp_path: Path, tiny: bytes) -> None:
    layers = [fm.layers.Dense(4), fm.layers.Flatten(), fm.layers.LeakyReLU(), fm.layers.Dense(2, activation="softmax")]
    loaded = load(tmp_path, with_layers(tiny, layers))
    assert [type(layer).__name__ for layer in loaded.layers] == ["Dense", "Flatten", "LeakyReLU", "Dense"]
    assert fm.Sequential.from_config(loaded.get_config()).get_config() == loaded.get_config()


def test_errors_of_the_constructors_are_chained(tmp_path: Path, tiny: bytes) -> None:
    error = refused(tmp_path, forged.edit_json(tiny, "config.json", _set("model.layers.0.config.activation", "bogus")))
    assert isinstance(error.__cause__, ValueError) and "bogus" in str(error.__cause__)


def test_deeply_nested_json_is_a_format_error(tmp_path: Path, tiny: bytes) -> None:
    refused(tmp_path, forged.with_member(tiny, "config.json", b"[" * 100_000 + b"]" * 100_000), "nested too deeply")


@pytest.mark.parametrize("literal", [b"1" * 5000, b"NaN", b"-Infinity"])
def test_json_numbers_we_never_write_are_format_errors(tmp_path: Path, tiny: bytes, literal: bytes) -> None:
    training = b'{"iterations": ' + literal + b', "rng": [1, 2, 3, 4]}'
    refused(tmp_path, forged.with_member(tiny, "training.json", training), "training.json")


@pytest.mark.parametrize(
    "array",
    [
        b"",
        forged.npy_header("<f4", (10**6, 10**6)),  # 4 TB declared, no data
        forged.npy_header("<f4", (3, 4), bytes(47)),  # one byte short
        forged.npy_header("<f4", (3, 4), bytes(49)),  # one byte over
        forged.npy_header("<i4", (3, 4), bytes(48)),
        forged.npy_header("|O", (3, 4), bytes(48)),
        b"\x93NUMPY\x01\x00" + b"\xff\xff" + b"{" * 65535,
        b"\x93NUMPY\x01\x00\x40\x00" + b"{'descr': '<f4', 'fortran_order': False, 'shape': ((((3, 4)}\n".ljust(64),
    ],
    ids=["empty", "huge header", "short", "long", "integers", "objects", "long header", "nested header"],
)
def test_bad_npy_members_are_format_errors(tmp_path: Path, tiny: bytes, array: bytes) -> None:
    refused(tmp_path, forged.with_member(tiny, "weights/00000.npy", array), "weights/00000.npy")


def test_fortran_order_and_big_endian_arrays_still_load(tmp_path: Path, tiny: bytes) -> None:
    kernel = np.frombuffer(forged.members(tiny)["weights/00000.npy"][-48:], dtype="<f4").reshape(3, 4)
    body = np.asfortranarray(kernel).astype(">f8").tobytes(order="F")
    data = forged.with_member(tiny, "weights/00000.npy", forged.npy_header(">f8", (3, 4), body, fortran=True))
    np.testing.assert_array_equal(load(tmp_path, data).get_weights()[0], kernel)


def test_architecture_bigger_than_its_weights_is_refused_before_it_is_built(tmp_path: Path, tiny: bytes) -> None:
    huge = forged.edit_json(tiny, "config.json", _set("model.layers.0.config.units", 10**12))
    refused(tmp_path, huge, r"shape \(3, 4\).*needs \(3, 1000000000000\)")
    wide = forged.edit_json(tiny, "config.json", _set("model.input_shape", [10**12]))
    refused(tmp_path, wide, "needs")


def test_a_deflated_archive_from_another_zip_tool_loads(tmp_path: Path, tiny: bytes) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in forged.members(tiny).items():
            archive.writestr(name, content)
    assert same_weights(load(tmp_path, buffer.getvalue()), saving.model_from_bytes(tiny))


def test_a_zip64_archive_loads(tmp_path: Path, tiny: bytes) -> None:
    """Files of over 4 GiB or 65,535 members end in ZIP64 records, which say what the classic
    end record cannot (here made to say nothing)."""
    end = tiny.rindex(b"PK\x05\x06")
    _, _, _, _, count, size, offset, _ = struct.unpack("<4s4H2LH", tiny[end:])
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    assert same_weights(load(tmp_path, tiny[:end] + record + locator + classic), saving.model_from_bytes(tiny))


def test_bytes_paths_load_as_before(tmp_path: Path, tiny: bytes) -> None:
    path = tmp_path / "m.fastmlp"
    path.write_bytes(tiny)
    assert same_weights(fm.models.load_model(os.fsencode(path)), saving.model_from_bytes(tiny))


# ------------------------------------------------- special files: refused before they are read


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "m.fastmlp"
    os.mkfifo(fifo)
    with pytest.raises(saving.FileFormatError, match="FIFO"):
        fm.models.load_model(fifo)


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "m.fastmlp"
    os.mkfifo(fifo)
    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(regular if os.fspath(path) == str(fifo) else path, *a, **k))
    with pytest.raises(saving.FileFormatError, match="FIFO"):
        fm.models.load_model(fifo)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "symlink to /dev/zero"])
def test_devices_are_refused_without_reading_them(tmp_path: Path, device: str) -> None:
    if device.startswith("symlink"):
        link = tmp_path / "m.fastmlp"
        link.symlink_to("/dev/zero")
        device = str(link)
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    with pytest.raises(saving.FileFormatError, match="character device"):
        fm.models.load_model(device)
    with pytest.raises(saving.FileFormatError, match="character device"):
        make_model().load_weights(device)


def test_a_directory_or_a_missing_file_raise_what_open_raises(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as directory:
        fm.models.load_model(tmp_path)
    assert directory.value.filename == str(tmp_path)
    missing = tmp_path / "missing.fastmlp"
    with pytest.raises(FileNotFoundError) as error:
        fm.models.load_model(missing)
    assert error.value.filename == str(missing)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_raises_what_open_raises(tmp_path: Path, tiny: bytes) -> None:
    path = tmp_path / "m.fastmlp"
    path.write_bytes(tiny)
    path.chmod(0)
    with pytest.raises(PermissionError):
        fm.models.load_model(path)


# ------------------------------------------------------------- declared sizes and bombs


def test_a_member_larger_than_the_json_limit_is_refused(tmp_path: Path, tiny: bytes) -> None:
    padded = forged.members(tiny)["config.json"] + b" " * (_model_file_format.MAX_JSON_BYTES)
    refused(tmp_path, forged.with_member(tiny, "config.json", padded), "limit")


def _bomb(tiny: bytes, name: str, gib: float, declared: Optional[int] = None) -> bytes:
    """``tiny`` with member ``name`` a deflate stream of ``gib`` GiB of spaces (about a thousandth
    of that in the file), declaring ``declared`` bytes (default: the truth)."""
    block, blocks = b" " * (1 << 20), int(gib * 1024)
    crc = 0
    for _ in range(blocks if declared is None else 0):  # the true checksum, so only sizes can tell
        crc = zlib.crc32(block, crc)
    payload = forged.deflate_repeated(block, blocks)
    entries = [forged.stored(n, c) for n, c in forged.members(tiny).items() if n != name]
    size = blocks << 20 if declared is None else declared
    return forged.zip_bytes([forged.Entry(name, payload, zipfile.ZIP_DEFLATED, size=size, crc=crc), *entries])


def test_members_lying_about_their_size_are_refused(tmp_path: Path, tiny: bytes) -> None:
    config = forged.members(tiny)["config.json"]
    refused(tmp_path, _bomb(tiny, "config.json", 1 / 16, declared=len(config)), "config.json")
    too_short = forged.Entry("config.json", config, size=len(config) + 10)
    entries = [forged.stored(n, c) for n, c in forged.members(tiny).items() if n != "config.json"]
    refused(tmp_path, forged.zip_bytes([too_short, *entries]), "config.json")


def test_duplicate_members_are_refused(tmp_path: Path, tiny: bytes) -> None:
    entries = [forged.stored(name, content) for name, content in forged.members(tiny).items()]
    twin = forged.stored("weights/00000.npy", forged.npy(np.zeros((3, 4), np.float32)))
    refused(tmp_path, forged.zip_bytes([*entries, twin]), "twice")


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_bombs_are_refused_without_allocating(tmp_path: Path, tiny: bytes) -> None:
    config = json.loads(forged.members(tiny)["config.json"])
    config["model"]["input_shape"] = [784]
    config["model"]["layers"][0]["config"]["units"] = 500_000
    cases = {
        "inflating config": _bomb(tiny, "config.json", 1.0),
        "lying config": _bomb(tiny, "config.json", 1.0, declared=3000),
        "huge layer": forged.with_member(tiny, "config.json", json.dumps(config).encode()),
    }
    for name, data in cases.items():
        (tmp_path / f"{name}.fastmlp").write_bytes(data)
    (tmp_path / "good.fastmlp").write_bytes(tiny)
    paths = [str(tmp_path / f"{name}.fastmlp") for name in cases]
    results = forged.load_in_subprocess(str(tmp_path / "good.fastmlp"), paths)
    for name, (outcome, growth_mib) in zip(cases, results):
        assert outcome.startswith("FileFormatError"), (name, outcome)
        assert growth_mib < 64, (name, growth_mib)


# ------------------------------------------------------------- silently accepted damage


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
@pytest.mark.parametrize("member", ["weights/00001.npy", "optimizer/00000.npy", "optimizer/00005.npy"])
def test_non_finite_arrays_are_refused(tmp_path: Path, tiny: bytes, member: str, value: float) -> None:
    array = np.load(io.BytesIO(forged.members(tiny)[member])).astype(np.float64)
    array.flat[-1] = value
    refused(tmp_path, forged.with_member(tiny, member, forged.npy(array)), f"{member}.*NaN or infinity")


def test_missing_training_state_warns_and_resets_the_optimizer(tmp_path: Path, tiny: bytes) -> None:
    data = forged.without_members(tiny, "training.json", "optimizer/")
    path = tmp_path / "m.fastmlp"
    path.write_bytes(data)
    with pytest.warns(saving.OptimizerStateResetWarning, match="m.fastmlp.*no training state") as warned:
        model = fm.models.load_model(path)
    assert warned[0].filename == __file__  # points at the caller
    assert model.optimizer is not None and model.optimizer.iterations == 0
    model.train_on_batch(forged.X, forged.Y)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize(
    "change",
    [
        lambda m: {k: v for k, v in m.items() if not k.startswith("optimizer/")},
        lambda m: {k: v for k, v in m.items() if k != "training.json"},
        lambda m: {k: v for k, v in m.items() if k != "optimizer/00007.npy"},
        lambda m: {k: v for k, v in m.items() if k != "optimizer/00003.npy"},
        lambda m: {**m, "optimizer/00008.npy": m["optimizer/00007.npy"]},
        lambda m: {**m, "optimizer/00001.npy": forged.npy(np.zeros(5, np.float32))},
        lambda m: {**m, "optimizer/00001.npy": forged.npy(np.zeros((4, 1), np.float32))},
    ],
    ids=["slots missing", "training.json missing", "last slot missing", "a slot missing", "a slot too many", "slot too short", "slot of wrong shape"],
)
def test_partial_or_mismatched_optimizer_state_is_refused(tmp_path: Path, tiny: bytes, change: Any) -> None:
    refused(tmp_path, forged.rezip(tiny, change), "optimizer|training")


def test_unpickling_something_else_is_a_format_error() -> None:
    model = fm.Sequential.__new__(fm.Sequential)
    for state in ({"fastmlp_model": b"junk"}, {"other": 1}, None, {"fastmlp_model": "text"}):
        with pytest.raises(saving.FileFormatError, match="pickled fastmlp model"):
            model.__setstate__(state)  # type: ignore[arg-type]


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


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_new_file_gets_the_permissions_open_would_give(tmp_path: Path) -> None:
    """0o666 less the umask, as open() gives; the temporary file mkstemp makes is 0o600."""
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    previous = os.umask(0o027)
    try:
        model.save(tmp_path / "m.fastmlp")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m.fastmlp").stat().st_mode) == 0o640


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    target = tmp_path / "m.fastmlp"
    model.save(target)
    target.chmod(0o604)
    model.save_weights(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o604


def test_saving_over_a_directory_names_the_target(tmp_path: Path) -> None:
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError) as caught:
        model.save(tmp_path / "taken")
    assert caught.value.filename == str(tmp_path / "taken")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_save_never_replaces_a_fifo_or_a_device(tmp_path: Path) -> None:
    # A rename would put a regular file where the FIFO (or /dev/null, for root) was.
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for save in (model.save, model.save_weights):
        with pytest.raises(OSError, match="not a regular file") as caught:
            save(fifo)
        assert caught.value.filename == str(fifo)
        assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file left


@pytest.mark.skipif(os.name == "nt", reason="POSIX symbolic links")
def test_a_save_through_a_symbolic_link_writes_its_target(tmp_path: Path) -> None:
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    (tmp_path / "store").mkdir()
    link = tmp_path / "latest.fastmlp"
    link.symlink_to(tmp_path / "store" / "m.fastmlp")  # dangling until the first save
    model.save(link)
    model.save(link)
    assert link.is_symlink() and (tmp_path / "store" / "m.fastmlp").is_file()
    for a, b in zip(fm.saving.load_model(tmp_path / "store" / "m.fastmlp").get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(os.name == "nt" or (hasattr(os, "geteuid") and os.geteuid() == 0), reason="POSIX permissions; root writes any file")
def test_a_save_over_a_read_only_file_is_refused_as_open_refuses_it(tmp_path: Path) -> None:
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    target = tmp_path / "m.fastmlp"
    model.save(target)
    before = target.read_bytes()
    target.chmod(0o444)
    with pytest.raises(PermissionError):
        fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)]).save(target)
    assert target.read_bytes() == before


def test_a_save_never_writes_what_the_loaders_refuse(tmp_path: Path) -> None:
    # Weights of a diverged run: the loaders refuse NaN and infinity, so the saves refuse to
    # write them, and a good checkpoint already at the path stays.
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    model.compile(optimizer=fm.optimizers.SGD(1e30), loss="mse")
    target = tmp_path / "m.fastmlp"
    model.save(target)
    good = target.read_bytes()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.full((8, 3), 10.0), np.zeros((8, 2)), epochs=3, verbose=0)
    assert not np.isfinite(model.get_weights()[0]).all()
    writers = [model.save, model.save_weights, lambda _: model.save(tmp_path / "m.keras")]
    if importlib.util.find_spec("h5py") is not None:
        writers.append(lambda _: model.save_weights(tmp_path / "m.weights.h5"))
    for write in writers:
        with pytest.raises(ValueError, match="NaN or infinity"):
            write(target)
    with pytest.raises(ValueError, match="NaN or infinity"):
        pickle.dumps(model)
    assert target.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["m.fastmlp"]
    fm.models.load_model(target)  # still the good file


def test_a_negative_second_moment_in_a_file_is_a_format_error(tmp_path: Path, tiny: bytes) -> None:
    # Adam's slots per weight: m (any sign), then v (a mean of squares). A negative v would make
    # the next step's sqrt NaN and train the model to NaN without an error.
    members = forged.members(tiny)
    v = np.load(io.BytesIO(members["optimizer/00001.npy"]))
    refused(tmp_path, forged.with_member(tiny, "optimizer/00001.npy", forged.npy(np.full_like(v, -1.0))), "negative")
    m = np.load(io.BytesIO(members["optimizer/00000.npy"]))
    load(tmp_path, forged.with_member(tiny, "optimizer/00000.npy", forged.npy(-np.abs(m) - 1.0)))  # m may be negative
    model = forged.tiny_model()
    state = model.get_training_state()
    state["slots"][1] = np.full_like(state["slots"][1], -0.5)
    with pytest.raises(ValueError, match="negative"):
        model.set_training_state(state)


@pytest.mark.parametrize("count", [10**8, 10**12])
def test_a_file_cannot_ask_an_auc_for_unbounded_memory(tmp_path: Path, count: int) -> None:
    model = forged.tiny_model()
    model.compile(optimizer=fm.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=[fm.metrics.AUC()])
    data = saving.model_to_bytes(model)

    def more_thresholds(config: Any) -> Any:
        config["compile"]["metrics"][0]["config"]["num_thresholds"] = count
        return config

    started = time.perf_counter()
    refused(tmp_path, forged.edit_json(data, "config.json", more_thresholds), "num_thresholds")
    assert time.perf_counter() - started < 5  # refused before any list of that length is made
    with pytest.raises(ValueError, match="at most 1000000"):
        fm.metrics.AUC(num_thresholds=count)
    assert fm.metrics.AUC(num_thresholds=1_000_000).num_thresholds == 1_000_000
