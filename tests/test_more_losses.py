"""Keras 3's other losses (Huber, LogCosh, KLDivergence, Poisson, the hinges, MAPE, MSLE) in the
core, on every instruction set, against ``fastmlp.reference`` (Keras's formulas in float64) and
against central finite differences.

Tolerances: a row's loss is a sum of ``n`` elementwise terms, each a handful of roundings
(a subtraction, a log/exp/tanh of a few ulps, a product), so its error is at most
``c u (n + c) mean_j(1 + |p_j| + |y_j| + |l_j|)`` with ``u`` the unit roundoff; the gradient is
elementwise, ``c u (1 + |d_j| + |p_j| + |y_j|)`` times its scale. ``c = 64`` is a wide margin over
those few roundings, while a wrong formula (a missing clip, 0/1 labels not converted, a mean
instead of a sum) is off by a large fraction of the value itself.
"""

from __future__ import annotations

import zlib
from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import _core
from fastmlp import reference as ref

K = _core.kernels
F64 = np.float64
NAMES = ref.MORE_LOSSES
WIDTHS = (1, 3, 8, 9, 17, 33)  # around the vectors of AVX2 and AVX-512, both dtypes
C = 64.0


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(repr(k).encode()) for k in key])


def make_point(name: str, rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, pred) in the loss's domain and away from its kinks (so float32 and float64 agree on
    which side of a kink each element lies)."""
    if name in ("kl_divergence",):
        y = rng.uniform(0.05, 0.95, (rows, cols))
        p = rng.uniform(0.05, 0.95, (rows, cols))
    elif name in ("poisson", "mean_squared_logarithmic_error", "mean_absolute_percentage_error"):
        y = rng.uniform(0.1, 3.0, (rows, cols)) * np.where(
            rng.random((rows, cols)) < 0.3 if name == "mean_absolute_percentage_error" else False, -1, 1
        )
        p = rng.uniform(0.2, 3.0, (rows, cols))
    elif name in ("hinge", "squared_hinge"):
        y = rng.integers(0, 2, (rows, cols)).astype(F64)  # 0/1 labels: converted to -1/1
        p = rng.normal(0, 1.5, (rows, cols))
        t = 2 * y - 1
        m = 1 - t * p
        p = np.where(np.abs(m) < 1e-3, p + 0.01, p)
    elif name == "categorical_hinge":
        y = np.eye(cols)[rng.integers(0, cols, rows)]
        p = rng.normal(0, 0.5, (rows, cols))
    else:  # huber, log_cosh
        y = rng.normal(0, 1.5, (rows, cols))
        p = rng.normal(0, 1.5, (rows, cols))
        e = p - y
        p = np.where(np.abs(np.abs(e) - 1.0) < 1e-3, p + 0.01, p)  # away from Huber's switch
    return y, p


def tolerances(name: str, y: np.ndarray, p: np.ndarray, dtype: Any, delta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    u = float(np.finfo(dtype).eps) / 2
    n = p.shape[1]
    per_element = 1 + np.abs(p) + np.abs(y)
    rows = ref.loss(name, y, p, delta=delta)
    row_tol = C * u * (n + C) * (np.mean(per_element, axis=1) + np.abs(rows))
    d = ref.loss_gradient(name, y, p, delta=delta) * p.shape[0]  # dloss_row / dp
    grad_tol = C * u * (per_element / max(n, 1) + np.abs(d))
    return row_tol, grad_tol


def assert_within(got: np.ndarray, want: np.ndarray, tol: np.ndarray, what: str) -> None:
    err = np.abs(np.asarray(got, F64) - want)
    bad = ~(err <= tol)
    assert not np.any(bad), f"{what}: {int(bad.sum())} out of tolerance; worst {np.max(err - tol):.3g} over"


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_matches_reference(isa: str, dtype: Any, name: str, width: int, weighted: bool) -> None:
    rng = rng_for(name, width, weighted, np.dtype(dtype).name)
    rows = 5
    y, p = make_point(name, rng, rows, width)
    y, p = y.astype(dtype), p.astype(dtype)
    y64, p64 = y.astype(F64), p.astype(F64)
    weight = rng.uniform(0.1, 2.0, rows).astype(dtype) if weighted else None
    scale = 1.0 / rows
    total, row_loss, grad = K.loss(name, False, p, y, weight, scale)
    w64 = np.ones(rows) if weight is None else weight.astype(F64)
    expected_rows = ref.loss(name, y64, p64)
    expected_grad = ref.loss_gradient(name, y64, p64) * rows * (w64 * scale)[:, None]
    row_tol, grad_tol = tolerances(name, y64, p64, dtype)
    assert_within(row_loss, expected_rows, row_tol, f"{name} rows")
    assert_within(grad, expected_grad, grad_tol * (w64 * scale)[:, None], f"{name} gradient")
    assert_within(np.array(total), np.sum(w64 * expected_rows), np.sum(w64 * row_tol), f"{name} total")
    assert np.any(np.abs(expected_grad) > 1e-3 * scale)  # the gradient is not trivially zero


@pytest.mark.parametrize("delta", [0.3, 2.5])
def test_huber_delta(isa: str, dtype: Any, delta: float) -> None:
    rng = rng_for("huber-delta", delta)
    y, p = rng.normal(0, 2, (4, 11)), rng.normal(0, 2, (4, 11))
    y, p = y.astype(dtype).astype(F64), p.astype(dtype).astype(F64)
    _, rows, grad = K.loss("huber", False, p.astype(dtype), y.astype(dtype), None, 0.25, delta=delta)
    row_tol, grad_tol = tolerances("huber", y, p, dtype, delta)
    assert_within(rows, ref.loss("huber", y, p, delta=delta), row_tol, "huber rows")
    assert_within(grad, ref.loss_gradient("huber", y, p, delta=delta), grad_tol / 4, "huber gradient")
    # Both parts of the loss occur.
    e = np.abs(p - y)
    assert np.any(e < delta) and np.any(e > delta)


@pytest.mark.parametrize("name", NAMES)
def test_core_gradient_matches_finite_differences(isa: str, name: str) -> None:
    """float64 core gradient of the batch-mean loss against central differences of the reference's
    loss (h = 1e-6: truncation ~h^2, rounding ~1e-16 / h: about 1e-10 either way)."""
    rng = rng_for("fd", name)
    y, p = make_point(name, rng, 3, 6)
    _, _, grad = K.loss(name, False, p, y, None, 1.0 / 3)
    h = 1e-6
    fd = np.zeros_like(p)
    for idx in np.ndindex(*p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        fd[idx] = (np.mean(ref.loss(name, y, up)) - np.mean(ref.loss(name, y, down))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ref.loss_gradient(name, y, p), fd, rtol=1e-6, atol=1e-8)


def test_clips_pass_no_gradient(isa: str) -> None:
    """KLD clips y and pred to [eps, 1]; MSLE takes max(pred, eps); MAPE divides by max(|y|, eps)."""
    y = np.array([[0.5, 0.0, 1.5, 0.5]])
    p = np.array([[1.5, 0.3, 0.3, -0.2]])  # above 1, inside, inside, below eps
    _, rows, grad = K.loss("kl_divergence", False, p, y, None, 1.0)
    np.testing.assert_allclose(rows, ref.loss("kl_divergence", y, p), rtol=1e-12)
    assert grad[0, 0] == 0 and grad[0, 3] == 0  # pred clipped: no gradient
    assert grad[0, 1] == pytest.approx(-1e-7 / 0.3, rel=1e-12)  # y = 0 clipped to eps: -eps / p
    assert grad[0, 2] == pytest.approx(-1.0 / 0.3, rel=1e-12)  # y = 1.5 clipped to 1
    _, rows, grad = K.loss("mean_squared_logarithmic_error", False, p, y, None, 1.0)
    np.testing.assert_allclose(rows, ref.loss("mean_squared_logarithmic_error", y, p), rtol=1e-12)
    assert grad[0, 3] == 0 and grad[0, 0] != 0
    y0 = np.array([[0.0, 2.0]])
    _, rows, _ = K.loss("mean_absolute_percentage_error", False, np.array([[1e-3, 1.0]]), y0, None, 1.0)
    np.testing.assert_allclose(rows, [100 * (1e-3 / 1e-7 + 0.5) / 2], rtol=1e-12)


def test_hinge_converts_binary_labels(isa: str) -> None:
    p = np.array([[0.3, -0.6], [2.0, -0.2]])
    for name in ("hinge", "squared_hinge"):
        zero_one = K.loss(name, False, p, np.array([[1.0, 0.0], [0.0, 1.0]]), None, 1.0)[1]
        signs = K.loss(name, False, p, np.array([[1.0, -1.0], [-1.0, 1.0]]), None, 1.0)[1]
        np.testing.assert_array_equal(zero_one, signs)
        h = np.maximum(1 - np.array([[0.3, 0.6], [-2.0, -0.2]]), 0)
        np.testing.assert_allclose(signs, np.mean(h if name == "hinge" else h * h, axis=1), rtol=1e-15)


def test_categorical_hinge_shares_the_gradient_of_tied_maxima(isa: str) -> None:
    y = np.array([[1.0, 0.0, 0.0, 0.0]])
    p = np.array([[0.2, 0.7, 0.7, -1.0]])  # two wrong classes tie for the max
    _, rows, grad = K.loss("categorical_hinge", False, p, y, None, 1.0)
    np.testing.assert_allclose(rows, [0.7 - 0.2 + 1])
    np.testing.assert_allclose(grad, [[-1.0, 0.5, 0.5, 0.0]])
    np.testing.assert_allclose(ref.loss_gradient("categorical_hinge", y, p), grad)


KERAS_NAMES = {
    "huber": fm.losses.Huber,
    "log_cosh": fm.losses.LogCosh,
    "kl_divergence": fm.losses.KLDivergence,
    "kld": fm.losses.KLDivergence,
    "poisson": fm.losses.Poisson,
    "categorical_hinge": fm.losses.CategoricalHinge,
    "hinge": fm.losses.Hinge,
    "squared_hinge": fm.losses.SquaredHinge,
    "mean_absolute_percentage_error": fm.losses.MeanAbsolutePercentageError,
    "mape": fm.losses.MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": fm.losses.MeanSquaredLogarithmicError,
    "msle": fm.losses.MeanSquaredLogarithmicError,
}


@pytest.mark.parametrize("name", sorted(KERAS_NAMES))
def test_string_names(name: str) -> None:
    assert type(fm.losses.get(name)) is KERAS_NAMES[name]


def test_huber_validates_delta() -> None:
    assert fm.losses.Huber().delta == 1.0
    for bad in (0.0, -1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="delta"):
            fm.losses.Huber(bad)  # type: ignore[arg-type]


def small_model(loss: Any, activation: str = "linear", units: int = 3) -> fm.Sequential:
    fm.utils.set_random_seed(2)
    model = fm.Sequential(
        [fm.layers.Input(shape=(4,)), fm.layers.Dense(6, activation="tanh"), fm.layers.Dense(units, activation=activation)],
        dtype="float64",
    )
    model.compile(optimizer=fm.optimizers.SGD(0.05), loss=loss)
    return model


ACTIVATION = {"kl_divergence": "softmax", "poisson": "softplus", "categorical_hinge": "linear"}


@pytest.mark.parametrize("name", NAMES)
def test_training_matches_reference(isa: str, name: str) -> None:
    """Six SGD steps through the core's training loop against reference.train_steps."""
    activation = ACTIVATION.get(name, "linear")
    rng = rng_for("train", name)
    x = rng.normal(size=(10, 4))
    y, _ = make_point(name, rng, 10, 3)
    model = small_model(name, activation)
    params = ref.unflatten_params([np.asarray(w) for w in model.get_weights()], [(np.zeros(0), np.zeros(0))] * 2)
    batches = [rng.permutation(10)[:4] for _ in range(6)]
    losses = [model.train_on_batch(x[idx], y[idx]) for idx in batches]
    settings = ref.optimizer_settings("sgd", learning_rate=0.05)
    expected, expected_losses = ref.train_steps(x, y, params, ["tanh", activation], name, "sgd", settings, batches)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-10)
    for got, want in zip(model.get_weights(), ref.flatten_params(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert max(float(np.max(np.abs(g - w))) for g, w in zip(model.get_weights(), ref.flatten_params(params))) > 1e-4


def test_huber_delta_reaches_training_and_survives_saving(tmp_path: Any) -> None:
    rng = rng_for("huber-model")
    x, y = rng.normal(size=(12, 4)), rng.normal(0, 3, size=(12, 3))
    model = small_model(fm.losses.Huber(delta=0.5))
    pred = model.predict(x, verbose=0)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(np.mean(ref.loss("huber", y, pred, delta=0.5))), rel=1e-12)
    path = tmp_path / "m.fastmlp"
    model.save(path)
    loaded = fm.models.load_model(path)
    assert isinstance(loaded.loss, fm.losses.Huber) and loaded.loss.delta == 0.5
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_second_order_methods_refuse_the_new_losses() -> None:
    model = small_model("huber")
    x, y = np.ones((3, 4)), np.ones((3, 3))
    with pytest.raises(ValueError, match="loss=huber"):
        model.compute_hessian(x, y)
