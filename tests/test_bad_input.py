"""Bad input gets a clear Python exception, never a crash (issue 2, deliverable 8).

Every case checks the exception type (ValueError or TypeError) and, with ``match``, that the
message names the argument at fault and the shapes or values involved. The second half checks
the converse: lists, float64, integer, boolean, non-contiguous and Fortran-ordered arrays are
converted, and give exactly the same results as clean C-contiguous float32 input.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import fastmlp as fm
import numpy as np
import pytest
from fastmlp.models import NotCompiledError

N, FEATURES, CLASSES = 6, 5, 3


def make_model(
    loss: str = "sparse_categorical_crossentropy",
    outputs: int = CLASSES,
    compile: bool = True,
    dtype: str = "float32",
) -> fm.Sequential:
    fm.utils.set_random_seed(0)
    activation = "softmax" if "categorical" in loss else None
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(FEATURES,)),
            fm.layers.Dense(4, activation="tanh"),
            fm.layers.Dense(outputs, activation=activation),
        ],
        dtype=dtype,
    )
    if compile:
        model.compile(
            optimizer=fm.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=["accuracy"]
        )
    return model


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, size=N)


X, Y = data()
Y_ONE_HOT = np.eye(CLASSES, dtype=np.float32)[Y]

# The entry points that take (x, y); each must validate the same way.
XY_METHODS: dict[str, Callable[[fm.Sequential, Any, Any], Any]] = {
    "fit": lambda m, x, y: m.fit(x, y, batch_size=2, epochs=1, verbose=0),
    "evaluate": lambda m, x, y: m.evaluate(x, y, verbose=0),
    "train_on_batch": lambda m, x, y: m.train_on_batch(x, y),
    "test_on_batch": lambda m, x, y: m.test_on_batch(x, y),
    "compute_gradients": lambda m, x, y: m.compute_gradients(x, y),
}
X_METHODS: dict[str, Callable[[fm.Sequential, Any], Any]] = {
    "predict": lambda m, x: m.predict(x, verbose=0),
    "predict_on_batch": lambda m, x: m.predict_on_batch(x),
    "__call__": lambda m, x: m(x),
}


def assert_unchanged(model: fm.Sequential, before: list[np.ndarray]) -> None:
    """A rejected call must not have trained on anything."""
    for a, b in zip(model.get_weights(), before):
        assert np.array_equal(a, b)


def with_nan(value: float, row: int, col: int = 1) -> np.ndarray:
    x = X.copy()
    x[row, col] = value
    return x


# ----------------------------------------------------------------------------- x

BAD_X = [
    # (id, x, exception, pattern the message must match)
    ("too_few_features", X[:, :3], ValueError, r"`x` has shape \(6, 3\).*\(n, 5\)"),
    ("too_many_features", np.ones((N, 7)), ValueError, r"`x` has shape \(6, 7\).*\(n, 5\)"),
    ("1d", X[0], ValueError, r"`x`.*batch axis.*shape \(5,\)"),
    ("scalar", 3.0, ValueError, r"`x`.*batch axis.*shape \(\)"),
    ("3d", X[:, :, None], ValueError, r"`x` has shape \(6, 5, 1\)"),
    ("empty", np.zeros((0, FEATURES), np.float32), ValueError, r"`x` is empty.*\(0, 5\)"),
    ("nan", with_nan(np.nan, 2), ValueError, r"`x` contains NaN or inf.*sample 2"),
    ("inf", with_nan(np.inf, 4), ValueError, r"`x` contains NaN or inf.*sample 4"),
    ("minus_inf", with_nan(-np.inf, 0), ValueError, r"`x` contains NaN or inf.*sample 0"),
    ("strings", X.astype(str), TypeError, r"`x` must hold real numbers.*dtype <U"),
    ("objects", X.astype(object), TypeError, r"`x` must hold real numbers.*dtype object"),
    ("complex", X.astype(np.complex64), TypeError, r"`x` must hold real numbers.*complex64"),
    ("ragged_list", [[1.0] * FEATURES, [1.0] * 3], ValueError, r"`x` could not be converted"),
    ("none", None, ValueError, r"`x` is required"),
]


@pytest.mark.parametrize("method", list(XY_METHODS))
@pytest.mark.parametrize("bad", BAD_X, ids=lambda b: b[0])
def test_bad_x_with_y(bad: tuple[str, Any, type, str], method: str) -> None:
    _, x, error, pattern = bad
    model = make_model()
    before = model.get_weights()
    with pytest.raises(error, match=pattern):
        XY_METHODS[method](model, x, Y)
    assert_unchanged(model, before)


@pytest.mark.parametrize("method", list(X_METHODS))
@pytest.mark.parametrize("bad", BAD_X, ids=lambda b: b[0])
def test_bad_x_in_predict(bad: tuple[str, Any, type, str], method: str) -> None:
    _, x, error, pattern = bad
    with pytest.raises(error, match=pattern):
        X_METHODS[method](make_model(compile=False), x)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("col", [0, 15, 16, 36])
def test_predict_on_batch_finds_a_bad_value_anywhere_in_a_wide_row(value: float, col: int) -> None:
    """predict_on_batch checks a few float32 rows itself (not through predict): a NaN or
    infinity in any column of a 37-feature row (two whole 16-value vectors and a tail) is
    reported with its sample, and finite rows give predict's answer."""
    fm.utils.set_random_seed(0)
    model = fm.Sequential([fm.layers.Input(shape=(37,)), fm.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(1).normal(size=(9, 37)).astype(np.float32)
    assert np.array_equal(model.predict_on_batch(x), model.predict(x, verbose=0))
    x[7, col] = value
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf.*sample 7\b"):
        model.predict_on_batch(x)


@pytest.mark.parametrize("bad_row", [0, 1023, 1024, 2999])
@pytest.mark.parametrize("kind", ["nan", "inf", "beyond float32"])
def test_predict_and_evaluate_name_the_sample_the_core_finds(bad_row: int, kind: str) -> None:
    """Without callbacks, predict and evaluate leave x's NaN and infinity to the core's pass
    over each block of rows (1024 a block): the sample is named wherever it is, a float64 value
    past float32's range is reported as such, and a clean x gives the same answers."""
    fm.utils.set_random_seed(0)
    model = fm.Sequential([fm.layers.Input(shape=(20,)), fm.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(2).normal(size=(3000, 20))
    y = np.random.default_rng(3).integers(0, 3, size=3000)
    clean = model.predict(x, verbose=0)
    assert np.array_equal(clean, model.predict(x.astype(np.float32), verbose=0))
    scores = model.evaluate(x, y, verbose=0)
    assert scores == model.evaluate(x, y, verbose=0, callbacks=[fm.callbacks.Callback()])
    x[bad_row, 19] = {"nan": np.nan, "inf": -np.inf, "beyond float32": 1e300}[kind]
    pattern = rf"{'beyond the range of float32' if kind == 'beyond float32' else 'contains NaN or infinity'}"
    pattern += rf".*sample {bad_row}\b"
    for callbacks in (None, [fm.callbacks.Callback()]):
        with pytest.raises(ValueError, match=pattern):
            model.predict(x, verbose=0, callbacks=callbacks)
        with pytest.raises(ValueError, match=pattern):
            model.evaluate(x, y, verbose=0, callbacks=callbacks)


def test_wrong_features_for_a_model_built_by_its_first_call() -> None:
    """Without Input, fit builds the model for the features it first sees; later calls with
    another number of features are then rejected, naming both shapes."""
    fm.utils.set_random_seed(0)
    model = fm.Sequential([fm.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(X, Y % 2, verbose=0)
    with pytest.raises(ValueError, match=r"`x` has shape \(6, 4\).*\(n, 5\)"):
        model.predict(X[:, :4], verbose=0)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch"])
def test_float32_overflow_is_reported(method: str) -> None:
    """1e39 is a finite float64 but beyond float32's range (3.4e38): converted for a float32
    model it becomes inf. That must be reported as a ValueError naming `x` -- not leak NumPy's
    "RuntimeWarning: overflow encountered in cast" (an exception under warnings-as-errors, as in
    this project's pytest settings) and not reach the core as inf."""
    x = X.astype(np.float64)
    x[3, 0] = 1e39
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"`x`.*sample 3"):
        XY_METHODS[method](model, x, Y)
    assert_unchanged(model, before)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_float32_overflow_never_reaches_the_core() -> None:
    """Whatever happens to NumPy's warning, the overflowed value is caught as a ValueError that
    names the argument and the sample, and the weights stay untouched."""
    x = X.astype(np.float64)
    x[3, 0] = 1e39
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"`x`.*sample 3"):
        model.fit(x, Y, verbose=0)
    with pytest.raises(ValueError, match=r"`x`.*sample 3"):
        model.predict(x, verbose=0)
    assert_unchanged(model, before)


@pytest.mark.filterwarnings("error")
def test_float32_overflow_in_targets_is_reported() -> None:
    model = make_model("mse", outputs=2)
    y = np.zeros((N, 2))
    y[1, 1] = -1e39
    with pytest.raises(ValueError, match=r"`y`.*sample 1"):
        model.fit(X, y, verbose=0)


def test_float64_model_accepts_values_beyond_float32_range() -> None:
    """The same 1e39 is an ordinary number for a float64 model: no error there."""
    x = X.astype(np.float64) * 1e-40
    x[3, 0] = 1e39
    assert np.all(np.isfinite(make_model(dtype="float64").predict(x, verbose=0)))


# ----------------------------------------------------------------------------- y


def test_length_mismatch() -> None:
    for call in XY_METHODS.values():
        with pytest.raises(ValueError, match=r"`x` and `y`.*x has 6, y has 5"):
            call(make_model(), X, Y[:5])
        with pytest.raises(ValueError, match=r"`x` and `y`.*x has 6, y has 7"):
            call(make_model("categorical_crossentropy"), X, np.eye(CLASSES)[[0] * 7])
        with pytest.raises(ValueError, match=r"`x` and `y`.*x has 6, y has 0"):
            call(make_model("mse"), X, np.zeros((0, CLASSES)))


SPARSE_BAD_Y = [
    (
        "out_of_range",
        np.array([0, 1, 3, 0, 1, 2]),
        ValueError,
        r"`y` holds label .*3.* index 2.*\[0, 3\)",
    ),
    (
        "negative",
        np.array([0, -1, 2, 0, 1, 2]),
        ValueError,
        r"`y` holds label .*-1.* index 1.*\[0, 3\)",
    ),
    (
        "non_integer",
        np.array([0, 1, 2, 1.5, 1, 2]),
        ValueError,
        r"`y` must hold integer class labels.*1\.5.*index 3",
    ),
    ("nan", np.array([0, 1, 2, 0, np.nan, 2]), ValueError, r"`y` contains NaN.*sample 4"),
    ("inf", np.array([0, np.inf, 2, 0, 1, 2]), ValueError, r"`y` contains NaN.*sample 1"),
    (
        "one_hot_given",
        Y_ONE_HOT,
        ValueError,
        r"integer class labels of shape \(6,\).*`y` of shape \(6, 3\)",
    ),
    ("3d", Y[:, None, None], ValueError, r"`y` of shape \(6, 1, 1\)"),
    ("strings", np.array(["a"] * N), TypeError, r"`y` must hold real numbers"),
    (
        "objects",
        np.array([0, 1, None, 0, 1, 2], dtype=object),
        TypeError,
        r"`y` must hold real numbers.*object",
    ),
    ("none", None, ValueError, r"`y` is required"),
]


@pytest.mark.parametrize("method", list(XY_METHODS))
@pytest.mark.parametrize("bad", SPARSE_BAD_Y, ids=lambda b: b[0])
def test_bad_sparse_labels(bad: tuple[str, Any, type, str], method: str) -> None:
    _, y, error, pattern = bad
    model = make_model()
    before = model.get_weights()
    with pytest.raises(error, match=pattern):
        XY_METHODS[method](model, X, y)
    assert_unchanged(model, before)


DENSE_BAD_Y = [
    ("one_hot_too_narrow", Y_ONE_HOT[:, :2], r"`y` has shape \(6, 2\).*3 outputs.*\(6, 3\)"),
    ("one_hot_too_wide", np.eye(4)[Y], r"`y` has shape \(6, 4\).*3 outputs.*\(6, 3\)"),
    ("integer_labels", Y, r"`y` has shape \(6,\).*3 outputs.*sparse_categorical_crossentropy"),
    ("3d", Y_ONE_HOT[:, :, None], r"`y` has shape \(6, 3, 1\)"),
    ("nan", np.where(np.arange(N)[:, None] == 5, np.nan, Y_ONE_HOT), r"`y` contains NaN.*sample 5"),
    ("inf", np.where(np.arange(N)[:, None] == 2, np.inf, Y_ONE_HOT), r"`y` contains NaN.*sample 2"),
]


@pytest.mark.parametrize("method", list(XY_METHODS))
@pytest.mark.parametrize("bad", DENSE_BAD_Y, ids=lambda b: b[0])
def test_bad_one_hot_targets(bad: tuple[str, Any, str], method: str) -> None:
    _, y, pattern = bad
    model = make_model("categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(ValueError, match=pattern):
        XY_METHODS[method](model, X, y)
    assert_unchanged(model, before)


@pytest.mark.parametrize("loss", ["mse", "mae", "binary_crossentropy"])
def test_bad_dense_targets_for_other_losses(loss: str) -> None:
    model = make_model(loss, outputs=2)
    with pytest.raises(ValueError, match=r"`y` has shape \(6, 3\).*2 outputs.*\(6, 2\)"):
        model.fit(X, np.zeros((N, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"`y` has shape \(6,\).*2 outputs"):
        model.fit(X, np.zeros(N), verbose=0)
    with pytest.raises(TypeError, match=r"`y` must hold real numbers"):
        model.fit(X, np.full((N, 2), "1.0"), verbose=0)


def test_bad_validation_data_names_x_val_and_y_val() -> None:
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"`x_val` has shape \(6, 4\).*\(n, 5\)"):
        model.fit(X, Y, validation_data=(X[:, :4], Y), verbose=0)
    with pytest.raises(ValueError, match=r"`x` and `y_val`.*x has 6, y_val has 4"):
        model.fit(X, Y, validation_data=(X, Y[:4]), verbose=0)
    with pytest.raises(ValueError, match=r"`x_val` contains NaN.*sample 1"):
        model.fit(X, Y, validation_data=(with_nan(np.nan, 1), Y), verbose=0)
    with pytest.raises(ValueError, match=r"`y_val` holds label .*7"):
        model.fit(X, Y, validation_data=(X, np.full(N, 7)), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data"):
        model.fit(X, Y, validation_data=(X,), verbose=0)
    assert_unchanged(model, before)


# ----------------------------------------------------------------------------- before compile


@pytest.mark.parametrize("method", list(XY_METHODS))
def test_training_before_compile(method: str) -> None:
    model = make_model(compile=False)
    with pytest.raises(NotCompiledError, match=r"compile\(\).*" + re.escape(method)) as info:
        XY_METHODS[method](model, X, Y)
    # As Keras, a RuntimeError; as every other misuse in fastmlp, a ValueError.
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(RuntimeError):
        XY_METHODS[method](model, X, Y)
    with pytest.raises(ValueError):
        XY_METHODS[method](model, X, Y)


def test_predict_works_before_compile() -> None:
    out = make_model(compile=False).predict(X, verbose=0)
    assert out.shape == (N, CLASSES)


# ----------------------------------------------------------------------------- configuration


def test_unknown_activation() -> None:
    with pytest.raises(ValueError, match=r"activation.*'mish'"):
        fm.layers.Dense(3, activation="mish")
    with pytest.raises(ValueError, match=r"activation.*'Relu'"):
        fm.layers.Dense(3, activation="Relu")


def test_unknown_loss() -> None:
    model = make_model(compile=False)
    with pytest.raises(ValueError, match=r"loss.*'focal_hinge'"):
        model.compile(optimizer="sgd", loss="focal_hinge")
    with pytest.raises(ValueError, match=r"loss"):
        model.compile(optimizer="sgd")  # no loss at all


def test_unknown_optimizer() -> None:
    with pytest.raises(ValueError, match=r"optimizer.*'adabelief'"):
        make_model(compile=False).compile(optimizer="adabelief", loss="mse")


def test_unknown_metric() -> None:
    with pytest.raises(ValueError, match=r"metric.*'f1'"):
        make_model(compile=False).compile(optimizer="sgd", loss="mse", metrics=["f1"])


@pytest.mark.parametrize("units", [0, -1, 2.5, "3", None, True])
def test_units_must_be_a_positive_integer(units: Any) -> None:
    with pytest.raises(ValueError, match=r"units=" + re.escape(repr(units))):
        fm.layers.Dense(units)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8"])
def test_batch_size_must_be_a_positive_integer(batch_size: Any) -> None:
    model = make_model()
    before = model.get_weights()
    pattern = r"`batch_size`.*batch_size=" + re.escape(repr(batch_size))
    with pytest.raises(ValueError, match=pattern):
        model.fit(X, Y, batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match=pattern):
        model.evaluate(X, Y, batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match=pattern):
        model.predict(X, batch_size=batch_size, verbose=0)
    assert_unchanged(model, before)


@pytest.mark.parametrize("epochs", [-1, -10, 1.5])
def test_epochs_must_be_a_non_negative_integer(epochs: Any) -> None:
    model = make_model()
    with pytest.raises(ValueError, match=r"`epochs`.*epochs=" + re.escape(repr(epochs))):
        model.fit(X, Y, epochs=epochs, verbose=0)


def test_zero_epochs_trains_nothing() -> None:
    model = make_model()
    before = model.get_weights()
    history = model.fit(X, Y, epochs=0, verbose=0)
    assert history.history == {}
    assert_unchanged(model, before)


def test_other_fit_arguments() -> None:
    model = make_model()
    with pytest.raises(ValueError, match=r"validation_split=1\.5"):
        model.fit(X, Y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match=r"verbose=5"):
        model.fit(X, Y, verbose=5)


def test_input_shape_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"shape=\(0,\)"):
        fm.layers.Input(shape=(0,))


# ----------------------------------------------------------------------------- set_weights


def test_set_weights_wrong_count() -> None:
    model = make_model()
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r"length 3.*expecting 4"):
        model.set_weights(weights[:3])
    with pytest.raises(ValueError, match=r"length 5.*expecting 4"):
        model.set_weights([*weights, weights[-1]])
    assert_unchanged(model, weights)


def test_set_weights_wrong_shapes() -> None:
    model = make_model()
    weights = model.get_weights()
    transposed = [weights[0].T, *weights[1:]]
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(4, 5\)"):
        model.set_weights(transposed)
    wrong_bias = [*weights[:3], np.zeros(CLASSES + 1)]
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        model.set_weights(wrong_bias)
    assert_unchanged(model, weights)


def test_set_weights_bad_values() -> None:
    model = make_model()
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r"NaN or infinity"):
        model.set_weights([np.full_like(weights[0], np.nan), *weights[1:]])
    with pytest.raises(TypeError, match=r"real numbers.*<U"):
        model.set_weights([weights[0].astype(str), *weights[1:]])
    assert_unchanged(model, weights)


def test_set_weights_on_unbuilt_model() -> None:
    model = fm.Sequential([fm.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"not built"):
        model.set_weights([np.zeros((3, 2)), np.zeros(2)])


# ----------------------------------------------------------------------------- conversions

# Inputs that hold the same numbers as X in other containers and layouts.
X_FORTRAN = np.asfortranarray(X)
WIDE = np.zeros((N, 2 * FEATURES), np.float32)
WIDE[:, ::2] = X
TALL = np.zeros((2 * N, FEATURES), np.float32)
TALL[::2] = X
REVERSED = X[::-1].copy()[::-1]  # a negative-stride view of X's values
X_INT = np.random.default_rng(3).integers(-3, 4, size=(N, FEATURES))

EQUIVALENT_X = {
    "list": (X.tolist(), X),
    "tuple": (tuple(map(tuple, X.tolist())), X),
    "float64": (X.astype(np.float64), X),
    "fortran": (X_FORTRAN, X),
    "column_stride": (WIDE[:, ::2], X),
    "row_stride": (TALL[::2], X),
    "negative_stride": (REVERSED, X),
    "int64": (X_INT, X_INT.astype(np.float32)),
    "int8": (X_INT.astype(np.int8), X_INT.astype(np.float32)),
    "int_list": (X_INT.tolist(), X_INT.astype(np.float32)),
    "bool": (X_INT > 0, (X_INT > 0).astype(np.float32)),
    "float16": (X.astype(np.float16), X.astype(np.float16).astype(np.float32)),
}


@pytest.mark.parametrize("name", list(EQUIVALENT_X))
def test_converted_inputs_give_identical_results(isa: str, name: str) -> None:
    x, clean = EQUIVALENT_X[name]
    assert clean.dtype == np.float32 and clean.flags.c_contiguous
    reference_model, model = make_model(), make_model()
    assert np.array_equal(model.predict(x, verbose=0), reference_model.predict(clean, verbose=0))
    assert np.array_equal(model.predict_on_batch(x), reference_model.predict_on_batch(clean))
    assert model.evaluate(x, Y, verbose=0) == reference_model.evaluate(clean, Y, verbose=0)
    for (a, b), (c, d) in zip(
        model.compute_gradients(x, Y), reference_model.compute_gradients(clean, Y)
    ):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    model.fit(x, Y, batch_size=4, epochs=2, verbose=0)
    reference_model.fit(clean, Y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), reference_model.get_weights()):
        assert np.array_equal(a, b)


def test_caller_arrays_are_not_modified() -> None:
    x = X.astype(np.float64)
    x_copy = x.copy()
    y = Y.copy()
    model = make_model()
    model.fit(x, y, epochs=2, verbose=0)
    model.train_on_batch(x, y)
    assert np.array_equal(x, x_copy) and np.array_equal(y, Y)
    view = WIDE[:, ::2]
    model.fit(view, y, verbose=0)
    assert np.array_equal(WIDE[:, ::2], X) and np.all(WIDE[:, 1::2] == 0)


EQUIVALENT_SPARSE_Y = {
    "list": Y.tolist(),
    "int32": Y.astype(np.int32),
    "uint8": Y.astype(np.uint8),
    "float_labels": Y.astype(np.float64),
    "column": Y[:, None],
    "strided": np.repeat(Y, 2)[::2],
}


@pytest.mark.parametrize("name", list(EQUIVALENT_SPARSE_Y))
def test_converted_sparse_labels_give_identical_results(name: str) -> None:
    y = EQUIVALENT_SPARSE_Y[name]
    reference_model, model = make_model(), make_model()
    assert model.evaluate(X, y, verbose=0) == reference_model.evaluate(X, Y, verbose=0)
    model.fit(X, y, batch_size=4, epochs=2, verbose=0)
    reference_model.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), reference_model.get_weights()):
        assert np.array_equal(a, b)


EQUIVALENT_DENSE_Y = {
    "list": (Y_ONE_HOT.tolist(), "categorical_crossentropy", CLASSES),
    "int": (Y_ONE_HOT.astype(np.int64), "categorical_crossentropy", CLASSES),
    "bool": (Y_ONE_HOT.astype(bool), "categorical_crossentropy", CLASSES),
    "fortran": (np.asfortranarray(Y_ONE_HOT), "categorical_crossentropy", CLASSES),
    "float64": (Y_ONE_HOT.astype(np.float64), "categorical_crossentropy", CLASSES),
    # A single-output model takes (n,) targets as (n, 1), as Keras does.
    "flat_single_output": ((Y % 2).astype(np.float32), "binary_crossentropy", 1),
}


@pytest.mark.parametrize("name", list(EQUIVALENT_DENSE_Y))
def test_converted_dense_targets_give_identical_results(name: str) -> None:
    y, loss, outputs = EQUIVALENT_DENSE_Y[name]
    clean = Y_ONE_HOT if outputs == CLASSES else (Y % 2).astype(np.float32)[:, None]
    reference_model, model = make_model(loss, outputs), make_model(loss, outputs)
    assert model.evaluate(X, y, verbose=0) == reference_model.evaluate(X, clean, verbose=0)
    model.fit(X, y, batch_size=4, epochs=2, verbose=0)
    reference_model.fit(X, clean, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), reference_model.get_weights()):
        assert np.array_equal(a, b)


def test_set_weights_converts_lists_and_float64() -> None:
    model = make_model()
    weights = model.get_weights()
    model.set_weights([w.astype(np.float64).tolist() for w in weights])
    for a, b in zip(model.get_weights(), weights):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    model.set_weights([np.asfortranarray(weights[0]), *weights[1:]])
    assert np.array_equal(model.get_weights()[0], weights[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_first_non_finite_finds_the_first_bad_row(dtype: Any, threads: int) -> None:
    """The check of x (evaluate, predict, and fit's naming of a bad sample) runs in C++ over
    several threads in blocks: whichever block finishes first, the answer is the first bad row,
    as NumPy finds it."""
    from fastmlp import _validation

    before = fm.get_num_threads()
    fm.set_num_threads(threads)
    try:
        rng = np.random.default_rng(4)
        x = rng.random((3000, 500)).astype(dtype)  # several 1 MB blocks
        assert _validation.first_non_finite(x) is None
        for rows, value in (([2999], np.nan), ([2500, 700, 2900], np.inf), ([5, 4], -np.inf), ([0], np.nan)):
            y = x.copy()
            for r in rows:
                y[r, rng.integers(500)] = value
            expected = int(np.argmin(np.isfinite(y).all(axis=1)))
            assert _validation.first_non_finite(y) == expected == min(rows)
        # Views that are not C-contiguous take NumPy's path, with the same answer.
        y = x.copy()
        y[17, 4] = np.nan  # an even column: inside the strided view below too
        assert _validation.first_non_finite(np.asfortranarray(y)) == 17
        assert _validation.first_non_finite(y[:, ::2]) == 17
        assert _validation.first_non_finite(np.array([1.0, np.inf, np.nan], dtype)) == 1
    finally:
        fm.set_num_threads(before)
