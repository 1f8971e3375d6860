"""fastmlp's training speed on the tabular workload of issue 17, and optionally on the dense
784-100-10 one of issue 16, as process CPU time of a 1-thread fit.

Usage (from the repository root)::

    python bench/tabular_speed.py                  # 54-100-7 relu, Adam, batch 200, 20 epochs
    python bench/tabular_speed.py --dense          # also 784-100-10 sigmoid, SGD, batch 64
    python bench/tabular_speed.py --repeats 7 --sklearn   # and scikit-learn's MLPClassifier

The tabular workload: 60,000 x 54 dense float32 rows, 7 classes, Input(54) -> Dense(100, relu)
-> Dense(7, softmax), Adam(0.001), sparse_categorical_crossentropy, batch 200, 20 epochs, one
thread. The time is ``time.process_time()`` around ``fit`` (the CPU time of this process, which
other processes on a shared machine do not inflate as they do wall time); the median of
``--repeats`` fits is reported. FLOPs are dense-equivalent, counted as bench/workloads.py counts
them (``6 * MACs - 2 * MACs of the first layer`` per training sample); the fraction is of
``fm.utils.peak_gflops(1)``, the measured FMA peak of the best instruction set this CPU runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as wl

import fastmlp as fm


def tabular_data(n: int, dim: int = 54, classes: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dense standardized features; labels from a random linear teacher (learnable)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    teacher = rng.standard_normal((dim, classes))
    y = np.argmax(x @ teacher + 0.5 * rng.standard_normal((n, classes)), axis=1).astype(np.int32)
    return x, y


def train_flops(sizes: tuple[int, ...]) -> int:
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 6 * sum(macs) - 2 * macs[0]


def fit_seconds(build, x: np.ndarray, y: np.ndarray, batch: int, epochs: int) -> tuple[float, float]:
    """CPU seconds of one fit (after a short warm-up fit on a fresh model), and the last loss."""
    model = build()
    model.fit(x[: 4 * batch], y[: 4 * batch], batch_size=batch, epochs=1, verbose=0)
    model = build()
    started = time.process_time()
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    return time.process_time() - started, float(history.history["loss"][-1])


def report(name: str, sizes: tuple[int, ...], n: int, epochs: int, times: list[float], loss: float,
           peak: float) -> None:
    seconds = statistics.median(times)
    samples = n * epochs / seconds
    gflops = samples * train_flops(sizes) / 1e9
    print(f"{name}: median {seconds:.3f} s CPU over {len(times)} fits "
          f"(min {min(times):.3f}, max {max(times):.3f}); {samples / 1e6:.2f} M samples/s; "
          f"{gflops:.1f} GFLOP/s = {gflops / peak:.0%} of peak {peak:.0f}; final loss {loss:.4f}")


def tabular(args: argparse.Namespace, peak: float) -> None:
    n, epochs, batch = 60000, args.epochs, 200
    x, y = tabular_data(n)

    def build() -> fm.Sequential:
        fm.utils.set_random_seed(0)
        model = fm.Sequential([fm.layers.Input((54,)), fm.layers.Dense(100, activation="relu"),
                               fm.layers.Dense(7, activation="softmax")])
        model.compile(optimizer=fm.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy")
        return model

    runs = [fit_seconds(build, x, y, batch, epochs) for _ in range(args.repeats)]
    report("tabular 54-100-7 relu adam b200", (54, 100, 7), n, epochs, [t for t, _ in runs], runs[-1][1], peak)
    if args.sklearn:
        from sklearn.neural_network import MLPClassifier

        times = []
        for _ in range(max(1, args.repeats // 3)):
            clf = MLPClassifier(hidden_layer_sizes=(100,), batch_size=batch, max_iter=epochs, tol=0.0,
                                n_iter_no_change=epochs + 1, random_state=0)
            started = time.process_time()
            clf.fit(x, y)
            times.append(time.process_time() - started)
        ratio = statistics.median(times) / statistics.median([t for t, _ in runs])
        print(f"scikit-learn MLPClassifier: median {statistics.median(times):.3f} s CPU; fastmlp is {ratio:.1f}x")


def dense(args: argparse.Namespace, peak: float) -> None:
    n, epochs, batch = 10000, args.epochs // 4 or 1, 64
    x, y = wl.dense_random(n, 784)

    def build() -> fm.Sequential:
        fm.utils.set_random_seed(0)
        model = fm.Sequential([fm.layers.Input((784,)), fm.layers.Dense(100, activation="sigmoid"),
                               fm.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=fm.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return model

    runs = [fit_seconds(build, x, y, batch, epochs) for _ in range(args.repeats)]
    report("dense 784-100-10 sigmoid sgd b64", (784, 100, 10), n, epochs, [t for t, _ in runs], runs[-1][1], peak)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fits per workload (default: 5)")
    parser.add_argument("--epochs", type=int, default=20, help="tabular epochs (default: 20; dense: a quarter)")
    parser.add_argument("--dense", action="store_true", help="also the dense 784-100-10 workload")
    parser.add_argument("--only-dense", action="store_true", help="only the dense 784-100-10 workload")
    parser.add_argument("--sklearn", action="store_true", help="also time scikit-learn's MLPClassifier")
    args = parser.parse_args()
    fm.set_num_threads(1)
    # The best of three: a busy machine can only slow the measurement down.
    peak = max(fm.utils.peak_gflops(1) for _ in range(3))
    print(f"isa {fm.active_isa()}, 1 thread, peak {peak:.0f} GFLOP/s")
    if not args.only_dense:
        tabular(args, peak)
    if args.dense or args.only_dense:
        dense(args, peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
