"""Shared fixtures.

``isa`` runs a test once per instruction set this CPU supports (as Highway's tests do): it
forces that kernel table, checks it is really the active one, and restores the previous
choice afterwards so tests do not leak state into each other. ``dtype`` runs a test for both
element types the core is compiled for. ``restore_step_and_threads`` puts the forced
training step and the thread count back as they were after a test that changes them.

The whole suite runs with the row split's least work per part lowered to 65,536 multiply-adds, so
that its small models still split their batches into one part per thread and the tests compare
the split paths' bits with one thread's (the default keeps small batches on one thread, for
speed; any value gives the same bits).
"""

from __future__ import annotations

from collections.abc import Iterator

import fastmlp
import numpy as np
import pytest
from fastmlp import _core


SMALL_ROW_PART_WORK = 1 << 16
SMALL_PRODUCT_SPLIT_WORK = 1 << 15


@pytest.fixture(autouse=True, scope="session")
def small_row_parts() -> Iterator[None]:
    """The tests' models are small: they split a batch's rows, and a product's columns or rows,
    over the threads as large ones do (the bits must not change with the split)."""
    before = (_core.min_row_part_work(), _core.min_product_split_work())
    _core.set_min_row_part_work(SMALL_ROW_PART_WORK)
    _core.set_min_product_split_work(SMALL_PRODUCT_SPLIT_WORK)
    try:
        yield
    finally:
        _core.set_min_row_part_work(before[0])
        _core.set_min_product_split_work(before[1])


@pytest.fixture(params=fastmlp.available_isas(), ids=str)
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """The name of the instruction set whose kernels are active during the test."""
    name: str = request.param
    previous = fastmlp.active_isa()
    _core.set_isa(name)
    try:
        assert fastmlp.active_isa() == name
        yield name
    finally:
        _core.set_isa(previous)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> type[np.floating]:
    """The element type of the arrays a test hands to the kernels."""
    result: type[np.floating] = request.param
    return result


@pytest.fixture
def restore_step_and_threads() -> Iterator[None]:
    before = (_core.active_step(), fastmlp.get_num_threads())
    try:
        yield
    finally:
        _core.set_step(before[0])
        fastmlp.set_num_threads(before[1])
