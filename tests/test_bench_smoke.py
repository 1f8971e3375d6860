"""A smoke run of bench/ inside the test suite: the benchmarks are not timed tests (CI runs the
tests, not the benchmarks), but they must keep working.

* ``bench/compare.py --quick`` (tiny sizes, one repetition, synthetic data: no download) runs
  fastmlp and the NumPy baseline in worker processes and writes JSON of the expected shape
  with positive numbers;
* bench/numpy_mlp.py, the float32 NumPy training step the comparison holds fastmlp against,
  does the reference's math (``fastmlp.reference.train_sgd``) on a small case, so the
  comparison is between equal work;
* bench/thread_scaling.py alternates 1- and 2-thread epochs and reports the median of the
  paired ratios;
* bench/concurrent_processes.py runs two fitting processes at once, one thread each and then
  two each, checks that all end with the same weights, and reports the slowest 2-thread round
  over the fastest 1-thread round;
* the workloads' FLOP formula gives the issue's figures.

Nothing here needs PyTorch, scikit-learn or pytest-benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from fastmlp import reference

BENCH = Path(__file__).resolve().parent.parent / "bench"
QUICK_WORKLOADS = ["train-b64-t1", "train-b64-tN", "train-b1-t1", "predict1-t1"]


@pytest.fixture(scope="module")
def bench_modules() -> Iterator[dict[str, ModuleType]]:
    """bench/'s plain modules, imported from its directory (bench/ is not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        import numpy_mlp
        import workloads

        yield {"numpy_mlp": numpy_mlp, "workloads": workloads}
    finally:
        sys.path.remove(str(BENCH))


def test_compare_quick_writes_complete_json(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    # -W error in the workers too (they inherit it through PYTHONWARNINGS).
    command = [sys.executable, "-W", "error", str(BENCH / "compare.py"), "--quick", "--only", "fastmlp,numpy",
               "--threads", "2", "--workloads", ",".join(QUICK_WORKLOADS), "--mnist", "synthetic",
               "--json", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())

    assert "compare.py --quick --only fastmlp,numpy" in doc["command"]
    assert doc["settings"]["quick"] is True and doc["settings"]["repetitions"] == 1
    assert doc["settings"]["frameworks"] == ["fastmlp", "numpy"]
    assert doc["machine"]["isa"] and doc["machine"]["cores"] >= 1
    assert set(doc["peak_gflops"]) == {"1", "2"}
    assert all(p["median"] > 0 for p in doc["peak_gflops"].values())
    assert "6*MACs" in doc["flop_formula"]
    assert [w["key"] for w in doc["workloads"]] == QUICK_WORKLOADS
    assert {w["data_source"] for w in doc["workloads"]} == {"synthetic MNIST-like"}
    for work in doc["workloads"]:
        assert work["flops_per_sample"] > 0 and work["limit_samples_per_s"] > 0
        assert work["threads"] == (2 if work["key"].endswith("tN") else 1)
        for framework in ("fastmlp", "numpy"):
            cell = work["results"][framework]
            assert cell["errors"] == []
            assert len(cell["samples_per_s"]) == 1 and cell["median"] > 0
            assert cell["gflops"] > 0 and cell["fraction_of_peak"] > 0 and cell["fastmlp_speedup"] > 0
            # fastmlp's multi-thread rows: the machine's own thread scaling at the time.
            assert ("fma_scaling" in cell) == (work["threads"] > 1 and framework == "fastmlp")
            if "fma_scaling" in cell:
                assert len(cell["fma_scaling"]) == 1 and cell["fma_scaling"][0] > 0
            if work["key"].startswith("train"):
                assert cell["loss_after"] < cell["loss_before"]
            else:
                assert 0 <= cell["max_abs_diff"] < 1e-3
    assert "| workload | fastmlp | NumPy float32 | machine limit |" in done.stdout
    assert "The machine's FMA peak on the row's threads over its 1-thread peak" in done.stdout


def test_thread_scaling_pairs_the_epochs(tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    command = [sys.executable, "-W", "error", str(BENCH / "thread_scaling.py"), "--pairs", "3", "--samples", "512",
               "--threads", "2", "--mnist", "synthetic", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    one, two = doc["samples_per_s"]["1"], doc["samples_per_s"]["2"]
    assert len(one) == len(two) == 3 and min(one + two) > 0
    assert doc["samples"] == 512 and doc["threads"] == 2 and doc["data_source"] == "synthetic MNIST-like"
    # The median of the per-pair ratios, not the ratio of the medians.
    assert doc["paired_ratio_median"] == pytest.approx(sorted(b / a for a, b in zip(one, two))[1])
    assert f"median of the pairs: {doc['paired_ratio_median']:.2f}x" in done.stdout


def test_concurrent_processes_reports_both_settings(tmp_path: Path) -> None:
    out = tmp_path / "concurrent.json"
    command = [sys.executable, "-W", "error", str(BENCH / "concurrent_processes.py"), "--rounds", "2",
               "--samples", "640", "--threads", "2", "--mnist", "synthetic", "--json", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["samples"] == 640 and doc["rounds"] == 2 and doc["threads_default"] == 2
    assert doc["data_source"] == "synthetic MNIST-like" and doc["isa"]
    for setting in ("1", "default"):
        fits = doc["seconds"][setting]
        assert len(fits) == 2 and all(len(pair) == 2 and min(pair) > 0 for pair in fits)
        assert doc["round_seconds"][setting] == [max(pair) for pair in fits]
    ratio = max(doc["round_seconds"]["default"]) / min(doc["round_seconds"]["1"])
    assert doc["worst_default_over_best_one"] == pytest.approx(ratio)
    assert f"1 thread each {min(doc['round_seconds']['1']):.3f} s: {ratio:.2f}x" in done.stdout
    assert [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("round ")] == ["round 1", "round 2"]


@pytest.mark.parametrize("network", ["tabular", "dense784"])
def test_busy_machine_reports_both_settings_and_equal_weights(tmp_path: Path, network: str) -> None:
    out = tmp_path / "busy.json"
    command = [sys.executable, "-W", "error", str(BENCH / "busy_machine.py"), "--rounds", "2", "--rows", "2000",
               "--epochs", "1", "--neighbours", "1", "--network", network, "--json", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["rounds"] == 2 and doc["threads"] == 2 and doc["neighbours"] == 1 and doc["network"] == network
    assert len(doc["seconds"]["1"]) == len(doc["seconds"]["n"]) == 2 and min(doc["seconds"]["1"] + doc["seconds"]["n"]) > 0
    medians = [sorted(doc["seconds"][k])[0] / 2 + sorted(doc["seconds"][k])[1] / 2 for k in ("n", "1")]
    assert doc["ratio_of_medians"] == pytest.approx(medians[0] / medians[1])


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_numpy_training_step_matches_the_reference(bench_modules: dict[str, ModuleType], activation: str) -> None:
    numpy_mlp, wl = bench_modules["numpy_mlp"], bench_modules["workloads"]
    net = wl.Net((20, 7, 5, 3), activation)
    params32 = wl.initial_params(net, seed=3)
    params64 = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params32]
    rng = np.random.default_rng(0)
    x = rng.random((13, 20), dtype=np.float32)  # 13 samples: the last batch of 4 is short
    y = rng.integers(0, 3, 13).astype(np.int32)
    order = rng.permutation(13)

    expected, losses = reference.train_sgd(x, y, params64, net.activations,
                                           "sparse_categorical_crossentropy", 0.5, 4, 1, [order])
    loss = numpy_mlp.train_epoch(x, y, params32, net.activations, 0.5, 4, order)

    assert loss == pytest.approx(losses[0], rel=1e-5)
    for (w, b), (w64, b64) in zip(params32, expected):
        assert w.dtype == np.float32 and b64 is not None
        np.testing.assert_allclose(w, w64, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, b64, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(numpy_mlp.predict(x, params32, net.activations),
                               reference.predict(x, expected, net.activations), atol=1e-6)


def test_flop_counts_are_the_issues(bench_modules: dict[str, ModuleType]) -> None:
    wl = bench_modules["workloads"]
    assert wl.MNIST_NET.train_flops() == 319_600  # "~320 kFLOP per sample"
    assert wl.MNIST_NET.predict_flops() == 158_800  # "~159 kFLOP per image"
