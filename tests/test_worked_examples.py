"""The two worked examples of our teaching material (issue 2), with the arithmetic done by hand.

Each runs once per instruction set the CPU supports (``isa`` fixture); the expected numbers come
from the hand calculations in the comments, never from fastmlp's own output.
"""

from __future__ import annotations

import math

import fastmlp as fm
import numpy as np
import pytest

# ----------------------------------------------------------------------------- sales forecast
#
# A linear model with two weights and no bias: sales = w1 * ad_spend + w2 * price.
#
#                 ad spend   price   sales
#   January          20        5       5
#   February         30        4      18
#
# With w = (2, -2):  January  2*20 - 2*5 = 30,   February  2*30 - 2*4 = 52.
#
# The exact solution of  20 w1 + 5 w2 = 5,  30 w1 + 4 w2 = 18:  from the first, w2 = 1 - 4 w1;
# then 30 w1 + 4 - 16 w1 = 18, so 14 w1 = 14: w = (1, -3). Two equations, two unknowns: MSE
# gradient descent must converge to it (MSE = 0 there).

SALES_X = np.array([[20.0, 5.0], [30.0, 4.0]])
SALES_Y = np.array([5.0, 18.0])
# Held-out months whose inputs give predictions 28 and 21 with w = (1, -3):
#   March  ad 40, price 4:  40 - 12 = 28   (actual 24, error 4)
#   April  ad 30, price 3:  30 -  9 = 21   (actual 18, error 3)
#   mae = (4 + 3) / 2 = 3.5,   mse = (16 + 9) / 2 = 12.5
HELD_OUT_X = np.array([[40.0, 4.0], [30.0, 3.0]])
HELD_OUT_Y = np.array([24.0, 18.0])


def sales_model(learning_rate: float, dtype: str = "float32") -> fm.Sequential:
    model = fm.Sequential(
        [fm.layers.Input(shape=(2,)), fm.layers.Dense(1, use_bias=False)], dtype=dtype
    )
    model.compile(
        optimizer=fm.optimizers.SGD(learning_rate=learning_rate), loss="mse", metrics=["mae"]
    )
    model.set_weights([np.array([[2.0], [-2.0]])])
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sales_predictions_loss_and_first_gradient(isa: str, dtype: str) -> None:
    model = sales_model(0.001, dtype)
    np.testing.assert_array_equal(model.predict(SALES_X, verbose=0)[:, 0], [30.0, 52.0])
    # Errors 30 - 5 = 25 and 52 - 18 = 34:  MSE = (625 + 1156) / 2 = 890.5.
    loss, mae = model.test_on_batch(SALES_X, SALES_Y)  # type: ignore[misc]
    assert loss == pytest.approx(890.5, rel=1e-7)
    assert mae == pytest.approx((25 + 34) / 2, rel=1e-7)
    # dMSE/dw = (2 / n) * X^T e = X^T (25, 34) for n = 2:
    #   dw1 = 20*25 + 30*34 = 500 + 1020 = 1520,   dw2 = 5*25 + 4*34 = 125 + 136 = 261.
    [(dkernel, dbias)] = model.compute_gradients(SALES_X, SALES_Y)
    assert dbias is None  # use_bias=False
    np.testing.assert_allclose(dkernel[:, 0], [1520.0, 261.0], rtol=1e-6)
    # One step with learning rate 0.001:  w = (2 - 1.520, -2 - 0.261) = (0.48, -2.261).
    model.train_on_batch(SALES_X, SALES_Y)
    np.testing.assert_allclose(model.get_weights()[0][:, 0], [0.48, -2.261], rtol=1e-6)


def test_sales_converges_to_exact_solution(isa: str) -> None:
    # The MSE's Hessian is (2/n) X^T X = X^T X = [[1300, 220], [220, 41]], with trace 1341 and
    # determinant 1300*41 - 220^2 = 4900, so eigenvalues (1341 +- sqrt(1341^2 - 4*4900)) / 2 =
    # 1337.34 and 3.664. Gradient descent is stable for lr < 2 / 1337.34 = 0.001496; with
    # lr = 0.0014 the slow direction shrinks by 1 - 0.0014*3.664 = 0.99487 per step, so 3000
    # full-batch steps shrink the initial error |(2, -2) - (1, -3)| = 1.41 by e^-15.4 = 2e-7:
    # what remains is float32 rounding, far below the 1e-3 the issue asks for.
    model = sales_model(0.0014)
    history = model.fit(SALES_X, SALES_Y, batch_size=2, epochs=3000, shuffle=False, verbose=0)
    np.testing.assert_allclose(model.get_weights()[0][:, 0], [1.0, -3.0], atol=1e-3)
    assert history.history["loss"][0] == pytest.approx(890.5, rel=1e-6)  # before the first step
    assert history.history["loss"][-1] < 1e-5
    np.testing.assert_allclose(model.predict(SALES_X, verbose=0)[:, 0], [5.0, 18.0], atol=1e-2)
    # Held-out months: predictions 28 and 21 against actual 24 and 18, mae 3.5 (see above).
    np.testing.assert_allclose(model.predict(HELD_OUT_X, verbose=0)[:, 0], [28.0, 21.0], atol=1e-2)
    loss, mae = model.evaluate(HELD_OUT_X, HELD_OUT_Y, verbose=0)  # type: ignore[misc]
    assert mae == pytest.approx(3.5, abs=1e-2)
    assert loss == pytest.approx(12.5, abs=1e-1)


def test_sales_held_out_mae_with_exact_weights(isa: str) -> None:
    model = sales_model(0.001)
    model.set_weights([np.array([[1.0], [-3.0]])])
    np.testing.assert_array_equal(model.predict(HELD_OUT_X, verbose=0)[:, 0], [28.0, 21.0])
    loss, mae = model.evaluate(HELD_OUT_X, HELD_OUT_Y, verbose=0)  # type: ignore[misc]
    assert mae == 3.5  # exact: small integers in float32
    assert loss == 12.5
    assert model.evaluate(HELD_OUT_X, HELD_OUT_Y, verbose=0, return_dict=True) == {
        "loss": 12.5,
        "mae": 3.5,
    }


# ----------------------------------------------------------------------------- AND gate
#
# A perceptron with a sigmoid output and binary cross-entropy: weights (0.1, -0.12), bias 0,
# input (1, 0), target 0.
#
#   z = 0.1*1 - 0.12*0 + 0 = 0.1
#   p = sigmoid(0.1) = 1 / (1 + e^-0.1) = 1 / 1.904837 = 0.524979
#   L = -(y log p + (1 - y) log(1 - p)) = -log(0.475021) = 0.744397
#
# Gradient: for a sigmoid output with binary cross-entropy the derivative with respect to z is
# simply  dL/dz = p - y = 0.524979  (the sigmoid's derivative p(1 - p) cancels against the
# derivative of the log: dL/dp = (p - y) / (p(1 - p))). Then
#   dL/dw = x * dL/dz = (0.524979, 0),   dL/db = 0.524979.
# One SGD step with learning rate 1:
#   w = (0.1 - 0.524979, -0.12 - 0) = (-0.424979, -0.12),   b = 0 - 0.524979 = -0.524979
#   new z = -0.424979 - 0.524979 = -0.949958,  new p = sigmoid(-0.949958) = 0.278893.
#
# The teaching text uses 0.249 as the gradient: that is sigmoid'(0.1) = p(1 - p) = 0.249376,
# the derivative of the OUTPUT p with respect to z, not of the LOSS (it leaves out the factor
# dL/dp = 1 / (1 - p) = 2.105 for y = 0). With it, w1 = 0.1 - 0.249 = -0.149, b = -0.249, the new
# z = -0.149 - 0.249 = -0.398 and the new output sigmoid(-0.398) = 0.402: a step less than half
# the size the true gradient takes. fastmlp must give the loss's gradient, p - y.

P_FORWARD = 1.0 / (1.0 + math.exp(-0.1))
LOSS = -math.log(1.0 - P_FORWARD)
P_AFTER = 1.0 / (1.0 + math.exp(-(0.1 - P_FORWARD - P_FORWARD)))
WRONG_GRADIENT = P_FORWARD * (1.0 - P_FORWARD)  # sigmoid'(0.1), the teaching text's 0.249
WRONG_P_AFTER = 1.0 / (1.0 + math.exp(-(0.1 - 2 * WRONG_GRADIENT)))


def test_hand_arithmetic_constants() -> None:
    """The six-decimal numbers quoted in the issue are the roundings of the formulas above."""
    assert P_FORWARD == pytest.approx(0.524979, abs=5e-7)
    assert LOSS == pytest.approx(0.744397, abs=5e-7)
    assert P_AFTER == pytest.approx(0.278893, abs=5e-7)
    assert WRONG_GRADIENT == pytest.approx(0.249, abs=5e-4)
    assert WRONG_P_AFTER == pytest.approx(0.402, abs=5e-4)


def and_gate_model(dtype: str) -> fm.Sequential:
    model = fm.Sequential(
        [fm.layers.Input(shape=(2,)), fm.layers.Dense(1, activation="sigmoid")], dtype=dtype
    )
    model.compile(
        optimizer=fm.optimizers.SGD(learning_rate=1.0),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.set_weights([np.array([[0.1], [-0.12]]), np.array([0.0])])
    return model


# float32 carries ~7 significant digits; results of order 1 are good to ~1e-7 relative.
TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_and_gate_one_step(isa: str, dtype: str) -> None:
    rtol = TOLERANCE[dtype]
    model = and_gate_model(dtype)
    x = np.array([[1.0, 0.0]])
    y = np.array([[0.0]])

    assert model.predict(x, verbose=0)[0, 0] == pytest.approx(P_FORWARD, rel=rtol)
    assert model.predict(x, verbose=0)[0, 0] == pytest.approx(0.524979, abs=1e-6)
    loss, _ = model.test_on_batch(x, y)  # type: ignore[misc]
    assert loss == pytest.approx(LOSS, rel=rtol)
    assert loss == pytest.approx(0.744397, abs=1e-6)

    [(dkernel, dbias)] = model.compute_gradients(x, y)
    np.testing.assert_allclose(dkernel[:, 0], [P_FORWARD, 0.0], rtol=rtol, atol=1e-15)
    assert dbias is not None
    np.testing.assert_allclose(dbias, [P_FORWARD], rtol=rtol)
    # Not the teaching text's sigmoid'(0.1) = 0.249.
    assert abs(dkernel[0, 0] - WRONG_GRADIENT) > 0.2

    step_loss, _ = model.train_on_batch(x, y)  # type: ignore[misc]
    assert step_loss == pytest.approx(LOSS, rel=rtol)  # the loss before the step
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel[:, 0], [0.1 - P_FORWARD, -0.12], rtol=rtol)
    np.testing.assert_allclose(kernel[:, 0], [-0.424979, -0.12], atol=1e-6)
    np.testing.assert_allclose(bias, [-P_FORWARD], rtol=rtol)
    np.testing.assert_allclose(bias, [-0.524979], atol=1e-6)
    new_output = model.predict(x, verbose=0)[0, 0]
    assert new_output == pytest.approx(P_AFTER, rel=rtol)
    assert new_output == pytest.approx(0.278893, abs=1e-6)
    assert abs(new_output - WRONG_P_AFTER) > 0.1  # not the teaching text's 0.402


AND_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
AND_Y = np.array([0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_and_gate_learns_all_four_rows(isa: str, dtype: str) -> None:
    model = and_gate_model(dtype)
    history = model.fit(AND_X, AND_Y, batch_size=4, epochs=300, shuffle=False, verbose=0)
    outputs = model.predict(AND_X, verbose=0)[:, 0]
    np.testing.assert_array_equal(outputs > 0.5, AND_Y == 1.0)
    _, accuracy = model.evaluate(AND_X, AND_Y, verbose=0)  # type: ignore[misc]
    assert accuracy == 1.0
    assert history.history["accuracy"][-1] == 1.0
    # A separating line for AND exists, so the loss keeps falling.
    assert history.history["loss"][-1] < 0.1 < history.history["loss"][0]
    kernel, bias = model.get_weights()
    # Learned the AND rule: each input alone stays below the threshold, both together above.
    assert bias[0] + kernel[0, 0] < 0 and bias[0] + kernel[1, 0] < 0 < bias[0] + kernel.sum()


def test_and_gate_per_sample_sgd(isa: str) -> None:
    """The classic perceptron loop, one sample per step (batch size 1), reaches 100% too."""
    model = and_gate_model("float32")
    model.fit(AND_X, AND_Y, batch_size=1, epochs=200, shuffle=True, verbose=0)
    _, accuracy = model.evaluate(AND_X, AND_Y, verbose=0)  # type: ignore[misc]
    assert accuracy == 1.0
