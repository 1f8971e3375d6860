"""fit's training step is chosen by one best-first table (cpp/src/steps/choose_step.cpp), once
per batch; FASTMLP_STEP (read at import) or _core.set_step forces a step where it can run.
Every step gives the same bits for every thread count: training runs under each forced step on
1, 2 and 3 threads must end with identical weights and histories."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core

STEPS = ["vector", "pipeline", "rows", "columns"]


def run_probe(step: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_STEP"}
    env["FASTMLP_STEP"] = step
    code = "import fastmlp; from fastmlp import _core; print(_core.active_step())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_table_lists_every_step_best_first() -> None:
    assert _core.available_steps() == STEPS


@pytest.mark.parametrize("step", STEPS + ["auto", ""])
def test_fastmlp_step_forces_a_step_at_import(step: str) -> None:
    result = run_probe(step)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (step or "auto")


def test_an_unknown_fastmlp_step_is_a_value_error_listing_the_steps() -> None:
    result = run_probe("diagonal")
    assert result.returncode != 0
    assert "ValueError" in result.stderr and "FASTMLP_STEP" in result.stderr and "diagonal" in result.stderr
    assert all(name in result.stderr for name in STEPS)


def test_min_row_part_work_is_checked_and_kept() -> None:
    before = _core.min_row_part_work()
    with pytest.raises(ValueError, match="at least 1"):
        _core.set_min_row_part_work(0)
    assert _core.min_row_part_work() == before


def test_min_product_split_work_is_checked_and_kept() -> None:
    before = _core.min_product_split_work()
    with pytest.raises(ValueError, match="at least 1"):
        _core.set_min_product_split_work(0)
    assert _core.min_product_split_work() == before


def test_a_small_batch_runs_in_one_part_by_default_with_the_same_bits() -> None:
    """Below two parts' worth of work the row split runs on the caller alone: the pipeline (two
    parts at least) cannot run, and the bits are those of any other split."""
    x, y = make_data("sparse")
    before = (_core.active_step(), fm.get_num_threads(), _core.min_row_part_work())
    try:
        fm.set_num_threads(1)
        _core.set_step("columns")
        reference, reference_history = train(x, y, "adam", 0.0)
        fm.set_num_threads(2)
        _core.set_step("pipeline")
        _core.set_min_row_part_work(1 << 20)  # the default: 40 rows x 3,392 multiply-adds is one part
        model, history = train(x, y, "adam", 0.0)
        assert model._engine._trainer.last_step == "rows"  # type: ignore[attr-defined]
        assert history == reference_history
        for a, b in zip(reference.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        # Unforced, the table chooses as for one thread (the caller runs the step alone).
        _core.set_step("auto")
        model, history = train(x, y, "adam", 0.0)
        assert model._engine._trainer.last_step == "columns"  # type: ignore[attr-defined]
        assert history == reference_history
        for a, b in zip(reference.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    finally:
        _core.set_step(before[0])
        fm.set_num_threads(before[1])
        _core.set_min_row_part_work(before[2])


def test_set_step_rejects_an_unknown_name_and_keeps_the_choice() -> None:
    before = _core.active_step()
    with pytest.raises(ValueError, match="vector, pipeline, rows, columns"):
        _core.set_step("bogus")
    assert _core.active_step() == before


@pytest.fixture(params=STEPS)
def step(request: pytest.FixtureRequest) -> Iterator[str]:
    """The name of the step fit is forced to run during the test (as conftest's ``isa``)."""
    name: str = request.param
    before = (_core.active_step(), fm.get_num_threads())
    _core.set_step(name)
    try:
        assert _core.active_step() == name
        yield name
    finally:
        _core.set_step(before[0])
        fm.set_num_threads(before[1])


def make_data(kind: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(7)
    x = rng.random((200, 96), dtype=np.float32)
    if kind == "sparse":  # as MNIST: most inputs exactly zero
        x[rng.random(x.shape) < 0.8] = 0
    return x, rng.integers(0, 10, 200)


def train(
    x: Any, y: Any, optimizer: str, dropout: float, metrics: bool = True
) -> tuple[fm.Sequential, dict[str, list[float]]]:
    fm.utils.set_random_seed(3)
    layers: list[Any] = [fm.layers.Input(shape=(x.shape[1],)), fm.layers.Dense(32, activation="relu")]
    if dropout:
        layers.append(fm.layers.Dropout(dropout))
    layers.append(fm.layers.Dense(10, activation="softmax"))
    model = fm.Sequential(layers)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"] if metrics else [])
    history = model.fit(x, y, batch_size=40, epochs=2, verbose=0).history
    return model, history


def expected_steps(forced: str, threads: int, dropout: float) -> set[str]:
    """What the table may run when `forced` is asked for: it, or the next step that can (columns
    always can)."""
    if dropout:
        return {"columns"}  # the row splits cannot draw dropout's masks in one sequence
    if forced == "vector":
        forced = "pipeline"  # batches of 40 rows: the next entry of the table that can run
    if forced == "pipeline" and threads < 2:
        return {"rows"}  # the pipeline's parts wait for each other: it needs two
    if forced == "pipeline":
        # The pool withdraws a pipelined step that no worker takes within the first microseconds
        # (asleep after a pause, or descheduled), and the row split runs it: the same bits. With
        # FASTMLP_SPIN_US=0 it never withdraws; test_waiting_threads runs the pipeline that way.
        return {"pipeline", "rows"}
    return {forced}


@pytest.mark.parametrize("data", ["sparse", "dense"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dropout", [0.0, 0.25])
@pytest.mark.parametrize("metrics", [True, False], ids=["accuracy", "no-metric"])
def test_every_step_and_thread_count_gives_the_same_bits(
    step: str, data: str, optimizer: str, dropout: float, metrics: bool
) -> None:
    # Without a metric the column split leaves the softmax out of the forward pass (the loss
    # reads the logits): the same bits as with it.
    x, y = make_data(data)
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, reference_history = train(x, y, optimizer, dropout)
    _core.set_step(step)
    for threads in (1, 2, 3):
        fm.set_num_threads(threads)
        model, history = train(x, y, optimizer, dropout, metrics)
        trainer = model._engine._trainer  # type: ignore[attr-defined]
        assert trainer is not None and trainer.last_step in expected_steps(step, threads, dropout)
        for a, b in zip(reference.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert history == (reference_history if metrics else {"loss": reference_history["loss"]})
