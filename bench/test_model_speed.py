"""Whole-model benchmarks through the public API: ``train_on_batch``, ``fit`` for one epoch,
``predict`` and ``predict_on_batch``, on the networks of issue 5 (784-100-10 sigmoid,
784-512-512-10 relu, 4096-4096-10 relu; softmax cross-entropy, plain SGD).

The first layer of fastmlp has an exact sparse path that reads only nonzero inputs, so the
784-input networks run on MNIST (real when it loads, else a stand-in with MNIST's 19% density)
and, where the difference matters, also on dense random inputs.

Every benchmark asserts its result: training lowers the loss, predictions match the float64
reference. GFLOP/s are dense-equivalent (see workloads.py for the formula).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import workloads as wl
from records import record_rate, use_threads

import fastmlp as fm
from fastmlp import reference

LOSS = "sparse_categorical_crossentropy"


def make_model(net: wl.Net, learning_rate: float = 0.1) -> tuple[fm.Sequential, list[Any]]:
    """The network with the benchmarks' fixed starting weights; returns it and those weights."""
    layers: list[Any] = [fm.layers.Input(shape=(net.sizes[0],))]
    layers += [fm.layers.Dense(units, activation=act) for units, act in zip(net.sizes[1:], net.activations)]
    model = fm.Sequential(layers)
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=learning_rate), loss=LOSS)
    weights = [array for layer in wl.initial_params(net) for array in layer]
    model.set_weights(weights)
    return model, weights


def scalar(loss: Any) -> float:
    """The loss a model without metrics returns from evaluate/test_on_batch."""
    assert isinstance(loss, float)
    return loss


def data(kind: str, net: wl.Net, n: int, mnist: Any) -> tuple[Any, Any]:
    if kind == "mnist":
        return mnist[0][:n], mnist[1][:n]
    return wl.dense_random(n, net.sizes[0])


def reference_params(model: fm.Sequential) -> list[tuple[Any, Any]]:
    weights = model.get_weights()
    return [(w.astype(np.float64), b.astype(np.float64)) for w, b in zip(weights[0::2], weights[1::2])]


# (net, data, learning rate)
NETS = {
    "784-100-10": (wl.MNIST_NET, "mnist", 0.1),
    "784-512-512-10": (wl.WIDE_NET, "mnist", 0.01),
    "4096-4096-10": (wl.HUGE_NET, "dense", 0.003),
}


@pytest.mark.benchmark(group="train_on_batch (one SGD step through the Python API)")
@pytest.mark.parametrize("batch", [1, 64, 256])
@pytest.mark.parametrize("name", list(NETS))
def test_train_on_batch(benchmark: Any, mnist: Any, name: str, batch: int) -> None:
    net, kind, lr = NETS[name]
    model, _ = make_model(net, lr)
    x, y = data(kind, net, batch, mnist)
    before = scalar(model.test_on_batch(x, y))
    benchmark(model.train_on_batch, x, y)
    record_rate(benchmark, batch, net.train_flops())
    after = scalar(model.test_on_batch(x, y))
    assert after < before, f"repeated steps on one batch did not lower its loss: {before} -> {after}"


# (net name, data, batch, threads, samples per epoch)
EPOCHS = [
    ("784-100-10", "mnist", 64, 1, 60000),
    ("784-100-10", "mnist", 64, 2, 60000),
    ("784-100-10", "dense", 64, 1, 30000),
    ("784-100-10", "mnist", 1, 1, 10000),
    ("784-100-10", "dense", 1, 1, 5000),
    ("784-512-512-10", "mnist", 64, 1, 10000),
    ("784-512-512-10", "mnist", 64, 2, 10000),
    ("4096-4096-10", "dense", 64, 1, 1024),
    ("4096-4096-10", "dense", 64, 2, 1024),
]


@pytest.mark.benchmark(group="fit: one epoch, shuffled")
@pytest.mark.parametrize(("name", "kind", "batch", "threads", "n"), EPOCHS,
                         ids=[f"{e[0]}-{e[1]}-b{e[2]}-t{e[3]}" for e in EPOCHS])
def test_fit_epoch(benchmark: Any, mnist: Any, name: str, kind: str, batch: int, threads: int, n: int) -> None:
    net, _, lr = NETS[name]
    model, weights = make_model(net, lr)
    x, y = data(kind, net, n, mnist)
    use_threads(threads)
    try:
        check = slice(0, min(n, 2000 if net is not wl.HUGE_NET else 256))
        before = scalar(model.evaluate(x[check], y[check], verbose=0))
        # Each round starts from the same weights: setup runs untimed before every round.
        benchmark.pedantic(model.fit, args=(x, y), kwargs={"batch_size": batch, "epochs": 1, "verbose": 0},
                           setup=lambda: model.set_weights(weights), rounds=5, warmup_rounds=1)
        record_rate(benchmark, n, net.train_flops(), threads)
        after = scalar(model.evaluate(x[check], y[check], verbose=0))
    finally:
        use_threads(1)
    assert after < before, f"an epoch did not lower the loss: {before} -> {after}"


# (net name, data, samples, batch_size: None for the default, i.e. the call a user writes)
PREDICTS = [
    ("784-100-10", "mnist", 10000, None),
    ("784-100-10", "mnist", 10000, 10000),
    ("784-100-10", "dense", 10000, None),
    ("784-512-512-10", "mnist", 10000, None),
    ("4096-4096-10", "dense", 2048, None),
]


@pytest.mark.benchmark(group="predict: all samples in one call")
@pytest.mark.parametrize(("name", "kind", "n", "batch_size"), PREDICTS,
                         ids=[f"{p[0]}-{p[1]}-{p[2]}-batch_size={p[3]}" for p in PREDICTS])
def test_predict(benchmark: Any, mnist: Any, name: str, kind: str, n: int, batch_size: Any) -> None:
    net, _, _ = NETS[name]
    model, _ = make_model(net)
    x, _ = data(kind, net, n, mnist)
    probs = benchmark(model.predict, x, batch_size=batch_size, verbose=0)
    record_rate(benchmark, n, net.predict_flops())
    rows = slice(0, 2000 if net is not wl.HUGE_NET else 256)
    expected = reference.predict(x[rows], reference_params(model), net.activations)
    np.testing.assert_allclose(probs[rows], expected, rtol=0, atol=1e-5)


@pytest.mark.benchmark(group="predict_on_batch: one image per call (the Python layer's overhead counts)")
@pytest.mark.parametrize("kind", ["mnist", "dense"])
def test_predict_one_image(benchmark: Any, mnist: Any, kind: str) -> None:
    net = wl.MNIST_NET
    model, _ = make_model(net)
    x, _ = data(kind, net, 1000, mnist)
    rows = [x[i : i + 1] for i in range(len(x))]  # sliced beforehand: the call is what is timed
    cycle = itertools.cycle(rows)
    benchmark(lambda: model.predict_on_batch(next(cycle)))
    record_rate(benchmark, 1, net.predict_flops())
    one_by_one = np.concatenate([model.predict_on_batch(row) for row in rows[:200]])
    expected = reference.predict(x[:200], reference_params(model), net.activations)
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=1e-5)
    # A row's result does not depend on the batch it came in (kernels.h's GEMM contract).
    np.testing.assert_array_equal(one_by_one, model.predict(x[:200], verbose=0))
