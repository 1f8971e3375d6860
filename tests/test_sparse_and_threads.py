"""The speed paths change no result.

- The first layer's sparse path (it reads only a batch's nonzero inputs) computes each output as
  the same multiply-add chain as the dense product, minus exact-zero terms: bitwise equal.
- Work split over threads never changes which operations make an element: every thread count
  gives bit-identical weights and predictions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core

K = _core.kernels


@pytest.fixture
def restore_settings() -> Iterator[None]:
    threads, density, step = fm.get_num_threads(), _core.sparse_density_threshold(), _core.active_step()
    yield
    fm.set_num_threads(threads)
    _core.set_sparse_density_threshold(density)
    _core.set_step(step)


def sparse_matrix(rng: np.random.Generator, rows: int, cols: int, density: float, dtype: Any) -> Any:
    x = rng.random((rows, cols)).astype(dtype)
    x[rng.random((rows, cols)) >= density] = 0
    return x


def csr(x: Any) -> tuple[Any, Any]:
    """Per-row lists of nonzero columns, built with NumPy (independent of the kernel)."""
    cols = [np.flatnonzero(row) for row in x]
    starts = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.uint32)
    flat = np.concatenate(cols).astype(np.uint32) if cols else np.zeros(0, np.uint32)
    return starts, flat


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 17, 100, 784])
def test_nonzero_indices_match_numpy(isa: str, dtype: Any, n: int) -> None:
    rng = np.random.default_rng(n)
    x = sparse_matrix(rng, 1, n, 0.3, dtype)[0]
    if n > 3:
        x[1] = -0.0  # negative zero is zero
        x[2] = np.nan  # NaN is not zero: it must reach the product and show
    expected = np.flatnonzero(x != 0)
    np.testing.assert_array_equal(K.nonzero_indices(x), expected)
    # With their values (the lists the row-split and pipelined steps build): bit for bit.
    idx, vals = K.nonzero_indices(x, values=True)
    np.testing.assert_array_equal(idx, expected)
    assert vals.dtype == x.dtype
    np.testing.assert_array_equal(vals.view(np.uint8), x[expected].view(np.uint8))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 16, 17, 100, 787])
def test_nonzero_indices_flag_non_finite_inputs(isa: str, dtype: Any, n: int) -> None:
    """The flag fit's check relies on: set exactly when np.isfinite finds a NaN or infinity,
    wherever it sits (whole vectors or the tail), and not for large, tiny or negative-zero
    finite values; the lists are unchanged by it."""
    rng = np.random.default_rng(n)
    x = sparse_matrix(rng, 1, n, 0.3, dtype)[0]
    info = np.finfo(dtype)
    extremes = [info.max, -info.max, info.tiny, info.tiny / 4, -0.0]  # tiny / 4: subnormal
    for j, value in zip(rng.permutation(n), extremes):
        x[j] = value
    (idx, vals), flag = K.nonzero_indices(x, values=True, non_finite=True)
    assert flag is False
    np.testing.assert_array_equal(idx, np.flatnonzero(x != 0))
    np.testing.assert_array_equal(vals.view(np.uint8), x[x != 0].view(np.uint8))
    for j in sorted({0, n // 2, n - 1}):
        for value in (np.nan, np.inf, -np.inf, -np.nan):
            bad = x.copy()
            bad[j] = value
            assert not np.isfinite(bad).all()
            got, flag = K.nonzero_indices(bad, non_finite=True)
            assert flag is True, (j, value)
            np.testing.assert_array_equal(got, np.flatnonzero(bad != 0))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 17, 31, 32, 33, 64, 100, 787, 10800])
def test_nonzero_count_without_lists(isa: str, dtype: Any, n: int) -> None:
    """nonzero_indices with no list to write (how a dense batch is checked): NumPy's count,
    and the non-finite flag wherever the NaN or infinity sits (whole blocks of vectors or the
    tail), not for large, tiny, subnormal or negative-zero finite values."""
    rng = np.random.default_rng(n)
    x = sparse_matrix(rng, 1, n, 0.5, dtype)[0]
    info = np.finfo(dtype)
    for j, value in zip(rng.permutation(n), [-0.0, info.max, -info.max, info.tiny, info.tiny / 4]):
        x[j] = value
    assert K.count_nonzero(x) == (np.count_nonzero(x), False)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    signaling = np.array(0x7FA00000 if bits is np.uint32 else 0x7FF4000000000000, dtype=bits).view(dtype)
    for j in sorted({0, 1, 15, 16, 31, 32, n // 2, n - 1} & set(range(n))):
        for value in (np.nan, np.inf, -np.inf, signaling):
            bad = x.copy()
            bad[j] = value
            assert K.count_nonzero(bad) == (np.count_nonzero(bad), True), (j, value)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 63, 64, 65, 100, 130])
@pytest.mark.parametrize("density", [0.0, 0.2, 1.0])
def test_sparse_gemm_is_bitwise_dense_gemm(isa: str, dtype: Any, n: int, density: float) -> None:
    rng = np.random.default_rng(n)
    x = sparse_matrix(rng, 13, 300, density, dtype)
    w = rng.standard_normal((300, n)).astype(dtype)
    starts, cols = csr(x)
    got = K.sparse_gemm(x, w, starts, cols)
    np.testing.assert_array_equal(got, K.gemm(x, w))
    # Entries that carry their values (as fit's lists do), beside the indices or with them in
    # pairs, give the same bits.
    np.testing.assert_array_equal(K.sparse_gemm(x, w, starts, cols, values="list"), got)
    np.testing.assert_array_equal(K.sparse_gemm(x, w, starts, cols, values="entries"), got)
    # Independent check of the value (the dense kernel could share a bug).
    exact = x.astype(np.float64) @ w.astype(np.float64)
    u = np.finfo(dtype).eps / 2
    bound = 300 * u / (1 - 300 * u) * (np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64))
    assert np.all(np.abs(got - exact) <= bound + np.finfo(dtype).tiny)


@pytest.mark.parametrize("n", [10, 100])
def test_sparse_gemm_transposed_is_the_kernel_gradient(isa: str, dtype: Any, n: int) -> None:
    # dW = X^T @ D with X's nonzeros listed per feature (rows increasing): the same chains as
    # gemm on the transposed view.
    rng = np.random.default_rng(1)
    x = sparse_matrix(rng, 64, 50, 0.2, dtype)
    d = rng.standard_normal((64, n)).astype(dtype)
    starts, rows = csr(x.T)
    got = K.sparse_gemm(x.T, d, starts, rows)
    np.testing.assert_array_equal(got, K.gemm(x.T, d))
    # As the pipelined step lists them: (row, value) entries.
    np.testing.assert_array_equal(K.sparse_gemm(x.T, d, starts, rows, values="entries"), got)
    assert np.all(got[np.flatnonzero(~x.any(axis=0))] == 0)  # features never on: zero rows


@pytest.mark.parametrize("split", [0, 5, 160, 300])
def test_sparse_gemm_continued_over_a_feature_split_is_one_chain(isa: str, dtype: Any, split: int) -> None:
    # Features [0, split) first, then [split, 300) continuing each chain (as a training step
    # split over threads by input features does): the bits of one product over all features.
    rng = np.random.default_rng(split)
    x = sparse_matrix(rng, 9, 300, 0.3, dtype)
    w = rng.standard_normal((300, 100)).astype(dtype)
    whole = K.sparse_gemm(x, w, *csr(x))
    low = K.sparse_gemm(x[:, :split], w[:split], *csr(x[:, :split]), values="list")
    both = K.sparse_gemm(x[:, split:], w[split:], *csr(x[:, split:]), values="list", continue_from=low)
    np.testing.assert_array_equal(both, whole)
    # Continuing from nonzero values adds the chain onto them, within the rounding of a chain of
    # 301 terms (gamma_301 times the sum of magnitudes).
    start = rng.standard_normal(whole.shape).astype(dtype)
    more = K.sparse_gemm(x, w, *csr(x), continue_from=start)
    exact = start.astype(np.float64) + x.astype(np.float64) @ w.astype(np.float64)
    u = np.finfo(dtype).eps / 2
    magnitude = np.abs(start).astype(np.float64) + np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64)
    assert np.all(np.abs(more - exact) <= 301 * u / (1 - 301 * u) * magnitude)
    assert not np.array_equal(more, whole)


def test_sparse_gemm_rejects_bad_lists() -> None:
    x = np.eye(3, dtype=np.float32)
    w = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="cols"):
        K.sparse_gemm(x, w, np.array([0, 1, 2, 3], np.uint32), np.array([0, 5, 2], np.uint32))
    with pytest.raises(ValueError, match="starts"):
        K.sparse_gemm(x, w, np.array([0, 1, 2], np.uint32), np.array([0, 1, 2], np.uint32))


def train(
    x: Any,
    y: Any,
    hidden: list[int],
    optimizer: Any,
    batch_size: int,
    epochs: int = 2,
    dtype: str = "float32",
) -> fm.Sequential:
    fm.utils.set_random_seed(7)
    model = fm.Sequential(
        [fm.layers.Input(shape=(x.shape[1],))]
        + [fm.layers.Dense(h, activation="relu") for h in hidden]
        + [fm.layers.Dense(10, activation="softmax")],
        dtype=dtype,
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def assert_same_weights(a: fm.Sequential, b: fm.Sequential) -> None:
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("batch_size", [1, 64])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_on_the_sparse_path_equals_the_dense_path(
    isa: str, restore_settings: None, batch_size: int, dtype: str
) -> None:
    rng = np.random.default_rng(0)
    x = sparse_matrix(rng, 300, 200, 0.15, np.float32)
    y = rng.integers(0, 10, 300)
    runs = []
    for threshold in (1.0, 0.0):  # always sparse, never sparse
        _core.set_sparse_density_threshold(threshold)
        runs.append(train(x, y, [40], "sgd", batch_size, dtype=dtype))
    assert_same_weights(*runs)
    np.testing.assert_array_equal(runs[0].predict(x, verbose=0), runs[1].predict(x, verbose=0))


@pytest.mark.parametrize(
    "hidden,batch_size,optimizer",
    [([100], 64, "sgd"), ([300, 200], 256, "adam"), ([64], 1, "rmsprop"), ([512], 100, "sgd")],
)
@pytest.mark.parametrize("density", [0.15, 1.0])
def test_thread_count_does_not_change_results(
    restore_settings: None, hidden: list[int], batch_size: int, optimizer: str, density: float
) -> None:
    rng = np.random.default_rng(3)
    x = sparse_matrix(rng, 600, 784, density, np.float32)
    y = rng.integers(0, 10, 600)
    models = []
    for threads in (1, 2, 3):
        fm.set_num_threads(threads)
        models.append(train(x, y, hidden, optimizer, batch_size, epochs=1))
    for other in models[1:]:
        assert_same_weights(models[0], other)
    fm.set_num_threads(1)
    one = models[0].predict(x, verbose=0)
    fm.set_num_threads(2)
    np.testing.assert_array_equal(models[0].predict(x, verbose=0), one)


def fit_history(model: fm.Sequential, x: Any, y: Any, **fit: Any) -> dict[str, list[float]]:
    history: dict[str, list[float]] = model.fit(x, y, epochs=2, verbose=0, **fit).history
    return history


# fit with several threads splits each step by rows of the batch (each thread takes its rows
# through the forward and backward pass, then its share of the weight gradients); when the last
# batch was sparse, the first layer is split by input features instead, each thread continuing
# every row's chain over its columns after the thread before it (a pipeline); with one thread,
# or with the column step forced, every product is split by columns. Cases cover each loss's
# output path, weights, penalties, and batches whose parts differ in density (the data turns
# from dense to sparse and back, so the pipeline also meets a batch it guessed wrong).
ROW_SPLIT_CASES = {
    "sparse-ce-sgd": dict(loss="sparse_categorical_crossentropy", out="softmax", optimizer="sgd", batch=64),
    "onehot-ce-adam": dict(loss="categorical_crossentropy", out="softmax", optimizer="adam", batch=50),
    "mse-linear-momentum": dict(loss="mse", out="linear", optimizer="sgd-momentum", batch=33),
    "mae-tanh-rmsprop": dict(loss="mae", out="tanh", optimizer="rmsprop", batch=17),
    "bce-sigmoid-weights": dict(loss="binary_crossentropy", out="sigmoid", optimizer="sgd", batch=64, weights=True),
    "l2-penalty-sgd": dict(loss="sparse_categorical_crossentropy", out="softmax", optimizer="sgd", batch=40, l2=1e-3),
    "two-hidden-elu": dict(loss="sparse_categorical_crossentropy", out="softmax", optimizer="sgd", batch=64, hidden=[60, 30]),
}


@pytest.mark.parametrize("case", list(ROW_SPLIT_CASES))
def test_row_split_steps_equal_column_split_steps(restore_settings: None, case: str) -> None:
    c = ROW_SPLIT_CASES[case]
    rng = np.random.default_rng(11)
    # Dense first half, sparse second half, unshuffled: a batch's parts take different first-layer
    # kernels (each part decides on its own rows).
    x = np.concatenate([rng.random((160, 120), dtype=np.float32), sparse_matrix(rng, 160, 120, 0.1, np.float32)])
    labels = rng.integers(0, 10, 320)
    sparse_loss = c["loss"] == "sparse_categorical_crossentropy"
    y = labels if sparse_loss else np.eye(10, dtype=np.float32)[labels]
    fit: dict[str, Any] = dict(batch_size=c["batch"], shuffle=False)
    if c.get("weights"):
        fit["sample_weight"] = rng.random(320).astype(np.float32) + 0.5
    runs = []
    for threads, step in ((1, "auto"), (2, "columns"), (2, "rows"), (2, "auto"), (3, "auto")):
        fm.set_num_threads(threads)
        _core.set_step(step)
        fm.utils.set_random_seed(5)
        reg = fm.regularizers.l2(c["l2"]) if "l2" in c else None
        hidden = c.get("hidden", [48])
        model = fm.Sequential(
            [fm.layers.Input(shape=(120,))]
            + [fm.layers.Dense(h, activation="elu", kernel_regularizer=reg, bias_regularizer=reg) for h in hidden]
            + [fm.layers.Dense(10, activation=c["out"])]
        )
        metrics = ["accuracy"] if c["out"] == "softmax" else ["mae"]
        optimizer = fm.optimizers.SGD(0.01, momentum=0.9) if c["optimizer"] == "sgd-momentum" else c["optimizer"]
        model.compile(optimizer=optimizer, loss=c["loss"], metrics=metrics)
        runs.append((model, fit_history(model, x, y, **fit)))
    first, first_history = runs[0]
    assert np.isfinite(first_history["loss"]).all()
    for model, history in runs[1:]:
        assert_same_weights(first, model)
        assert history == first_history  # the losses and metrics too, to the last bit


def test_num_threads_api(restore_settings: None) -> None:
    fm.set_num_threads(2)
    assert fm.get_num_threads() == 2
    fm.set_num_threads(1)
    assert fm.get_num_threads() == 1
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="`n`"):
            fm.set_num_threads(bad)  # type: ignore[arg-type]


def test_rapid_thread_count_changes_do_not_hang(restore_settings: None) -> None:
    # A worker that had not started yet when the pool was resized again used to miss its stop
    # signal, and join() waited forever. Run in a subprocess so a regression fails, not hangs.
    import subprocess
    import sys

    code = (
        "import fastmlp as fm\n"
        "for _ in range(2000):\n"
        "    fm.set_num_threads(1); fm.set_num_threads(2); fm.set_num_threads(3)\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_fits_in_two_python_threads_at_once_finish_with_the_same_weights(restore_settings: None) -> None:
    # Two fits at once share the pool: the second finds it busy and runs its steps' parts one
    # after the other, where the pipelined step's parts (which wait for each other) used to wait
    # forever. Each must still give the weights of a fit alone. In a subprocess: a regression
    # fails the test instead of hanging the suite.
    import subprocess
    import sys

    code = """
import threading
import numpy as np, fastmlp as fm
rng = np.random.default_rng(0)
x = rng.random((1500, 784), dtype=np.float32)
x[x < 0.8] = 0  # sparse, as MNIST: fit pipelines the first layer over the threads
y = rng.integers(0, 10, 1500)
fm.set_num_threads(2)
def fit():
    fm.utils.set_random_seed(1)
    m = fm.Sequential([fm.layers.Input(shape=(784,)), fm.layers.Dense(100, activation="sigmoid"),
                       fm.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m
alone = fit()
alone.fit(x, y, batch_size=64, epochs=3, verbose=0, shuffle=False)
models = [fit() for _ in range(2)]
threads = [threading.Thread(target=m.fit, args=(x, y), kwargs=dict(batch_size=64, epochs=3, verbose=0, shuffle=False))
           for m in models]
for t in threads: t.start()
for t in threads: t.join()
same = all(np.array_equal(a, b) for m in models for a, b in zip(alone.get_weights(), m.get_weights()))
print("same" if same else "different")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "same"
