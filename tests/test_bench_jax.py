"""JAX as a peer in bench/compare.py computes what the others compute: from the same initial
weights and the same batch order, one epoch of bench/jax_mlp.py (SGD, and Adam) ends at the
weights and loss of ``fastmlp.reference`` (float64), up to float32 rounding; the runner that
compare.py drives draws its permutation inside the compiled epoch and trains on it; and a
``--quick`` comparison with JAX runs. Skipped where JAX is not installed (it comes with the
``compare`` extra)."""

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

pytest.importorskip("jax")

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """bench/'s plain modules, imported from its directory (bench/ is not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        import jax_mlp
        import runners
        import workloads

        yield {"jax_mlp": jax_mlp, "runners": runners, "workloads": workloads}
    finally:
        sys.path.remove(str(BENCH))


def batches(order: np.ndarray, batch: int) -> list[np.ndarray]:
    return [order[i : i + batch] for i in range(0, len(order), batch)]


def assert_same_epoch(bench: dict[str, ModuleType], net: Any, x: np.ndarray, y: np.ndarray,
                      got: list[tuple[Any, Any]], expected: Any) -> None:
    """The weights agree to float32 rounding, and so does the loss they give."""
    wl = bench["workloads"]
    for (w, b), (w_ref, b_ref) in zip(got, expected):
        np.testing.assert_allclose(np.asarray(w), w_ref, rtol=0, atol=2e-5)
        np.testing.assert_allclose(np.asarray(b), b_ref, rtol=0, atol=2e-5)
    got64 = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in got]
    before = wl.mean_loss(x, y, wl.initial_params(net), net)
    after = wl.mean_loss(x, y, got64, net)
    assert after == pytest.approx(wl.mean_loss(x, y, expected, net), abs=1e-5)
    assert after < before - 1e-3  # the epoch did learn: the comparison is not of two no-ops


def test_one_sgd_epoch_matches_the_reference(bench: dict[str, ModuleType]) -> None:
    import jax

    jax_mlp, wl = bench["jax_mlp"], bench["workloads"]
    net = wl.MNIST_NET
    x, y = wl.dense_random(300, 784, classes=net.classes)  # 300 = 4 batches of 64 and one of 44
    order = np.random.default_rng(3).permutation(300)
    epoch = jax.jit(jax_mlp.epoch_with_order(net.activations, 64, 0.1, "sgd"))
    params = wl.initial_params(net)
    got, _ = epoch([(jax.numpy.asarray(w), jax.numpy.asarray(b)) for w, b in params], (), x, y, order)
    expected, _ = reference.train_sgd(x, y, params, net.activations, "sparse_categorical_crossentropy",
                                      0.1, 64, 1, [order], from_logits=False)
    assert_same_epoch(bench, net, x, y, got, expected)


def test_the_runner_trains_an_adam_epoch_on_its_own_permutation(bench: dict[str, ModuleType]) -> None:
    import jax

    jax_mlp, runners, wl = bench["jax_mlp"], bench["runners"], bench["workloads"]
    net = wl.TABULAR_NET
    x, y = wl.dense_random(500, 54, classes=net.classes)  # 2 batches of 200 and one of 100
    params = wl.initial_params(net)
    runner = runners.JaxRunner(net, params, threads=1)
    xs, ys = runner.prepare(x, y)
    runner.train_epoch(xs, ys, 200, 0.01, "adam")
    order = np.asarray(jax_mlp.epoch_order(runner.key, jax.numpy.int32(0), 500))
    assert sorted(order) == list(range(500))
    expected, _ = reference.train_steps(x, y, params, net.activations, "sparse_categorical_crossentropy",
                                        "adam", reference.optimizer_settings("adam", learning_rate=0.01),
                                        batches(order, 200))
    assert_same_epoch(bench, net, x, y, runner.params, expected)
    predicted = runner.to_numpy(runner.predict(xs[:7]))
    np.testing.assert_allclose(predicted, reference.predict(x[:7], expected, net.activations), atol=1e-5)
    np.testing.assert_allclose(runner.predict_each(xs[:3]), predicted[:3], rtol=0, atol=1e-6)


def test_compare_quick_runs_jax(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    command = [sys.executable, str(BENCH / "compare.py"), "--quick", "--only", "fastmlp,jax,numpy",
               "--workloads", "tabular-adam-b200-t1", "--mnist", "synthetic", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    (tabular,) = doc["workloads"]
    assert tabular["optimizer"] == "adam" and tabular["batch"] == 200 and tabular["net"] == "54-100-7"
    assert tabular["results"]["numpy"] == {"errors": [], "unsupported": True}  # SGD only: n/a
    cell = tabular["results"]["jax"]
    assert cell["errors"] == [] and cell["median"] > 0 and cell["fastmlp_speedup"] > 0
    assert cell["info"]["compile_seconds"]
    assert cell["loss_after"] < cell["loss_before"]
    assert doc["settings"]["cpus"]["1"] == [min(os.sched_getaffinity(0))]
    assert "x JAX" in done.stdout and "JAX compile time" in done.stdout
