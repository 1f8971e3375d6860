"""``model.compute_gradients`` against central finite differences of the model's own loss.

The finite differences only use the public API: perturb one weight through
``get_weights``/``set_weights`` and read the batch-mean loss from ``test_on_batch``. That makes
the check independent of ``fastmlp.reference`` (which is compared too, as a second opinion).

Everything runs in float64 (``dtype="float64"``), once per instruction set (``isa`` fixture).
Central differences with step h have truncation error ~h^2 * f''' / 6 and rounding error
~eps * |L| / h. With h = 1e-5 and losses and derivatives of order 1 both are ~1e-10 to 1e-11
(measured: at most 8e-11 over all cases), so an absolute tolerance of 1e-8 (plus rtol 1e-5) keeps
a margin of ~100 over that noise and catches any wrong factor or sign (off by 1e-2 or more).

Every output activation/loss pair that makes sense is covered, both the fused paths (sigmoid +
binary cross-entropy, softmax + categorical cross-entropy, computed from the logits as ``p - y``)
and the general chain rule through the activation (softmax + mse, sigmoid + categorical, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import reference as ref

N_FEATURES = 4
H = 1e-5
FD_TOL = dict(rtol=1e-5, atol=1e-8)
# compute_gradients vs the reference, both exact backprop in float64: only rounding differs.
REF_TOL = dict(rtol=1e-10, atol=1e-13)


@dataclass(frozen=True)
class Case:
    name: str
    hidden: tuple[tuple[int, str], ...]
    output: tuple[int, str]
    loss: str
    from_logits: bool = False
    output_bias: bool = True

    @property
    def activations(self) -> list[str]:
        return [a for _, a in self.hidden] + [self.output[1]]

    def loss_object(self) -> Any:
        if not self.from_logits:
            return self.loss
        return {
            "binary_crossentropy": fm.losses.BinaryCrossentropy,
            "categorical_crossentropy": fm.losses.CategoricalCrossentropy,
            "sparse_categorical_crossentropy": fm.losses.SparseCategoricalCrossentropy,
        }[self.loss](from_logits=True)


CASES = [
    Case("mse_linear", ((5, "tanh"),), (3, "linear"), "mse"),
    Case("mse_linear_relu", ((5, "relu"), (4, "tanh")), (2, "linear"), "mse"),
    Case("mse_sigmoid", ((5, "tanh"),), (2, "sigmoid"), "mse"),
    Case("mse_tanh", ((5, "sigmoid"),), (2, "tanh"), "mse"),
    Case("mse_softmax", ((5, "tanh"),), (3, "softmax"), "mse"),  # softmax Jacobian, non-fused
    Case("mae_linear", ((5, "tanh"), (4, "sigmoid")), (2, "linear"), "mae"),
    Case("mae_sigmoid", ((5, "tanh"),), (2, "sigmoid"), "mae"),
    Case("bce_sigmoid", ((5, "tanh"), (4, "relu")), (2, "sigmoid"), "binary_crossentropy"),  # fused
    Case("bce_sigmoid_single", ((5, "sigmoid"),), (1, "sigmoid"), "binary_crossentropy"),
    Case("bce_logits", ((5, "tanh"),), (2, "linear"), "binary_crossentropy", from_logits=True),
    Case("cce_softmax", ((5, "tanh"), (4, "relu")), (3, "softmax"), "categorical_crossentropy"),
    Case(
        "cce_logits", ((5, "sigmoid"),), (3, "linear"), "categorical_crossentropy", from_logits=True
    ),
    # sigmoid outputs read as a distribution after normalisation: the non-fused chain rule.
    Case("cce_sigmoid", ((5, "tanh"),), (3, "sigmoid"), "categorical_crossentropy"),
    Case(
        "sparse_softmax",
        ((5, "relu"), (4, "tanh")),
        (3, "softmax"),
        "sparse_categorical_crossentropy",
    ),
    Case(
        "sparse_logits",
        ((5, "tanh"),),
        (4, "linear"),
        "sparse_categorical_crossentropy",
        from_logits=True,
    ),
    # Wider than one SIMD register, with tails: 19 and 17 hidden units, 10 classes.
    Case(
        "wide_sparse_softmax",
        ((19, "relu"), (17, "tanh")),
        (10, "softmax"),
        "sparse_categorical_crossentropy",
    ),
    Case(
        "sparse_softmax_nobias",
        ((5, "tanh"),),
        (3, "softmax"),
        "sparse_categorical_crossentropy",
        output_bias=False,
    ),
]


def build(case: Case, seed: int = 0) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    layers: list[Any] = [fm.layers.Input(shape=(N_FEATURES,))]
    layers += [fm.layers.Dense(u, activation=a) for u, a in case.hidden]
    layers.append(
        fm.layers.Dense(case.output[0], activation=case.output[1], use_bias=case.output_bias)
    )
    model = fm.Sequential(layers, dtype="float64")
    model.compile(optimizer="sgd", loss=case.loss_object())
    # Non-zero biases, so that their gradients and the relu kinks are not at special points.
    rng = np.random.default_rng(seed + 100)
    model.set_weights([w + 0.3 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def make_data(case: Case, batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, N_FEATURES))
    k = case.output[0]
    if case.loss == "sparse_categorical_crossentropy":
        y: np.ndarray = rng.integers(0, k, size=batch)
    elif case.loss == "categorical_crossentropy":
        y = np.eye(k)[rng.integers(0, k, size=batch)]
    elif case.loss == "binary_crossentropy":
        # Soft targets too: binary cross-entropy is defined for any y in [0, 1].
        y = rng.choice([0.0, 1.0, 0.3], size=(batch, k))
    elif case.loss == "mae":
        # At least 0.5 away from any output the model can produce here (|linear| and sigmoid
        # outputs stay well inside +-2.5), so |p - y| has no kink within the finite differences.
        y = rng.choice([-3.0, 3.0], size=(batch, k))
    else:
        y = rng.normal(size=(batch, k))
    return x, y


def to_params(weights: list[np.ndarray], case: Case) -> ref.Params:
    params: ref.Params = []
    i = 0
    for j in range(len(case.activations)):
        has_bias = j < len(case.hidden) or case.output_bias
        params.append((weights[i], weights[i + 1] if has_bias else None))
        i += 2 if has_bias else 1
    return params


def finite_difference_gradients(
    model: fm.Sequential, x: np.ndarray, y: np.ndarray
) -> list[np.ndarray]:
    """dL/dw for every weight, by central differences of the model's batch-mean loss."""
    base = model.get_weights()
    grads = []
    for i, w in enumerate(base):
        g = np.zeros_like(w)
        for j in np.ndindex(w.shape):
            values = []
            for sign in (1.0, -1.0):
                trial = [v.copy() for v in base]
                trial[i][j] += sign * H
                model.set_weights(trial)
                values.append(float(model.test_on_batch(x, y)))
            g[j] = (values[0] - values[1]) / (2 * H)
        grads.append(g)
    model.set_weights(base)
    return grads


def flat_gradients(
    model: fm.Sequential, x: np.ndarray, y: np.ndarray, case: Case
) -> list[np.ndarray]:
    pairs = model.compute_gradients(x, y)
    assert len(pairs) == len(case.activations)
    flat = []
    for j, (dkernel, dbias) in enumerate(pairs):
        has_bias = j < len(case.hidden) or case.output_bias
        assert dkernel.dtype == np.float64
        flat.append(dkernel)
        if has_bias:
            assert dbias is not None and dbias.dtype == np.float64
            flat.append(dbias)
        else:
            assert dbias is None
    return flat


def pairs(
    actual: list[np.ndarray], expected: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """zip(actual, expected), after checking both lists have the same length and shapes."""
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
    return list(zip(actual, expected))


def check_smooth(model: fm.Sequential, x: np.ndarray, y: np.ndarray, case: Case) -> None:
    """Finite differences are wrong across a kink (relu at z = 0, mae at p = y): make sure the
    test data keep every such point far from where the perturbations reach."""
    layers = ref.forward(x, to_params(model.get_weights(), case), case.activations)
    for (z, _), act in zip(layers, case.activations):
        if act == "relu":
            assert np.min(np.abs(z)) > 1e-3, "test data put a relu pre-activation at its kink"
    if case.loss == "mae":
        assert np.min(np.abs(layers[-1][1] - y)) > 0.5, "test data put mae at its kink"


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradients_match_finite_differences(isa: str, case: Case, batch: int) -> None:
    model = build(case)
    x, y = make_data(case, batch)
    check_smooth(model, x, y, case)
    before = model.get_weights()
    analytic = flat_gradients(model, x, y, case)
    # compute_gradients does not change the weights.
    for a, b in zip(model.get_weights(), before):
        assert np.array_equal(a, b)
    numeric = finite_difference_gradients(model, x, y)
    assert len(analytic) == len(numeric)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        assert a.shape == n.shape
        np.testing.assert_allclose(a, n, err_msg=f"weight {i}", **FD_TOL)
    # The test is not vacuous: some gradients are far from zero.
    assert max(float(np.max(np.abs(g))) for g in numeric) > 1e-2


@pytest.mark.parametrize("batch", [1, 7, 33])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradients_and_loss_match_reference(isa: str, case: Case, batch: int) -> None:
    model = build(case)
    x, y = make_data(case, batch)
    params = to_params(model.get_weights(), case)
    ref_loss, ref_grads = ref.gradients(x, y, params, case.activations, case.loss, case.from_logits)
    np.testing.assert_allclose(float(model.test_on_batch(x, y)), ref_loss, **REF_TOL)
    expected = [g for pair in ref_grads for g in pair if g is not None]
    for i, (a, e) in enumerate(pairs(flat_gradients(model, x, y, case), expected)):
        np.testing.assert_allclose(a, e, err_msg=f"weight {i}", **REF_TOL)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.name in ("cce_softmax", "bce_sigmoid", "mse_softmax", "sparse_logits")],
    ids=lambda c: c.name,
)
def test_float32_gradients_match_reference(isa: str, case: Case) -> None:
    """The float32 core's gradients, from the same (float32) weights and data, agree with the
    float64 reference to float32 accuracy: a reduction over 9 samples and <= 5 inputs per
    output loses a few eps (6e-8) each, so rtol 1e-4 / atol 1e-6 leaves a large margin."""
    fm.utils.set_random_seed(0)
    layers: list[Any] = [fm.layers.Input(shape=(N_FEATURES,))]
    layers += [fm.layers.Dense(u, activation=a) for u, a in case.hidden]
    layers.append(fm.layers.Dense(case.output[0], activation=case.output[1]))
    model = fm.Sequential(layers)
    model.compile(optimizer="sgd", loss=case.loss_object())
    x, y = make_data(case, 9)
    x = x.astype(np.float32)
    if case.loss != "sparse_categorical_crossentropy":
        y = y.astype(np.float32)
    weights = model.get_weights()
    assert all(w.dtype == np.float32 for w in weights)
    params = to_params([w.astype(np.float64) for w in weights], case)
    _, ref_grads = ref.gradients(x, y, params, case.activations, case.loss, case.from_logits)
    expected = [g for pair in ref_grads for g in pair if g is not None]
    actual = [g for pair in model.compute_gradients(x, y) for g in pair if g is not None]
    for i, (a, e) in enumerate(pairs(actual, expected)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6, err_msg=f"weight {i}")


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.loss != "mae" and c.output[1] != "tanh"], ids=lambda c: c.name
)
def test_gradients_stay_finite_for_saturated_outputs(isa: str, case: Case) -> None:
    """Weights scaled up saturate the hidden layers and push the output pre-activations to |z| up
    to 1000, where a naive sigmoid overflows exp(-z) even in float64 and probabilities round to
    exactly 0 or 1. The loss and the
    gradients must stay finite and equal the reference (whose formulas are the stable ones)."""
    model = build(case)
    x, y = make_data(case, 7)
    weights = [40.0 * w for w in model.get_weights()]
    # z of the output layer is linear in its kernel and bias: rescale them so max |z| = 1000.
    z_out = ref.forward(x, to_params(weights, case), case.activations)[-1][0]
    n_out = 2 if case.output_bias else 1
    weights[-n_out:] = [w * (1000.0 / np.max(np.abs(z_out))) for w in weights[-n_out:]]
    model.set_weights(weights)
    params = to_params(model.get_weights(), case)
    z_out = ref.forward(x, params, case.activations)[-1][0]
    assert np.max(np.abs(z_out)) > 900
    ref_loss, ref_grads = ref.gradients(x, y, params, case.activations, case.loss, case.from_logits)
    loss = float(model.test_on_batch(x, y))
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-9)
    expected = [g for pair in ref_grads for g in pair if g is not None]
    for i, (a, e) in enumerate(pairs(flat_gradients(model, x, y, case), expected)):
        assert np.all(np.isfinite(a)), f"weight {i}"
        # Saturated tanh/sigmoid derivatives (1 - a^2, a(1 - a)) are tiny and lose their relative
        # precision to cancellation, so the absolute tolerance scales with the array's largest
        # entry (gradients here reach 1e3 next to entries of 1e-10).
        np.testing.assert_allclose(
            a, e, rtol=1e-9, atol=1e-12 * max(1.0, float(np.max(np.abs(e)))), err_msg=f"weight {i}"
        )


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.loss != "mae" and c.output[1] != "tanh" and c.loss != "mse"],
    ids=lambda c: c.name,
)
def test_float32_crossentropies_stay_finite_for_saturated_outputs(isa: str, case: Case) -> None:
    """The same in float32, the training dtype, where exp overflows already at z = 89: every
    cross-entropy path (fused from logits, from_logits=True, and sigmoid + categorical with its
    1e-7 clipping) must give a finite loss and finite gradients close to the reference's.

    Only the output layer is scaled here: saturated float32 hidden units have derivatives
    (1 - a^2 with a rounded to within eps of 1) that float32 cannot resolve, an inherent
    limit of the dtype and not what this test is about."""
    model64 = build(case)
    x, y = make_data(case, 7)
    weights = model64.get_weights()
    z_out = ref.forward(x, to_params(weights, case), case.activations)[-1][0]
    n_out = 2 if case.output_bias else 1
    weights[-n_out:] = [w * (1000.0 / np.max(np.abs(z_out))) for w in weights[-n_out:]]
    weights32 = [w.astype(np.float32) for w in weights]
    layers: list[Any] = [fm.layers.Input(shape=(N_FEATURES,))]
    layers += [fm.layers.Dense(u, activation=a) for u, a in case.hidden]
    layers.append(
        fm.layers.Dense(case.output[0], activation=case.output[1], use_bias=case.output_bias)
    )
    model = fm.Sequential(layers, dtype="float32")
    model.compile(optimizer="sgd", loss=case.loss_object())
    model.set_weights(weights32)
    x32 = x.astype(np.float32)
    params = to_params([w.astype(np.float64) for w in weights32], case)
    ref_loss, ref_grads = ref.gradients(
        x32, y, params, case.activations, case.loss, case.from_logits
    )
    loss = float(model.test_on_batch(x32, y))
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4)
    expected = [g for pair in ref_grads for g in pair if g is not None]
    actual = [g for pair in model.compute_gradients(x32, y) for g in pair if g is not None]
    # Saturated outputs make some gradients large (~1e2) next to tiny ones, whose float32
    # rounding is relative to the large ones: the absolute tolerance scales with the largest.
    scale = max(1.0, max(float(np.max(np.abs(e))) for e in expected))
    for i, (a, e) in enumerate(pairs(actual, expected)):
        assert np.all(np.isfinite(a)), f"weight {i}"
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5 * scale, err_msg=f"weight {i}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kinks_use_the_reference_subgradients(isa: str, dtype: str) -> None:
    """At the kinks, where finite differences cannot decide, the core uses the reference's (and
    TensorFlow's) subgradients: d|p - y|/dp = 0 at p == y, relu'(0) = 0. Exact small numbers,
    so the results are exact in both dtypes."""
    mae = fm.Sequential([fm.layers.Input(shape=(2,)), fm.layers.Dense(1)], dtype=dtype)
    mae.compile(optimizer="sgd", loss="mae")
    mae.set_weights([np.array([[1.0], [2.0]]), np.array([0.0])])
    # Predictions 1 + 2 = 3 (== target 3: the kink) and 2 (> target 1: slope +1). The batch-mean
    # gradient is (0 * (1, 1) + 1 * (2, 0)) / 2 = (1, 0), and 1/2 for the bias.
    x, y = np.array([[1.0, 1.0], [2.0, 0.0]]), np.array([3.0, 1.0])
    [(dkernel, dbias)] = mae.compute_gradients(x, y)
    np.testing.assert_array_equal(dkernel[:, 0], [1.0, 0.0])
    np.testing.assert_array_equal(dbias, [0.5])

    relu = fm.Sequential(
        [fm.layers.Input(shape=(2,)), fm.layers.Dense(2, activation="relu"), fm.layers.Dense(1)],
        dtype=dtype,
    )
    relu.compile(optimizer="sgd", loss="mse")
    # Both hidden pre-activations are exactly 0 (1 - 1 and -1 + 1): nothing flows back through
    # them, so the first layer's gradients are 0; the output bias still gets 2 (0 - 1) = -2.
    relu.set_weights(
        [np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
    )
    (dk0, db0), (dk1, db1) = relu.compute_gradients(np.array([[1.0, 1.0]]), np.array([1.0]))
    np.testing.assert_array_equal(dk0, np.zeros((2, 2)))
    np.testing.assert_array_equal(db0, np.zeros(2))
    np.testing.assert_array_equal(dk1, np.zeros((2, 1)))
    np.testing.assert_array_equal(db1, [-2.0])
