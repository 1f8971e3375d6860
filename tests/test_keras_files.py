"""Keras 3 ``.keras`` files, read and written (issue #18, item 12).

The expected values come from outside fastmlp's writer: files built here by hand in the layout
Keras 3 documents (``keras/src/saving/saving_lib.py``: a zip of metadata.json, config.json and
model.weights.h5 with ``layers/<snake_case class>[_n]/vars/<i>`` datasets) with NumPy's forward
pass as the prediction, a fixture written by real Keras (tests/data/make_keras_fixture.py) with
Keras's predictions, and, when Keras is installed, Keras itself in both directions.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

import fastmlp as fm
from fastmlp.saving import FileFormatError, OptimizerStateResetWarning

h5py = pytest.importorskip("h5py")

DATA = Path(__file__).parent / "data"
RNG = np.random.default_rng(18)


# ---------------------------------------------------------------- a .keras file built by hand


def policy(dtype: str = "float32") -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def layer(class_name: str, **config: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def dense(name: str, units: int, activation: str = "linear", use_bias: bool = True) -> dict[str, Any]:
    return layer(
        "Dense",
        name=name,
        trainable=True,
        dtype=policy(),
        units=units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None}, "registered_name": None},
        bias_initializer={"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
    )


def sequential_config(layers: list[dict[str, Any]], compile_config: Any = None) -> dict[str, Any]:
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "dtype": policy(), "layers": layers},
        "registered_name": None,
    }
    if compile_config is not None:
        config["compile_config"] = compile_config
    return config


def write_keras(path: Path, config: Any, weights: dict[str, np.ndarray], *, h5_bytes: bytes | None = None) -> Path:
    """A .keras archive in Keras 3's layout, written without fastmlp."""
    if h5_bytes is None:
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as root:
            root.create_group("layers")
            for name, value in weights.items():
                root.create_dataset(name, data=value)
            root.create_group("vars")
        h5_bytes = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.5.0", "date_saved": "2024-01-01@00:00:00"}))
        archive.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        archive.writestr("model.weights.h5", h5_bytes)
    return path


def mlp_by_hand(tmp_path: Path, compile_config: Any = None) -> tuple[Path, dict[str, np.ndarray]]:
    """Input (3,) -> Dense(4, relu) -> Dropout -> Dense(2) -> Activation(sigmoid)."""
    weights = {
        "layers/dense/vars/0": RNG.normal(size=(3, 4)).astype("float32"),
        "layers/dense/vars/1": RNG.normal(size=(4,)).astype("float32"),
        "layers/dense_1/vars/0": RNG.normal(size=(4, 2)).astype("float32"),
        "layers/dense_1/vars/1": RNG.normal(size=(2,)).astype("float32"),
    }
    layers = [
        layer("InputLayer", batch_shape=[None, 3], dtype="float32", sparse=False, name="input_layer"),
        dense("dense", 4, "relu"),
        layer("Dropout", name="dropout", trainable=True, dtype=policy(), rate=0.5, seed=None, noise_shape=None),
        dense("dense_1", 2),
        layer("Activation", name="activation", trainable=True, dtype=policy(), activation="sigmoid"),
    ]
    return write_keras(tmp_path / "by_hand.keras", sequential_config(layers, compile_config), weights), weights


def numpy_mlp(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    hidden = np.maximum(x @ weights["layers/dense/vars/0"] + weights["layers/dense/vars/1"], 0)
    return 1 / (1 + np.exp(-(hidden @ weights["layers/dense_1/vars/0"] + weights["layers/dense_1/vars/1"])))


ADAM = {
    "optimizer": {
        "module": "keras.optimizers",
        "class_name": "Adam",
        "config": {"name": "adam", "learning_rate": 0.005, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                   "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                   "loss_scale_factor": None, "gradient_accumulation_steps": None,
                   "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-07, "amsgrad": False},
        "registered_name": None,
    },
    "loss": "binary_crossentropy",
    "loss_weights": None,
    "metrics": ["accuracy"],
    "weighted_metrics": None,
    "run_eagerly": False,
    "steps_per_execution": 1,
    "jit_compile": True,
}


# ---------------------------------------------------------------- reading


def test_a_hand_built_keras_file_loads_with_numpys_predictions(tmp_path: Path) -> None:
    path, weights = mlp_by_hand(tmp_path)
    model = fm.models.load_model(path)
    x = RNG.normal(size=(10, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), numpy_mlp(weights, x), rtol=1e-5, atol=1e-6)
    assert isinstance(model, fm.Sequential)
    assert [layer.name for layer in model.layers] == ["dense", "dropout", "dense_1", "activation"]
    assert model.loss is None  # no compile_config: not compiled, no warning


def test_the_compile_config_is_read_and_the_optimizer_reset_is_announced(tmp_path: Path) -> None:
    path, _ = mlp_by_hand(tmp_path, ADAM)
    with pytest.warns(OptimizerStateResetWarning, match="Keras's optimizer variables") as warned:
        model = fm.saving.load_model(path, safe_mode=False)
    assert warned[0].filename == __file__  # points at the caller
    with pytest.warns(OptimizerStateResetWarning) as warned:
        fm.models.load_model(path)
    assert warned[0].filename == __file__
    assert isinstance(model.optimizer, fm.optimizers.Adam)
    assert (model.optimizer.beta_1, model.optimizer.beta_2) == (0.8, 0.99)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    assert isinstance(model.loss, fm.losses.BinaryCrossentropy)
    x, y = RNG.normal(size=(16, 3)), RNG.integers(0, 2, (16, 2)).astype("float64")
    assert "accuracy" in model.evaluate(x, y, verbose=0, return_dict=True)


def test_a_fixture_written_by_keras_loads_with_keras_predictions() -> None:
    with pytest.warns(OptimizerStateResetWarning):
        model = fm.models.load_model(DATA / "keras_mlp.keras")
    stored = np.load(DATA / "keras_mlp_predictions.npz", allow_pickle=False)
    np.testing.assert_allclose(model.predict(stored["x"], verbose=0), stored["y"], rtol=1e-5, atol=1e-6)
    assert isinstance(model, fm.Model) and not isinstance(model, fm.Sequential)
    assert model.name == "keras_mlp"
    assert model.get_layer("leaky_re_lu").alpha == pytest.approx(0.1)


def test_safe_mode_must_be_a_bool(tmp_path: Path) -> None:
    path, _ = mlp_by_hand(tmp_path)
    with pytest.raises(TypeError, match="safe_mode"):
        fm.models.load_model(path, safe_mode="no")  # type: ignore[arg-type]


# ---------------------------------------------------------------- round trip


def trained(functional: bool) -> fm.Model:
    fm.utils.set_random_seed(3)
    if functional:
        inputs = fm.Input((2, 2))
        x = fm.layers.Flatten()(inputs)
        x = fm.layers.Dense(6, activation="tanh", kernel_regularizer=fm.regularizers.L2(0.01))(x)
        x = fm.layers.Dropout(0.1)(x)
        outputs = fm.layers.Dense(3, activation="softmax")(x)
        model: fm.Model = fm.Model(inputs, outputs, name="round_trip")
    else:
        model = fm.Sequential([fm.Input((4,)), fm.layers.Dense(5, activation="relu"), fm.layers.Dense(3, use_bias=False),
                               fm.layers.Activation("softmax")])
    model.compile(optimizer=fm.optimizers.RMSprop(0.01, rho=0.8), loss="categorical_crossentropy", metrics=["accuracy"])
    x = RNG.normal(size=(32, 2, 2) if functional else (32, 4))
    model.fit(x, np.eye(3)[RNG.integers(0, 3, 32)], epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("functional", [False, True])
def test_fastmlp_to_keras_file_to_fastmlp(tmp_path: Path, functional: bool) -> None:
    model = trained(functional)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
    with pytest.warns(OptimizerStateResetWarning):
        loaded = fm.models.load_model(tmp_path / "m.keras")
    x = RNG.normal(size=(7, 2, 2) if functional else (7, 4))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.name == model.name and type(loaded) is type(model)
    assert loaded.get_compile_config()["optimizer"] == pytest.approx(model.get_compile_config()["optimizer"])
    assert loaded.get_config()["layers"] == model.get_config()["layers"]


def test_other_file_names_keep_fastmlps_format(tmp_path: Path) -> None:
    model = trained(False)
    model.save(tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        assert "fastmlp.json" in archive.namelist()


def test_a_failed_keras_save_leaves_the_existing_file(tmp_path: Path) -> None:
    model = trained(False)
    target = tmp_path / "m.keras"
    model.save(target)
    before = target.read_bytes()
    odd = fm.Sequential([fm.Input((2,)), fm.layers.Dense(2), fm.layers.GELU(approximate=True)])
    with pytest.raises(ValueError, match="GELU"):
        odd.save(target)
    assert target.read_bytes() == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_an_optimizer_keras_lacks_leaves_the_compile_config_out(tmp_path: Path) -> None:
    model = fm.Sequential([fm.Input((3,)), fm.layers.Dense(2)])
    model.compile(optimizer=fm.optimizers.LBFGS(), loss="mse")
    with pytest.warns(UserWarning, match="without its compile settings") as warned:
        model.save(tmp_path / "lbfgs.keras")
    assert warned[0].filename == __file__
    loaded = fm.models.load_model(tmp_path / "lbfgs.keras")
    assert loaded.loss is None
    x = RNG.normal(size=(4, 3))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_without_h5py_a_keras_file_asks_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = mlp_by_hand(tmp_path)
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(ImportError, match=r"fastmlp\[keras\]"):
        fm.models.load_model(path)


# ---------------------------------------------------------------- hostile files


def refused(path: Path, match: str) -> None:
    with pytest.raises(FileFormatError, match=match) as info:
        fm.models.load_model(path)
    assert repr(str(path)) in str(info.value)  # every failure names the file


def hand_config(tmp_path: Path) -> dict[str, Any]:
    path, _ = mlp_by_hand(tmp_path)
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def rewritten(tmp_path: Path, edit: Any) -> Path:
    """The hand-built file with its config changed by ``edit``."""
    _, weights = mlp_by_hand(tmp_path)
    config = hand_config(tmp_path)
    edit(config)
    return write_keras(tmp_path / "edited.keras", config, weights)


@pytest.mark.parametrize("settings", [{"loss": "cosine_similarity"}, {"weighted_metrics": ["accuracy"]}])
def test_compile_false_loads_for_inference_what_compile_refuses(tmp_path: Path, settings: dict[str, Any]) -> None:
    # Keras's load_model(path, compile=False): the compile config is not read at all.
    path, weights = mlp_by_hand(tmp_path, {**ADAM, **settings})
    with pytest.raises(FileFormatError):
        fm.models.load_model(path)
    model = fm.models.load_model(path, compile=False)
    assert model.loss is None and model.optimizer is None
    x = RNG.normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), numpy_mlp(weights, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="`compile` must be True or False"):
        fm.saving.load_model(path, compile="no")


def test_compile_false_leaves_a_native_file_uncompiled(tmp_path: Path) -> None:
    path, weights = mlp_by_hand(tmp_path, ADAM)
    native = tmp_path / "m.fastmlp"
    with pytest.warns(OptimizerStateResetWarning):  # Keras's optimizer variables are not read
        fm.models.load_model(path).save(native)
    model = fm.saving.load_model(native, compile=False)
    assert model.loss is None and model.optimizer is None
    x = RNG.normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), numpy_mlp(weights, x), rtol=1e-5, atol=1e-6)


def test_keras_relu_and_softmax_layers_load_as_their_activations(tmp_path: Path) -> None:
    # keras.Sequential([Input((3,)), Dense(4), ReLU(), Dense(2), Softmax()]) as Keras 3 writes it.
    weights = {
        "layers/dense/vars/0": RNG.normal(size=(3, 4)).astype("float32"),
        "layers/dense/vars/1": RNG.normal(size=(4,)).astype("float32"),
        "layers/dense_1/vars/0": RNG.normal(size=(4, 2)).astype("float32"),
        "layers/dense_1/vars/1": RNG.normal(size=(2,)).astype("float32"),
    }
    relu = layer("ReLU", name="re_lu", trainable=True, dtype=policy(), max_value=None, negative_slope=0.0, threshold=0.0)
    softmax = layer("Softmax", name="softmax", trainable=True, dtype=policy(), axis=1)  # the last axis of 2-d data
    layers = [layer("InputLayer", batch_shape=[None, 3], dtype="float32", sparse=False, name="input_layer"),
              dense("dense", 4), relu, dense("dense_1", 2), softmax]
    model = fm.models.load_model(write_keras(tmp_path / "relu.keras", sequential_config(layers), weights))
    x = RNG.normal(size=(5, 3)).astype("float32")
    hidden = np.maximum(x @ weights["layers/dense/vars/0"] + weights["layers/dense/vars/1"], 0)
    logits = hidden @ weights["layers/dense_1/vars/0"] + weights["layers/dense_1/vars/1"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    capped = layer("ReLU", name="re_lu", trainable=True, dtype=policy(), max_value=6.0, negative_slope=0.0, threshold=0.0)
    layers[2] = capped
    refused(write_keras(tmp_path / "relu6.keras", sequential_config(layers), weights), "ReLU with .*max_value.*6.0")


def test_truncated_file(tmp_path: Path) -> None:
    path, _ = mlp_by_hand(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "cut.keras", "not a Keras file")


def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "fifo.keras")
    refused(tmp_path / "fifo.keras", "FIFO")


def test_wrong_weight_shapes(tmp_path: Path) -> None:
    _, weights = mlp_by_hand(tmp_path)
    weights["layers/dense_1/vars/0"] = np.zeros((4, 3), "float32")
    refused(write_keras(tmp_path / "bad.keras", hand_config(tmp_path), weights), r"has shape \(4, 3\), the model needs \(4, 2\)")


def test_huge_declared_shapes_are_refused_before_allocation(tmp_path: Path) -> None:
    def huge(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["units"] = 10**9
    _, weights = mlp_by_hand(tmp_path)
    config = hand_config(tmp_path)
    huge(config)
    refused(write_keras(tmp_path / "huge.keras", config, weights), r"has shape \(3, 4\), the model needs \(3, 1000000000\)")
    # a dataset that declares a huge shape, stored as a tiny chunked (sparse) dataset
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as root:
        root.create_dataset("layers/dense/vars/0", shape=(3, 10**9), dtype="float32", chunks=(1, 1024))
    refused(write_keras(tmp_path / "sparse.keras", config, {}, h5_bytes=buffer.getvalue()), "more data than the file holds|compressed")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c["config"]["layers"].insert(2, layer("Lambda", name="l", function="lambda x: x")), "unsupported layer class 'Lambda'"),
        (lambda c: c["config"]["layers"].insert(2, layer("Conv2D", name="c")), "unsupported layer class 'Conv2D'"),
        (lambda c: c["config"]["layers"][1].update(module="os"), "from module 'os'"),
        (lambda c: c["config"]["layers"][1].update(registered_name="my_package>MyDense"), "custom object"),
        (lambda c: c["config"]["layers"][1]["config"].update(activation="hard_sigmoid"), "unsupported activation"),
        (lambda c: c["config"]["layers"][1]["config"].update(kernel_constraint={"class_name": "NonNeg"}), "kernel_constraint"),
        (lambda c: c.update(class_name="MyModel", registered_name="MyModel"), "unsupported model class 'MyModel'"),
        (lambda c: c["config"]["layers"][1]["config"].update(units=-3), "units"),
        (lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, None]), "batch shape"),
        (lambda c: c["config"]["layers"][0]["config"].update(dtype="float16"), "float16"),
        (lambda c: c.update(compile_config={**ADAM, "loss": "cosine_similarity"}), "unsupported loss 'cosine_similarity'"),
        (lambda c: c.update(compile_config={**ADAM, "metrics": [{"class_name": "R2Score", "config": {}}]}), "unsupported metric class 'R2Score'"),
        (lambda c: c.update(compile_config={**ADAM, "optimizer": {**ADAM["optimizer"], "class_name": "Lamb"}}), "optimizer class 'Lamb'"),
    ],
)
def test_unsupported_or_foreign_configs(tmp_path: Path, edit: Any, match: str) -> None:
    refused(rewritten(tmp_path, edit), match)


def test_a_branching_functional_graph_is_refused(tmp_path: Path) -> None:
    model = trained(True)
    model.save(tmp_path / "chain.keras")
    with zipfile.ZipFile(tmp_path / "chain.keras") as archive:
        config = json.loads(archive.read("config.json"))
        h5 = archive.read("model.weights.h5")
    branched = copy.deepcopy(config)
    branched["config"]["layers"][3]["inbound_nodes"][0]["args"].append(branched["config"]["layers"][3]["inbound_nodes"][0]["args"][0])
    refused(write_keras(tmp_path / "b.keras", branched, {}, h5_bytes=h5), "one tensor")
    unused = copy.deepcopy(config)
    unused["config"]["output_layers"] = [unused["config"]["layers"][2]["name"], 0, 0]
    refused(write_keras(tmp_path / "u.keras", unused, {}, h5_bytes=h5), "not on the chain")


def test_nan_weights(tmp_path: Path) -> None:
    _, weights = mlp_by_hand(tmp_path)
    weights["layers/dense/vars/1"][2] = np.nan
    refused(write_keras(tmp_path / "nan.keras", hand_config(tmp_path), weights), "NaN or infinity")


def test_links_to_other_files_and_filters_are_refused(tmp_path: Path) -> None:
    _, weights = mlp_by_hand(tmp_path)
    config = hand_config(tmp_path)
    raw = tmp_path / "raw.bin"
    for kind in ("external", "soft", "gzip", "integer", "storage", "unwritten", "half-written"):
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as root:
            for name, value in weights.items():
                if name != "layers/dense/vars/0":
                    root.create_dataset(name, data=value)
            if kind == "external":
                root["layers/dense/vars"]["0"] = h5py.ExternalLink("/etc/passwd.h5", "/secret")
            elif kind == "soft":
                root["elsewhere"] = weights["layers/dense/vars/0"]
                root["layers/dense/vars"]["0"] = h5py.SoftLink("/elsewhere")
            elif kind == "gzip":
                root.create_dataset("layers/dense/vars/0", data=weights["layers/dense/vars/0"], compression="gzip")
            elif kind == "integer":
                root.create_dataset("layers/dense/vars/0", data=np.ones((3, 4), "int32"))
            elif kind == "unwritten":  # h5py would read the fill value, zeros, as the weights
                root.create_dataset("layers/dense/vars/0", shape=(3, 4), dtype="float32")
            elif kind == "half-written":  # one chunk of two
                root.create_dataset("layers/dense/vars/0", shape=(3, 4), dtype="float32", chunks=(2, 4))[0] = 1.0
            else:  # the data in another file of the reader's machine
                root.create_dataset("layers/dense/vars/0", shape=(3, 4), dtype="float32", external=[(str(raw), 0, 48)])
        match = {"external": "ExternalLink", "soft": "SoftLink", "gzip": "compressed", "integer": "not floating-point",
                 "storage": "outside the file", "unwritten": "not \\(completely\\) written",
                 "half-written": "not \\(completely\\) written"}[kind]
        refused(write_keras(tmp_path / f"{kind}.keras", config, {}, h5_bytes=buffer.getvalue()), match)


def test_a_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * (16 << 20))
    refused(path, "decompression bomb")


def test_missing_members_and_a_non_zip(tmp_path: Path) -> None:
    path = tmp_path / "empty.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
    refused(path, "no 'config.json'")
    (tmp_path / "text.keras").write_text("hello")
    refused(tmp_path / "text.keras", "not a Keras file")
    _, weights = mlp_by_hand(tmp_path)
    del weights["layers/dense_1/vars/1"]
    refused(write_keras(tmp_path / "partial.keras", hand_config(tmp_path), weights), "lacks 'layers/dense_1/vars/1'")
    refused(write_keras(tmp_path / "junk.keras", hand_config(tmp_path), {}, h5_bytes=b"not hdf5"), "not a readable HDF5 file")
    refused(write_keras(tmp_path / "json.keras", "{not json", weights), "corrupted member 'config.json'")


# ---------------------------------------------------------------- real Keras 3


@pytest.fixture()
def keras() -> Any:
    return import_keras()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own use of NumPy 2
@pytest.mark.parametrize("functional", [False, True])
def test_keras_loads_fastmlps_file_with_equal_predictions(tmp_path: Path, keras: Any, functional: bool) -> None:
    model = trained(functional)
    model.save(tmp_path / "ours.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras says it skips the optimizer variables fastmlp does not write
        theirs = keras.models.load_model(tmp_path / "ours.keras")
    x = RNG.normal(size=(9, 2, 2) if functional else (9, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in model.layers if not isinstance(layer, fm.layers.InputLayer)] or functional
    assert type(theirs.optimizer).__name__ == "RMSprop" and float(theirs.optimizer.rho) == pytest.approx(0.8)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fastmlp_loads_keras_file_with_equal_predictions(tmp_path: Path, keras: Any) -> None:
    keras.utils.set_random_seed(1)
    theirs = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="elu"), keras.layers.Dropout(0.2),
                               keras.layers.Dense(4, activation="silu"), keras.layers.Dense(3), keras.layers.ELU(alpha=0.5),
                               keras.layers.Dense(1)])
    theirs.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5, nesterov=True), loss="mse", metrics=["mae"])
    theirs.save(tmp_path / "theirs.keras")
    with pytest.warns(OptimizerStateResetWarning):
        model = fm.models.load_model(tmp_path / "theirs.keras")
    x = RNG.normal(size=(9, 5)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)
    assert isinstance(model.optimizer, fm.optimizers.SGD) and model.optimizer.nesterov


# ---------------------------------------------------------------- normalization layers


def normalized(adapted: bool) -> fm.Sequential:
    """Normalization → Dense → BatchNormalization → Activation → Dense, trained a little."""
    x = RNG.normal(3.0, 2.0, size=(64, 4))
    first = fm.layers.Normalization() if adapted else fm.layers.Normalization(mean=[1.0, 2.0, 0.0, -1.0], variance=[4.0, 1.0, 2.0, 0.5])
    if adapted:
        first.adapt(x)
    model = fm.Sequential([fm.Input((4,)), first, fm.layers.Dense(6), fm.layers.BatchNormalization(momentum=0.9, scale=adapted),
                           fm.layers.Activation("relu"), fm.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, RNG.normal(size=(64, 2)), epochs=2, verbose=0)
    return model


@pytest.mark.parametrize("adapted", [True, False])
def test_normalization_layers_round_trip_through_a_keras_file(tmp_path: Path, adapted: bool) -> None:
    model = normalized(adapted)
    model.save(tmp_path / "m.keras")
    with pytest.warns(OptimizerStateResetWarning):
        loaded = fm.models.load_model(tmp_path / "m.keras")
    x = RNG.normal(3.0, 2.0, size=(7, 4))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    with h5py.File(io.BytesIO(zipfile.ZipFile(tmp_path / "m.keras").read("model.weights.h5"))) as root:
        # Keras's names and order: gamma (when scaled), beta, moving mean and variance; an int64 count
        assert len(root["layers/batch_normalization/vars"]) == (4 if adapted else 3)
        if adapted:
            assert root["layers/normalization/vars/2"].dtype.kind == "i"
        else:
            assert "layers/normalization/vars/0" not in root


def test_a_float_count_of_a_normalization_is_read_but_text_is_refused(tmp_path: Path) -> None:
    model = normalized(True)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "a") as root:
        del root["layers/normalization/vars/2"]
        root.create_dataset("layers/normalization/vars/2", data=np.bytes_("many"))
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, buffer.getvalue() if name == "model.weights.h5" else data)
    with pytest.raises(FileFormatError, match="not floating-point numbers or integers"):
        fm.models.load_model(tmp_path / "bad.keras")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"renorm": True}, "renorm=True"),
        ({"gamma_constraint": {"class_name": "NonNeg"}}, "gamma_constraint"),
        ({"axis": 0}, "axis"),
    ],
)
def test_unsupported_batch_normalization_settings_are_refused(tmp_path: Path, edit: dict[str, Any], match: str) -> None:
    normalized(True).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][3]["config"].update(edit)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(FileFormatError, match=match):
        fm.models.load_model(tmp_path / "bad.keras")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("adapted", [True, False])
def test_keras_loads_fastmlps_normalization_layers_with_equal_predictions(tmp_path: Path, keras: Any, adapted: bool) -> None:
    model = normalized(adapted)
    model.save(tmp_path / "ours.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = keras.models.load_model(tmp_path / "ours.keras")
    x = RNG.normal(3.0, 2.0, size=(9, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fastmlp_loads_keras_normalization_layers_with_equal_predictions(tmp_path: Path, keras: Any) -> None:
    keras.utils.set_random_seed(2)
    x = RNG.normal(3.0, 2.0, size=(64, 4)).astype("float32")
    norm = keras.layers.Normalization()
    norm.adapt(x)
    theirs = keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(6), keras.layers.BatchNormalization(momentum=0.8, epsilon=0.01),
                               keras.layers.Activation("relu"), keras.layers.Dense(2)])
    theirs.compile(optimizer="adam", loss="mse")
    theirs.fit(x, RNG.normal(size=(64, 2)).astype("float32"), epochs=2, verbose=0)
    theirs.save(tmp_path / "theirs.keras")
    with pytest.warns(OptimizerStateResetWarning):
        model = fm.models.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(model.predict(x[:9], verbose=0), np.asarray(theirs.predict(x[:9], verbose=0)), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- losses, optimizers, metrics

NEW_LOSSES = [("huber", "Huber"), ("log_cosh", "LogCosh"), ("kl_divergence", "KLDivergence"), ("poisson", "Poisson"),
              ("categorical_hinge", "CategoricalHinge"), ("hinge", "Hinge"), ("squared_hinge", "SquaredHinge"),
              ("mean_absolute_percentage_error", "MeanAbsolutePercentageError"),
              ("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError")]
NEW_OPTIMIZERS = ["Nadam", "Adamax", "Lion", "Adadelta", "Ftrl"]
# Each new loss with an optimizer in turn: one model per loss, every optimizer used.
COMPILED = [(loss, NEW_OPTIMIZERS[i % len(NEW_OPTIMIZERS)]) for i, loss in enumerate(NEW_LOSSES)]


def compiled(loss: tuple[str, str], optimizer: str) -> fm.Sequential:
    norm = fm.layers.Normalization()
    norm.adapt(RNG.normal(1.0, 3.0, size=(40, 4)))
    model = fm.Sequential([fm.Input((4,)), norm, fm.layers.Dense(5), fm.layers.BatchNormalization(),
                           fm.layers.Activation("relu"), fm.layers.Dense(2, activation="sigmoid")])
    loss_object = fm.losses.Huber(2.5) if loss[0] == "huber" else getattr(fm.losses, loss[1])()
    model.compile(optimizer=getattr(fm.optimizers, optimizer)(0.02), loss=loss_object,
                  metrics=[fm.metrics.AUC(num_thresholds=50), "precision"])
    return model


@pytest.mark.parametrize(("loss", "optimizer"), COMPILED, ids=[loss[1] for loss, _ in COMPILED])
def test_new_losses_optimizers_and_metric_objects_round_trip(tmp_path: Path, loss: tuple[str, str], optimizer: str) -> None:
    model = compiled(loss, optimizer)
    model.save(tmp_path / "m.keras")
    with pytest.warns(OptimizerStateResetWarning):
        loaded = fm.models.load_model(tmp_path / "m.keras")
    assert loaded.get_compile_config() == model.get_compile_config()
    x = RNG.normal(size=(5, 4))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_users_schedule_is_refused_in_a_keras_file(tmp_path: Path) -> None:
    class Halving(fm.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> Any:
            return 0.1 * 0.5 ** (step // 10)

        def get_config(self) -> dict[str, Any]:
            return {}

    model = fm.Sequential([fm.Input((2,)), fm.layers.Dense(1)])
    model.compile(optimizer=fm.optimizers.SGD(Halving()), loss="mse")
    with pytest.raises(ValueError, match="user's schedule class 'Halving'"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("loss", "optimizer"), COMPILED, ids=[loss[1] for loss, _ in COMPILED])
def test_keras_and_fastmlp_read_each_others_compiled_files(tmp_path: Path, keras: Any, loss: tuple[str, str], optimizer: str) -> None:
    model = compiled(loss, optimizer)
    model.save(tmp_path / "ours.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = keras.models.load_model(tmp_path / "ours.keras")
    x = RNG.normal(size=(6, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert type(theirs.optimizer).__name__ == optimizer
    assert float(theirs.optimizer.learning_rate) == pytest.approx(0.02)
    # and back: Keras's own file of the model it loaded
    theirs.save(tmp_path / "theirs.keras")
    with pytest.warns(OptimizerStateResetWarning):
        back = fm.models.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)
    ours_config, back_config = model.get_compile_config(), back.get_compile_config()
    assert type(back.optimizer).__name__ == optimizer and back_config["loss"]["name"] == loss[0]
    assert [m if isinstance(m, str) else m["class_name"] for m in back_config["metrics"]] == ["AUC", "Precision"]  # fastmlp makes "precision" an object, as Keras does
    assert back_config["metrics"][0]["config"]["num_thresholds"] == 50
    assert back_config["optimizer"] == pytest.approx(ours_config["optimizer"])


# ---------------------------------------------------------------- BatchNormalization after an activation


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_batch_normalization_after_activations_round_trips_with_keras(tmp_path: Path, keras: Any) -> None:
    """Keras's common placements (first, after an activation then Dropout, after an Activation
    layer), trained by Keras: fastmlp loads the file with Keras's predictions, saves it again,
    and Keras loads that with the same predictions."""
    keras.utils.set_random_seed(3)
    x = RNG.normal(3.0, 2.0, size=(64, 4)).astype("float32")
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(6, activation="relu"),
                               keras.layers.BatchNormalization(momentum=0.8), keras.layers.Dropout(0.3), keras.layers.Dense(5),
                               keras.layers.Activation("tanh"), keras.layers.BatchNormalization(center=False),
                               keras.layers.Dense(2)])
    theirs.compile(optimizer="adam", loss="mse")
    theirs.fit(x, RNG.normal(size=(64, 2)).astype("float32"), epochs=2, verbose=0)
    theirs.save(tmp_path / "theirs.keras")
    with pytest.warns(OptimizerStateResetWarning):
        model = fm.models.load_model(tmp_path / "theirs.keras")
    for a, b in zip(theirs.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(b, np.asarray(a))
    np.testing.assert_allclose(model.predict(x[:9], verbose=0), np.asarray(theirs.predict(x[:9], verbose=0)), rtol=1e-5, atol=1e-5)
    model.save(tmp_path / "ours.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras says it skips the optimizer variables fastmlp does not write
        again = keras.models.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(np.asarray(again.predict(x[:9], verbose=0)), model.predict(x[:9], verbose=0), rtol=1e-5, atol=1e-5)
