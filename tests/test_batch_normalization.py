"""BatchNormalization: the kernels on every ISA against ``fastmlp.reference``, whole training
steps against the reference and central finite differences, the moving statistics against a
NumPy recomputation, bit-identical results for every thread count and step, Keras's
training/inference split, weights, counts, saving, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core
from fastmlp import reference as ref

K = _core.kernels
EPS = 1e-3


def tolerance(dtype: Any) -> float:
    return 2e-4 if dtype == np.float32 else 1e-11


# ---------------------------------------------------------------------------
# kernels, on every ISA (conftest's `isa` fixture forces each one)
# ---------------------------------------------------------------------------


def strided_rows(x: Any) -> Any:
    """The same values in rows of a wider buffer, one element off its start: odd row stride and
    a misaligned pointer."""
    rows, cols = x.shape
    buffer = np.zeros((rows, cols + 3), dtype=x.dtype)
    buffer[:, 1 : cols + 1] = x
    return buffer[:, 1 : cols + 1]


@pytest.mark.parametrize("cols", [1, 7, 8, 17, 40])
@pytest.mark.parametrize("rows", [1, 5, 33])
def test_batch_norm_kernel_matches_the_reference(isa: str, dtype: Any, rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows * 100 + cols)
    x0 = (rng.standard_normal((rows, cols)) * 3 + 2).astype(dtype)
    gamma = rng.uniform(0.5, 2, cols).astype(dtype)
    beta = rng.standard_normal(cols).astype(dtype)
    x = strided_rows(x0)
    y, mean, variance = K.batch_norm(x, gamma, beta, EPS)
    want_y, want_mean, want_var = ref.batch_norm_forward(x0, gamma, beta, EPS)
    tol = tolerance(dtype)
    np.testing.assert_allclose(mean, want_mean, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(variance, want_var, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(y, want_y, rtol=tol, atol=tol * 10)
    # Inference: the given (moving) statistics, gamma and beta left out.
    moving_mean = rng.standard_normal(cols).astype(dtype)
    moving_var = rng.uniform(0.1, 3, cols).astype(dtype)
    y, m, v = K.batch_norm(x, None, None, 0.01, moving_mean, moving_var)
    np.testing.assert_array_equal(m, moving_mean)
    np.testing.assert_array_equal(v, moving_var)
    want, _, _ = ref.batch_norm_forward(x0, None, None, 0.01, moving_mean, moving_var)
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("batch_stats", [True, False])
@pytest.mark.parametrize("cols", [1, 9, 32])
@pytest.mark.parametrize("rows", [2, 13])
def test_batch_norm_backward_kernel_matches_the_reference(
    isa: str, dtype: Any, rows: int, cols: int, batch_stats: bool
) -> None:
    rng = np.random.default_rng(rows * 1000 + cols)
    x0 = (rng.standard_normal((rows, cols)) * 2 - 1).astype(dtype)
    dy0 = rng.standard_normal((rows, cols)).astype(dtype)
    gamma = rng.uniform(0.5, 2, cols).astype(dtype)
    if batch_stats:
        mean, variance = x0.astype(np.float64).mean(0), x0.astype(np.float64).var(0)
    else:
        mean, variance = rng.standard_normal(cols), rng.uniform(0.2, 2, cols)
    mean, variance = mean.astype(dtype), variance.astype(dtype)
    dx, dgamma, dbeta = K.batch_norm_backward(strided_rows(x0), mean, variance, strided_rows(dy0), gamma, EPS, batch_stats)
    stats = {} if batch_stats else {"mean": mean, "variance": variance}
    want_dx, want_dgamma, want_dbeta = ref.batch_norm_backward(x0, dy0, gamma, EPS, **stats)
    tol = tolerance(dtype)
    scale = np.abs(dy0).sum(0).astype(np.float64) + 1
    np.testing.assert_allclose(dbeta, want_dbeta, rtol=0, atol=tol * scale.max())
    np.testing.assert_allclose(dgamma, want_dgamma, rtol=0, atol=tol * scale.max() * 4)
    np.testing.assert_allclose(dx, want_dx, rtol=0, atol=tol * 50 * (1 + np.abs(want_dx).max()))


def test_batch_norm_backward_is_the_derivative_of_the_forward() -> None:
    """The reference itself against central differences (it is the yardstick of the rest)."""
    rng = np.random.default_rng(1)
    x, dy, gamma, beta = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.uniform(1, 2, 3), rng.standard_normal(3)
    dx, dgamma, dbeta = ref.batch_norm_backward(x, dy, gamma, EPS)
    h = 1e-6

    def loss(x_: Any, g_: Any, b_: Any) -> float:
        return float((ref.batch_norm_forward(x_, g_, b_, EPS)[0] * dy).sum())

    for i, j in [(0, 0), (3, 2), (5, 1)]:
        e = np.zeros_like(x)
        e[i, j] = h
        assert abs((loss(x + e, gamma, beta) - loss(x - e, gamma, beta)) / (2 * h) - dx[i, j]) < 1e-6
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        assert abs((loss(x, gamma + e, beta) - loss(x, gamma - e, beta)) / (2 * h) - dgamma[j]) < 1e-6
        assert abs((loss(x, gamma, beta + e) - loss(x, gamma, beta - e)) / (2 * h) - dbeta[j]) < 1e-6


# ---------------------------------------------------------------------------
# training steps against the reference and finite differences
# ---------------------------------------------------------------------------


def bn_model(
    center: bool = True, scale: bool = True, dtype: str = "float64", units: int = 6, activation: str = "tanh"
) -> fm.Sequential:
    fm.utils.set_random_seed(5)
    return fm.Sequential(
        [
            fm.layers.Input((4,)),
            fm.layers.Dense(units),
            fm.layers.BatchNormalization(center=center, scale=scale),
            fm.layers.Activation(activation),
            fm.layers.Dense(3, activation="softmax"),
        ],
        dtype=dtype,
    )


def data(n: int = 10, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)) * 2 + 1
    return x, rng.integers(0, 3, n)


def reference_step(weights: list[Any], x: Any, y: Any, center: bool, scale: bool) -> tuple[float, list[Any]]:
    """The training-mode loss and every gradient, by the reference: Dense, BN (batch
    statistics), tanh, Dense + softmax with sparse categorical cross-entropy."""
    kernel, bias, *rest = weights
    gamma = rest.pop(0) if scale else None
    beta = rest.pop(0) if center else None
    _, _, kernel2, bias2 = rest
    z1 = x @ kernel + bias
    zn, _, _ = ref.batch_norm_forward(z1, gamma, beta, EPS)
    a1 = np.tanh(zn)
    z2 = a1 @ kernel2 + bias2
    a2 = ref.softmax(z2)
    onehot = np.eye(3)[y]
    losses, dz2 = ref.output_loss_and_delta("categorical_crossentropy", "softmax", False, onehot, z2, a2)
    dkernel2, dbias2 = a1.T @ dz2, dz2.sum(0)
    dzn = ref.activation_backward("tanh", zn, a1, dz2 @ kernel2.T)
    dz1, dgamma, dbeta = ref.batch_norm_backward(z1, dzn, gamma, EPS)
    grads = [x.T @ dz1, dz1.sum(0)]
    if scale:
        grads.append(dgamma)
    if center:
        grads.append(dbeta)
    return float(np.mean(losses)), [*grads, dkernel2, dbias2]


@pytest.mark.parametrize(("center", "scale"), [(True, True), (False, True), (True, False)])
def test_a_training_step_matches_the_reference_and_finite_differences(center: bool, scale: bool) -> None:
    model = bn_model(center, scale)
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(2)
    # Non-trivial gamma and beta (the initial ones are 1 and 0).
    weights = [w + rng.uniform(-0.3, 0.3, w.shape) if w.ndim == 1 else w for w in model.get_weights()]
    model.set_weights(weights)
    x, y = data()
    loss = model.train_on_batch(x, y)
    after = model.get_weights()
    # Trainable arrays: kernel, bias, gamma and beta (those there are), kernel2, bias2; the
    # moving statistics sit between beta and kernel2.
    n_norm = int(center) + int(scale)
    trainable = [0, 1, *range(2, 2 + n_norm), len(weights) - 2, len(weights) - 1]
    measured = [(weights[i] - after[i]) / 1.0 for i in trainable]
    want_loss, want = reference_step(weights, x, y, center, scale)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for got, expected in zip(measured, want):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)

    # Central differences of the training-mode loss in gamma, beta and the kernel before them.
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=1e-30), loss="sparse_categorical_crossentropy")
    h = 1e-6

    def loss_at(ws: list[Any]) -> float:
        model.set_weights(ws)
        return float(model.train_on_batch(x, y))

    for i in [0, *range(2, 2 + n_norm)]:
        for position in [0, 3]:
            plus = [w.copy() for w in weights]
            minus = [w.copy() for w in weights]
            plus[i].flat[position] += h
            minus[i].flat[position] -= h
            difference = (loss_at(plus) - loss_at(minus)) / (2 * h)
            gradient = want[trainable.index(i)].flat[position]
            assert difference == pytest.approx(gradient, rel=1e-5, abs=1e-8)


def test_the_moving_statistics_after_fit_equal_a_numpy_recomputation() -> None:
    fm.utils.set_random_seed(1)
    dense = fm.layers.Dense(5, trainable=False)  # frozen: every batch's z is known in advance
    norm = fm.layers.BatchNormalization(momentum=0.9)
    model = fm.Sequential([fm.layers.Input((4,)), dense, norm, fm.layers.Dense(2)], dtype="float64")
    model.compile(optimizer="adam", loss="mse")
    x, _ = data(37, seed=3)
    y = np.random.default_rng(4).standard_normal((37, 2))
    kernel, bias = dense.get_weights()
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    mean, variance = np.zeros(5), np.ones(5)
    for _ in range(3):
        for start in range(0, 37, 8):  # 5 batches: the last of 5 rows
            z = x[start : start + 8] @ kernel + bias
            mean = ref.moving_statistics_update(mean, z.mean(0), 0.9)
            variance = ref.moving_statistics_update(variance, z.var(0), 0.9)
    np.testing.assert_allclose(norm.moving_mean, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(norm.moving_variance, variance, rtol=1e-12, atol=1e-14)
    # predict and evaluate use the moving statistics (and move nothing).
    gamma, beta = norm.gamma, norm.beta
    kernel2, bias2 = model.layers[-1].get_weights()
    z, _, _ = ref.batch_norm_forward(x @ kernel + bias, gamma, beta, EPS, mean, variance)
    want = z @ kernel2 + bias2
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-10, atol=1e-12)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(np.mean((want - y) ** 2)), rel=1e-10)
    before = norm.get_weights()
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    for a, b in zip(before, norm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_frozen_batch_normalization_runs_in_inference_mode() -> None:
    model = bn_model()
    norm = model.layers[1]
    assert isinstance(norm, fm.layers.BatchNormalization)
    norm.trainable = False
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    x, y = data(16)
    before = norm.get_weights()
    k, b, gamma, beta, mean, var, k2, b2 = model.get_weights()
    loss = model.train_on_batch(x, y)
    for a, b_ in zip(before, norm.get_weights()):
        np.testing.assert_array_equal(a, b_)  # gamma, beta and the moving statistics unchanged
    # Its loss is the inference-mode one: the moving statistics (0 and 1), at the weights before.
    z, _, _ = ref.batch_norm_forward(x @ k + b, gamma, beta, EPS, mean, var)
    p = ref.softmax(np.tanh(z) @ k2 + b2)
    want = float(np.mean(ref.loss("sparse_categorical_crossentropy", y, p)))
    assert loss == pytest.approx(want, rel=1e-10)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4
    # The Dense layers before and after still train.
    assert not np.array_equal(model.get_weights()[0], k)


@pytest.mark.parametrize("units", [3, 7])
def test_a_narrow_normalized_layer_on_a_large_batch(units: int) -> None:
    """Fewer than 8 units, 2048 values or more: the normalization runs (as one task)."""
    fm.utils.set_random_seed(2)
    norm = fm.layers.BatchNormalization(momentum=0.0)
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(units), norm], dtype="float64")
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.0), loss="mse")
    x = np.random.default_rng(0).standard_normal((1024, 3))
    kernel, bias = model.layers[0].get_weights()
    model.fit(x, np.zeros((1024, units)), batch_size=1024, epochs=1, verbose=0)
    np.testing.assert_allclose(norm.moving_mean, (x @ kernel + bias).mean(0), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# the same bits for every thread count and every training step
# ---------------------------------------------------------------------------


def train_wide(x: Any, y: Any) -> tuple[fm.Sequential, dict[str, list[float]]]:
    fm.utils.set_random_seed(9)
    model = fm.Sequential(
        [
            fm.layers.Input((x.shape[1],)),
            fm.layers.Dense(41),
            fm.layers.BatchNormalization(),
            fm.layers.Activation("relu"),
            fm.layers.Dense(24, use_bias=False),
            fm.layers.BatchNormalization(momentum=0.5, center=False),
            fm.layers.Dense(5, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.2).history
    return model, history


def test_every_thread_count_and_step_gives_the_same_bits(restore_step_and_threads: None) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 30)).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0  # sparse: the pipeline would run if it could
    y = rng.integers(0, 5, 300)
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, reference_history = train_wide(x, y)
    for step in ("pipeline", "rows", "columns"):
        _core.set_step(step)
        for threads in (1, 2, 3):
            fm.set_num_threads(threads)
            model, history = train_wide(x, y)
            trainer = model._engine._trainer  # type: ignore[attr-defined]
            assert trainer is not None and trainer.last_step == "columns"  # the table routes BN here
            for a, b in zip(reference.get_weights(), model.get_weights()):
                np.testing.assert_array_equal(a, b)
            assert history == reference_history


# ---------------------------------------------------------------------------
# weights, counts, saving
# ---------------------------------------------------------------------------


def test_weights_counts_and_summary_as_keras() -> None:
    model = bn_model(units=6)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(4, 6), (6,), (6,), (6,), (6,), (6,), (6, 3), (3,)]
    _, _, gamma, beta, mean, variance, _, _ = model.get_weights()
    np.testing.assert_array_equal(gamma, np.ones(6))
    np.testing.assert_array_equal(beta, np.zeros(6))
    np.testing.assert_array_equal(mean, np.zeros(6))
    np.testing.assert_array_equal(variance, np.ones(6))
    norm = model.layers[1]
    assert norm.count_params() == 24 and model.count_params() == 30 + 24 + 21
    assert len(norm.trainable_weights) == 2 and len(norm.non_trainable_weights) == 2
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 2
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 75" in text and "Trainable params: 63" in text and "Non-trainable params: 12" in text


def test_initializers_and_set_weights() -> None:
    fm.utils.set_random_seed(0)
    norm = fm.layers.BatchNormalization(gamma_initializer=fm.initializers.Constant(2.0), moving_variance_initializer="zeros")
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(4), norm])
    np.testing.assert_array_equal(norm.gamma, np.full(4, 2.0, np.float32))
    np.testing.assert_array_equal(norm.moving_variance, np.zeros(4, np.float32))
    new = [np.arange(4.0), np.ones(4), np.full(4, 0.5), np.full(4, 3.0)]
    norm.set_weights(new)
    for a, b in zip(norm.get_weights(), new):
        np.testing.assert_array_equal(a, b.astype(np.float32))
    with pytest.raises(ValueError, match="moving_variance"):
        norm.set_weights([np.ones(4), np.ones(4), np.ones(4), -np.ones(4)])
    with pytest.raises(ValueError):
        norm.set_weights([np.ones(4)] * 3)
    with pytest.raises(ValueError):
        model.set_weights(model.get_weights()[:-1])


def test_saving_and_loading_keeps_every_array_and_the_predictions(tmp_path: Path) -> None:
    model = bn_model(dtype="float32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data(40)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "bn.fastmlp"
    model.save(path)
    loaded = fm.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    config = loaded.layers[1].get_config()
    assert config["momentum"] == 0.99 and config["epsilon"] == 0.001 and config["axis"] == -1
    # Training goes on the same way.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_functional_api_and_pop() -> None:
    inputs = fm.Input((4,))
    h = fm.layers.Dense(8)(inputs)
    h = fm.layers.BatchNormalization()(h)
    h = fm.layers.Activation("relu")(h)
    model = fm.Model(inputs, fm.layers.Dense(2)(h))
    assert [w.shape for w in model.get_weights()] == [(4, 8), (8,), (8,), (8,), (8,), (8,), (8, 2), (2,)]
    seq = bn_model()
    seq.pop()
    seq.pop()
    seq.pop()  # the BatchNormalization: the Dense layer before it stays, without it
    assert [w.shape for w in seq.get_weights()] == [(4, 6), (6,)]


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": float("nan")}, "momentum"),
        ({"momentum": "0.9"}, "momentum"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1e-3}, "epsilon"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"axis": 0}, "axis"),
        ({"axis": 2}, "axis"),
        ({"axis": [1]}, "axis"),
        ({"gamma_regularizer": "l2"}, "gamma_regularizer"),
        ({"beta_constraint": object()}, "beta_constraint"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        fm.layers.BatchNormalization(**kwargs)


@pytest.mark.parametrize(
    "layers",
    [
        [fm.layers.Dense(4, activation="relu"), "bn"],
        [fm.layers.Dense(4), "bn", "bn"],
        [fm.layers.Dense(4), fm.layers.Activation("relu"), "bn"],
        [fm.layers.Dense(4), fm.layers.Dropout(0.2), "bn"],
    ],
    ids=["after-activation", "twice", "after-activation-layer", "after-dropout"],
)
def test_a_batch_normalization_after_the_last_dense_layer_is_refused_when_the_model_runs(layers: list[Any]) -> None:
    """Elsewhere than before an activation it normalizes the next Dense layer's input
    (tests/test_batch_normalization_on_inputs.py); after the last one there is none."""
    built = [fm.layers.BatchNormalization() if layer == "bn" else layer for layer in layers]
    model = fm.Sequential([fm.layers.Input((3,)), *built])
    with pytest.raises(ValueError, match="after the last Dense layer"):
        model.predict(np.zeros((2, 3)), verbose=0)


def test_full_batch_optimizers_and_the_hessian_refuse_batch_normalization() -> None:
    model = bn_model()
    with pytest.raises(ValueError, match="BatchNormalization"):
        model.compile(optimizer=fm.optimizers.LBFGS(), loss="sparse_categorical_crossentropy")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = data()
    with pytest.raises(ValueError, match="batch normalization"):
        model.compute_hessian(x, y)
