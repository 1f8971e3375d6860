"""A pool worker the host does not run for a while (fastmlp/late_workers.h): the caller notes the
late jobs and runs the next ones alone, in task order. Who runs a task changes, never what it
computes, so every thread count keeps the bits of one thread.

The test hook ``_core.set_worker_delay_for_tests`` makes each worker sleep after claiming a task,
as if preempted there; ``_core.pool_jobs_run_alone`` counts the jobs the caller then ran alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core


@pytest.fixture
def restore_pool(restore_step_and_threads: None) -> Iterator[None]:
    """conftest's step and thread restore, and no late worker afterwards."""
    try:
        yield
    finally:
        _core.set_worker_delay_for_tests(0)


def make_data(kind: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(11)
    x = rng.random((256, 300), dtype=np.float32)
    if kind == "sparse":  # most inputs exactly zero: the pipelined step can run
        x[rng.random(x.shape) < 0.8] = 0
    return x, rng.integers(0, 10, 256)


def train(x: Any, y: Any) -> tuple[list[Any], dict[str, list[float]]]:
    # Tasks of a few hundred microseconds: a worker woken for a job claims one before the caller
    # has run them all.
    fm.utils.set_random_seed(5)
    model = fm.Sequential([fm.layers.Input(shape=(x.shape[1],)), fm.layers.Dense(256, activation="relu"),
                           fm.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=128, epochs=3, verbose=0).history
    return [*model.get_weights(), model.predict(x, verbose=0)], history


@pytest.mark.parametrize("step", ["pipeline", "rows", "columns"])
@pytest.mark.parametrize("data", ["dense", "sparse"])
def test_late_workers_change_who_runs_the_tasks_not_the_bits(restore_pool: None, step: str, data: str) -> None:
    x, y = make_data(data)
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, reference_history = train(x, y)
    _core.set_step(step)
    _core.set_worker_delay_for_tests(3000)
    for threads in (2, 3, 4):
        fm.set_num_threads(threads)
        ran_alone = _core.pool_jobs_run_alone()
        arrays, history = train(x, y)
        # The late workers were seen: later jobs ran on the caller alone.
        assert _core.pool_jobs_run_alone() > ran_alone, threads
        assert history == reference_history, threads
        for a, b in zip(reference, arrays):
            np.testing.assert_array_equal(a, b)


def test_the_worker_delay_is_checked() -> None:
    with pytest.raises(ValueError, match="microseconds"):
        _core.set_worker_delay_for_tests(-1)
