"""fit finds NaN and infinity in x while it trains, not in a pass of its own before.

The core sees every input of a batch while it lists the batch's nonzeros, and stops before that
batch's update; fit then puts back the model's state from before the call. To a user this must
look like a check before training: the same ValueError naming the first bad sample, and a model
that is bit for bit as if the call never happened (weights, optimizer state, shuffle generator:
the next fit gives the weights of a model that never saw the bad call); only callbacks have
heard of the batches before the bad one. Every way a
step can run is covered: one thread, steps split by rows, the pipelined first layer, batch 1,
dropout, float64, and optimizers with and without state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core

ROWS, FEATURES, CLASSES = 600, 787, 10  # 787: the last 3 columns are past the last whole vector
BAD_SAMPLE = 437


def sparse_data(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like: ~20% nonzero inputs in (0, 1], so that fit takes its sparse paths."""
    rng = np.random.default_rng(7)
    x = rng.random((ROWS, FEATURES)).astype(dtype)
    x[rng.random((ROWS, FEATURES)) >= 0.2] = 0
    return x, rng.integers(0, CLASSES, size=ROWS)


def make_model(optimizer: str, dropout: float = 0.0, dtype: str = "float32") -> fm.Sequential:
    fm.utils.set_random_seed(3)
    layers: list[Any] = [fm.layers.Input(shape=(FEATURES,)), fm.layers.Dense(24, activation="sigmoid")]
    if dropout:
        layers.append(fm.layers.Dropout(dropout))
    layers.append(fm.layers.Dense(CLASSES, activation="softmax"))
    model = fm.Sequential(layers, dtype=dtype)
    opt = {
        "sgd": fm.optimizers.SGD(learning_rate=0.1),  # the first layer's update fused into its gradient
        "momentum": fm.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        "adam": fm.optimizers.Adam(learning_rate=1e-3),
    }[optimizer]
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(params=["1 thread", "2 threads by rows", "2 threads pipelined", "2 threads by columns"])
def step_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    threads = 1 if request.param == "1 thread" else 2
    before = (fm.get_num_threads(), _core.active_step())
    fm.set_num_threads(threads)
    _core.set_step({"2 threads by rows": "rows", "2 threads pipelined": "pipeline", "2 threads by columns": "columns"}.get(request.param, "auto"))
    try:
        yield request.param
    finally:
        fm.set_num_threads(before[0])
        _core.set_step(before[1])


def assert_bad_call_leaves_no_trace(
    make: Any, x: np.ndarray, y: np.ndarray, bad: np.ndarray, pattern: str, **fit: Any
) -> None:
    """fit(bad) raises with `pattern`; the model then trains on as a twin that never saw it."""
    model, twin = make(), make()
    # Data large against the model, so that fit checks x while training (see the last test).
    assert 4 * model.count_params() * bad.dtype.itemsize <= bad.nbytes
    for m in (model, twin):
        m.fit(x, y, verbose=0, **fit)  # some state first: momentum, iterations, a used shuffle
    before = model.get_weights()
    with pytest.raises(ValueError, match=pattern):
        model.fit(bad, y, verbose=0, **fit)
    for a, b in zip(model.get_weights(), before):
        assert np.array_equal(a, b)
    for m in (model, twin):
        m.fit(x, y, verbose=0, **fit)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("column", [0, 300, 783, 786])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_x_in_a_later_batch(step_kind: str, optimizer: str, column: int, value: float) -> None:
    x, y = sparse_data()
    bad = x.copy()
    bad[BAD_SAMPLE, column] = value
    assert_bad_call_leaves_no_trace(
        lambda: make_model(optimizer), x, y, bad, rf"`x` contains NaN or inf.*sample {BAD_SAMPLE}\b",
        batch_size=64, epochs=2,
    )


def test_the_first_bad_sample_is_named(step_kind: str) -> None:
    """Several bad rows: the message names the lowest, as the check before training did, even when
    the shuffled order meets another one first."""
    x, y = sparse_data()
    bad = x.copy()
    for row in (590, 31, 432):
        bad[row, 100] = np.nan
    assert_bad_call_leaves_no_trace(
        lambda: make_model("sgd"), x, y, bad, r"`x` contains NaN or inf.*sample 31\b", batch_size=64
    )


@pytest.mark.parametrize("batch_size", [1, 7, ROWS])
def test_batch_sizes(step_kind: str, batch_size: int) -> None:
    x, y = sparse_data()
    rows = 200 if batch_size == 1 else ROWS  # batch 1 is slow in the momentum optimizer's steps
    x, y = x[:rows], y[:rows]
    bad = x.copy()
    bad[150, 5] = np.inf
    assert_bad_call_leaves_no_trace(
        lambda: make_model("momentum"), x, y, bad, r"`x` contains NaN or inf.*sample 150\b", batch_size=batch_size
    )


def test_dense_inputs(step_kind: str) -> None:
    """Inputs with no zeros: the first layer takes its dense products, and the check still sees
    every input."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=300)
    bad = x.copy()
    bad[211, 786] = np.nan
    assert_bad_call_leaves_no_trace(
        lambda: make_model("sgd"), x, y, bad, r"`x` contains NaN or inf.*sample 211\b", batch_size=32
    )


def test_dropout_model(step_kind: str) -> None:
    x, y = sparse_data()
    bad = x.copy()
    bad[BAD_SAMPLE, 9] = -np.inf
    assert_bad_call_leaves_no_trace(
        lambda: make_model("momentum", dropout=0.3), x, y, bad, rf"`x` contains NaN or inf.*sample {BAD_SAMPLE}\b",
        batch_size=64,
    )


def test_float64_model(step_kind: str) -> None:
    x, y = sparse_data(np.float64)
    bad = x.copy()
    bad[BAD_SAMPLE, 400] = np.nan
    assert_bad_call_leaves_no_trace(
        lambda: make_model("sgd", dtype="float64"), x, y, bad, rf"`x` contains NaN or inf.*sample {BAD_SAMPLE}\b",
        batch_size=64,
    )


def test_a_value_beyond_float32_is_reported_as_such(step_kind: str) -> None:
    """1e39 is finite in the float64 data and infinite once cast for a float32 model: the core
    sees inf, and the message says what happened, as the check before training did."""
    x, y = sparse_data()
    bad = x.astype(np.float64)
    bad[BAD_SAMPLE, 10] = 1e39
    assert_bad_call_leaves_no_trace(
        lambda: make_model("sgd"), x, y, bad, rf"`x` holds a value beyond the range of float32.*sample {BAD_SAMPLE}\b",
        batch_size=64,
    )


def test_validation_split_still_checks_all_of_x_first() -> None:
    """With validation_split the held-out rows are not trained on: a NaN there is found before
    training, and nothing is trained."""
    x, y = sparse_data()
    bad = x.copy()
    bad[590, 3] = np.nan  # in the last 10%
    model = make_model("sgd")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf.*sample 590\b"):
        model.fit(bad, y, validation_split=0.1, verbose=0)
    for a, b in zip(model.get_weights(), before):
        assert np.array_equal(a, b)


def test_clean_data_trains_as_before(step_kind: str) -> None:
    """The check changes nothing for finite data: fit gives the weights of train_on_batch steps
    on the same batches (whose x is checked before the step), bit for bit."""
    x, y = sparse_data()
    model, twin = make_model("momentum"), make_model("momentum")
    model.fit(x, y, batch_size=200, shuffle=False, verbose=0)
    for start in range(0, ROWS, 200):
        twin.train_on_batch(x[start : start + 200], y[start : start + 200])
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert np.array_equal(a, b)


class BatchCounter(fm.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.began, self.batches = 0, 0

    def on_train_begin(self, logs: Any = None) -> None:
        self.began += 1

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1


@pytest.mark.parametrize("rows,in_training", [(20, False), (ROWS, True)])
def test_a_model_large_for_its_data_checks_x_before_training(rows: int, in_training: bool) -> None:
    """Copying the model's state costs memory and time in proportion to the model: when that is
    more than reading x once (here 20 rows for 19k weights), fit checks x before training, and
    no callback hears of training at all. With x checked while training, the batches before the
    bad one were trained (then undone) and their callbacks ran."""
    x, y = sparse_data()
    x, y = x[:rows].copy(), y[:rows]
    x[rows - 3, 7] = np.nan
    model = make_model("sgd")
    assert (4 * model.count_params() * x.itemsize <= x.nbytes) == in_training
    before = model.get_weights()
    counter = BatchCounter()
    with pytest.raises(ValueError, match=rf"`x` contains NaN or inf.*sample {rows - 3}\b"):
        model.fit(x, y, batch_size=4, shuffle=False, callbacks=[counter], verbose=0)
    for a, b in zip(model.get_weights(), before):
        assert np.array_equal(a, b)
    assert counter.began == int(in_training)
    # Batches of 4 in order: the bad row is in the last batch but one.
    assert counter.batches == ((rows - 3) // 4 if in_training else 0)


def test_the_core_stops_before_the_bad_batch() -> None:
    """The core call under fit: the batches before the bad one are applied, the bad one is not,
    and the error, a ValueError, names the bad sample."""
    x, y = sparse_data()
    x[BAD_SAMPLE, 12] = np.nan
    model, twin = make_model("sgd"), make_model("sgd")
    model.fit(x[:1], y[:1], verbose=0)  # builds the trainer
    twin.fit(x[:1], y[:1], verbose=0)
    engine = model._engine  # the model's engine: its calls go straight to the core
    engine.begin_epoch(ROWS, False)
    y32 = y.astype(np.int32)
    with pytest.raises(_core.NonFiniteInputError, match=rf"in sample {BAD_SAMPLE}\)") as caught:
        engine.train_batches(x, y32, 64, 0, engine.num_batches(64))
    assert isinstance(caught.value, ValueError)
    # The twin trains on the 6 whole batches before sample 437's (batch 6), in the same order.
    clean = BAD_SAMPLE // 64 * 64
    twin.fit(x[:clean], y[:clean], batch_size=64, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert np.array_equal(a, b)
