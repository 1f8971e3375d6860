"""Sizes the core cannot allocate are refused cleanly, and a refusal changes nothing (issue 14).

Each case that crashed the interpreter before runs in a subprocess, so the suite survives.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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


def run_python(body: str, timeout: float = 120) -> str:
    """Runs PRELUDE + body in a fresh interpreter; returns its stdout, failing on any crash."""
    code = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


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
        "num_batches(2**70)": 1,
        "evaluate(2**70)": 5,
        "predict(2**70)": [5, 2],
    }
