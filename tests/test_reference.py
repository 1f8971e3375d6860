"""Tests of fastmlp.reference, the float64 NumPy yardstick for the C++ core.

Three kinds of evidence, none of them taken from the code's own output:

* every derivative is compared with central finite differences of the function
  it claims to differentiate (points kept away from relu/mae kinks and from the
  clip boundaries, where a derivative does not exist);
* values are compared with hand calculations (arithmetic in the comments) and
  with the examples in Keras's documentation;
* the training loop is compared with the same steps spelled out by hand.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from fastmlp import reference as ref

FD_STEP = 1e-6
FD_RTOL = 1e-6
# Absolute slack for entries whose true derivative is ~0: central differences
# carry a rounding error of about eps * |f| / h ~ 1e-10.
FD_ATOL = 1e-8

CROSSENTROPIES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = FD_STEP
) -> np.ndarray:
    """Central differences (f(x + h e_i) - f(x - h e_i)) / 2h, one entry at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        f_plus = f(x)
        x[i] = saved - h
        f_minus = f(x)
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def away_from_zero(
    rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.1
) -> np.ndarray:
    """Random values with |v| in [low, 2): a finite-difference step never crosses 0."""
    values: np.ndarray = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, 2.0, size=shape)
    return values


def make_targets(loss_name: str, rng: np.random.Generator, output: np.ndarray) -> np.ndarray:
    """Labels for `loss_name` that suit the network output `output` (batch, out)."""
    batch, out = output.shape
    if loss_name in ("mse", "mae"):
        # At least 0.1 away from every prediction, so |p - y| has no kink nearby.
        targets: np.ndarray = output + away_from_zero(rng, output.shape)
        return targets
    if loss_name == "binary_crossentropy":
        return rng.uniform(0.0, 1.0, size=output.shape)  # soft labels are allowed
    if loss_name == "categorical_crossentropy":
        # Soft and deliberately unnormalised rows: the gradient must stay exact
        # for those too, not only for one-hot rows.
        return rng.uniform(0.0, 1.0, size=output.shape)
    return np.asarray(rng.integers(0, out, size=batch))


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def test_sigmoid_matches_the_textbook_formula() -> None:
    z = np.linspace(-30.0, 30.0, 61)
    expected = np.array([1.0 / (1.0 + math.exp(-v)) for v in z])
    np.testing.assert_allclose(ref.sigmoid(z), expected, rtol=1e-15, atol=0)
    # sigmoid(0) = 1/2 and sigmoid(-z) = 1 - sigmoid(z)
    assert ref.sigmoid(0.0) == 0.5
    np.testing.assert_allclose(ref.sigmoid(-z), 1.0 - ref.sigmoid(z), rtol=0, atol=1e-15)


def test_softmax_matches_the_textbook_formula_and_sums_to_one() -> None:
    z = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    e = np.exp(z)
    np.testing.assert_allclose(ref.softmax(z), e / e.sum(axis=1, keepdims=True), rtol=1e-15)
    np.testing.assert_allclose(ref.softmax(z).sum(axis=1), [1.0, 1.0], rtol=1e-15)
    # softmax is invariant to adding a constant to a row
    np.testing.assert_allclose(ref.softmax(z + 1000.0), ref.softmax(z), rtol=1e-14)
    # [0, 0, 0] -> 1/3 each; log_softmax -> -log 3 = -1.0986122886681098
    np.testing.assert_allclose(ref.softmax(np.zeros((1, 3))), [[1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(ref.log_softmax(np.zeros((1, 3))), [[-1.0986122886681098] * 3])
    np.testing.assert_allclose(ref.log_softmax(z), np.log(ref.softmax(z)), rtol=1e-14)


def test_activation_values_by_hand() -> None:
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ref.activation("linear", z), z)
    np.testing.assert_array_equal(ref.activation("relu", z), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(
        ref.activation("tanh", z), [[math.tanh(-2.0), 0.0, math.tanh(3.0)]], rtol=1e-15
    )
    # sigmoid(-2) = 1/(1+e^2) = 0.11920292202211755, sigmoid(3) = 0.9525741268224334
    np.testing.assert_allclose(
        ref.activation("sigmoid", z), [[0.11920292202211755, 0.5, 0.9525741268224334]], rtol=1e-14
    )
    assert ref.activation("linear", z) is not z  # a fresh array, never an alias


def test_unknown_names_are_rejected() -> None:
    z = np.zeros((1, 2))
    with pytest.raises(ValueError, match="mish"):
        ref.activation("mish", z)
    with pytest.raises(ValueError, match="mish"):
        ref.activation_backward("mish", z, z, z)
    with pytest.raises(ValueError, match="focal_hinge"):
        ref.loss("focal_hinge", z, z)
    with pytest.raises(ValueError, match="focal_hinge"):
        ref.loss_gradient("focal_hinge", z, z)
    with pytest.raises(ValueError, match="focal_hinge"):
        ref.uses_logits("focal_hinge", "linear", False)
    with pytest.raises(ValueError, match="top_k"):
        ref.accuracy("top_k", z, z)


@pytest.mark.parametrize("name", ref.ACTIVATIONS)
def test_activation_backward_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(1)
    z = away_from_zero(rng, (4, 5))  # relu's kink at 0 stays out of reach of the step
    da = rng.normal(size=z.shape)

    # For any upstream gradient da, the vector-Jacobian product is the gradient
    # of the scalar sum(da * act(z)).
    def f(zz: np.ndarray) -> float:
        return float(np.sum(da * ref.activation(name, zz)))

    dz = ref.activation_backward(name, z, ref.activation(name, z), da)
    np.testing.assert_allclose(dz, numerical_gradient(f, z), rtol=FD_RTOL, atol=FD_ATOL)


def test_relu_derivative_at_zero_is_zero() -> None:
    # TensorFlow (and so Keras) uses 0 as relu's derivative at z == 0.
    z = np.array([[-1.0, 0.0, 1.0]])
    dz = ref.activation_backward("relu", z, ref.activation("relu", z), np.ones_like(z))
    np.testing.assert_array_equal(dz, [[0.0, 0.0, 1.0]])


def test_softmax_backward_uses_the_full_jacobian() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3, 4))
    da = rng.normal(size=(3, 4))
    a = ref.softmax(z)
    for row in range(3):
        # J_ij = da_i/dz_j = a_i (delta_ij - a_j) = diag(a) - a a^T
        jacobian = np.diag(a[row]) - np.outer(a[row], a[row])
        expected = da[row] @ jacobian
        got = ref.activation_backward("softmax", z, a, da)[row]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------


def test_sigmoid_and_softmax_survive_huge_inputs() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(ref.sigmoid(np.array([1e30, -1e30])), [1.0, 0.0])
        np.testing.assert_array_equal(ref.sigmoid(np.array([800.0])), [1.0])
        assert 0.0 <= ref.sigmoid(np.array([-800.0]))[0] < 1e-300
        np.testing.assert_array_equal(ref.softmax(np.array([[1e30, 0.0]])), [[1.0, 0.0]])
        np.testing.assert_array_equal(ref.softmax(np.array([[-1e30, 0.0]])), [[0.0, 1.0]])
        # log softmax([1e30, 0]) = [0, -1e30]: exact, where log(softmax) would give -inf
        np.testing.assert_array_equal(ref.log_softmax(np.array([[1e30, 0.0]])), [[0.0, -1e30]])
        dz = ref.activation_backward(
            "sigmoid", np.array([1e30]), ref.sigmoid(np.array([1e30])), np.array([1.0])
        )
        assert np.all(np.isfinite(dz))


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
def test_crossentropy_of_probabilities_exactly_0_and_1_is_finite(name: str) -> None:
    # Confidently right and confidently wrong predictions, p exactly 0 and 1.
    y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    y_pred = np.array([[1.0, 0.0], [1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        per_sample = ref.loss(name, y_true, y_pred)
        grad = ref.loss_gradient(name, y_true, y_pred)
    assert np.all(np.isfinite(per_sample))
    assert np.all(np.isfinite(grad))
    # The wrong sample's loss is capped by the clip at -log(1e-7) = 16.11809565095832
    # per output: bce averages the two outputs (both wrong), cce sums y * -log(p)
    # over the one true class. (rel=1e-9 because 1 - (1 - 1e-7) is 1e-7 only to
    # about 9 digits in float64.)
    assert per_sample[1] == pytest.approx(16.11809565095832, rel=1e-9)
    # The right sample costs -log(1 - 1e-7) = 1.00000005e-7 (per output).
    assert per_sample[0] == pytest.approx(1.00000005e-7, rel=1e-6)


def test_crossentropy_from_huge_logits_is_finite() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        # bce from logit x = 1e30 with label 0 costs x + log(1 + e^-x) = 1e30
        bce = ref.loss("binary_crossentropy", [[0.0], [1.0]], [[1e30], [-1e30]], from_logits=True)
        np.testing.assert_array_equal(bce, [1e30, 1e30])
        # cce: -log softmax([1e30, 0])[1] = 1e30
        cce = ref.loss("categorical_crossentropy", [[0.0, 1.0]], [[1e30, 0.0]], from_logits=True)
        np.testing.assert_array_equal(cce, [1e30])
        g = ref.loss_gradient(
            "categorical_crossentropy", [[0.0, 1.0]], [[1e30, 0.0]], from_logits=True
        )
        np.testing.assert_array_equal(g, [[1.0, -1.0]])  # softmax - y = [1, 0] - [0, 1]


# ---------------------------------------------------------------------------
# Losses: values
# ---------------------------------------------------------------------------


def test_losses_match_the_keras_documentation_examples() -> None:
    # keras.losses.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    # row 1: -(log(1 - 0.6) + log(0.4)) / 2 = -log(0.4) = 0.916290731874155
    # row 2: -(log(0.6) + log(0.4)) / 2 = (0.510825623765991 + 0.916290731874155) / 2
    #        = 0.713558177820073
    bce = ref.loss("binary_crossentropy", [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    np.testing.assert_allclose(bce, [0.916290731874155, 0.713558177820073], rtol=1e-12)

    # keras.losses.categorical_crossentropy([[0, 1, 0], [0, 0, 1]],
    #     [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]) = [-log 0.95, -log 0.1] = [0.0513, 2.303]
    probs = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    expected = [0.05129329438755058, 2.302585092994046]
    cce = ref.loss("categorical_crossentropy", [[0, 1, 0], [0, 0, 1]], probs)
    np.testing.assert_allclose(cce, expected, rtol=1e-12)
    # the same with integer labels [1, 2], also as a (batch, 1) column
    np.testing.assert_allclose(
        ref.loss("sparse_categorical_crossentropy", [1, 2], probs), expected, rtol=1e-12
    )
    np.testing.assert_allclose(
        ref.loss("sparse_categorical_crossentropy", [[1], [2]], probs), expected, rtol=1e-12
    )

    # mse([[0, 1], [0, 0]], [[1, 1], [1, 0]]) = [(1 + 0)/2, (1 + 0)/2]; mae the same
    y, p = [[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]
    np.testing.assert_array_equal(ref.loss("mse", y, p), [0.5, 0.5])
    np.testing.assert_array_equal(ref.loss("mae", y, p), [0.5, 0.5])
    # with a difference of 3 in one of two outputs: mse = 9/2, mae = 3/2
    np.testing.assert_array_equal(ref.loss("mse", [[1.0, 2.0]], [[4.0, 2.0]]), [4.5])
    np.testing.assert_array_equal(ref.loss("mae", [[1.0, 2.0]], [[4.0, 2.0]]), [1.5])


def test_crossentropy_from_logits_by_hand() -> None:
    # logit 0 means p = 1/2, so the loss is log 2 = 0.6931471805599453 for any label
    np.testing.assert_allclose(
        ref.loss("binary_crossentropy", [[0.0], [1.0], [0.3]], [[0.0]] * 3, from_logits=True),
        [0.6931471805599453] * 3,
        rtol=1e-15,
    )
    # logit 2, label 1: -log sigmoid(2) = log(1 + e^-2) = 0.12692801104297263
    # logit 2, label 0: -log(1 - sigmoid(2)) = 2 + log(1 + e^-2) = 2.1269280110429727
    np.testing.assert_allclose(
        ref.loss("binary_crossentropy", [[1.0], [0.0]], [[2.0], [2.0]], from_logits=True),
        [0.12692801104297263, 2.1269280110429727],
        rtol=1e-14,
    )
    # equal logits for 3 classes: -log(1/3) = log 3 = 1.0986122886681098
    np.testing.assert_allclose(
        ref.loss("categorical_crossentropy", [[0.0, 0.0, 1.0]], [[5.0, 5.0, 5.0]], True),
        [1.0986122886681098],
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        ref.loss("sparse_categorical_crossentropy", [2], [[5.0, 5.0, 5.0]], True),
        [1.0986122886681098],
        rtol=1e-14,
    )


def test_categorical_crossentropy_normalises_rows_first() -> None:
    # Keras divides by the row sum before clipping: [1, 3] / 4 = [0.25, 0.75],
    # so the loss for class 1 is -log 0.75 = 0.2876820724517809.
    got = ref.loss("categorical_crossentropy", [[0.0, 1.0]], [[1.0, 3.0]])
    np.testing.assert_allclose(got, [0.2876820724517809], rtol=1e-14)


def test_single_output_labels_may_be_one_dimensional() -> None:
    # Labels (batch,) against predictions (batch, 1) are paired row by row, as
    # Keras does; plain broadcasting would compare all pairs instead.
    np.testing.assert_array_equal(ref.loss("mse", [1.0, 2.0], [[1.0], [4.0]]), [0.0, 4.0])
    g = ref.loss_gradient("mse", [1.0, 2.0], [[1.0], [4.0]])
    np.testing.assert_array_equal(g, [[0.0], [2.0]])  # 2 * (p - y) / batch
    with pytest.raises(ValueError, match="same shape"):
        ref.loss("mse", [[1.0, 2.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="class indices"):
        ref.loss("sparse_categorical_crossentropy", [3], [[0.2, 0.3, 0.5]])


# ---------------------------------------------------------------------------
# Losses: gradients
# ---------------------------------------------------------------------------


def loss_test_point(
    name: str, from_logits: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) for a gradient check, with y_pred inside the smooth region."""
    shape = (4, 3)
    if name in ("mse", "mae"):
        y_pred = rng.normal(size=shape)
    elif from_logits:
        y_pred = 3.0 * rng.normal(size=shape)
    elif name == "binary_crossentropy":
        y_pred = rng.uniform(0.05, 0.95, size=shape)
    else:
        # positive "probabilities" that do not sum to 1: exercises the row normalisation
        y_pred = rng.uniform(0.1, 1.0, size=shape)
    return make_targets(name, rng, y_pred), y_pred


@pytest.mark.parametrize(("name", "from_logits"), list(itertools.product(ref.LOSSES, [False, True])))
def test_loss_gradient_matches_finite_differences(name: str, from_logits: bool) -> None:
    rng = np.random.default_rng(3)
    y_true, y_pred = loss_test_point(name, from_logits, rng)

    def batch_mean_loss(p: np.ndarray) -> float:
        return float(np.mean(ref.loss(name, y_true, p, from_logits)))

    got = ref.loss_gradient(name, y_true, y_pred, from_logits)
    assert got.shape == y_pred.shape
    np.testing.assert_allclose(
        got, numerical_gradient(batch_mean_loss, y_pred), rtol=FD_RTOL, atol=FD_ATOL
    )


def test_mae_gradient_at_the_kink_is_zero() -> None:
    # sign(0) = 0: where the prediction is exact, mae pushes neither way.
    # Elsewhere sign(p - y) / (batch * outputs) = +-1 / 4.
    g = ref.loss_gradient("mae", [[1.0, 2.0], [3.0, 4.0]], [[1.0, 5.0], [0.0, 4.0]])
    np.testing.assert_array_equal(g, [[0.0, 0.25], [-0.25, 0.0]])


def test_binary_crossentropy_gradient_is_zero_where_clipped() -> None:
    # Outside [1e-7, 1 - 1e-7] the clip is flat, so the loss does not change.
    y_true = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]])
    y_pred = np.array([[0.0, 1.0, 1e-9, 1.0 - 1e-9, 1.5]])
    np.testing.assert_array_equal(
        ref.loss_gradient("binary_crossentropy", y_true, y_pred), np.zeros((1, 5))
    )

    def f(p: np.ndarray) -> float:
        return float(np.mean(ref.loss("binary_crossentropy", y_true, p)))

    # a step of 1e-10 stays inside the flat region of every entry
    np.testing.assert_allclose(numerical_gradient(f, y_pred, h=1e-10), 0.0, atol=1e-5)


def test_clip_passes_the_gradient_at_its_boundary() -> None:
    # Like TensorFlow's clip_by_value, the gradient is cut only strictly outside
    # [EPSILON, 1 - EPSILON]. With y = 1, p = EPSILON, one sample, one output:
    # d/dp -log p = -1 / p = -1e7.
    g = ref.loss_gradient("binary_crossentropy", [[1.0]], [[ref.EPSILON]])
    np.testing.assert_allclose(g, [[-1e7]], rtol=1e-12)


def test_categorical_crossentropy_gradient_with_a_clipped_entry() -> None:
    s = 1.0 + 1e-10  # row sum of p
    p = np.array([[1e-10, 0.5, 0.5]])  # q_0 = 1e-10 / s < EPSILON: clipped
    # True class 0 (the clipped one): L = -log(clip(q_0)) = -log(1e-7) is flat.
    g = ref.loss_gradient("categorical_crossentropy", [[1.0, 0.0, 0.0]], p)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0]])
    # True class 1: L = -log(p_1 / s) = -log p_1 + log s, so
    # dL/dp_k = 1/s for k != 1 (clipped or not) and -1/p_1 + 1/s for k == 1.
    g = ref.loss_gradient("categorical_crossentropy", [[0.0, 1.0, 0.0]], p)
    np.testing.assert_allclose(g, [[1.0 / s, -2.0 + 1.0 / s, 1.0 / s]], rtol=1e-12)


# ---------------------------------------------------------------------------
# Output layer: which pairs use logits, and dL/dz for every combination
# ---------------------------------------------------------------------------


def test_uses_logits_truth_table() -> None:
    fused = {
        # a sigmoid/softmax output feeding its matching cross-entropy...
        ("binary_crossentropy", "sigmoid", False),
        ("categorical_crossentropy", "softmax", False),
        ("sparse_categorical_crossentropy", "softmax", False),
        # ...and a linear output that the user declares to hold logits
        ("binary_crossentropy", "linear", True),
        ("categorical_crossentropy", "linear", True),
        ("sparse_categorical_crossentropy", "linear", True),
    }
    for combo in itertools.product(ref.LOSSES, ref.ACTIVATIONS, [False, True]):
        assert ref.uses_logits(*combo) == (combo in fused), combo


def output_test_point(
    loss_name: str, activation_name: str, from_logits: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, z) for the output layer, with act(z) inside the loss's smooth region."""
    shape = (4, 3)
    reads_probabilities = loss_name in CROSSENTROPIES and not from_logits
    if reads_probabilities and activation_name in ("linear", "relu", "tanh"):
        # these outputs are only valid probabilities for small positive z
        z = rng.uniform(0.15, 0.85, size=shape)
    else:
        z = away_from_zero(rng, shape)  # no relu kink within reach
    return make_targets(loss_name, rng, ref.activation(activation_name, z)), z


@pytest.mark.parametrize(
    ("loss_name", "activation_name", "from_logits"),
    list(itertools.product(ref.LOSSES, ref.ACTIVATIONS, [False, True])),
)
def test_output_loss_and_delta_matches_finite_differences(
    loss_name: str, activation_name: str, from_logits: bool
) -> None:
    rng = np.random.default_rng(4)
    y_true, z = output_test_point(loss_name, activation_name, from_logits, rng)

    def batch_mean_loss(zz: np.ndarray) -> float:
        a = ref.activation(activation_name, zz)
        per_sample, _ = ref.output_loss_and_delta(
            loss_name, activation_name, from_logits, y_true, zz, a
        )
        return float(np.mean(per_sample))

    a = ref.activation(activation_name, z)
    per_sample, dz = ref.output_loss_and_delta(
        loss_name, activation_name, from_logits, y_true, z, a
    )
    assert per_sample.shape == (4,)
    assert dz.shape == z.shape
    np.testing.assert_allclose(
        dz, numerical_gradient(batch_mean_loss, z), rtol=FD_RTOL, atol=FD_ATOL
    )


@pytest.mark.parametrize(
    ("loss_name", "activation_name"),
    [
        ("binary_crossentropy", "sigmoid"),
        ("categorical_crossentropy", "softmax"),
        ("sparse_categorical_crossentropy", "softmax"),
    ],
)
def test_fused_output_agrees_with_the_chain_rule_away_from_the_clip(
    loss_name: str, activation_name: str
) -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 3))  # moderate logits: no probability near the clip
    a = ref.activation(activation_name, z)
    y_true = make_targets(loss_name, rng, a)
    per_sample, dz = ref.output_loss_and_delta(loss_name, activation_name, False, y_true, z, a)
    # the unfused path: loss of the probabilities, then back through the activation
    expected_loss = ref.loss(loss_name, y_true, a)
    expected_dz = ref.activation_backward(
        activation_name, z, a, ref.loss_gradient(loss_name, y_true, a)
    )
    np.testing.assert_allclose(per_sample, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(dz, expected_dz, rtol=1e-10, atol=1e-15)


def test_fused_output_is_not_clipped() -> None:
    # Logit 30, label 0: from the logits the loss is 30 + log(1 + e^-30) ~= 30 and
    # the gradient sigmoid(30) - 0 ~= 1. The clipped probability would cap the loss
    # at -log(1e-7) = 16.1 and stop the gradient altogether.
    z = np.array([[30.0]])
    a = ref.sigmoid(z)
    per_sample, dz = ref.output_loss_and_delta(
        "binary_crossentropy", "sigmoid", False, [[0.0]], z, a
    )
    assert per_sample[0] == pytest.approx(30.0, rel=1e-12)
    assert dz[0, 0] == pytest.approx(1.0, rel=1e-12)
    assert ref.loss("binary_crossentropy", [[0.0]], a)[0] == pytest.approx(16.11809565095832)


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------


def test_dense_forward_by_hand() -> None:
    # z = [1, 2] @ [[1, -1], [2, 0.5]] + [0.5, -1] = [1 + 4 + 0.5, -1 + 1 - 1] = [5.5, -1]
    x = np.array([[1.0, 2.0]])
    kernel = np.array([[1.0, -1.0], [2.0, 0.5]])
    z, a = ref.dense_forward(x, kernel, np.array([0.5, -1.0]), "relu")
    np.testing.assert_array_equal(z, [[5.5, -1.0]])
    np.testing.assert_array_equal(a, [[5.5, 0.0]])
    z, a = ref.dense_forward(x, kernel, None, "linear")  # use_bias=False
    np.testing.assert_array_equal(z, [[5.0, 0.0]])
    np.testing.assert_array_equal(a, z)


def test_forward_and_predict_chain_the_layers() -> None:
    # layer 1: [1, 2] @ [[1], [1]] = 3, relu -> 3; layer 2: 3 * 2 + 1 = 7, linear -> 7
    params = [(np.array([[1.0], [1.0]]), None), (np.array([[2.0]]), np.array([1.0]))]
    layers = ref.forward([[1.0, 2.0]], params, ["relu", "linear"])
    assert len(layers) == 2
    np.testing.assert_array_equal(layers[0][1], [[3.0]])
    np.testing.assert_array_equal(layers[1][0], [[7.0]])
    np.testing.assert_array_equal(ref.predict([[1.0, 2.0]], params, ["relu", "linear"]), [[7.0]])
    with pytest.raises(ValueError, match="one entry per layer"):
        ref.forward([[1.0, 2.0]], params, ["relu"])


def small_network(
    loss_name: str, output_activation: str, from_logits: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, ref.Params, list[str]]:
    """A 3 -> 4 (tanh) -> 5 (relu, no bias) -> 3 network and matching data."""
    x = rng.normal(size=(6, 3))
    params: ref.Params = [
        (ref.glorot_uniform(3, 4, rng), rng.normal(scale=0.1, size=4)),
        (ref.glorot_uniform(4, 5, rng), None),
        (ref.glorot_uniform(5, 3, rng), rng.normal(scale=0.1, size=3)),
    ]
    activations = ["tanh", "relu", output_activation]
    if loss_name in CROSSENTROPIES and not from_logits and output_activation != "softmax":
        # Keep a linear/relu/tanh/sigmoid output inside (0, 1): small weights
        # around a bias of 0.5.
        kernel, _ = params[2]
        params[2] = (0.05 * kernel, np.full(3, 0.5))
    hidden_z = ref.forward(x, params, activations)[1][0]
    assert np.min(np.abs(hidden_z)) > 1e-3, "choose another seed: a relu input sits on its kink"
    output = ref.predict(x, params, activations)
    return x, make_targets(loss_name, rng, output), params, activations


@pytest.mark.parametrize(
    ("loss_name", "output_activation", "from_logits"),
    list(itertools.product(ref.LOSSES, ref.ACTIVATIONS, [False, True])),
)
def test_gradients_match_finite_differences(
    loss_name: str, output_activation: str, from_logits: bool
) -> None:
    rng = np.random.default_rng(6)
    x, y_true, params, activations = small_network(loss_name, output_activation, from_logits, rng)

    mean_loss, grads = ref.gradients(x, y_true, params, activations, loss_name, from_logits)
    per_sample, _ = ref.output_loss_and_delta(
        loss_name, output_activation, from_logits, y_true, *ref.forward(x, params, activations)[-1]
    )
    assert mean_loss == pytest.approx(float(np.mean(per_sample)), rel=1e-14)
    assert len(grads) == len(params)

    for layer, ((kernel, bias), (dkernel, dbias)) in enumerate(zip(params, grads)):

        def loss_with_kernel(k: np.ndarray, layer: int = layer) -> float:
            trial = list(params)
            trial[layer] = (k, params[layer][1])
            return ref.gradients(x, y_true, trial, activations, loss_name, from_logits)[0]

        np.testing.assert_allclose(
            dkernel, numerical_gradient(loss_with_kernel, kernel), rtol=1e-5, atol=FD_ATOL
        )
        if bias is None:
            assert dbias is None
            continue

        def loss_with_bias(b: np.ndarray, layer: int = layer) -> float:
            trial = list(params)
            trial[layer] = (params[layer][0], b)
            return ref.gradients(x, y_true, trial, activations, loss_name, from_logits)[0]

        assert dbias is not None
        np.testing.assert_allclose(
            dbias, numerical_gradient(loss_with_bias, bias), rtol=1e-5, atol=FD_ATOL
        )


# ---------------------------------------------------------------------------
# Worked examples from the teaching material
# ---------------------------------------------------------------------------


def test_and_gate_perceptron_one_step_by_hand() -> None:
    # One sigmoid neuron, weights (0.1, -0.12), bias 0, input (1, 0), target 0.
    x = np.array([[1.0, 0.0]])
    y = np.array([[0.0]])
    params: ref.Params = [(np.array([[0.1], [-0.12]]), np.array([0.0]))]
    act = ["sigmoid"]

    # z = 1 * 0.1 + 0 * (-0.12) + 0 = 0.1;  p = sigmoid(0.1) = 1 / (1 + e^-0.1) = 0.524979
    p = ref.predict(x, params, act)
    assert p[0, 0] == pytest.approx(0.524979, abs=1e-6)

    # BCE with target 0: L = -log(1 - p) = -log(0.475021) = 0.744397
    # dL/dz = p - y = 0.524979 (sigmoid' cancels against the log's 1/(p(1-p)))
    # dL/dw = x * dL/dz = (1 * 0.524979, 0 * 0.524979) = (0.524979, 0); dL/db = 0.524979
    #
    # The teaching text multiplies by 0.249 = sigmoid'(0.1) = p(1 - p) (the derivative
    # of the output, not of the loss) and gets 0.402. That is the gradient of the
    # squared error, not of binary cross-entropy; with BCE the correct gradient is p - y.
    mean_loss, grads = ref.gradients(x, y, params, act, "binary_crossentropy")
    assert mean_loss == pytest.approx(0.744397, abs=1e-6)
    ((dkernel, dbias),) = grads
    np.testing.assert_allclose(dkernel, [[0.524979], [0.0]], atol=1e-6)
    assert dbias is not None
    np.testing.assert_allclose(dbias, [0.524979], atol=1e-6)

    # SGD with learning rate 1: w = (0.1 - 0.524979, -0.12 - 0) = (-0.424979, -0.12),
    # b = 0 - 0.524979 = -0.524979
    ((kernel, bias),) = ref.sgd_step(params, grads, learning_rate=1.0)
    np.testing.assert_allclose(kernel, [[-0.424979], [-0.12]], atol=1e-6)
    assert bias is not None
    np.testing.assert_allclose(bias, [-0.524979], atol=1e-6)
    # new z = -0.424979 - 0.524979 = -0.949958; sigmoid(-0.949958) = 1 / (1 + 2.585630)
    #       = 0.278893: the output moved toward the target 0
    new_p = ref.predict(x, [(kernel, bias)], act)
    assert new_p[0, 0] == pytest.approx(0.278893, abs=1e-6)


def test_sales_forecast_linear_regression_by_hand() -> None:
    # Months as (ad spend, price) -> sales; a linear neuron without bias.
    x = np.array([[20.0, 5.0], [30.0, 4.0]])
    y = np.array([5.0, 18.0])
    params: ref.Params = [(np.array([[2.0], [-2.0]]), None)]
    act = ["linear"]

    # 20*2 + 5*(-2) = 30 and 30*2 + 4*(-2) = 52
    np.testing.assert_array_equal(ref.predict(x, params, act), [[30.0], [52.0]])

    # The exact fit solves 20a + 5b = 5, 30a + 4b = 18: a = (5 - 5b)/20, so
    # 7.5 - 7.5b + 4b = 18, b = -3, a = 1. The MSE Hessian 2/n X^T X = X^T X =
    # [[1300, 220], [220, 41]] has eigenvalues ~1337.3 and ~3.66, so full-batch
    # gradient descent converges for lr < 2/1337.3; with lr = 1e-3 the slow
    # direction shrinks by (1 - 0.00366) per step, ~1e-8 after 5000 steps.
    epochs = 5000
    order = [np.arange(2)] * epochs
    trained, losses = ref.train_sgd(x, y, params, act, "mse", 1e-3, 2, epochs, order)
    ((kernel, bias),) = trained
    assert bias is None
    np.testing.assert_allclose(kernel, [[1.0], [-3.0]], atol=1e-3)
    # the first epoch's loss is that of the initial weights: ((30-5)^2 + (52-18)^2)/2
    # = (625 + 1156)/2 = 890.5
    assert losses[0] == pytest.approx(890.5, rel=1e-12)
    assert losses[-1] < 1e-6

    # Held out: March (40, 4) -> 40 - 12 = 28, April (30, 3) -> 30 - 9 = 21;
    # actual 24 and 18, so the errors are 4 and 3 and the MAE is 3.5.
    held_out = np.array([[40.0, 4.0], [30.0, 3.0]])
    forecast = ref.predict(held_out, trained, act)
    np.testing.assert_allclose(forecast, [[28.0], [21.0]], atol=1e-2)
    mae = ref.mean_absolute_error([24.0, 18.0], forecast)
    assert float(np.mean(mae)) == pytest.approx(3.5, abs=1e-2)


# ---------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------


def classification_problem(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, ref.Params]:
    x = rng.normal(size=(5, 3))
    y = rng.integers(0, 3, size=5)
    params: ref.Params = [
        (ref.glorot_uniform(3, 4, rng), np.zeros(4)),
        (ref.glorot_uniform(4, 3, rng), np.zeros(3)),
    ]
    return x, y, params


def assert_params_close(got: ref.Params, expected: ref.Params) -> None:
    assert len(got) == len(expected)
    for (kernel, bias), (expected_kernel, expected_bias) in zip(got, expected):
        np.testing.assert_allclose(kernel, expected_kernel, rtol=1e-12, atol=1e-15)
        assert (bias is None) == (expected_bias is None)
        if bias is not None and expected_bias is not None:
            np.testing.assert_allclose(bias, expected_bias, rtol=1e-12, atol=1e-15)


ACTS = ["tanh", "softmax"]
LOSS = "sparse_categorical_crossentropy"


def test_sgd_step_returns_new_arrays() -> None:
    kernel, bias = np.array([[1.0, 2.0]]), np.array([3.0, 4.0])
    params: ref.Params = [(kernel, bias), (np.array([[5.0]]), None)]
    grads: ref.Params = [
        (np.array([[10.0, 20.0]]), np.array([30.0, 40.0])),
        (np.array([[1.0]]), None),
    ]
    new = ref.sgd_step(params, grads, learning_rate=0.1)
    # w - 0.1 * g: [1 - 1, 2 - 2], [3 - 3, 4 - 4], [5 - 0.1]
    np.testing.assert_allclose(new[0][0], [[0.0, 0.0]], atol=1e-15)
    new_bias = new[0][1]
    assert new_bias is not None
    np.testing.assert_allclose(new_bias, [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(new[1][0], [[4.9]], rtol=1e-15)
    assert new[1][1] is None
    np.testing.assert_array_equal(kernel, [[1.0, 2.0]])  # inputs untouched
    np.testing.assert_array_equal(bias, [3.0, 4.0])


def test_full_batch_training_equals_repeated_sgd_steps() -> None:
    rng = np.random.default_rng(7)
    x, y, params = classification_problem(rng)
    epochs, lr = 4, 0.5
    orders = [rng.permutation(5) for _ in range(epochs)]
    trained, losses = ref.train_sgd(x, y, params, ACTS, LOSS, lr, 5, epochs, orders)

    manual = params
    for epoch in range(epochs):
        # One batch of all samples; the order inside a batch does not change
        # a mean, so this must match whatever the permutation was.
        mean_loss, grads = ref.gradients(x, y, manual, ACTS, LOSS)
        assert losses[epoch] == pytest.approx(mean_loss, rel=1e-12)
        manual = ref.sgd_step(manual, grads, lr)
    assert_params_close(trained, manual)
    assert losses[-1] < losses[0]


def test_mini_batches_follow_batch_order_and_weight_the_epoch_loss() -> None:
    rng = np.random.default_rng(8)
    x, y, params = classification_problem(rng)
    orders = [np.array([3, 0, 4, 1, 2]), np.array([1, 4, 2, 0, 3])]
    lr = 0.3
    trained, losses = ref.train_sgd(x, y, params, ACTS, LOSS, lr, 2, 2, orders)

    manual = params
    for epoch, order in enumerate(orders):
        # batch_size 2 over 5 samples: slices [0:2], [2:4], [4:5] of the permutation
        total = 0.0
        for idx in (order[0:2], order[2:4], order[4:5]):
            batch_loss, grads = ref.gradients(x[idx], y[idx], manual, ACTS, LOSS)
            total += batch_loss * len(idx)  # (2 * l1 + 2 * l2 + 1 * l3) / 5
            manual = ref.sgd_step(manual, grads, lr)
        assert losses[epoch] == pytest.approx(total / 5, rel=1e-12)
    assert_params_close(trained, manual)

    # A different order gives different weights: the order is really used.
    other, _ = ref.train_sgd(x, y, params, ACTS, LOSS, lr, 2, 2, [np.arange(5)] * 2)
    assert not np.allclose(other[0][0], trained[0][0])


def test_train_sgd_rejects_a_bad_batch_order() -> None:
    rng = np.random.default_rng(9)
    x, y, params = classification_problem(rng)
    with pytest.raises(ValueError, match="one permutation per epoch"):
        ref.train_sgd(x, y, params, ACTS, LOSS, 0.1, 2, 2, [np.arange(5)])
    with pytest.raises(ValueError, match="permutation"):
        ref.train_sgd(x, y, params, ACTS, LOSS, 0.1, 2, 1, [np.array([0, 0, 1, 2, 3])])


# ---------------------------------------------------------------------------
# Metrics and initialisation
# ---------------------------------------------------------------------------


def test_accuracy_matches_the_keras_documentation_examples() -> None:
    # BinaryAccuracy: [[1], [1], [0], [0]] vs [[0.98], [1], [0], [0.6]] -> 0.75
    binary = ref.accuracy("binary", [[1], [1], [0], [0]], [[0.98], [1.0], [0.0], [0.6]])
    np.testing.assert_array_equal(binary, [1.0, 1.0, 1.0, 0.0])
    # exactly 0.5 is not above the threshold, so it counts as class 0
    np.testing.assert_array_equal(ref.accuracy("binary", [1.0, 0.0], [[0.5], [0.5]]), [0.0, 1.0])
    # CategoricalAccuracy: [[0, 0, 1], [0, 1, 0]] vs [[0.1, 0.9, 0.8], [0.05, 0.95, 0]] -> 0.5
    preds = [[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]]
    np.testing.assert_array_equal(
        ref.accuracy("categorical", [[0, 0, 1], [0, 1, 0]], preds), [0.0, 1.0]
    )
    # SparseCategoricalAccuracy: [[2], [1]] with the same predictions -> 0.5
    np.testing.assert_array_equal(ref.accuracy("sparse_categorical", [[2], [1]], preds), [0.0, 1.0])
    np.testing.assert_array_equal(ref.accuracy("sparse_categorical", [2, 1], preds), [0.0, 1.0])
    assert ref.accuracy("sparse_categorical", [2, 1], preds).dtype == np.float64


def test_regression_metrics_by_hand() -> None:
    # errors (1, -3) and (0, 2): MAE (1 + 3)/2 = 2, 2/2 = 1; MSE (1 + 9)/2 = 5, 4/2 = 2
    y_true = [[1.0, 5.0], [0.0, 0.0]]
    y_pred = [[2.0, 2.0], [0.0, 2.0]]
    np.testing.assert_array_equal(ref.mean_absolute_error(y_true, y_pred), [2.0, 1.0])
    np.testing.assert_array_equal(ref.mean_squared_error(y_true, y_pred), [5.0, 2.0])


def test_glorot_uniform_range_and_variance() -> None:
    rng = np.random.default_rng(10)
    w = ref.glorot_uniform(300, 200, rng)
    assert w.shape == (300, 200)
    assert w.dtype == np.float64
    limit = math.sqrt(6.0 / 500.0)  # = 0.10954451150103323
    assert w.min() >= -limit and w.max() <= limit
    assert w.min() < -0.99 * limit and w.max() > 0.99 * limit
    # Var U(-l, l) = l^2 / 3 = 2 / (fan_in + fan_out) = 0.004; 60000 samples give
    # a relative standard error of about 0.4%.
    assert np.var(w) == pytest.approx(0.004, rel=0.03)
    assert abs(np.mean(w)) < 0.01 * limit
    # seeded: the same generator state gives the same kernel
    np.testing.assert_array_equal(
        ref.glorot_uniform(3, 2, np.random.default_rng(1)),
        ref.glorot_uniform(3, 2, np.random.default_rng(1)),
    )
