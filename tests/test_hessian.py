"""``compute_hessian`` and ``hessian_vector_product`` against independent second derivatives.

Expected values come from outside the Hessian code:

* central differences of ``compute_gradients`` (column j of H is d(grad)/dw_j): step h = 1e-5
  leaves a truncation error ~h^2 * |g'''| and a rounding error ~eps * |g| / h, both ~1e-10
  here, so atol 1e-7 (rtol 1e-5) keeps a margin of ~1000 and still catches any wrong factor,
  sign or missing term (of order 1e-2 or more);
* second differences of the loss itself (``test_on_batch``), which also carries sample weights
  and the weight penalties: step 1e-4 gives errors ~eps * |L| / h^2 + h^2 * |L''''| ~ 1e-8,
  hence atol 2e-6;
* closed forms worked by hand: linear regression with MSE (2/N X^T W X, a bias column
  appended), logistic regression (X^T diag(p (1 - p)) X / N) and softmax regression.

Every model is float64 (except where a float32 model is compared with the same float64 one).
The first-order checks run once per instruction set (``isa``), since the pass uses the
float64 kernels of the active one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import fastmlp as fm
import numpy as np
import pytest

N_FEATURES = 3
GRAD_STEP = 1e-5
GRAD_TOL = dict(rtol=1e-5, atol=1e-7)
LOSS_STEP = 1e-4
LOSS_TOL = dict(rtol=1e-4, atol=2e-6)


@dataclass(frozen=True)
class Case:
    name: str
    hidden: tuple[tuple[int, str], ...]
    output: tuple[int, str]
    loss: str
    from_logits: bool = False
    penalties: dict[str, float] = field(default_factory=dict)

    def loss_object(self) -> Any:
        if not self.from_logits:
            return self.loss
        return {
            "binary_crossentropy": fm.losses.BinaryCrossentropy,
            "categorical_crossentropy": fm.losses.CategoricalCrossentropy,
            "sparse_categorical_crossentropy": fm.losses.SparseCategoricalCrossentropy,
        }[self.loss](from_logits=True)


CASES = [
    Case("tanh_mse", ((4, "tanh"),), (2, "linear"), "mse"),
    Case(
        "sigmoid_relu_sparse_softmax",
        ((4, "sigmoid"), (3, "relu")),
        (3, "softmax"),
        "sparse_categorical_crossentropy",
    ),
    Case("elu_leaky_bce_sigmoid", ((4, "elu"), (3, "leaky_relu")), (2, "sigmoid"), "binary_crossentropy"),
    Case("gelu_swish_mse_softmax", ((4, "gelu"), (3, "swish")), (3, "softmax"), "mse"),  # softmax Jacobian
    Case("gelu_tanh_softplus_cce_sigmoid", ((4, "gelu_tanh"), (3, "softplus")), (3, "sigmoid"), "categorical_crossentropy"),
    Case("hidden_softmax_cce_logits", ((4, "softmax"),), (3, "linear"), "categorical_crossentropy", from_logits=True),
    Case("tanh_bce_logits", ((4, "tanh"),), (2, "linear"), "binary_crossentropy", from_logits=True),
    Case("tanh_bce_softmax_probabilities", ((4, "tanh"),), (2, "softmax"), "binary_crossentropy"),
    Case("sigmoid_mae", ((4, "sigmoid"),), (2, "linear"), "mae"),
    Case("tanh_mse_sigmoid_out", ((4, "tanh"),), (2, "sigmoid"), "mse"),
    Case(
        "penalties",
        ((4, "tanh"),),
        (2, "sigmoid"),
        "binary_crossentropy",
        penalties={"kernel_l1": 0.01, "kernel_l2": 0.03, "bias_l1": 0.02, "bias_l2": 0.05},
    ),
]


def build(case: Case, dtype: str = "float64", seed: int = 0, dropout: float = 0.0) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    penalties = case.penalties
    kernel = fm.regularizers.L1L2(penalties.get("kernel_l1", 0.0), penalties.get("kernel_l2", 0.0))
    bias = fm.regularizers.L1L2(penalties.get("bias_l1", 0.0), penalties.get("bias_l2", 0.0))
    extra: dict[str, Any] = dict(kernel_regularizer=kernel, bias_regularizer=bias) if penalties else {}
    layers: list[Any] = [fm.layers.Input(shape=(N_FEATURES,))]
    for units, activation in case.hidden:
        layers.append(fm.layers.Dense(units, activation=activation, **extra))
        if dropout:
            layers.append(fm.layers.Dropout(dropout))
    layers.append(fm.layers.Dense(case.output[0], activation=case.output[1], **extra))
    model = fm.Sequential(layers, dtype=dtype)
    model.compile(optimizer="sgd", loss=case.loss_object())
    # Non-zero biases and larger weights: no weight sits at a special point (relu's kink, 0).
    rng = np.random.default_rng(seed + 100)
    model.set_weights([w + 0.4 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def make_data(case: Case, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    k = case.output[0]
    if case.loss == "sparse_categorical_crossentropy":
        return x, rng.integers(0, k, size=n)
    if case.loss == "categorical_crossentropy":
        return x, np.eye(k)[rng.integers(0, k, size=n)]
    if case.loss == "binary_crossentropy":
        return x, rng.choice([0.0, 1.0, 0.3], size=(n, k))
    if case.loss == "mae":
        # Far from every output the model gives here: |p - y| has no kink near the steps.
        return x, rng.choice([-5.0, 5.0], size=(n, k))
    return x, rng.normal(size=(n, k))


def flat(weights: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([w.ravel() for w in weights])


def unflat(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    out, start = [], 0
    for w in like:
        out.append(vector[start : start + w.size].reshape(w.shape))
        start += w.size
    return out


def flat_gradient(model: fm.Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    parts = []
    for kernel, bias in model.compute_gradients(x, y):
        parts.append(kernel.ravel())
        if bias is not None:
            parts.append(bias.ravel())
    return np.concatenate(parts)


def hessian_from_gradients(model: fm.Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Column j: central differences of compute_gradients along weight j."""
    base = model.get_weights()
    w0 = flat(base)
    columns = []
    for j in range(w0.size):
        sides = []
        for sign in (1.0, -1.0):
            w = w0.copy()
            w[j] += sign * GRAD_STEP
            model.set_weights(unflat(w, base))
            sides.append(flat_gradient(model, x, y))
        columns.append((sides[0] - sides[1]) / (2 * GRAD_STEP))
    model.set_weights(base)
    return np.stack(columns, axis=1)


def hessian_from_loss(
    model: fm.Sequential, x: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray] = None
) -> np.ndarray:
    """Second differences of the loss (with its penalties, as test_on_batch reports it)."""
    base = model.get_weights()
    w0 = flat(base)
    p = w0.size

    def loss(w: np.ndarray) -> float:
        model.set_weights(unflat(w, base))
        return float(model.test_on_batch(x, y, sample_weight=sample_weight))

    h = LOSS_STEP
    result = np.zeros((p, p))
    for i in range(p):
        for j in range(i, p):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                w = w0.copy()
                w[i] += si * h
                w[j] += sj * h
                total += sign * loss(w)
            result[i, j] = result[j, i] = total / (4 * h * h)
    model.set_weights(base)
    return result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hessian_matches_finite_differences_of_the_gradient(case: Case, isa: str) -> None:
    model = build(case)
    x, y = make_data(case, 12)
    hessian = model.compute_hessian(x, y)
    p = model.count_params()
    assert hessian.shape == (p, p) and hessian.dtype == np.float64
    np.testing.assert_allclose(hessian, hessian_from_gradients(model, x, y), **GRAD_TOL)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4], CASES[-1]], ids=lambda c: c.name)
def test_hessian_matches_second_differences_of_the_loss_with_sample_weights(case: Case) -> None:
    model = build(case)
    x, y = make_data(case, 10)
    weights = np.random.default_rng(5).uniform(0.2, 3.0, size=10)
    hessian = model.compute_hessian(x, y, sample_weight=weights)
    np.testing.assert_allclose(hessian, hessian_from_loss(model, x, y, weights), **LOSS_TOL)


def test_penalties_add_their_curvature_to_the_diagonal_only() -> None:
    case = CASES[-1]
    model = build(case)
    plain = build(Case("plain", case.hidden, case.output, case.loss))
    plain.set_weights(model.get_weights())
    x, y = make_data(case, 10)
    difference = model.compute_hessian(x, y) - plain.compute_hessian(x, y)
    # 2 l2 per weight (L1 is piecewise linear); kernel and bias arrays in get_weights() order.
    expected = np.concatenate(
        [np.full(w.size, 2 * (0.03 if w.ndim == 2 else 0.05)) for w in model.get_weights()]
    )
    np.testing.assert_allclose(difference, np.diag(expected), atol=1e-14)


def test_hessian_is_symmetric_and_its_columns_are_hessian_vector_products() -> None:
    model = build(CASES[1])
    x, y = make_data(CASES[1], 15)
    hessian = model.compute_hessian(x, y)
    assert np.array_equal(hessian, hessian.T)
    p = hessian.shape[0]
    # hessian_vector_product computes H e_j along another path (dense directions, unsymmetrized).
    for j in (0, p // 2, p - 1):
        e = np.zeros(p)
        e[j] = 1.0
        np.testing.assert_allclose(model.hessian_vector_product(x, y, e), hessian[:, j], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[-1]], ids=lambda c: c.name)
def test_hessian_vector_product_equals_h_times_v(case: Case, isa: str) -> None:
    model = build(case)
    x, y = make_data(case, 9)
    weights = np.linspace(0.5, 2.0, 9)
    hessian = model.compute_hessian(x, y, sample_weight=weights)
    v = np.random.default_rng(3).normal(size=hessian.shape[0])
    product = model.hessian_vector_product(x, y, v, sample_weight=weights)
    assert product.shape == (hessian.shape[0],) and product.dtype == np.float64
    np.testing.assert_allclose(product, hessian @ v, rtol=1e-11, atol=1e-13)


def with_bias_column(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((x.shape[0], 1))])


def single_layer(units: int, activation: str, loss: Any, inputs: int = 4) -> fm.Sequential:
    model = fm.Sequential([fm.layers.Input(shape=(inputs,)), fm.layers.Dense(units, activation=activation)], dtype="float64")
    model.compile(optimizer="sgd", loss=loss)
    rng = np.random.default_rng(11)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def test_linear_regression_with_mse_has_the_closed_form_hessian() -> None:
    # L = 1/N sum_r w_r (x_r . k + b - y_r)^2, so H = 2/N X^T diag(w) X with X's bias column.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 1))
    weights = rng.uniform(0.5, 2.0, size=30)
    model = single_layer(1, "linear", "mse")
    xb = with_bias_column(x)
    np.testing.assert_allclose(model.compute_hessian(x, y), 2 / 30 * xb.T @ xb, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(
        model.compute_hessian(x, y, sample_weight=weights), 2 / 30 * xb.T @ (weights[:, None] * xb), rtol=1e-13, atol=1e-14
    )


def test_linear_regression_with_two_outputs_is_block_diagonal_per_output() -> None:
    # Kernel (4, 2) flattened row-major: weight (i, j) at 2 i + j, bias j at 8 + j. Each output
    # is its own regression, weighed 1/2 by the mean over the outputs: H = (2/N)(1/2) X^T X per j.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 2))
    model = single_layer(2, "linear", "mse")
    xb = with_bias_column(x)
    expected = np.kron(xb.T @ xb, np.eye(2)) / 20
    np.testing.assert_allclose(model.compute_hessian(x, y), expected, rtol=1e-13, atol=1e-14)


def test_logistic_regression_has_the_closed_form_hessian(isa: str) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(25, 4)), rng.integers(0, 2, size=(25, 1)).astype(float)
    model = single_layer(1, "sigmoid", "binary_crossentropy")
    kernel, bias = model.get_weights()
    p = 1 / (1 + np.exp(-(x @ kernel[:, 0] + bias[0])))
    xb = with_bias_column(x)
    expected = xb.T @ ((p * (1 - p))[:, None] * xb) / 25
    np.testing.assert_allclose(model.compute_hessian(x, y), expected, rtol=1e-12, atol=1e-15)


def test_softmax_regression_has_the_closed_form_hessian() -> None:
    # z_j = sum_i x_i W_ij + b_j: H = 1/N sum_r J_r^T (diag(p_r) - p_r p_r^T) J_r, J_r = dz/dw.
    rng = np.random.default_rng(3)
    n, d, k = 16, 4, 3
    x, labels = rng.normal(size=(n, d)), rng.integers(0, k, size=n)
    model = single_layer(k, "softmax", "sparse_categorical_crossentropy", inputs=d)
    kernel, bias = model.get_weights()
    z = x @ kernel + bias
    probabilities = np.exp(z - z.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    expected = np.zeros((d * k + k, d * k + k))
    for r in range(n):
        jacobian = np.zeros((k, d * k + k))
        for j in range(k):
            jacobian[j, j : d * k : k] = x[r]
            jacobian[j, d * k + j] = 1.0
        pr = probabilities[r]
        expected += jacobian.T @ (np.diag(pr) - np.outer(pr, pr)) @ jacobian / n
    np.testing.assert_allclose(model.compute_hessian(x, labels), expected, rtol=1e-12, atol=1e-15)


def test_float32_model_is_computed_in_float64() -> None:
    # The same weights and data (float32 values) in a float32 and a float64 model: one Hessian.
    case = CASES[2]
    single = build(case, dtype="float32")
    double = build(case, dtype="float64")
    double.set_weights([w.astype(np.float64) for w in single.get_weights()])
    x, y = make_data(case, 20)
    x, y = (a.astype(np.float32).astype(np.float64) for a in (x, y))
    expected = double.compute_hessian(x, y)
    actual = single.compute_hessian(x.astype(np.float32), y)
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)


def test_dropout_is_off() -> None:
    case = CASES[0]
    with_dropout = build(case, dropout=0.5)
    without = build(case)
    without.set_weights(with_dropout.get_weights())
    x, y = make_data(case, 10)
    assert np.array_equal(with_dropout.compute_hessian(x, y), without.compute_hessian(x, y))


def test_many_samples_in_several_chunks_add_up() -> None:
    # 9000 samples: more than one chunk of rows; the Hessian of the mean is the mean of the
    # Hessians of the two halves (each computed in one chunk).
    case = CASES[0]
    model = build(case)
    x, y = make_data(case, 9000)
    whole = model.compute_hessian(x, y)
    halves = (model.compute_hessian(x[:4500], y[:4500]) + model.compute_hessian(x[4500:], y[4500:])) / 2
    np.testing.assert_allclose(whole, halves, rtol=1e-11, atol=1e-14)


def test_the_result_does_not_depend_on_the_thread_count() -> None:
    case = CASES[1]
    model = build(case)
    x, y = make_data(case, 40)
    before = fm.get_num_threads()
    try:
        fm.set_num_threads(1)
        one = model.compute_hessian(x, y)
        fm.set_num_threads(3)
        three = model.compute_hessian(x, y)
    finally:
        fm.set_num_threads(before)
    assert np.array_equal(one, three)


# ------------------------------------------------------------------ bad input


def test_not_compiled_is_the_error_compute_gradients_gives() -> None:
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(2)])
    x, y = np.zeros((4, 3)), np.zeros((4, 2))
    with pytest.raises(fm.models.NotCompiledError, match="compute_hessian"):
        model.compute_hessian(x, y)
    with pytest.raises(fm.models.NotCompiledError, match="hessian_vector_product"):
        model.hessian_vector_product(x, y, np.zeros(8))


def test_too_many_weights_is_refused_naming_p_and_the_bytes() -> None:
    model = fm.Sequential([fm.layers.Input(shape=(200,)), fm.layers.Dense(100)], dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    p = 200 * 100 + 100
    with pytest.raises(ValueError, match=rf"P={p} .* {p * p * 8} bytes"):
        model.compute_hessian(np.zeros((2, 200)), np.zeros((2, 100)))
    # The product never forms H: it still runs.
    assert model.hessian_vector_product(np.zeros((2, 200)), np.zeros((2, 100)), np.ones(p)).shape == (p,)


def test_non_finite_data_is_refused() -> None:
    case = CASES[0]
    model = build(case)
    x, y = make_data(case, 5)
    bad_x = x.copy()
    bad_x[2, 1] = np.nan
    with pytest.raises(ValueError, match="x"):
        model.compute_hessian(bad_x, y)
    bad_y = y.copy()
    bad_y[1, 0] = np.inf
    with pytest.raises(ValueError, match="y"):
        model.compute_hessian(x, bad_y)
    with pytest.raises(ValueError, match="sample_weight"):
        model.compute_hessian(x, y, sample_weight=[1.0, np.nan, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="sample_weight"):
        model.hessian_vector_product(x, y, np.zeros(model.count_params()), sample_weight=[1.0, 2.0])


@pytest.mark.parametrize(
    ("v", "error", "match"),
    [
        (np.zeros(5), ValueError, r"`v` must have shape \(26,\)"),
        (np.zeros((26, 1)), ValueError, r"`v` must have shape \(26,\)"),
        (np.full(26, np.nan), ValueError, "`v` contains NaN"),
        (np.array(["a"] * 26), TypeError, "`v` must hold real numbers"),
        (None, ValueError, "`v` is required"),
    ],
)
def test_bad_vectors_are_refused(v: Any, error: type[Exception], match: str) -> None:
    model = build(CASES[0])  # 3 x 4 + 4 + 4 x 2 + 2 = 26 weights
    x, y = make_data(CASES[0], 5)
    with pytest.raises(error, match=match):
        model.hessian_vector_product(x, y, v)


def test_a_hessian_that_overflows_is_an_error_not_nan() -> None:
    model = fm.Sequential(
        [fm.layers.Input(shape=(2,)), fm.layers.Dense(2), fm.layers.Dense(1)], dtype="float64"
    )
    model.compile(optimizer="sgd", loss="mse")
    model.set_weights([np.full((2, 2), 1e160), np.zeros(2), np.full((2, 1), 1e160), np.zeros(1)])
    x, y = np.ones((3, 2)), np.zeros((3, 1))
    with pytest.raises(ValueError, match="Hessian holds NaN or infinity"):
        model.compute_hessian(x, y)
    with pytest.raises(ValueError, match="Hessian-vector product holds NaN or infinity"):
        model.hessian_vector_product(x, y, np.ones(model.count_params()))
