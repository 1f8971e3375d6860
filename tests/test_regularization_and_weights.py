"""Weight penalties (Keras's L1L2) and per-sample loss weights.

Checked against: NumPy formulas of the penalty and its gradient, the reference's loss and
gradients plus those, and central finite differences of the model's own reported loss."""

from __future__ import annotations

from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import _core
from fastmlp import reference as ref

RNG = np.random.default_rng(11)
X = RNG.standard_normal((9, 5))
Y = RNG.integers(0, 3, 9)


def model(kernel_reg: Any = None, bias_reg: Any = None, dtype: str = "float64") -> fm.Sequential:
    fm.utils.set_random_seed(3)
    m = fm.Sequential(
        [
            fm.layers.Input(shape=(5,)),
            fm.layers.Dense(4, activation="tanh", kernel_regularizer=kernel_reg, bias_regularizer=bias_reg,
                            bias_initializer=fm.initializers.RandomNormal(stddev=0.5)),
            fm.layers.Dense(3, activation="softmax", kernel_regularizer=fm.regularizers.L2(0.03)),
        ],
        dtype=dtype,
    )
    m.compile(optimizer=fm.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return m


def penalty(weights: list[Any], factors: list[tuple[float, float]]) -> float:
    return sum(l1 * np.abs(w).sum() + l2 * np.square(w).sum() for w, (l1, l2) in zip(weights, factors))


def test_loss_includes_the_penalties() -> None:
    m = model(fm.regularizers.L1L2(l1=0.02, l2=0.05), fm.regularizers.L1(0.04))
    w = m.get_weights()  # kernel0, bias0, kernel1, bias1
    params = [(w[0], w[1]), (w[2], w[3])]
    data_loss = ref.loss("sparse_categorical_crossentropy", Y, ref.predict(X, params, ["tanh", "softmax"])).mean()
    expected = data_loss + penalty(w, [(0.02, 0.05), (0.04, 0.0), (0.0, 0.03), (0.0, 0.0)])
    assert m.test_on_batch(X, Y) == pytest.approx(expected, rel=1e-12)
    assert m.evaluate(X, Y, verbose=0) == pytest.approx(expected, rel=1e-12)


def test_gradients_include_the_penalties() -> None:
    m = model(fm.regularizers.L1L2(l1=0.02, l2=0.05), fm.regularizers.L2(0.04))
    w = m.get_weights()
    params = [(w[0], w[1]), (w[2], w[3])]
    _, grads = ref.gradients(X, Y, params, ["tanh", "softmax"], "sparse_categorical_crossentropy")
    got = m.compute_gradients(X, Y)
    np.testing.assert_allclose(got[0][0], grads[0][0] + 0.02 * np.sign(w[0]) + 2 * 0.05 * w[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[0][1], grads[0][1] + 2 * 0.04 * w[1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[1][0], grads[1][0] + 2 * 0.03 * w[2], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[1][1], grads[1][1], rtol=1e-10, atol=1e-14)


def finite_difference(m: fm.Sequential, weights: list[Any], index: int, sample_weight: Any = None) -> Any:
    h = 1e-6
    grad = np.zeros_like(weights[index])
    for pos in np.ndindex(grad.shape):
        values = []
        for step in (h, -h):
            shifted = [w.copy() for w in weights]
            shifted[index][pos] += step
            m.set_weights(shifted)
            values.append(m.test_on_batch(X, Y, sample_weight=sample_weight))
        grad[pos] = (values[0] - values[1]) / (2 * h)
    m.set_weights(weights)
    return grad


def test_gradients_match_finite_differences_with_penalties_and_weights(isa: str) -> None:
    m = model(fm.regularizers.L1L2(l1=0.01, l2=0.02), fm.regularizers.L2(0.03))
    sample_weight = RNG.random(9) * 2
    w = m.get_weights()
    for index in range(4):
        numeric = finite_difference(m, w, index, sample_weight)
        # compute_gradients has no sample_weight: compare through one SGD step instead.
        m.set_weights(w)
        m.optimizer.learning_rate = 1.0  # type: ignore[union-attr]
        m.train_on_batch(X, Y, sample_weight=sample_weight)
        analytic = w[index] - m.get_weights()[index]
        m.set_weights(w)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_sample_weights_scale_each_sample_loss() -> None:
    m = model()
    sample_weight = np.arange(9, dtype=np.float64)
    w = m.get_weights()
    per_sample = ref.loss("sparse_categorical_crossentropy", Y, ref.predict(X, [(w[0], w[1]), (w[2], w[3])], ["tanh", "softmax"]))
    # Keras's "sum over batch size": sum(w_i * l_i) / n, plus the penalties.
    expected = (sample_weight * per_sample).sum() / 9 + penalty(w, [(0, 0), (0, 0), (0, 0.03), (0, 0)])
    assert m.test_on_batch(X, Y, sample_weight=sample_weight) == pytest.approx(expected, rel=1e-12)
    assert m.test_on_batch(X, Y, sample_weight=np.ones(9)) == pytest.approx(m.test_on_batch(X, Y), rel=1e-15)


@pytest.mark.parametrize("bad,match", [(np.ones(8), "sample_weight"), (np.array([np.nan] * 9), "NaN"), (np.ones((9, 2)), "shape")])
def test_bad_sample_weights(bad: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model().train_on_batch(X, Y, sample_weight=bad)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 100])
def test_regularize_kernel(isa: str, dtype: Any, n: int) -> None:
    w = RNG.standard_normal(n).astype(dtype)
    w[0] = 0  # sign(0) = 0
    net_type = _core.Network64 if dtype == np.float64 else _core.Network32
    net = net_type(n, [1], ["linear"], [False], [[0.1, 0.2, 0.0, 0.0]])
    net.set_kernel(0, w[:, None].copy())
    expected = 0.1 * np.abs(w.astype(np.float64)).sum() + 0.2 * np.square(w.astype(np.float64)).sum()
    # The factors themselves are rounded to the dtype (as Keras casts them): 0.1f is 1.5e-8 off.
    rel = 1e-12 if dtype == np.float64 else 1e-7
    assert net.regularization_penalty() == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("l1,l2", [(0.1, 0.2), (0.0, 0.2), (0.1, 0.0)])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 64, 100, 1001, 5400])
def test_penalty_kernel(isa: str, dtype: Any, n: int, l1: float, l2: float) -> None:
    # The kernel's sum over n weights (in chains, past whole vectors and a tail) against NumPy's
    # float64 sum of the same terms, the factors rounded to the dtype.
    w = RNG.standard_normal(n).astype(dtype)
    w64 = w.astype(np.float64)
    expected = float(dtype(l1)) * np.abs(w64).sum() + float(dtype(l2)) * np.square(w64).sum()
    assert _core.kernels.regularize(w, l1, l2) == pytest.approx(expected, rel=1e-13, abs=0)


@pytest.mark.parametrize("l1,l2", [(0.0, 0.2), (0.1, 0.0), (0.1, 0.2)])
def test_penalty_of_non_finite_weights(isa: str, dtype: Any, l1: float, l2: float) -> None:
    # As Keras's L1L2, whose zero factor adds no term: an infinite weight gives an infinite
    # penalty (not 0 * inf = NaN), a NaN weight gives NaN.
    w = np.ones(37, dtype=dtype)
    w[20] = -np.inf
    assert _core.kernels.regularize(w, l1, l2) == np.inf
    w[30] = np.nan
    assert np.isnan(_core.kernels.regularize(w, l1, l2))


@pytest.mark.parametrize("l1", [0.0, 0.01])
def test_penalty_gradient_kernel_bits(isa: str, dtype: Any, l1: float) -> None:
    # g + (l1 * sign(w) + 2 l2 * w), each operation rounded in the dtype, in that order: every
    # ISA gives these bits, signed zeros included (w = +-0, and a tiny w whose 2 l2 w underflows
    # to a zero of its sign), with NaN and infinite weights.
    tiny_l2 = dtype(1e-30) if dtype == np.float32 else dtype(1e-200)
    specials = np.array([0.0, -0.0, 1e-20, -1e-20, np.nan, np.inf, -np.inf], dtype=dtype)
    if dtype == np.float64:
        specials[2:4] = [1e-200, -1e-200]
    for l2 in (dtype(0.2), tiny_l2):
        w = np.concatenate([RNG.standard_normal(60).astype(dtype), specials, -specials])
        g = RNG.standard_normal(w.size).astype(dtype)
        g[60:] = np.where(np.arange(w.size - 60) % 2 == 0, dtype(0.0), dtype(-0.0))
        one = dtype(1)
        sign = (w > 0).astype(dtype) * one - (w < 0).astype(dtype) * one
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            expected = g + (dtype(l1) * sign + (dtype(2) * dtype(l2)) * w)
        got = _core.kernels.regularize(w, l1, float(l2), g)
        assert np.array_equal(got.view(np.uint8), expected.view(np.uint8)), (l2, got, expected)


def test_sparse_path_with_a_penalised_first_layer_equals_the_dense_path() -> None:
    x = RNG.random((200, 64)).astype(np.float32)
    x[RNG.random(x.shape) > 0.15] = 0
    y = RNG.integers(0, 3, 200)
    density = _core.sparse_density_threshold()
    runs = []
    try:
        for threshold in (1.0, 0.0):
            _core.set_sparse_density_threshold(threshold)
            fm.utils.set_random_seed(1)
            m = fm.Sequential([fm.layers.Input(shape=(64,)), fm.layers.Dense(16, activation="relu", kernel_regularizer=fm.regularizers.L1L2(0.001, 0.01)), fm.layers.Dense(3, activation="softmax")])
            m.compile(optimizer=fm.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
            m.fit(x, y, batch_size=16, epochs=2, verbose=0)
            runs.append(m.get_weights())
    finally:
        _core.set_sparse_density_threshold(density)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_regularizer_config_round_trips(tmp_path: Any) -> None:
    m = model(fm.regularizers.L1L2(0.01, 0.02), "l2")
    m.save(tmp_path / "m.fastmlp")
    loaded = fm.models.load_model(tmp_path / "m.fastmlp")
    assert loaded.test_on_batch(X, Y) == m.test_on_batch(X, Y)
    with pytest.raises(ValueError, match="l1"):
        fm.regularizers.L1(-1.0)
