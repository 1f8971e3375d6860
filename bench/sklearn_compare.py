"""fastmlp.sklearn.MLPClassifier against scikit-learn's MLPClassifier on issue 17's workload.

A dense 7-class tabular problem of 60,000 x 54 (test: 10,000 more rows), 100 relu units, adam,
batch 200, 20 epochs (tol=0 with n_iter_no_change above 20, so that every epoch runs), the
same constructor arguments for both. Each estimator fits in its own process on one thread
(OMP_NUM_THREADS=1, FASTMLP_NUM_THREADS=1, ...); the time is the process CPU time of ``fit``.
The Keras-style fastmlp model with the same settings runs too: the estimator should cost no
more than it.

Data: ``--data synthetic`` (default; ``make_classification`` with 7 classes, standardized) or
``--data covtype`` (the first 70,000 rows of scikit-learn's covertype, standardized; needs
``fetch_covtype`` to find or download it).

    python bench/sklearn_compare.py [--data synthetic|covtype] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FASTMLP_NUM_THREADS")
N_TRAIN, N_TEST, N_FEATURES, N_CLASSES, EPOCHS = 60_000, 10_000, 54, 7, 20
SETTINGS: dict[str, Any] = dict(
    hidden_layer_sizes=(100,),
    activation="relu",
    solver="adam",
    batch_size=200,
    max_iter=EPOCHS,
    tol=0.0,
    n_iter_no_change=EPOCHS + 1,
    random_state=0,
)


def load(data: str) -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    if data == "covtype":
        from sklearn.datasets import fetch_covtype

        bunch = fetch_covtype()
        rng = np.random.default_rng(0)
        rows = rng.permutation(len(bunch.target))[: N_TRAIN + N_TEST]
        X, y = bunch.data[rows], bunch.target[rows]
    else:
        from sklearn.datasets import make_classification

        X, y = make_classification(
            N_TRAIN + N_TEST, N_FEATURES, n_informative=30, n_redundant=10, n_classes=N_CLASSES,
            n_clusters_per_class=2, class_sep=1.0, random_state=0,
        )
    X = StandardScaler().fit_transform(X)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def run_one(framework: str, data: str) -> dict[str, Any]:
    """Fit one estimator here (one thread); its fit CPU time and test accuracy."""
    import numpy as np

    X, y, X_test, y_test = load(data)
    if framework == "keras":
        import fastmlp as fm

        fm.set_num_threads(1)
        fm.utils.set_random_seed(0)
        model = fm.Sequential([
            fm.layers.Input(shape=(N_FEATURES,)),
            fm.layers.Dense(100, activation="relu", kernel_regularizer=fm.regularizers.L2(1e-4 / 400)),
            fm.layers.Dense(N_CLASSES, activation="softmax"),
        ])
        model.compile(fm.optimizers.Adam(epsilon=1e-8), "sparse_categorical_crossentropy")
        started = time.process_time()
        # The same input as the estimators get (float64 X, the labels): fit converts X once.
        labels = np.searchsorted(np.unique(y), y).astype(np.int32)
        model.fit(X, labels, batch_size=200, epochs=EPOCHS, verbose=0)
        seconds = time.process_time() - started
        predicted = np.unique(y)[np.argmax(model.predict(X_test, verbose=0), axis=1)]
        return {"fit_cpu_s": seconds, "accuracy": float(np.mean(predicted == y_test)), "n_iter": EPOCHS}
    if framework == "fastmlp":
        from fastmlp.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    estimator = MLPClassifier(**SETTINGS)
    started = time.process_time()
    estimator.fit(X, y)
    seconds = time.process_time() - started
    return {"fit_cpu_s": seconds, "accuracy": float(estimator.score(X_test, y_test)), "n_iter": estimator.n_iter_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["synthetic", "covtype"], default="synthetic")
    parser.add_argument("--repeats", type=int, default=1, help="fits per estimator (the fastest counts)")
    parser.add_argument("--run", choices=["fastmlp", "sklearn", "keras"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, args.data)))
        return
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}
    results: dict[str, list[dict[str, Any]]] = {"sklearn": [], "fastmlp": [], "keras": []}
    for _ in range(args.repeats):
        for framework in results:  # interleaved, each in a fresh process
            out = subprocess.run(
                [sys.executable, __file__, "--run", framework, "--data", args.data],
                env=env, capture_output=True, text=True, check=True,
            )
            results[framework].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {name: min(runs, key=lambda r: r["fit_cpu_s"]) for name, runs in results.items()}
    print(f"data: {args.data}, {N_TRAIN} x {N_FEATURES}, {N_CLASSES} classes; 100 relu units, adam, "
          f"batch 200, {EPOCHS} epochs; 1 thread; process CPU time of fit (best of {args.repeats})")
    labels = {"sklearn": "scikit-learn MLPClassifier", "fastmlp": "fastmlp.sklearn.MLPClassifier",
              "keras": "fastmlp Sequential (Keras-style)"}
    for name, result in best.items():
        print(f"  {labels[name]:34s} fit {result['fit_cpu_s']:7.2f} s   test accuracy "
              f"{result['accuracy']:.4f}   epochs {result['n_iter']}")
    ratio = best["sklearn"]["fit_cpu_s"] / best["fastmlp"]["fit_cpu_s"]
    print(f"  speed-up of fastmlp.sklearn over scikit-learn: {ratio:.2f}x; accuracy difference "
          f"{best['fastmlp']['accuracy'] - best['sklearn']['accuracy']:+.4f}")
    overhead = best["fastmlp"]["fit_cpu_s"] / best["keras"]["fit_cpu_s"]
    print(f"  estimator / Keras-style fit time: {overhead:.3f}")


if __name__ == "__main__":
    main()
