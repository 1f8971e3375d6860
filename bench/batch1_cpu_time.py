"""Per-sample SGD and one-row predict, timed as process CPU time on one thread.

The two per-call workloads of issue 16's batch-1 targets (784-100-10 sigmoid/softmax,
cross-entropy): batch-1 SGD steps on dense uniform inputs and on MNIST-like sparse inputs (80%
zeros), and ``predict_on_batch`` on one row per call. CPU time, not wall time, so a busy
machine changes the figures little. Run: ``python bench/batch1_cpu_time.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastmlp as fm


def make_model() -> fm.Sequential:
    fm.utils.set_random_seed(0)
    model = fm.Sequential(
        [fm.layers.Input(shape=(784,)), fm.layers.Dense(100, activation="sigmoid"), fm.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=fm.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model


def data(kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.random((n, 784), dtype=np.float32)
    if kind == "sparse":
        x[rng.random(x.shape) < 0.8] = 0
    return x, rng.integers(0, 10, n)


def train_us(kind: str, steps: int, reps: int) -> float:
    model = make_model()
    x, y = data(kind, steps)
    model.fit(x[:64], y[:64], batch_size=1, epochs=1, verbose=0)  # warm up
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        model.fit(x, y, batch_size=1, epochs=1, verbose=0, shuffle=False)
        best = min(best, time.process_time() - start)
    return best / steps * 1e6


def predict_us(calls: int, reps: int) -> float:
    model = make_model()
    x, _ = data("dense", 1000)
    predict_on_batch = model.predict_on_batch
    predict_on_batch(x[:1])
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        for i in range(calls):
            j = i % 1000
            predict_on_batch(x[j : j + 1])
        best = min(best, time.process_time() - start)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    fm.set_num_threads(1)
    print(f"isa {fm.active_isa()}, one thread, best of {args.reps}, CPU time")
    print(f"batch-1 SGD, dense : {train_us('dense', args.steps, args.reps):6.2f} us/sample")
    print(f"batch-1 SGD, sparse: {train_us('sparse', args.steps, args.reps):6.2f} us/sample")
    print(f"predict_on_batch(x[i:i+1]): {predict_us(args.calls, args.reps):6.2f} us/call")


if __name__ == "__main__":
    main()
