"""A hyper-parameter search on the engines people run: joblib's process pool (loky), a Dask
cluster and Ray give the same ``cv_results_`` as the sequential search, and each worker process
starts fastmlp with its share of the cores (the thread limit the engine sets), not with all.

The Dask cluster (2 worker processes, 1 thread each) is started and closed by its test; Ray runs
where it is installed. Speed is measured by bench/search_speedup.py, not here."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastmlp as fm
import joblib
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="the search tests need scikit-learn (fastmlp[sklearn])")
fastmlp_sklearn = pytest.importorskip("fastmlp.sklearn", reason="needs the fastmlp.sklearn estimators")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

# A few epochs on tiny data: scikit-learn's estimators warn that they did not converge.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

GRID = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(8,), (16,)]}
THREAD_VARIABLES = ("FASTMLP_NUM_THREADS", "OMP_NUM_THREADS")


def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_redundant=0, n_classes=3,
                               random_state=0)
    return x.astype(np.float32), y


def search(n_jobs: int) -> GridSearchCV:
    estimator = fastmlp_sklearn.MLPClassifier(max_iter=20, random_state=0)
    return GridSearchCV(estimator, GRID, cv=2, n_jobs=n_jobs, error_score="raise")


@pytest.fixture(scope="module")
def sequential_results() -> dict[str, Any]:
    x, y = data()
    with joblib.parallel_config(backend="sequential"):
        return dict(search(1).fit(x, y).cv_results_)


def assert_same_results(results: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every entry but the timings, exactly: the same fits give the same bits in any process."""
    compared = sorted(key for key in expected if "time" not in key)
    assert sorted(key for key in results if "time" not in key) == compared
    assert any(key.startswith("split") and key.endswith("_test_score") for key in compared)
    for key in compared:
        if key == "params" or key.startswith("param_"):
            assert list(results[key]) == list(expected[key]), key
        else:
            np.testing.assert_array_equal(results[key], expected[key], err_msg=key)


def parent_sets_thread_limits() -> bool:
    return any(os.environ.get(name, "") != "" for name in THREAD_VARIABLES)


def test_loky_search_equals_the_sequential_search(sequential_results: dict[str, Any]) -> None:
    x, y = data()
    with joblib.parallel_config(backend="loky"):
        results = search(2).fit(x, y).cv_results_
    assert_same_results(results, sequential_results)


def test_loky_workers_take_their_share_of_the_cores() -> None:
    """joblib's process workers get OMP_NUM_THREADS = cores // n_jobs; fastmlp follows it."""
    with joblib.Parallel(n_jobs=2, backend="loky") as parallel:
        threads = parallel(joblib.delayed(fm.get_num_threads)() for _ in range(4))
        omp = parallel(joblib.delayed(os.getenv)("OMP_NUM_THREADS") for _ in range(4))
    assert all(value is not None for value in omp)
    assert threads == [int(str(value).split(",")[0]) for value in omp]
    if not parent_sets_thread_limits():
        assert threads == [max(joblib.cpu_count() // 2, 1)] * 4


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed", reason="the Dask search needs dask[distributed] (fastmlp[dask])")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def test_dask_search_equals_the_sequential_search(dask_client: Any, sequential_results: dict[str, Any]) -> None:
    x, y = data()
    with joblib.parallel_config(backend="dask"):
        results = search(-1).fit(x, y).cv_results_
    assert_same_results(results, sequential_results)


def test_dask_workers_start_fastmlp_with_their_limit(dask_client: Any) -> None:
    """Dask's nannies start workers with OMP_NUM_THREADS=1; fastmlp follows it."""
    threads = dask_client.run(fm.get_num_threads)
    omp = dask_client.run(os.getenv, "OMP_NUM_THREADS")
    assert len(threads) == 2
    assert threads == {worker: int(str(value).split(",")[0]) for worker, value in omp.items()}
    if not parent_sets_thread_limits():
        assert set(threads.values()) == {1}


def test_dask_example_searches_on_the_cluster(dask_client: Any) -> None:
    """examples/search_dask.py's search, on the test's cluster and tiny data."""
    path = Path(__file__).resolve().parent.parent / "examples" / "search_dask.py"
    spec = importlib.util.spec_from_file_location("search_dask_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    x, y = data()
    search = example.run_search(x, y)
    assert len(search.cv_results_["params"]) == 8
    assert 0.0 <= search.best_score_ <= 1.0 and search.best_params_ in search.cv_results_["params"]


@pytest.mark.slow
def test_ray_search_equals_the_sequential_search(sequential_results: dict[str, Any]) -> None:
    ray = pytest.importorskip("ray", reason="Ray has no wheel here, or is not installed (pip install ray)")
    ray_joblib = pytest.importorskip("ray.util.joblib", reason="this Ray has no joblib backend")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_joblib.register_ray()
        x, y = data()
        with joblib.parallel_config(backend="ray"):
            results = search(2).fit(x, y).cv_results_
            with joblib.Parallel(n_jobs=2) as parallel:
                threads = parallel(joblib.delayed(fm.get_num_threads)() for _ in range(2))
                omp = parallel(joblib.delayed(os.getenv)("OMP_NUM_THREADS") for _ in range(2))
    finally:
        ray.shutdown()
    assert_same_results(results, sequential_results)
    assert threads == [int(str(value).split(",")[0]) for value in omp]  # Ray sets it per task: 1 CPU
