"""Nadam, Adamax, Lion, Adadelta and Ftrl beyond their trajectories (test_optimizers.py checks
those against the reference on every ISA): their slots are saved and restored with the model,
frozen layers keep their weights and slots, and the result does not depend on the thread count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastmlp as fm
import numpy as np
import pytest

OPT = fm.optimizers
MAKERS = {
    "nadam": lambda: OPT.Nadam(0.01),
    "adamax": lambda: OPT.Adamax(0.01),
    "lion": lambda: OPT.Lion(0.003),
    "adadelta": lambda: OPT.Adadelta(1.0),
    "ftrl": lambda: OPT.Ftrl(0.05, l1_regularization_strength=0.001, beta=0.1),
}
# The slots each keeps per parameter array, and the value they start at.
INITIAL_SLOTS = {"nadam": (0.0, 0.0), "adamax": (0.0, 0.0), "lion": (0.0,), "adadelta": (0.0, 0.0), "ftrl": (0.1, 0.0)}


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = fm.get_num_threads()
    yield
    fm.set_num_threads(before)


def model_for(name: str, inputs: int = 5, hidden: int = 7) -> fm.Sequential:
    fm.utils.set_random_seed(4)
    model = fm.Sequential(
        [fm.layers.Input(shape=(inputs,)), fm.layers.Dense(hidden, activation="tanh"), fm.layers.Dense(2)]
    )
    model.compile(optimizer=MAKERS[name](), loss="mse")
    return model


def data(inputs: int = 5, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    return rng.normal(size=(n, inputs)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_slots_are_saved_and_restored(tmp_path: Path, name: str) -> None:
    x, y = data()
    model = model_for(name)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "m.fastmlp"
    model.save(path)
    loaded = fm.models.load_model(path)
    assert loaded.optimizer is not None and loaded.optimizer.get_config() == model.optimizer.get_config()
    state, loaded_state = model.get_training_state(), loaded.get_training_state()
    assert state is not None and loaded_state is not None
    assert len(state["slots"]) == len(INITIAL_SLOTS[name]) * 4
    for a, b in zip(state["slots"], loaded_state["slots"]):
        np.testing.assert_array_equal(a, b)
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_frozen_layer_keeps_weights_and_slots(isa: str, name: str) -> None:
    x, y = data()
    model = model_for(name)
    model.layers[0].trainable = False
    before = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(after[2], before[2])
    state = model.get_training_state()
    assert state is not None
    per_array = len(INITIAL_SLOTS[name])
    # Slots parameter by parameter (kernel, bias), slot by slot: the first layer's are untouched.
    for k, slot in enumerate(state["slots"][: 2 * per_array]):
        np.testing.assert_array_equal(slot, np.full_like(slot, INITIAL_SLOTS[name][k % per_array]))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_thread_count_gives_the_same_bits(restore_threads: None, name: str) -> None:
    """A 300 x 300 kernel (90,000 values, more than twice optimizer.cpp's kMinParallelElements)
    is split between two threads in the update."""
    x, y = data(inputs=300, n=16)
    results: list[list[Any]] = []
    for threads in (1, 3):
        fm.set_num_threads(threads)
        model = model_for(name, inputs=300, hidden=300)
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
