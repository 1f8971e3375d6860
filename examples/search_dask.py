"""A hyper-parameter search of fastmlp's scikit-learn classifier on a Dask cluster.

    python examples/search_dask.py                       # a LocalCluster on this machine
    python examples/search_dask.py tcp://scheduler:8786  # any running Dask scheduler

Needs ``pip install "fastmlp[sklearn,dask]"``. Without an address the script starts a
``LocalCluster`` of one single-threaded worker process per core and closes it at the end; with
one, it connects to that scheduler (its workers need fastmlp and scikit-learn installed).
``GridSearchCV`` hands its fits to the cluster through joblib's Dask backend; each worker
process runs fastmlp with the ``OMP_NUM_THREADS`` Dask's nanny gives it (1), so the fits do not
fight over the cores. The result is the same as ``n_jobs=1`` on one machine: every fit is seeded
by ``random_state``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from fastmlp.sklearn import MLPClassifier


def run_search(x: np.ndarray, y: np.ndarray) -> GridSearchCV:
    grid = {"hidden_layer_sizes": [(64,), (128,)], "alpha": [1e-4, 1e-3], "learning_rate_init": [1e-3, 3e-3]}
    search = GridSearchCV(MLPClassifier(max_iter=30, random_state=0), grid, cv=3, n_jobs=-1)
    with joblib.parallel_config(backend="dask"):
        search.fit(x, y)
    return search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", nargs="?", help="a Dask scheduler's address (default: start a LocalCluster)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # a short search: 30 epochs per fit, on purpose

    x, y = make_classification(n_samples=6000, n_features=54, n_informative=30, n_classes=7, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x.astype(np.float32), y, random_state=0, stratify=y)

    if args.address is None:
        # One worker per CPU this process may use (taskset, a container's CPU set), not per
        # CPU of the host: more would oversubscribe the cores the search was given.
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        cluster = LocalCluster(n_workers=cpus, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        cluster, client = None, Client(args.address)
    try:
        print(f"Dask dashboard: {client.dashboard_link}")
        started = time.perf_counter()
        search = run_search(x_train, y_train)
        print(f"searched {len(search.cv_results_['params'])} candidates x 3 folds in {time.perf_counter() - started:.1f} s")
        print(f"best: {search.best_params_}, cross-validated accuracy {search.best_score_:.3f}")
        print(f"held-out accuracy of the refitted best model: {search.score(x_test, y_test):.3f}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
