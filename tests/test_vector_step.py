"""Batch 1 as its own step (``vector``, cpp/src/steps/vector_step.cpp): one row through the
network as matrix-vector products, its gradients as outer products, plain SGD applied to the
first kernel in the same pass. It must give the bits of the batched steps on that row for every
optimizer, loss, activation, penalty, frozen layer and sample weight it runs, on every ISA and
thread count; the table must run it for batches of one row (and only for them); and it never
runs what it cannot (dropout, batch normalization), however it is forced.

One-row predict (``predict_on_batch(x[i:i+1])``, ``model(x)``, ``predict(x, verbose=0)``) takes
the matching forward pass: the same bits as ``predict`` on many rows, the same errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core
from fastmlp import reference as ref


def same_history(got: dict[str, list[float]], expected: dict[str, list[float]]) -> None:
    """Every per-sample loss and metric value is the same bits in each step; fit sums them in
    chunks of batches whose size follows the measured speed, so the float64 totals may group
    the same values differently (a last-bit difference) from run to run."""
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-13, err_msg=key)


def data(kind: str, n: int = 13, features: int = 24, seed: int = 3) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype(np.float32)
    if kind == "sparse":  # most inputs exactly zero, as MNIST: the first layer's sparse path
        x[rng.random(x.shape) < 0.8] = 0
    if kind == "mixed":  # sparse and dense rows in turn: each pairing of a row and the next
        x[::2][rng.random(x[::2].shape) < 0.8] = 0
    return x, rng.integers(0, 5, n)


CASES = {
    "sgd": dict(optimizer=lambda: fm.optimizers.SGD(0.1)),
    "momentum": dict(optimizer=lambda: fm.optimizers.SGD(0.05, momentum=0.9, nesterov=True)),
    "adam": dict(optimizer=lambda: fm.optimizers.Adam(0.01)),
    "l2": dict(optimizer=lambda: fm.optimizers.SGD(0.1), regularizer=True),
    "frozen": dict(optimizer=lambda: fm.optimizers.SGD(0.1), frozen=True),
    "mse-sigmoid": dict(optimizer=lambda: fm.optimizers.SGD(0.1), loss="mse", hidden="tanh"),
    "weights": dict(optimizer=lambda: fm.optimizers.SGD(0.1), weighted=True, hidden="relu"),
    "clipnorm": dict(optimizer=lambda: fm.optimizers.SGD(0.1, clipnorm=0.5)),
}


def train(
    x: Any,
    y: Any,
    batch_size: int,
    optimizer: Any,
    loss: str = "sparse_categorical_crossentropy",
    hidden: str = "sigmoid",
    regularizer: bool = False,
    frozen: bool = False,
    weighted: bool = False,
    dropout: float = 0.0,
    dtype: str = "float32",
) -> tuple[fm.Sequential, dict[str, list[float]], str]:
    fm.utils.set_random_seed(11)
    layers: list[Any] = [
        fm.layers.Input(shape=(x.shape[1],)),
        fm.layers.Dense(16, activation=hidden, kernel_regularizer=fm.regularizers.L2(0.01) if regularizer else None),
    ]
    if dropout:
        layers.append(fm.layers.Dropout(dropout))
    layers.append(fm.layers.Dense(5, activation="softmax" if loss != "mse" else "sigmoid"))
    model = fm.Sequential(layers, dtype=dtype)
    if frozen:
        model.layers[0].trainable = False
    model.compile(optimizer=optimizer(), loss=loss, metrics=["mae"] if loss == "mse" else ["accuracy"])
    targets = np.eye(5, dtype=np.float32)[y] if loss == "mse" else y
    weights = np.linspace(0.5, 2.0, len(x)) if weighted else None
    history = model.fit(x, targets, batch_size=batch_size, epochs=2, verbose=0, sample_weight=weights).history
    trainer = model._engine._trainer  # type: ignore[attr-defined]
    return model, history, trainer.last_step


@pytest.mark.usefixtures("restore_step_and_threads")
@pytest.mark.parametrize("kind", ["sparse", "dense", "mixed"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_one_gives_the_bits_of_every_other_step(isa: str, kind: str, case: str) -> None:
    x, y = data(kind)
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, reference_history, _ = train(x, y, 1, **CASES[case])
    runs = [("auto", 1), ("vector", 1), ("vector", 2), ("rows", 2), ("auto", 3)]
    for step, threads in runs:
        _core.set_step(step)
        fm.set_num_threads(threads)
        model, history, last = train(x, y, 1, **CASES[case])
        assert last == ("rows" if step == "rows" else "vector"), (step, threads)
        for a, b in zip(reference.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=f"{step} on {threads} threads")
        same_history(history, reference_history)


@pytest.mark.usefixtures("restore_step_and_threads")
def test_float64_models_take_it_too(isa: str) -> None:
    x, y = data("dense")
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, _, _ = train(x.astype(np.float64), y, 1, CASES["adam"]["optimizer"], dtype="float64")
    _core.set_step("auto")
    model, _, last = train(x.astype(np.float64), y, 1, CASES["adam"]["optimizer"], dtype="float64")
    assert last == "vector"
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.usefixtures("restore_step_and_threads")
def test_a_last_batch_of_one_row_takes_it_with_the_same_bits() -> None:
    x, y = data("sparse", n=17)  # batches of 8, 8 and 1
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, reference_history, _ = train(x, y, 8, CASES["sgd"]["optimizer"])
    _core.set_step("auto")
    model, history, last = train(x, y, 8, CASES["sgd"]["optimizer"])
    assert last == "vector"
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    same_history(history, reference_history)


@pytest.mark.usefixtures("restore_step_and_threads")
def test_it_never_runs_dropout_even_when_forced() -> None:
    x, y = data("dense")
    fm.set_num_threads(1)
    _core.set_step("vector")
    _, _, last = train(x, y, 1, CASES["sgd"]["optimizer"], dropout=0.3)
    assert last == "columns"
    _core.set_step("auto")
    _, _, last = train(x[:12], y[:12], 2, CASES["sgd"]["optimizer"])
    assert last != "vector"  # batches of two rows


@pytest.mark.usefixtures("restore_step_and_threads")
@pytest.mark.parametrize("between", ["norm", "dropout_norm"])
def test_it_never_runs_a_normalized_or_dropped_layer_input(between: str) -> None:
    """A BatchNormalization after an activation (a Dense layer's input normalization) needs the
    batch's statistics, and a Dropout before it draws masks: neither is the vector step's."""
    x, y = data("dense", n=12)
    fm.set_num_threads(1)
    _core.set_step("vector")
    fm.utils.set_random_seed(3)
    layers: list[Any] = [fm.layers.Input(shape=(x.shape[1],)), fm.layers.Dense(8, activation="relu")]
    if between == "dropout_norm":
        layers.append(fm.layers.Dropout(0.25))
    layers += [fm.layers.BatchNormalization(), fm.layers.Dense(5, activation="softmax")]
    model = fm.Sequential(layers)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    assert model._engine._trainer.last_step == "columns"  # type: ignore[attr-defined]
    # One-row predict uses the moving statistics, as predict does.
    np.testing.assert_array_equal(model.predict_on_batch(x[:1]), model.predict(x, verbose=0)[:1])


@pytest.mark.usefixtures("restore_step_and_threads")
def test_per_sample_sgd_follows_the_float64_reference() -> None:
    """An independent yardstick: fastmlp.reference's per-sample SGD from the same weights, in
    the same order (no shuffle)."""
    x, y = data("sparse", n=20)
    fm.set_num_threads(1)
    _core.set_step("auto")
    fm.utils.set_random_seed(2)
    model = fm.Sequential([fm.layers.Input(shape=(24,)), fm.layers.Dense(16, activation="sigmoid"), fm.layers.Dense(5, activation="softmax")])
    model.compile(optimizer=fm.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    w = model.get_weights()
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    assert model._engine._trainer.last_step == "vector"  # type: ignore[attr-defined]
    want, _ = ref.train_sgd(
        x, y, [(w[0], w[1]), (w[2], w[3])], ["sigmoid", "softmax"], "sparse_categorical_crossentropy", 0.5, 1, 1,
        [np.arange(len(x))],
    )
    got = model.get_weights()
    for i, (kernel, bias) in enumerate(want):
        # float32 against float64: 20 steps, each a chain of at most 24 terms.
        np.testing.assert_allclose(got[2 * i], kernel, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[2 * i + 1], bias, rtol=1e-4, atol=1e-5)


def predict_model(dtype: str = "float32", normalization: bool = False) -> tuple[fm.Sequential, Any]:
    fm.utils.set_random_seed(4)
    rng = np.random.default_rng(8)
    x = rng.random((12, 30)).astype(dtype)
    x[rng.random(x.shape) < 0.8] = 0
    x[6:] = rng.random((6, 30))  # the second half dense
    layers: list[Any] = [fm.layers.Input(shape=(30,))]
    if normalization:
        norm = fm.layers.Normalization()
        norm.adapt(x)
        layers.append(norm)
    layers += [fm.layers.Dense(20, activation="relu"), fm.layers.Dense(4, activation="softmax")]
    return fm.Sequential(layers, dtype=dtype), x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_row_predict_gives_the_bits_of_predict(isa: str, dtype: str) -> None:
    model, x = predict_model(dtype)
    full = model.predict(x, verbose=0)
    for i in range(len(x)):
        row = x[i : i + 1]
        for out in (model.predict_on_batch(row), model(row), model.predict(row, verbose=0)):
            assert out.dtype == np.dtype(dtype) and out.shape == (1, 4)
            np.testing.assert_array_equal(out, full[i : i + 1])


def test_one_row_predict_applies_the_normalization_layer() -> None:
    model, x = predict_model(normalization=True)
    full = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict_on_batch(x[:1]), full[:1])
    np.testing.assert_array_equal(model(x[1:2]), full[1:2])
    # The same values by hand: the normalized row through the two layers.
    mean, variance = np.mean(x, axis=0), np.var(x, axis=0)
    h = np.maximum(0, ((x[:1] - mean) / np.sqrt(np.maximum(variance, 1e-7))) @ model.layers[1].get_weights()[0])
    z = h @ model.layers[2].get_weights()[0]
    np.testing.assert_allclose(full[:1], np.exp(z) / np.exp(z).sum(), rtol=1e-4, atol=1e-6)


def test_one_row_predict_keeps_its_errors() -> None:
    model, x = predict_model()
    bad = x[:1].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity") as on_batch:
        model.predict_on_batch(bad)
    with pytest.raises(ValueError) as silent:
        model.predict(bad, verbose=0)
    with pytest.raises(ValueError) as full:
        model.predict(bad, verbose=0, batch_size=1)  # the path with every check
    assert str(silent.value) == str(full.value)
    assert "NaN" in str(on_batch.value)
    with pytest.raises(ValueError) as wrong:
        model.predict_on_batch(np.zeros((1, 29), np.float32))
    with pytest.raises(ValueError) as wrong_full:
        model.predict(np.zeros((1, 29), np.float32), verbose=0, batch_size=4)
    assert str(wrong.value) == str(wrong_full.value)
    # Not in the model's dtype, not contiguous, a list: converted as before, the same values.
    for other in (x[:1].astype(np.float64), np.asfortranarray(x[:2])[:1], x[:1].tolist()):
        np.testing.assert_array_equal(model.predict_on_batch(other), model.predict(x[:1], verbose=0))


def test_one_row_predict_follows_the_model_through_structural_changes() -> None:
    # The per-sample path decides once per structural change whether a row enters the network as
    # it is; after each change below it must give predict's full path's outputs or error again.
    rng = np.random.default_rng(3)
    x = rng.random((1, 30), dtype=np.float32)
    model = fm.Sequential([fm.layers.Input(shape=(30,)), fm.layers.Dense(4, activation="relu")])

    def check() -> None:
        full = model.predict(x, verbose=0, batch_size=1)  # the path with every check
        for out in (model.predict_on_batch(x), model(x), model.predict(x, verbose=0)):
            np.testing.assert_array_equal(out, full)

    def refused() -> None:
        for call in (model.predict_on_batch, model, lambda row: model.predict(row, verbose=0)):
            with pytest.raises(ValueError, match="comes after the last Dense layer"):
                call(x)

    check()
    model.add(fm.layers.BatchNormalization())  # would normalize the input of a Dense layer to come
    refused()
    model.add(fm.layers.Dense(3))
    check()
    kernel, bias = model.layers[0].get_weights()
    hidden = np.maximum(0, x.astype(np.float64) @ kernel + bias) / np.sqrt(1 + 1e-3)  # moving mean 0, variance 1
    kernel, bias = model.layers[2].get_weights()
    np.testing.assert_allclose(model.predict_on_batch(x), hidden @ kernel + bias, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Cannot build"):
        model.add(fm.layers.Dense(10**12))  # refused: the model stays as it was
    check()
    model.pop()
    refused()
    model.pop()
    check()
    assert model.predict_on_batch(x).shape == (1, 4)


def test_one_row_predict_refuses_a_flat_row_for_a_model_of_2d_samples() -> None:
    model = fm.Sequential([fm.layers.Input(shape=(2, 15)), fm.layers.Flatten(), fm.layers.Dense(4)])
    x = np.random.default_rng(4).random((1, 2, 15), dtype=np.float32)
    np.testing.assert_array_equal(model.predict_on_batch(x), model.predict(x, verbose=0, batch_size=1))
    with pytest.raises(ValueError, match="number of features"):
        model.predict_on_batch(x.reshape(1, 30))
