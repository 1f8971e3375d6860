"""Speed-up of a hyper-parameter search run by joblib's process pool, Dask or Ray over the same
search run sequentially, with the same ``cv_results_``.

Usage (from the repository root, on an otherwise quiet machine)::

    python bench/search_speedup.py                          # loky and Dask, 2 workers
    python bench/search_speedup.py --backends loky dask ray --workers 2 --repeats 3

``GridSearchCV(fastmlp.sklearn.MLPClassifier(...), 4 candidates, cv=3)`` on a dense 7-class
problem (54 features, the issue's tabular shape, fewer rows) runs first with ``n_jobs=1`` in
this process, twice: with fastmlp at one thread (as one worker of the parallel runs gets with 2
workers on 2 cores), and at fastmlp's default thread count (what a user's ``n_jobs=1`` search
uses); then on each backend with ``--workers`` worker processes of one thread each. Each
setting runs ``--repeats`` times; the best time of each counts (engine start-up excluded: the
pool, cluster or Ray is started and warmed up once before timing). Target: with 2 workers on a
2-core machine, the search takes <= 0.75x the sequential time. Every parallel search must give
the sequential search's ``cv_results_`` (timings aside) bit for bit; the script checks that.
Writes the times as JSON (``--json``, else a file in the temporary directory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

GRID = {"alpha": [1e-4, 1e-3], "learning_rate_init": [1e-3, 3e-3]}


def dense_problem(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 54)).astype(np.float32)
    teacher = rng.standard_normal((54, 7)).astype(np.float32)
    y = np.argmax(x @ teacher + 0.5 * rng.standard_normal((rows, 7)).astype(np.float32), axis=1)
    return x, y


def make_search(n_jobs: int, max_iter: int) -> Any:
    from sklearn.model_selection import GridSearchCV

    from fastmlp.sklearn import MLPClassifier

    estimator = MLPClassifier(hidden_layer_sizes=(100,), max_iter=max_iter, batch_size=200, random_state=0)
    return GridSearchCV(estimator, GRID, cv=3, n_jobs=n_jobs, error_score="raise")


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if k == "params" or k.startswith("param_") else np.asarray(v).tolist())
            for k, v in results.items() if "time" not in k}


@contextlib.contextmanager
def backend(name: str, workers: int) -> Iterator[None]:
    """The joblib backend `name` with `workers` one-thread worker processes, started here."""
    import joblib

    if name == "loky":
        with joblib.parallel_config(backend="loky", n_jobs=workers, inner_max_num_threads=1):
            yield
    elif name == "dask":
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster), joblib.parallel_config(backend="dask"):
                yield
    elif name == "ray":
        import ray
        from ray.util.joblib import register_ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            register_ray()
            with joblib.parallel_config(backend="ray", n_jobs=workers):
                yield
        finally:
            ray.shutdown()
    else:
        raise ValueError(f"unknown backend {name!r}")


def timed_fit(search: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    search.fit(x, y)
    return time.perf_counter() - started, comparable(search.cv_results_)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["loky", "dask"], choices=["loky", "dask", "ray"])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the data set (default: 20000)")
    parser.add_argument("--max-iter", type=int, default=5, help="epochs per fit (default: 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed searches per setting (default: 3)")
    parser.add_argument("--json", type=Path, help="output file (default: one in the temporary directory)")
    args = parser.parse_args()
    if args.workers < 1 or args.rows < 100 or args.max_iter < 1 or args.repeats < 1:
        parser.error("needs --workers >= 1, --rows >= 100, --max-iter >= 1, --repeats >= 1")

    import warnings

    from sklearn.exceptions import ConvergenceWarning

    import fastmlp as fm

    warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs per fit, on purpose
    default_threads = fm.get_num_threads()
    x, y = dense_problem(args.rows)
    print(f"GridSearchCV, {len(GRID['alpha']) * len(GRID['learning_rate_init'])} candidates x 3 folds, "
          f"{args.rows} rows x 54, 100 relu units, {args.max_iter} epochs; {os.cpu_count()} CPUs", flush=True)
    seconds: dict[str, list[float]] = {"sequential": [], "sequential_default_threads": []}
    reference = None
    # One thread: what each of the parallel runs' workers gets on a 2-core machine; then the
    # default a user's n_jobs=1 search runs with. Any thread count gives the same bits.
    for setting, threads in (("sequential", 1), ("sequential_default_threads", default_threads)):
        fm.set_num_threads(threads)
        for _ in range(args.repeats):
            spent, results = timed_fit(make_search(1, args.max_iter), x, y)
            seconds[setting].append(spent)
            reference = reference or results
            if results != reference:
                raise SystemExit("two sequential searches differ")
        print(f"{setting} ({threads} thread{'s' if threads > 1 else ''}): best {min(seconds[setting]):.3f} s", flush=True)
    fm.set_num_threads(1)
    mismatched = []
    for name in args.backends:
        with backend(name, args.workers):
            make_search(args.workers, 1).fit(x[:300], y[:300])  # warm-up: workers started, modules imported
            seconds[name] = []
            for _ in range(args.repeats):
                spent, results = timed_fit(make_search(args.workers, args.max_iter), x, y)
                seconds[name].append(spent)
                if results != reference:
                    mismatched.append(name)
        ratio = min(seconds[name]) / min(seconds["sequential"])
        ratio_default = min(seconds[name]) / min(seconds["sequential_default_threads"])
        print(f"{name}, {args.workers} workers: best {min(seconds[name]):.3f} s, {ratio:.2f}x the 1-thread "
              f"sequential time, {ratio_default:.2f}x the default-thread one (target <= 0.75 with 2 workers on "
              "2 cores)", flush=True)
    out = args.json or Path(tempfile.gettempdir()) / f"fastmlp-search-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "rows": args.rows, "max_iter": args.max_iter,
        "workers": args.workers, "repeats": args.repeats, "cpus": os.cpu_count(), "seconds": seconds,
        "ratio_to_sequential": {k: min(v) / min(seconds["sequential"]) for k, v in seconds.items()},
        "ratio_to_sequential_default_threads": {
            k: min(v) / min(seconds["sequential_default_threads"]) for k, v in seconds.items()
        },
        "default_threads": default_threads,
        "same_cv_results": {name: name not in mismatched for name in args.backends},
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=1) + "\n")
    print(f"wrote {out}")
    if mismatched:
        raise SystemExit(f"cv_results_ differ from the sequential search on: {', '.join(sorted(set(mismatched)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
