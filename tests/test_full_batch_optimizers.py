"""Full-batch optimizers (Newton, ConjugateGradient, LBFGS, LeastSquares) against independent
solvers: numpy.linalg.lstsq and the normal equations, an IRLS written here, SciPy and
scikit-learn where installed. Each epoch of fit is one iteration on the whole training set."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp.optimizers import _line_search

FULL_BATCH = [
    lambda: fm.optimizers.Newton(),
    lambda: fm.optimizers.ConjugateGradient(),
    lambda: fm.optimizers.LBFGS(),
    lambda: fm.optimizers.LeastSquares(),
]


def linear_data(n: int = 40, k: int = 4, m: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k))
    y = x @ rng.normal(size=(k, m)) + 0.5 + 0.1 * rng.normal(size=(n, m))
    return x, y


def linear_model(k: int, m: int = 1, optimizer: Any = "sgd", **dense: Any) -> fm.Sequential:
    model = fm.Sequential([fm.layers.Input(shape=(k,)), fm.layers.Dense(m, **dense)], dtype="float64")
    model.compile(optimizer=optimizer, loss="mse")
    return model


def flat(model: fm.Sequential) -> np.ndarray:
    return np.concatenate([w.ravel() for w in model.get_weights()])


def weighted_ridge(x: np.ndarray, y: np.ndarray, s: np.ndarray, lam: float) -> np.ndarray:
    """The minimizer of (1/(n m)) sum_i s_i ||x_i W + b - y_i||^2 + lam ||W||^2, by the normal
    equations (fine for these well-conditioned data), as [W (k, m); b (m,)] stacked."""
    n, k = x.shape
    m = y.shape[1]
    a = np.hstack([x, np.ones((n, 1))])
    penalty = np.diag([lam * n * m] * k + [0.0])
    theta = np.linalg.solve(a.T @ (s[:, None] * a) + penalty, a.T @ (s[:, None] * y))
    return theta


# ------------------------------------------------------------------ LeastSquares


def test_least_squares_equals_numpy_lstsq() -> None:
    x, y = linear_data(m=2)
    model = linear_model(4, 2, fm.optimizers.LeastSquares())
    history = model.fit(x, y, epochs=5, verbose=0)
    expected, *_ = np.linalg.lstsq(np.hstack([x, np.ones((40, 1))]), y, rcond=None)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, expected[:4], rtol=0, atol=1e-12)
    np.testing.assert_allclose(bias, expected[4], rtol=0, atol=1e-12)
    # Solved in one step: fit stops after the first epoch, which logs the loss at the solution.
    assert len(history.history["loss"]) == 1
    residual = np.hstack([x, np.ones((40, 1))]) @ expected - y
    assert history.history["loss"][0] == pytest.approx(np.mean(residual**2), rel=1e-12)
    assert model.optimizer.converged


def test_least_squares_with_sample_weights_and_ridge() -> None:
    x, y = linear_data(m=2, seed=1)
    s = np.random.default_rng(2).uniform(0.1, 3.0, size=40)
    model = linear_model(4, 2, fm.optimizers.LeastSquares(l2=0.05))
    model.fit(x, y, sample_weight=s, epochs=1, verbose=0)
    expected = weighted_ridge(x, y, s, 0.05)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, expected[:4], atol=1e-11)
    np.testing.assert_allclose(bias, expected[4], atol=1e-11)


def test_least_squares_adds_the_layers_own_l2_penalty() -> None:
    x, y = linear_data(seed=3)
    model = linear_model(4, 1, fm.optimizers.LeastSquares(l2=0.01), kernel_regularizer=fm.regularizers.L2(0.02))
    model.fit(x, y, epochs=1, verbose=0)
    expected = weighted_ridge(x, y, np.ones(40), 0.03)
    np.testing.assert_allclose(flat(model), expected.ravel(), atol=1e-11)
    # At the minimum of the compiled loss (l2 of the optimizer aside) the gradient would vanish;
    # here the optimizer's own 0.01 remains: dJ/dW = -2 * 0.01 W.
    kernel_grad, bias_grad = model.compute_gradients(x, y)[0]
    np.testing.assert_allclose(kernel_grad, -2 * 0.01 * model.get_weights()[0], atol=1e-10)
    np.testing.assert_allclose(bias_grad, 0.0, atol=1e-10)


def test_least_squares_matches_scikit_learn_ridge() -> None:
    linear_model_module = pytest.importorskip("sklearn.linear_model")
    x, y = linear_data(n=50, k=3, seed=4)
    s = np.random.default_rng(5).uniform(0.5, 2.0, size=50)
    model = linear_model(3, 1, fm.optimizers.LeastSquares(l2=0.1))
    model.fit(x, y, sample_weight=s, epochs=1, verbose=0)
    # sklearn's Ridge minimizes sum_i s_i r_i^2 + alpha ||w||^2: alpha = n m l2 here.
    ridge = linear_model_module.Ridge(alpha=50 * 0.1).fit(x, y[:, 0], sample_weight=s)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel[:, 0], ridge.coef_, atol=1e-10)
    np.testing.assert_allclose(bias[0], ridge.intercept_, atol=1e-10)


@pytest.mark.parametrize(
    ("layers", "loss", "match"),
    [
        ([fm.layers.Dense(1, activation="relu", name="hidden_relu")], "mse", "'hidden_relu' has activation='relu'"),
        ([fm.layers.Dense(3, name="first"), fm.layers.Dense(1, name="second")], "mse", "2 Dense layers"),
        ([fm.layers.Dense(1, activation="sigmoid")], "binary_crossentropy", "activation='sigmoid'"),
        ([fm.layers.Dense(1)], "mae", "loss='mae'"),
        ([fm.layers.Dense(1, kernel_regularizer=fm.regularizers.L1(0.1), name="lasso")], "mse", "L1 penalty"),
    ],
)
def test_least_squares_refuses_other_models_at_compile(layers: list[Any], loss: str, match: str) -> None:
    model = fm.Sequential([fm.layers.Input(shape=(4,)), *layers], dtype="float64")
    with pytest.raises(ValueError, match=match):
        model.compile(optimizer=fm.optimizers.LeastSquares(), loss=loss)
    assert model.optimizer is None  # the refused compile left the model as it was


def test_least_squares_refuses_an_unbuilt_nonlinear_model_at_fit() -> None:
    model = fm.Sequential([fm.layers.Dense(1, activation="tanh", name="bent")])
    model.compile(optimizer=fm.optimizers.LeastSquares(), loss="mse")  # not built: checked at fit
    x, y = linear_data()
    with pytest.raises(ValueError, match="'bent' has activation='tanh'"):
        model.fit(x, y, verbose=0)


# ------------------------------------------------------------------ Newton


def test_one_newton_step_on_a_linear_model_is_least_squares() -> None:
    x, y = linear_data(seed=6)
    model = linear_model(4, 1, fm.optimizers.Newton(line_search=False))
    model.fit(x, y, epochs=1, verbose=0)
    expected, *_ = np.linalg.lstsq(np.hstack([x, np.ones((40, 1))]), y, rcond=None)
    np.testing.assert_allclose(flat(model), expected.ravel(), atol=1e-10)
    assert model.optimizer.iterations == 1


def irls(x: np.ndarray, t: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Logistic regression by iteratively reweighted least squares (Newton on the mean binary
    cross-entropy), [w; b]."""
    a = np.hstack([x, np.ones((x.shape[0], 1))])
    theta = np.zeros(a.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a @ theta)))
        weights = p * (1.0 - p)
        z = a @ theta + (t - p) / weights
        theta = np.linalg.solve(a.T @ (weights[:, None] * a), a.T @ (weights * z))
    return theta


def logistic_data(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3))
    logits = x @ np.array([1.5, -2.0, 0.5]) + 0.3
    t = (rng.uniform(size=200) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float64)
    return x, t


def test_newton_on_logistic_regression_converges_quadratically_to_irls() -> None:
    x, t = logistic_data()
    expected = irls(x, t)
    model = fm.Sequential(
        [fm.layers.Input(shape=(3,)), fm.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros")],
        dtype="float64",
    )
    model.compile(optimizer=fm.optimizers.Newton(tolerance_grad=0.0, tolerance_change=0.0), loss="binary_crossentropy")
    errors = [float(np.linalg.norm(flat(model) - expected))]
    for _ in range(8):
        model.fit(x, t[:, None], epochs=1, verbose=0)
        errors.append(float(np.linalg.norm(flat(model) - expected)))
    np.testing.assert_allclose(flat(model), expected, rtol=0, atol=1e-8)
    # Quadratic convergence: e_{k+1} <= C e_k^2 once close (while e_k is above rounding).
    ratios = [after / before**2 for before, after in zip(errors, errors[1:]) if 1e-6 < before < 0.5]
    assert len(ratios) >= 2, errors
    assert max(ratios) < 10.0, (ratios, errors)


def test_newton_falls_back_on_a_singular_system() -> None:
    x, y = linear_data(seed=8)
    x = np.hstack([x, x[:, :1]])  # a repeated column: H is singular
    model = linear_model(5, 1, fm.optimizers.Newton())
    history = model.fit(x, y, epochs=20, verbose=0)
    assert np.isfinite(flat(model)).all()
    residual = np.hstack([x, np.ones((40, 1))]) @ np.linalg.lstsq(np.hstack([x, np.ones((40, 1))]), y, rcond=None)[0] - y
    assert history.history["loss"][-1] == pytest.approx(np.mean(residual**2), rel=1e-6)
    assert model.optimizer.last_shift >= 0


def test_newton_refuses_a_model_too_large_before_allocating() -> None:
    model = fm.Sequential([fm.layers.Input(shape=(200,)), fm.layers.Dense(101)])  # 20,301 weights
    with pytest.raises(ValueError, match=r"P=20,301 weights need 3,297,044,808 bytes"):
        model.compile(optimizer=fm.optimizers.Newton(), loss="mse")
    unbuilt = fm.Sequential([fm.layers.Dense(101)])
    unbuilt.compile(optimizer=fm.optimizers.Newton(), loss="mse")
    with pytest.raises(ValueError, match=r"P=20,301"):
        unbuilt.fit(np.zeros((2, 200)), np.zeros((2, 101)), verbose=0)


def test_newton_refuses_a_hessian_whose_step_exceeds_the_machines_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # A step holds three P x P float64 matrices: 3 * 8 * 3001^2 bytes for Dense(1) on 3000 inputs.
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 100 * 2**20 // 4096}  # a 100 MiB machine
    monkeypatch.setattr("os.sysconf", lambda name: pages[name])
    model = fm.Sequential([fm.layers.Input(shape=(3000,)), fm.layers.Dense(1)], dtype="float64")
    with pytest.raises(ValueError, match=r"P=3,001 weights need 216,144,024 bytes, more than this machine's 104,857,600"):
        model.compile(optimizer=fm.optimizers.Newton(), loss="mse")


def stopped_without_a_step(optimizer: Any, seed: int) -> Any:
    """``optimizer`` after a fit on linear data that ends before its first step (the weights as
    they were)."""
    x, y = linear_data(seed=seed)
    model = linear_model(4, 1, optimizer)
    before = flat(model)
    model.fit(x, y, epochs=5, verbose=0)
    np.testing.assert_array_equal(flat(model), before)
    return optimizer


def test_newton_stalled_by_a_huge_learning_rate_is_not_converged() -> None:
    # 40 halvings leave a step of 1e8 Newton steps.
    optimizer = stopped_without_a_step(fm.optimizers.Newton(learning_rate=1e20), seed=3)
    assert optimizer.stalled and not optimizer.converged
    assert optimizer.stop_reason == "no step along the search direction lowers the loss"


# ------------------------------------------------------------------ conjugate gradient


def test_conjugate_gradient_solves_a_quadratic_in_as_many_iterations_as_weights() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(60, 5)) * np.array([1.0, 3.0, 0.3, 2.0, 1.0])  # unequal curvatures
    y = x @ rng.normal(size=(5, 1)) - 1.0 + 0.1 * rng.normal(size=(60, 1))
    fm.utils.set_random_seed(9)
    model = linear_model(5, 1, fm.optimizers.ConjugateGradient(tolerance_grad=0.0, tolerance_change=0.0))
    d = model.count_params()
    assert d == 6
    model.fit(x, y, epochs=d, verbose=0)
    expected, *_ = np.linalg.lstsq(np.hstack([x, np.ones((60, 1))]), y, rcond=None)
    np.testing.assert_allclose(flat(model), expected.ravel(), rtol=0, atol=1e-8)
    # and not before: after d - 2 iterations the error is still visible.
    early = linear_model(5, 1, fm.optimizers.ConjugateGradient(tolerance_grad=0.0, tolerance_change=0.0))
    early.set_weights(linear_model(5, 1).get_weights())
    early.fit(x, y, epochs=d - 2, verbose=0)
    assert np.abs(flat(early) - expected.ravel()).max() > 1e-6


def test_conjugate_gradient_trains_a_small_network() -> None:
    x, y = moons()
    model = small_mlp(fm.optimizers.ConjugateGradient())
    history = model.fit(x, y, epochs=60, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


# ------------------------------------------------------------------ L-BFGS


def moons(n: int = 120, seed: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi, size=n)
    upper = np.arange(n) % 2 == 0
    x = np.where(upper[:, None], np.c_[np.cos(angle), np.sin(angle)], np.c_[1 - np.cos(angle), 0.5 - np.sin(angle)])
    x = x + 0.1 * rng.normal(size=x.shape)
    return x, upper.astype(np.float64)[:, None]


def small_mlp(optimizer: Any, seed: int = 11) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    model = fm.Sequential(
        [fm.layers.Input(shape=(2,)), fm.layers.Dense(8, activation="tanh"), fm.layers.Dense(1)], dtype="float64"
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_lbfgs_reaches_scikit_learns_training_loss_with_the_same_budget() -> None:
    neural = pytest.importorskip("sklearn.neural_network")
    exceptions = pytest.importorskip("sklearn.exceptions")
    x, y = moons()
    iterations = 40
    model = small_mlp(fm.optimizers.LBFGS(history=10))
    start = model.get_weights()
    # scikit-learn from the same initial weights (warm_start keeps the ones set here).
    reference = neural.MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", alpha=0.0, max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
        reference.fit(x, y[:, 0])
        reference.coefs_ = [start[0].copy(), start[2].copy()]
        reference.intercepts_ = [start[1].copy(), start[3].copy()]
        reference.max_iter = iterations
        reference.fit(x, y[:, 0])
    sklearn_mse = float(np.mean((reference.predict(x) - y[:, 0]) ** 2))
    history = model.fit(x, y, epochs=iterations, verbose=0)
    ours = history.history["loss"][-1]
    assert ours == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-12)
    initial = float(np.mean((y - 0.0) ** 2))
    assert ours < 0.5 * initial
    assert ours <= 1.5 * sklearn_mse + 1e-3, (ours, sklearn_mse)


def test_lbfgs_matches_scipy_on_a_smooth_problem() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    x, t = logistic_data(seed=12)
    a = np.hstack([x, np.ones((200, 1))])

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = a @ theta
        return float(np.mean(np.logaddexp(0, z) - t * z)), a.T @ (1 / (1 + np.exp(-z)) - t) / 200

    expected = optimize.minimize(
        loss_and_gradient, np.zeros(4), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15}
    ).x
    model = fm.Sequential(
        [fm.layers.Input(shape=(3,)), fm.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros")],
        dtype="float64",
    )
    optimizer = fm.optimizers.LBFGS(tolerance_grad=1e-10, tolerance_change=1e-15)
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    model.fit(x, t[:, None], epochs=100, verbose=0)
    np.testing.assert_allclose(flat(model), expected, atol=1e-7)
    np.testing.assert_allclose(flat(model), irls(x, t), atol=1e-7)
    assert optimizer.converged


def test_lbfgs_reports_convergence_and_function_evaluations() -> None:
    x, t = logistic_data(seed=13)
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(1, activation="sigmoid")], dtype="float64")
    optimizer = fm.optimizers.LBFGS(tolerance_grad=1e-6)
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    history = model.fit(x, t[:, None], epochs=500, verbose=0)
    assert optimizer.converged and model.stop_training
    assert len(history.history["loss"]) < 500
    assert 0 < optimizer.iterations <= len(history.history["loss"])
    assert optimizer.function_evaluations >= len(history.history["loss"])
    # max_fun bounds the evaluations of one fit: training stops, not converged.
    budget = fm.optimizers.LBFGS(max_fun=5, tolerance_grad=0.0, tolerance_change=0.0)
    model.compile(optimizer=budget, loss="binary_crossentropy")
    model.set_weights([np.zeros((3, 1)), np.zeros(1)])
    history = model.fit(x, t[:, None], epochs=500, verbose=0)
    assert not budget.converged
    assert budget.stop_reason == "max_fun evaluations of the loss used up"
    assert 5 <= budget.function_evaluations <= 5 + budget.max_eval


def test_lbfgs_stopping_on_pytorchs_slope_test_is_converged_not_stalled() -> None:
    # PyTorch's LBFGS stops when g.d > -tolerance_change: no line search ran, none failed.
    # |g|^2 of these data is far below 1e6.
    optimizer = stopped_without_a_step(fm.optimizers.LBFGS(tolerance_change=1e6), seed=4)
    assert optimizer.converged and not optimizer.stalled
    assert optimizer.stop_reason == "the slope along the search direction is above -tolerance_change"


# ------------------------------------------------------------------ fit, callbacks, saving


@pytest.mark.parametrize("make", FULL_BATCH[:3])
def test_full_batch_fit_logs_per_epoch_and_runs_callbacks(make: Any) -> None:
    x, y = moons()
    model = small_mlp(make())
    seen: list[int] = []
    callback = fm.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    stopper = fm.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    history = model.fit(x, y, epochs=5, validation_data=(x[:20], y[:20]), callbacks=[callback, stopper], verbose=0)
    # min_delta=10 means no epoch counts as an improvement: EarlyStopping stops after epoch 2.
    assert seen == [0, 1]
    assert set(history.history) == {"loss", "val_loss"}
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x[:20], y[:20], verbose=0), rel=1e-12)


def test_full_batch_epoch_loss_is_the_loss_after_the_step() -> None:
    x, y = moons()
    model = small_mlp(fm.optimizers.LBFGS(), seed=14)
    losses = []
    for _ in range(3):
        model.fit(x, y, epochs=1, verbose=0)
        losses.append(model.evaluate(x, y, verbose=0))
    again = small_mlp(fm.optimizers.LBFGS(), seed=14)
    history = again.fit(x, y, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(losses[0], rel=1e-12)
    assert losses[2] < losses[0]


@pytest.mark.parametrize("make", FULL_BATCH)
def test_a_model_with_a_full_batch_optimizer_saves_and_loads(make: Any, tmp_path: Any) -> None:
    x, y = linear_data()
    optimizer = make()
    model = linear_model(4, 1, optimizer)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.fastmlp"
    model.save(path)
    loaded = fm.saving.load_model(path)
    assert type(loaded.optimizer) is type(optimizer)
    assert loaded.optimizer.get_config() == optimizer.get_config()
    assert loaded.optimizer.iterations == optimizer.iterations
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x, y, epochs=1, verbose=0)  # trains on


def test_optimizers_by_name_and_from_config() -> None:
    assert isinstance(fm.optimizers.get("lbfgs"), fm.optimizers.LBFGS)
    for make in FULL_BATCH:
        optimizer = make()
        again = fm.optimizers.from_config(optimizer.get_config())
        assert again.get_config() == optimizer.get_config()


# ------------------------------------------------------------------ bad input


def test_full_batch_optimizers_refuse_dropout() -> None:
    model = fm.Sequential(
        [fm.layers.Input(shape=(2,)), fm.layers.Dense(4, name="noisy"), fm.layers.Dropout(0.5), fm.layers.Dense(1)]
    )
    with pytest.raises(ValueError, match="'noisy' is followed by Dropout"):
        model.compile(optimizer=fm.optimizers.LBFGS(), loss="mse")


@pytest.mark.parametrize("make", FULL_BATCH[:3])
def test_a_non_finite_loss_is_a_clear_error_not_nan_weights(make: Any) -> None:
    model = fm.Sequential([fm.layers.Input(shape=(2,)), fm.layers.Dense(1)], dtype="float32")
    model.compile(optimizer=make(), loss="mse")
    before = model.get_weights()
    x = np.full((4, 2), 3e38, dtype=np.float32)  # finite, but the products overflow float32
    with pytest.raises(ValueError, match="loss at the current weights is inf"):
        model.fit(x, np.zeros((4, 1)), epochs=3, verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_a_non_finite_hessian_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = linear_data()
    model = linear_model(4, 1, fm.optimizers.Newton())
    before = flat(model)

    def broken(self: Any, *args: Any) -> np.ndarray:
        return np.full((5, 5), np.nan)

    monkeypatch.setattr(fm._engine.Engine, "hessian", broken)
    with pytest.raises(ValueError, match=r"Hessian .*\(P=5\) holds NaN"):
        model.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(flat(model), before)


def test_train_on_batch_is_refused_for_a_full_batch_optimizer() -> None:
    x, y = linear_data()
    model = linear_model(4, 1, fm.optimizers.LBFGS())
    with pytest.raises(ValueError, match="LBFGS is a full-batch optimizer"):
        model.train_on_batch(x, y)


def test_nan_in_x_is_refused_naming_the_sample() -> None:
    x, y = linear_data()
    x[3, 1] = np.nan
    model = linear_model(4, 1, fm.optimizers.LBFGS())
    with pytest.raises(ValueError, match=r"`x` contains NaN or infinity \(first in sample 3\)"):
        model.fit(x, y, verbose=0)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: fm.optimizers.LBFGS(history=0), ValueError),
        (lambda: fm.optimizers.LBFGS(max_fun=0), ValueError),
        (lambda: fm.optimizers.Newton(damping=-1.0), ValueError),
        (lambda: fm.optimizers.Newton(line_search="yes"), TypeError),
        (lambda: fm.optimizers.ConjugateGradient(restart_every=0), ValueError),
        (lambda: fm.optimizers.LeastSquares(l2=float("nan")), ValueError),
        (lambda: fm.optimizers.LBFGS(learning_rate=0.0), ValueError),
        (lambda: fm.optimizers.LBFGS(learning_rate=fm.optimizers.schedules.ExponentialDecay(1.0, 10, 0.9)), TypeError),
        (lambda: fm.optimizers.LBFGS(tolerance_grad=-1.0), ValueError),
    ],
)
def test_bad_settings_are_refused(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


def test_line_searches_end_within_their_budget_when_nothing_helps() -> None:
    d = np.array([1.0, 0.0])
    g0 = np.array([-1.0, 0.0])
    calls = 0

    def rising(t: float) -> tuple[float, np.ndarray]:
        nonlocal calls
        calls += 1
        return float("inf"), np.zeros(2)

    accepted, evaluations = _line_search.strong_wolfe(rising, d, 1.0, 0.0, g0, max_eval=7)
    assert accepted is None and evaluations == calls <= 7
    calls = 0
    accepted, evaluations = _line_search.secant(rising, d, 1.0, 0.0, g0, max_eval=7)
    assert accepted is None and evaluations == calls <= 7


def test_secant_search_is_exact_on_a_quadratic() -> None:
    # phi(t) = (t - 3)^2 along d = e1 from w = 0: the minimizer t = 3 from a trial t = 1.
    def phi(t: float) -> tuple[float, np.ndarray]:
        return (t - 3.0) ** 2, np.array([2.0 * (t - 3.0)])

    accepted, evaluations = _line_search.secant(phi, np.array([1.0]), 1.0, 9.0, np.array([-6.0]))
    assert accepted is not None and accepted.t == pytest.approx(3.0, abs=1e-12)
    assert evaluations == 2


# ------------------------------------------------------------------ frozen layers


def frozen_feature_model(optimizer: Any, seed: int = 21) -> tuple[fm.Sequential, np.ndarray, np.ndarray]:
    """tanh features (a frozen layer) then a linear output with MSE: the trainable part is a
    linear least-squares problem on the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, 3))
    y = np.sin(x[:, :1]) + 0.1 * rng.normal(size=(50, 1))
    model = fm.Sequential(
        [fm.layers.Input(shape=(3,)), fm.layers.Dense(4, activation="tanh", trainable=False), fm.layers.Dense(1)],
        dtype="float64",
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model, x, y


@pytest.mark.parametrize("name", ["Newton", "ConjugateGradient", "LBFGS"])
def test_full_batch_optimizers_leave_frozen_layers_and_solve_for_the_rest(name: str) -> None:
    model, x, y = frozen_feature_model(getattr(fm.optimizers, name)(tolerance_grad=1e-12, tolerance_change=0.0))
    w1, b1 = (w.copy() for w in model.layers[0].get_weights())
    model.fit(x, y, epochs=200, verbose=0)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], w1)
    np.testing.assert_array_equal(model.layers[0].get_weights()[1], b1)
    # The output layer reaches the least-squares fit on the frozen features (NumPy's lstsq).
    features = np.hstack([np.tanh(x @ w1 + b1), np.ones((50, 1))])
    expected, *_ = np.linalg.lstsq(features, y, rcond=None)
    kernel, bias = model.layers[1].get_weights()
    np.testing.assert_allclose(np.vstack([kernel, bias[None, :]]), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", FULL_BATCH)
def test_full_batch_optimizers_move_nothing_in_a_frozen_model(make: Any) -> None:
    x, y = linear_data(seed=5)
    model = linear_model(4, 1, make())
    model.trainable = False
    before = flat(model)
    model.fit(x, y, epochs=3, verbose=0)
    np.testing.assert_array_equal(flat(model), before)
    assert model.optimizer.stop_reason == "the model has no trainable weights"


def test_hessian_and_its_products_cover_the_trainable_weights_only() -> None:
    model, x, y = frozen_feature_model("sgd")
    w1, b1 = model.layers[0].get_weights()
    # With the first layer frozen the loss is linear least squares in the output layer's five
    # weights: H = 2/N A^T A, A the features with a column of ones.
    features = np.hstack([np.tanh(x @ w1 + b1), np.ones((50, 1))])
    expected = 2.0 / 50 * features.T @ features
    hessian = model.compute_hessian(x, y)
    assert hessian.shape == (5, 5) == (sum(w.size for w in model.trainable_weights),) * 2
    np.testing.assert_allclose(hessian, expected, rtol=1e-12)
    v = np.arange(1.0, 6.0)
    np.testing.assert_allclose(model.hessian_vector_product(x, y, v), expected @ v, rtol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(5,\), one value per trainable weight"):
        model.hessian_vector_product(x, y, np.ones(21))


# ------------------------------------------------------------------ compute_gradients


def test_compute_gradients_weighs_samples_as_evaluate_does() -> None:
    x, y = linear_data(n=12, seed=6)
    s = np.linspace(0.0, 2.0, 12)
    model = linear_model(4, 1)
    (kernel_grad, bias_grad), = model.compute_gradients(x, y, sample_weight=s)
    # Central differences of evaluate's weighted loss (float64: steps of 1e-6 leave ~1e-9 error).
    weights = model.get_weights()
    numeric = []
    for index, array in enumerate(weights):
        for position in np.ndindex(array.shape):
            values = []
            for step in (1e-6, -1e-6):
                moved = [w.copy() for w in weights]
                moved[index][position] += step
                model.set_weights(moved)
                values.append(model.evaluate(x, y, sample_weight=s, verbose=0))
            numeric.append((values[0] - values[1]) / 2e-6)
    np.testing.assert_allclose(np.concatenate([kernel_grad.ravel(), bias_grad]), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["Newton", "ConjugateGradient", "LBFGS"])
def test_a_layer_frozen_by_a_callback_stops_moving_at_the_next_iteration(name: str) -> None:
    # As with a per-batch optimizer: trainable changes take effect at the next step.
    model, x, y = frozen_feature_model(getattr(fm.optimizers, name)(tolerance_grad=0.0, tolerance_change=0.0))
    model.layers[0].trainable = True
    held: list[list[np.ndarray]] = []

    class FreezeTheOutput(fm.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                model.layers[1].trainable = False
                held.append([w.copy() for w in model.layers[1].get_weights()])

    first = [w.copy() for w in model.layers[0].get_weights()]
    model.fit(x, y, epochs=5, verbose=0, callbacks=[FreezeTheOutput()])
    for a, b in zip(held[0], model.layers[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], model.layers[0].get_weights()[0])  # the other layer trained on
