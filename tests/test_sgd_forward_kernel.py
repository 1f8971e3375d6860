"""The per-sample SGD kernel (``sgd_forward``, cpp/src/kernels/*/sgd_forward*): plain SGD on a
first kernel for one row, and the next row's product through the updated kernel, in one pass.
On every ISA and dtype: the bits of the update followed by the product (the update computed in
NumPy with the same roundings, the product by ``sparse_gemm`` over the listed entries), values
within the rounding bounds of the float64 result (Higham's gamma_n for a chain of n terms), and
nothing written outside the kernel's rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fastmlp import _core

K = _core.kernels
# Around both ISAs' vectors (AVX2: 8 floats, 4 doubles; AVX-512: 16 and 8), a 100-unit layer,
# and more columns than one register block holds (several passes over the rows).
WIDTHS = (1, 3, 7, 8, 9, 15, 16, 17, 33, 100, 257)


def listed(x: Any, skips_zeros: bool) -> Any:
    return np.flatnonzero(x != 0) if skips_zeros else np.arange(len(x))


@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("rows", [1, 37])
def test_update_then_product_bit_for_bit_and_within_rounding(isa: str, dtype: Any, n: int, rows: int) -> None:
    rng = np.random.default_rng([n, rows])
    u = float(np.finfo(dtype).eps) / 2
    for update_skips, next_skips in [(False, False), (True, True), (True, False), (False, True)]:
        w0 = rng.standard_normal((rows, n)).astype(dtype)
        x = rng.random(rows).astype(dtype)
        nxt = rng.standard_normal(rows).astype(dtype)
        x[rng.random(rows) < 0.6] = 0
        nxt[rng.random(rows) < 0.6] = 0
        delta = rng.standard_normal(n).astype(dtype)
        lr = 0.3
        # In a wider buffer with NaN around: rows ldw apart, the view's start misaligned.
        buf = np.full((rows, n + 5 + 1), np.nan, dtype=dtype)
        w = buf[:, 1 : n + 1]
        w[...] = w0
        out = K.sgd_forward(w, x, update_skips, delta, lr, nxt, next_skips)
        assert np.isnan(buf[:, 0]).all() and np.isnan(buf[:, n + 1 :]).all()
        # The update with the kernel's roundings: g = x * delta (one rounding), w - (lr * g).
        expected = w0.copy()
        for k in listed(x, update_skips):
            g = x[k] * delta
            expected[k] = w0[k] - dtype(lr) * g
        np.testing.assert_array_equal(w, expected)
        # The product: sparse_gemm's chain over the listed entries of the next row.
        cols = listed(nxt, next_skips).astype(np.uint32)
        product = K.sparse_gemm(nxt[None, :], np.ascontiguousarray(w), np.array([0, len(cols)], np.uint32), cols)
        np.testing.assert_array_equal(out, product[0])
        # Independently, in extended precision (x86's long double: 11 more bits than float64):
        # the update within 3 roundings (of the product, lr times it, the difference), the
        # product within gamma_rows of the sum of magnitudes.
        wide = np.longdouble
        w64 = w0.astype(wide)
        exact = w64.copy()
        for k in listed(x, update_skips):
            exact[k] = w64[k] - wide(dtype(lr)) * x[k].astype(wide) * delta.astype(wide)
        size = np.abs(w64) + wide(lr) * np.abs(np.outer(x, delta)).astype(wide)
        assert np.all(np.abs(w.astype(wide) - exact) <= wide(3 * u / (1 - 3 * u)) * size)
        wn = w.astype(wide)
        bound = wide(rows * u / (1 - rows * u)) * (np.abs(nxt).astype(wide) @ np.abs(wn))
        assert np.all(np.abs(out.astype(wide) - nxt.astype(wide) @ wn) <= bound)
        assert np.isfinite(out).all()


def test_it_checks_its_arguments() -> None:
    w = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="delta"):
        K.sgd_forward(w, np.zeros(4, np.float32), False, np.zeros(2, np.float32), 0.1, np.zeros(4, np.float32), False)
    with pytest.raises(ValueError, match="next_x"):
        K.sgd_forward(w, np.zeros(4, np.float32), False, np.zeros(3, np.float32), 0.1, np.zeros(5, np.float32), False)
