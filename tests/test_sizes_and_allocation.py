"""Sizes the core cannot allocate are refused cleanly, and a refusal changes nothing (issue 14).

A ``batch_size`` larger than the data is one batch of all of it, as in Keras, and the buffers
are sized for the data, not for ``batch_size``. A layer or a batch whose buffers cannot be had
raises ``MemoryError`` (or ``ValueError`` for a size beyond any machine) naming the layer and
the bytes, and the model then trains and predicts exactly as a twin that never saw the call.

Each case that crashed the interpreter before runs in a subprocess, so the suite survives. The
expected results come from twins: the same model, built from the same seed, given only the calls
that are supposed to count.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

# Builds models a and b from the same seed (b is the twin), and the data.
PRELUDE = """
import json, os, resource, sys
import numpy as np
import fastmlp as fm
from fastmlp import _core

def make(inputs=8, hidden=16, outputs=3, optimizer="adam"):
    fm.utils.set_random_seed(0)
    model = fm.Sequential([fm.layers.Input((inputs,)), fm.layers.Dense(hidden, activation="relu"),
                           fm.layers.Dense(outputs, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

def same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))

def limit_address_space(extra_bytes):
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + extra_bytes, resource.RLIM_INFINITY))
"""

# RLIMIT_AS is what makes an allocation fail on demand; AddressSanitizer reserves terabytes of
# shadow memory and cannot run under it.
needs_address_limit = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="needs Linux's RLIMIT_AS (and no AddressSanitizer)",
)


def run_python(body: str, timeout: float = 120) -> str:
    """Runs PRELUDE + body in a fresh interpreter; returns its stdout, failing on any crash."""
    code = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("batch_size", [2**40, 2**62, 2**64 - 1, 2**64, 10**30])
@pytest.mark.parametrize("threads", [1, 2])
def test_batch_size_beyond_the_data_is_one_batch(batch_size: int, threads: int) -> None:
    # Before: 2**62 raised ValueError('vector::reserve'), 2**40 MemoryError, 2**64 a TypeError,
    # and the next fit of a model refused this way segfaulted. Sparse inputs too, for the
    # feature pipeline that two threads run on them.
    out = run_python(
        f"""
        fm.set_num_threads({threads})
        rng = np.random.default_rng(1)
        n = 40
        for x in (rng.normal(size=(n, 8)).astype(np.float32),
                  (rng.random((n, 32)) < 0.1).astype(np.float32)):
            y = rng.integers(0, 3, n)
            a, b = make(inputs=x.shape[1]), make(inputs=x.shape[1])
            a.fit(x, y, batch_size=4, verbose=0)
            b.fit(x, y, batch_size=4, verbose=0)
            a.fit(x, y, batch_size={batch_size}, epochs=2, verbose=0)
            b.fit(x, y, batch_size=n, epochs=2, verbose=0)
            assert same_weights(a, b)
            assert np.array_equal(a.predict(x, batch_size={batch_size}, verbose=0), b.predict(x, verbose=0))
            assert a.evaluate(x, y, batch_size={batch_size}, verbose=0) == b.evaluate(x, y, batch_size=n, verbose=0)
            a.fit(x, y, batch_size=3, epochs=2, verbose=0)
            b.fit(x, y, batch_size=3, epochs=2, verbose=0)
            assert same_weights(a, b)
            assert np.array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
        print("same")
        """
    )
    assert out.split() == ["same"]


def test_huge_batch_size_allocates_for_the_data() -> None:
    # Before: 10 samples with batch_size=10**7 sized every buffer for 10**7 rows (GBs).
    out = run_python(
        """
        rng = np.random.default_rng(2)
        x, y = rng.normal(size=(10, 8)).astype(np.float32), rng.integers(0, 3, 10)
        a, b = make(), make()
        a.fit(x, y, batch_size=2, verbose=0)
        b.fit(x, y, batch_size=2, verbose=0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        a.fit(x, y, batch_size=10**7, epochs=3, verbose=0)
        p = a.predict(x, batch_size=10**7, verbose=0)
        e = a.evaluate(x, y, batch_size=10**7, verbose=0)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        b.fit(x, y, batch_size=10, epochs=3, verbose=0)
        unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
        print(json.dumps({"growth": growth * unit, "same": same_weights(a, b)
                          and np.array_equal(p, b.predict(x, verbose=0)) and e == b.evaluate(x, y, verbose=0)}))
        """
    )
    result = json.loads(out)
    assert result["same"]
    assert result["growth"] < 32 << 20


@needs_address_limit
def test_a_refused_batch_leaves_the_model_as_it_was() -> None:
    # Before: the refused call freed the activations, then failed before recording their new
    # size, and the next fit or predict wrote through null pointers. The fit is shuffled: the
    # refused call must not even advance the generator.
    out = run_python(
        """
        rng = np.random.default_rng(1)
        x, y = rng.normal(size=(8192, 64)).astype(np.float32), rng.integers(0, 10, 8192)
        a, b = make(inputs=64, hidden=4096, outputs=10), make(inputs=64, hidden=4096, outputs=10)
        for m in (a, b):
            m.fit(x[:256], y[:256], batch_size=32, verbose=0)
        limit_address_space(96 << 20)  # a batch of 8192 rows needs 3 x 128 MiB for layer 0
        refusals = []
        for call in (lambda: a.fit(x, y, batch_size=8192, verbose=0),
                     lambda: a.evaluate(x, y, batch_size=8192, verbose=0),
                     lambda: a.train_on_batch(x, y),
                     lambda: a.compute_gradients(x, y)):
            try:
                call()
                refusals.append(None)
            except MemoryError as error:
                refusals.append([type(error).__name__, str(error), error.layer, error.bytes])
        for m in (a, b):
            m.fit(x[:512], y[:512], batch_size=32, epochs=2, verbose=0)
        print(json.dumps({"refusals": refusals, "same": same_weights(a, b)
                          and np.array_equal(a.predict(x[:300], verbose=0), b.predict(x[:300], verbose=0))
                          and a.evaluate(x[:300], y[:300], verbose=0) == b.evaluate(x[:300], y[:300], verbose=0)}))
        """
    )
    result = json.loads(out)
    for refusal in result["refusals"]:
        assert refusal is not None
        name, message, layer, nbytes = refusal
        assert name == "AllocationError"
        assert message.startswith(
            "layer 0's activations (8192 x 4096 float32 values): cannot allocate"
        )
        assert (layer, nbytes) == (0, 8192 * 4096 * 4)
    assert result["same"]


@needs_address_limit
@pytest.mark.parametrize("room", [5.5, 12], ids=["row-split refused", "pipeline refused"])
def test_a_step_strategy_whose_buffers_are_refused_gives_way(room: float) -> None:
    # With two threads, sparse inputs and narrow layers fit splits steps by rows (buffers of
    # ~5 units of rows x inputs x 4 bytes beyond the batch's own ~3), then by input features
    # (~8 more). The address space left here refuses one of them: fit then takes the next
    # strategy, which gives the same bits, instead of failing halfway.
    out = run_python(
        f"""
        fm.set_num_threads(2)
        rng = np.random.default_rng(1)
        n, inputs = 4096, 2048
        x, y = (rng.random((n, inputs)) < 0.05).astype(np.float32), rng.integers(0, 10, n)
        a, b = make(inputs=inputs, outputs=10, optimizer="sgd"), make(inputs=inputs, outputs=10, optimizer="sgd")
        b.fit(x, y, batch_size=n, epochs=3, verbose=0)
        limit_address_space(int({room} * n * inputs * 4))
        a.fit(x, y, batch_size=n, epochs=3, verbose=0)
        print(json.dumps(same_weights(a, b)))
        """
    )
    assert json.loads(out) is True


# Each builds a model; the result is the exception's type and message.
# "memory": 1000 x 10**8 float32 values, twice (kernel and gradient), plus the bias and its
# gradient; built only where that exceeds the machine's memory.
MEMORY_CASE_BYTES = 2 * (1000 * 10**8 + 10**8) * 4
BUILDS = {
    "units": "fm.Sequential([fm.layers.Input((10,)), fm.layers.Dense(10**12, name='huge')])",
    "inputs": "fm.Sequential([fm.layers.Input((10**12,)), fm.layers.Dense(10, name='first')])",
    "second": "fm.Sequential([fm.layers.Input((10,)), fm.layers.Dense(4), fm.layers.Dense(10**12, name='second')])",
    "add": "m = fm.Sequential([fm.layers.Input((10,)), fm.layers.Dense(4)]); m.add(fm.layers.Dense(10**12, name='added'))",
    "int32": "fm.Sequential([fm.layers.Input((10,)), fm.layers.Dense(3 * 10**9, name='wide')])",
    "int64": "fm.Sequential([fm.layers.Input((10,)), fm.layers.Dense(2**70, name='wider')])",
    "inputs32": "fm.Sequential([fm.layers.Input((3 * 10**9,)), fm.layers.Dense(1)])",
    "flat": "fm.Sequential([fm.layers.Input((2**40, 2**40)), fm.layers.Flatten(), fm.layers.Dense(1)])",
    "memory": "fm.Sequential([fm.layers.Input((1000,)), fm.layers.Dense(10**8, name='big')])",
}


@pytest.fixture(scope="module")
def build_errors() -> dict[str, Any]:
    # In a subprocess: before, the core tried each allocation (with overcommit, a memset of
    # hundreds of GB gets a process killed).
    out = run_python(
        f"""
        results = {{}}
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        for name, code in {BUILDS!r}.items():
            if name == "memory" and memory >= {MEMORY_CASE_BYTES}:
                results[name] = None
                continue
            try:
                exec(code)
                results[name] = None
            except Exception as error:
                results[name] = [type(error).__name__, str(error)]
        print(json.dumps(results))
        """
    )
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.parametrize(
    ("case", "kind", "message"),
    [
        (
            "units",
            "ValueError",
            r"Dense layer 'huge' \(units=1000000000000\): layer 0's kernel \(10 x 1000000000000 float32 values\): 40000000000000 bytes, more than the 1099511627776",
        ),
        (
            "inputs",
            "ValueError",
            r"Dense layer 'first' \(units=10\): layer 0's kernel \(1000000000000 x 10 float32 values\): 40000000000000 bytes",
        ),
        (
            "second",
            "ValueError",
            r"Dense layer 'second' \(units=1000000000000\): layer 1's kernel \(4 x 1000000000000 float32 values\): 16000000000000 bytes",
        ),
        (
            "add",
            "ValueError",
            r"Dense layer 'added' \(units=1000000000000\): .* 16000000000000 bytes",
        ),
        (
            "int32",
            "ValueError",
            r"Dense layer 'wide' \(units=3000000000\): layer 0 has 3000000000 units, more than the 2147483647",
        ),
        (
            "int64",
            "ValueError",
            r"Dense layer 'wider' \(units=1180591620717411303424\): layer 0 has 1180591620717411303424 units",
        ),
        (
            "inputs32",
            "ValueError",
            r"Cannot build model '\w+': input dimension 3000000000 is more than the 2147483647",
        ),
        (
            "flat",
            "ValueError",
            r"Cannot build model '\w+': input dimension 1208925819614629174706176 is more than the 2147483647",
        ),
    ],
)
def test_a_layer_too_large_to_build(
    build_errors: dict[str, Any], case: str, kind: str, message: str
) -> None:
    assert build_errors[case] is not None, f"{case} was built"
    name, text = build_errors[case]
    assert name == kind
    assert re.search(message, text), text


def test_a_layer_larger_than_memory(build_errors: dict[str, Any]) -> None:
    if build_errors["memory"] is None:
        pytest.skip("this machine has the memory for it")
    name, text = build_errors["memory"]
    assert name == "MemoryError"
    assert text.startswith(
        "Cannot build Dense layer 'big' (units=100000000): layer 0's kernel, bias and their gradients "
        f"(1000 x 100000000 float32 values): cannot allocate {MEMORY_CASE_BYTES} bytes: more than the machine's"
    )


def test_core_sizes_from_python_are_checked() -> None:
    # Sizes and indices handed to the core directly: each gives a Python exception (before, a
    # division by zero, reads past the layer list, or millions of threads).
    out = run_python(
        """
        net = _core.Network32(4, [3, 2], ["relu", "linear"], [True, True])
        trainer = _core.Trainer32(net, "mse", False, [], {"name": "sgd", "learning_rate": 0.01}, 0)
        x, y = np.ones((5, 4), np.float32), np.ones((5, 2), np.float32)
        calls = {
            "num_batches(0)": lambda: trainer.num_batches(0),
            "get_kernel(2)": lambda: net.get_kernel(2),
            "get_kernel(10**6)": lambda: net.get_kernel(10**6),
            "set_kernel(7)": lambda: net.set_kernel(7, np.ones((3, 2), np.float32)),
            "get_bias_grad(2)": lambda: net.get_bias_grad(2),
            "begin_epoch(2**40)": lambda: trainer.begin_epoch(2**40, True),
            "peak_gflops(10**6 threads)": lambda: _core.peak_gflops(10**6, 0.01),
            "peak_gflops(inf seconds)": lambda: _core.peak_gflops(1, float("inf")),
            "Network32(-1)": lambda: _core.Network32(-1, [1], ["linear"], [True]),
            "Network32(units=-1)": lambda: _core.Network32(4, [-1], ["linear"], [True]),
        }
        results = {}
        for name, call in calls.items():
            try:
                call()
                results[name] = None
            except Exception as error:
                results[name] = type(error).__name__
        # Batch sizes beyond 64 bits are batches larger than the data: one batch of all of it.
        trainer.begin_epoch(5, False)
        results["num_batches(2**70)"] = trainer.num_batches(2**70)
        results["train_batches(2**70)"] = trainer.train_batches(x, y, 2**70, 0, 2**70).samples
        results["evaluate(2**70)"] = trainer.evaluate(x, y, 2**70).samples
        results["predict(2**70)"] = net.predict(x, 2**70).shape
        print(json.dumps(results))
        """
    )
    assert json.loads(out) == {
        "num_batches(0)": "ValueError",
        "get_kernel(2)": "IndexError",
        "get_kernel(10**6)": "IndexError",
        "set_kernel(7)": "IndexError",
        "get_bias_grad(2)": "IndexError",
        "begin_epoch(2**40)": "ValueError",
        "peak_gflops(10**6 threads)": "ValueError",
        "peak_gflops(inf seconds)": "ValueError",
        "Network32(-1)": "ValueError",
        "Network32(units=-1)": "ValueError",
        "num_batches(2**70)": 1,
        "train_batches(2**70)": 5,
        "evaluate(2**70)": 5,
        "predict(2**70)": [5, 2],
    }


def test_core_errors_are_memory_and_value_errors() -> None:
    from fastmlp import _core

    assert issubclass(_core.AllocationError, MemoryError)
    assert issubclass(_core.SizeError, ValueError)
    with pytest.raises(_core.SizeError, match="layer 0's kernel") as caught:
        _core.Network32(10, [10**12], ["linear"], [True])
    assert (caught.value.layer, caught.value.bytes) == (0, 4 * 10**13)
