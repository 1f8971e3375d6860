"""leaky_relu, elu, gelu (exact and tanh-approximate), softplus and swish/silu: every kernel on
every ISA against the float64 reference, gradients against finite differences, and the
activation layers that fold into the Dense before them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import _core
from fastmlp import reference as ref

K = _core.kernels
NEW = ["leaky_relu", "elu", "gelu", "gelu_tanh", "softplus", "swish"]


def tolerance(dtype: Any) -> tuple[float, float]:
    """(rtol, atol): float64 math is within a few ulp; float32 vector exp/log/tanh within ~8 ulp,
    plus an absolute floor of a few ulp of 1 where the value passes near 0 (tanh, erfc, expm1
    are each accurate relative to their own result, then combined)."""
    eps = float(np.finfo(dtype).eps)
    return 16 * eps, 8 * eps


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("width", [1, 7, 8, 9, 33])
@pytest.mark.parametrize("alpha", [None, 0.05])
def test_forward_and_backward_match_the_reference(isa: str, dtype: Any, name: str, width: int, alpha: Optional[float]) -> None:
    rng = np.random.default_rng(width)
    z = (rng.standard_normal((5, width)) * 3).astype(dtype)
    z[0, 0] = 0.0  # the kinks' convention: derivative from the left (TensorFlow's)
    bias = rng.standard_normal(width).astype(dtype)
    zb = z.copy()
    a = K.bias_activation(zb, bias, name, alpha=alpha)
    expected_z = z.astype(np.float64) + bias
    np.testing.assert_allclose(zb, expected_z.astype(dtype))  # bias added in place
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(a, ref.activation(name, zb, alpha), rtol=rtol, atol=atol)
    da = rng.standard_normal((5, width)).astype(dtype)
    dz = K.activation_backward(name, zb, a, da, alpha=alpha)
    np.testing.assert_allclose(dz, ref.activation_backward(name, zb, a, da, alpha), rtol=rtol, atol=atol * 4)


@pytest.mark.parametrize("name", NEW)
def test_extremes_stay_finite(isa: str, dtype: Any, name: str) -> None:
    z = np.array([[-1e30, -100.0, -20.0, 0.0, 20.0, 100.0, 1e30]], dtype=dtype)
    if name in ("gelu", "gelu_tanh", "swish", "softplus", "elu", "leaky_relu"):
        a = K.bias_activation(z.copy(), None, name)
        expected = ref.activation(name, z)
        finite = np.isfinite(expected)
        assert np.all(np.isfinite(a[finite]))
        scale = np.maximum(np.abs(expected), 1.0)
        assert np.all(np.abs(a - expected)[finite] <= 1e-5 * scale[finite])


def test_nan_propagates(isa: str) -> None:
    z = np.full((1, 9), np.nan, dtype=np.float32)
    for name in NEW:
        assert np.isnan(K.bias_activation(z.copy(), None, name)).all(), name


@pytest.mark.parametrize("name", NEW)
def test_model_gradients_match_finite_differences(isa: str, name: str) -> None:
    fm.utils.set_random_seed(2)
    model = fm.Sequential(
        [fm.layers.Input(shape=(4,)), fm.layers.Dense(6, activation=name), fm.layers.Dense(3, activation="softmax")],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4)) * 2
    y = rng.integers(0, 3, 7)
    weights = model.get_weights()
    grads = model.compute_gradients(x, y)
    h = 1e-6
    for index, analytic in ((0, grads[0][0]), (1, grads[0][1])):
        numeric = np.zeros_like(weights[index])
        for pos in np.ndindex(numeric.shape):
            values = []
            for step in (h, -h):
                shifted = [w.copy() for w in weights]
                shifted[index][pos] += step
                model.set_weights(shifted)
                values.append(model.test_on_batch(x, y))
            numeric[pos] = (values[0] - values[1]) / (2 * h)
        model.set_weights(weights)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "layer,name,alpha",
    [
        (fm.layers.LeakyReLU(), "leaky_relu", 0.3),
        (fm.layers.LeakyReLU(negative_slope=0.1), "leaky_relu", 0.1),
        (fm.layers.ELU(alpha=0.5), "elu", 0.5),
        (fm.layers.GELU(), "gelu", None),
        (fm.layers.GELU(approximate=True), "gelu_tanh", None),
        (fm.layers.Activation("silu"), "swish", None),
    ],
    ids=lambda v: repr(v) if not isinstance(v, fm.layers.Layer) else type(v).__name__,
)
def test_activation_layers_fold_into_the_dense_before(layer: Any, name: str, alpha: Optional[float], tmp_path: Path) -> None:
    fm.utils.set_random_seed(4)
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(4), layer, fm.layers.Dense(2)], dtype="float64")
    x = np.random.default_rng(1).standard_normal((5, 3)) * 3
    w = model.get_weights()
    hidden = ref.activation(name, x @ w[0] + w[1], alpha)
    np.testing.assert_allclose(model.predict(x, verbose=0), hidden @ w[2] + w[3], rtol=1e-12)
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.fastmlp")
    loaded = fm.models.load_model(tmp_path / "m.fastmlp")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_activation_layer_needs_a_linear_dense_before_it() -> None:
    with pytest.raises(ValueError, match="without an activation"):
        fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(4, activation="relu"), fm.layers.LeakyReLU()])
    with pytest.raises(ValueError, match="without an activation"):
        fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.ELU()])
    with pytest.raises(ValueError, match="negative_slope"):
        fm.layers.LeakyReLU(negative_slope=float("nan"))


def test_keras_style_layer_names() -> None:
    assert fm.layers.LeakyReLU().name.startswith("leaky_re_lu")
    assert fm.layers.GELU().name.startswith("gelu")
