"""A hidden layer's batch rows are padded to whole cache lines (row_stride in
cpp/src/network.cpp): 100 float32 units take 112 values a row, so that every row starts on a
line. Only the layout changes: every step, thread count, ISA and entry point must give the bits
of the same network built with contiguous rows (_core.set_row_padding(False)), and where the
padding applies is checked through the network's strides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core

STEPS = ["vector", "pipeline", "rows", "columns"]


@pytest.fixture(autouse=True)
def keep_settings() -> Iterator[None]:
    before = (_core.row_padding(), _core.active_step(), fm.get_num_threads())
    try:
        yield
    finally:
        _core.set_row_padding(before[0])
        _core.set_step(before[1])
        fm.set_num_threads(before[2])


def strides(model: fm.Sequential) -> list[int]:
    network = model._engine._network  # type: ignore[attr-defined]
    assert network is not None
    return [network.batch_row_stride(layer) for layer in range(network.num_layers)]


def build(padded: bool, layers: list[Any], dtype: str, optimizer: str, loss: str) -> fm.Sequential:
    _core.set_row_padding(padded)
    fm.utils.set_random_seed(5)
    model = fm.Sequential(layers, dtype=dtype)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"] if loss != "mse" else [])
    return model


def data(kind: str, rows: int, features: int, dtype: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((rows, features)).astype(dtype)
    if kind == "sparse":  # mostly zeros: the first layer's sparse paths
        x[rng.random(x.shape) < 0.85] = 0
    return x, rng.integers(0, 5, rows)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_where_the_padding_applies(dtype: str) -> None:
    line = 16 if dtype == "float32" else 8
    def layers() -> list[Any]:
        return [
            fm.layers.Input(shape=(30,)),
            fm.layers.Dense(100, activation="relu"),  # padded
            fm.layers.Dense(4 * line, activation="relu"),  # whole lines already
            fm.layers.Dense(4 * line - 1, activation="tanh"),  # below four lines: as it is
            fm.layers.Dense(70, activation="sigmoid"),
            fm.layers.Dropout(0.2),  # a dropout's layer keeps contiguous rows
            fm.layers.Dense(90, activation="relu"),  # the next layer normalizes its input
            fm.layers.BatchNormalization(),
            fm.layers.Dense(100),  # the last layer: as it is
        ]
    model = build(True, layers(), dtype, "sgd", "mse")
    model.predict(np.zeros((2, 30), dtype), verbose=0)
    assert strides(model) == [-(-100 // line) * line, 4 * line, 4 * line - 1, 70, 90, 100]
    model = build(False, layers(), dtype, "sgd", "mse")
    model.predict(np.zeros((2, 30), dtype), verbose=0)
    assert strides(model) == [100, 4 * line, 4 * line - 1, 70, 90, 100]


def train(padded: bool, step: str, threads: int, x: Any, y: Any, dtype: str, activation: str, optimizer: str,
          batch_size: int) -> tuple[fm.Sequential, dict[str, list[float]]]:
    layers = [
        fm.layers.Input(shape=(x.shape[1],)),
        fm.layers.Dense(100, activation=activation),
        fm.layers.Dense(70, activation="relu"),
        fm.layers.Dense(5, activation="softmax"),
    ]
    model = build(padded, layers, dtype, optimizer, "sparse_categorical_crossentropy")
    _core.set_step(step)
    fm.set_num_threads(threads)
    history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0).history
    assert (strides(model)[:2] != [100, 70]) == padded
    return model, history


def assert_same(a: fm.Sequential, b: fm.Sequential) -> None:
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert wa.dtype == wb.dtype
        np.testing.assert_array_equal(wa.view(np.uint8), wb.view(np.uint8))


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("activation", "optimizer"), [("relu", "adam"), ("sigmoid", "sgd"), ("tanh", "sgd")])
def test_padded_rows_train_to_the_same_bits(step: str, kind: str, dtype: str, activation: str, optimizer: str) -> None:
    # Batches of 37 and a last one of 3 (the small-batch products), on 1 and 2 threads, the step
    # forced (it runs where it can); batch 1 for the per-sample step.
    x, y = data(kind, 114, 41, dtype)
    for batch_size in (37, 1) if step == "vector" else (37,):
        reference, reference_history = train(False, "columns", 1, x, y, dtype, activation, optimizer, batch_size)
        for threads in (1, 2):
            model, history = train(True, step, threads, x, y, dtype, activation, optimizer, batch_size)
            assert_same(reference, model)
            assert history == reference_history
            # The forward paths: batched predict, evaluate, one row per call.
            np.testing.assert_array_equal(model.predict(x, verbose=0), reference.predict(x, verbose=0))
            assert model.evaluate(x, y, verbose=0) == reference.evaluate(x, y, verbose=0)
            for row in (0, 57):
                np.testing.assert_array_equal(model.predict_on_batch(x[row : row + 1]),
                                              reference.predict_on_batch(x[row : row + 1]))


def test_padded_rows_agree_with_the_float64_reference() -> None:
    # Independent of both layouts: one SGD step of a padded network against NumPy's float64 math.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 20))
    y = rng.standard_normal((50, 3))
    model = build(True, [fm.layers.Input(shape=(20,)), fm.layers.Dense(100, activation="relu"),
                         fm.layers.Dense(3)], "float64", fm.optimizers.SGD(0.1), "mse")
    w1, b1, w2, b2 = (w.copy() for w in model.get_weights())
    model.fit(x, y, batch_size=50, epochs=1, verbose=0, shuffle=False)
    assert strides(model) == [104, 3]
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    out = h @ w2 + b2
    d_out = 2 * (out - y) / out.size
    d_h = (d_out @ w2.T) * (z1 > 0)
    expected = [w1 - 0.1 * x.T @ d_h, b1 - 0.1 * d_h.sum(0), w2 - 0.1 * h.T @ d_out, b2 - 0.1 * d_out.sum(0)]
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
