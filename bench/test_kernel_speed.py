"""Kernel-level benchmarks: forward, backward and update of every layer shape of the benchmark
networks (784-100-10, 784-512-512-10, 4096-4096-10), batches 1, 64 and 256, through
``fastmlp._core.kernels`` (the active ISA's kernels, one thread).

Each benchmark asserts its result against float64 NumPy: a GEMM within the standard rounding
bound ``|C - C_exact| <= gamma_k |A| |B|`` (gamma_k = k u / (1 - k u), u = 2^-24), element-wise
kernels within a few float32 ulps of the float64 formula applied to the kernel's own inputs, and
the sparse kernels bit for bit against the dense GEMM (the invariant that makes them exact).
GFLOP/s are dense-equivalent (2 per multiply-add, also for the zeros a sparse kernel skips).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from records import record_bandwidth, record_flops

from fastmlp import _core, reference

K = _core.kernels
U32 = 2.0**-24  # float32 unit roundoff

# (fan_in, fan_out, activation of this layer, activation of the layer before or None for a
# first layer, which needs no input gradient). The 4096x4096 layer is benchmarked in both roles:
# as the hidden-to-hidden layer a deeper 4096-wide net would have, its input gradient counts too.
LAYERS = [
    (784, 100, "sigmoid", None),
    (100, 10, "softmax", "sigmoid"),
    (784, 512, "relu", None),
    (512, 512, "relu", "relu"),
    (512, 10, "softmax", "relu"),
    (4096, 4096, "relu", "relu"),
    (4096, 10, "softmax", "relu"),
]
BATCHES = [1, 64, 256]


def _layer_id(layer: tuple[Any, ...]) -> str:
    return f"{layer[0]}x{layer[1]}"


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def assert_gemm_close(
    c: NDArray[np.float32], a: NDArray[Any], b: NDArray[Any], bias: Any = None
) -> None:
    """c == a @ b (+ bias) up to float32 rounding in the length-k dot products (a bias added
    afterwards is one more term of the sum: k + 1 roundings)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact, magnitude = a64 @ b64, np.abs(a64) @ np.abs(b64)
    k = a.shape[1]
    if bias is not None:
        exact, magnitude, k = exact + bias, magnitude + np.abs(bias.astype(np.float64)), k + 1
    gamma = k * U32 / (1 - k * U32)
    bound = gamma * magnitude + np.finfo(np.float32).tiny
    error = np.abs(c - exact)
    assert np.all(error <= bound), f"GEMM error {error.max():.3g} exceeds its bound {bound.max():.3g}"


@pytest.mark.benchmark(group="forward: z = x @ W (gemm), a = act(z + b)")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("layer", LAYERS, ids=_layer_id)
def test_forward(benchmark: Any, layer: tuple[int, int, str, Any], batch: int) -> None:
    fan_in, fan_out, act, _ = layer
    rng = _rng(fan_in, fan_out, batch)
    x = rng.random((batch, fan_in), dtype=np.float32)
    w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
    b = rng.standard_normal(fan_out).astype(np.float32)
    z = np.empty((batch, fan_out), np.float32)
    a = np.empty_like(z)

    def forward() -> None:
        K.gemm(x, w, z)  # beta = 0: z is overwritten
        K.bias_activation(z, b, act, a)  # z += b, a = act(z)

    benchmark(forward)
    record_flops(benchmark, 2 * batch * fan_in * fan_out)
    forward()
    assert_gemm_close(z, x, w, bias=b)
    np.testing.assert_allclose(a, reference.activation(act, z), rtol=4e-6, atol=1e-7)


@pytest.mark.benchmark(group="backward, weights: dW = a_prev^T @ delta (gemm), db = column sums")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("layer", LAYERS, ids=_layer_id)
def test_backward_weights(benchmark: Any, layer: tuple[int, int, str, Any], batch: int) -> None:
    fan_in, fan_out, _, _ = layer
    rng = _rng(fan_in, fan_out, batch, 1)
    a_prev = rng.random((batch, fan_in), dtype=np.float32)
    delta = rng.standard_normal((batch, fan_out)).astype(np.float32)
    dw = np.empty((fan_in, fan_out), np.float32)
    db: list[Any] = [None]

    def backward_weights() -> None:
        K.gemm(a_prev.T, delta, dw)  # the transpose is a stride swap, not a copy
        db[0] = K.column_sum(delta)

    benchmark(backward_weights)
    record_flops(benchmark, 2 * batch * fan_in * fan_out)
    backward_weights()
    assert_gemm_close(dw, a_prev.T, delta)
    assert_gemm_close(db[0][None, :], np.ones((1, batch), np.float32), delta)


@pytest.mark.benchmark(group="backward, inputs: dz_prev = (delta @ W^T) * act'(z_prev)")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("layer", [layer for layer in LAYERS if layer[3] is not None], ids=_layer_id)
def test_backward_inputs(benchmark: Any, layer: tuple[int, int, str, str], batch: int) -> None:
    fan_in, fan_out, _, prev_act = layer
    rng = _rng(fan_in, fan_out, batch, 2)
    delta = rng.standard_normal((batch, fan_out)).astype(np.float32)
    w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
    z_prev = rng.standard_normal((batch, fan_in)).astype(np.float32)
    a_prev = reference.activation(prev_act, z_prev).astype(np.float32)
    da = np.empty((batch, fan_in), np.float32)
    dz: list[Any] = [None]

    def backward_inputs() -> None:
        K.gemm(delta, w.T, da)
        dz[0] = K.activation_backward(prev_act, z_prev, a_prev, da)

    benchmark(backward_inputs)
    record_flops(benchmark, 2 * batch * fan_in * fan_out)
    backward_inputs()
    assert_gemm_close(da, delta, w.T)
    expected = reference.activation_backward(prev_act, z_prev, a_prev, da)
    np.testing.assert_allclose(dz[0], expected, rtol=8 * U32, atol=1e-30)


@pytest.mark.benchmark(group="loss: softmax cross-entropy from logits, (p - onehot) / batch")
@pytest.mark.parametrize("batch", BATCHES)
def test_softmax_cross_entropy(benchmark: Any, batch: int) -> None:
    rng = _rng(batch, 3)
    logits = (3 * rng.standard_normal((batch, 10))).astype(np.float32)
    labels = rng.integers(0, 10, batch).astype(np.int32)
    result = benchmark(K.loss, "sparse_categorical_crossentropy", True, logits, labels, None, 1.0 / batch)
    total, per_row, grad = result
    name = "sparse_categorical_crossentropy"
    expected_rows = reference.loss(name, labels, logits, from_logits=True)
    expected_grad = reference.loss_gradient(name, labels, logits, from_logits=True)
    np.testing.assert_allclose(per_row, expected_rows, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(total, expected_rows.sum(), rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-7 / batch)


@pytest.mark.benchmark(group="update: one pass over the weights")
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("shape", sorted({(i, o) for i, o, _, _ in LAYERS}), ids=lambda s: f"{s[0]}x{s[1]}")
def test_update(benchmark: Any, shape: tuple[int, int], kind: str) -> None:
    n = shape[0] * shape[1]
    rng = _rng(*shape, 4)
    w = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    state: list[Any] = [np.zeros(n, np.float32), np.zeros(n, np.float32)] if kind == "adam" else []
    lr, beta_1, beta_2, epsilon = 1e-3, 0.9, 0.999, 1e-7
    hyper: dict[str, object] = {"learning_rate": lr, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}

    # First one checked step, from a known state.
    w64, g64 = w.astype(np.float64), g.astype(np.float64)
    K.optimizer_update(kind, w, g, state, hyper)
    if kind == "sgd":
        expected = w64 - lr * g64
    else:  # kernels.h's Adam, first step from m = v = 0, with the float32 hyperparameters the
        # kernel sees (1 - float32(0.999) is 1.3e-5 off 0.001, enough to matter at this rtol)
        b1, b2, eps, lr32 = (float(np.float32(h)) for h in (beta_1, beta_2, epsilon, lr))
        m = (1 - b1) * g64
        v = (1 - b2) * g64**2
        expected = w64 - m * lr32 / (np.sqrt(v) + eps)
    np.testing.assert_allclose(w, expected, rtol=8 * U32, atol=1e-9)

    benchmark(K.optimizer_update, kind, w, g, state, hyper)
    assert np.all(np.isfinite(w))
    # Memory traffic per parameter: SGD reads w and g and writes w; Adam also reads and writes
    # m and v.
    record_bandwidth(benchmark, n * 4 * (3 if kind == "sgd" else 7))


# ----------------------------------------------------------------------------- sparse first layer


def _lists(x: NDArray[np.float32]) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """Per-row nonzero columns (CSR starts and columns) by the nonzero_indices kernel."""
    cols = [K.nonzero_indices(np.ascontiguousarray(row)) for row in x]
    starts = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.uint32)
    flat = np.concatenate(cols).astype(np.uint32)
    return starts, flat


FIRST_LAYERS = [(784, 100), (784, 512)]


@pytest.mark.benchmark(group="sparse first layer (MNIST batches): forward x @ W")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", FIRST_LAYERS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sparse_forward(benchmark: Any, mnist: Any, shape: tuple[int, int], batch: int) -> None:
    x = mnist[0][:batch]
    w = (_rng(*shape, 5).standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
    starts, cols = _lists(x)
    z = benchmark(K.sparse_gemm, x, w, starts, cols)
    record_flops(benchmark, 2 * batch * shape[0] * shape[1])
    benchmark.extra_info["density"] = round(len(cols) / x.size, 3)
    np.testing.assert_array_equal(z, K.gemm(x, w))  # bitwise the dense product
    assert_gemm_close(z, x, w)


@pytest.mark.benchmark(group="sparse first layer (MNIST batches): weight gradient x^T @ delta")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", FIRST_LAYERS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sparse_weight_gradient(benchmark: Any, mnist: Any, shape: tuple[int, int], batch: int) -> None:
    x = mnist[0][:batch]
    delta = _rng(*shape, batch, 6).standard_normal((batch, shape[1])).astype(np.float32)
    starts, rows = _lists(np.ascontiguousarray(x.T))  # per input feature: the samples using it
    dw = benchmark(K.sparse_gemm, x.T, delta, starts, rows)
    record_flops(benchmark, 2 * batch * shape[0] * shape[1])
    np.testing.assert_array_equal(dw, K.gemm(x.T, delta))
    assert_gemm_close(dw, x.T, delta)


@pytest.mark.benchmark(group="sparse first layer (MNIST batches): nonzero_indices of one image")
def test_nonzero_indices(benchmark: Any, mnist: Any) -> None:
    image = np.ascontiguousarray(mnist[0][7])
    idx = benchmark(K.nonzero_indices, image)
    np.testing.assert_array_equal(idx, np.flatnonzero(image))
