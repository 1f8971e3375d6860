"""Every kernel of every instruction set this CPU has, against the float64 reference.

Each test takes the ``isa`` fixture (conftest.py), so it runs once per kernel table the CPU
supports, and the ``dtype`` fixture, so both the float32 and float64 instantiations are checked.
The kernels are reached through ``fastmlp._core.kernels``, which hands NumPy views to them
unchanged: odd strides and misaligned pointers reach the kernel as they are.

Tolerances (u is the unit roundoff of the dtype under test: 2**-24 for float32, 2**-53 for
float64; ``gamma(n) = n u / (1 - n u)``) are error *bounds* derived from the operations each
kernel performs, never fitted to observed errors:

* gemm: the standard forward error bound of a dot product of length K, |C - C_exact| <=
  gamma_K * (|A| @ |B|), whatever the summation order or blocking, with a few more roundings for
  alpha/beta scaling and for re-reading C between depth blocks.
* elementwise math (exp, log, their compositions): a stated small number of ulp, relative.
* reductions (softmax denominators, row losses, column sums): gamma of the reduction length times
  the sum of the absolute values of the terms.
* comparisons against the float64 reference add the reference's own rounding (the same bound with
  u = 2**-53): for float64 kernels it is of the same order as the kernel's.

Where a property is exact (linear, relu, the in-place bias add, column sums in row order, the row
independence of gemm), the test compares bits.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import fastmlp
import numpy as np
import pytest
from fastmlp import _core
from fastmlp import reference as ref

K = _core.kernels
F64 = np.float64
U64 = 2.0**-53

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "softmax")
LOSSES = (
    "mse",
    "mae",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
CATEGORICAL = ("categorical_crossentropy", "sparse_categorical_crossentropy")
# Widths around the vectors of every ISA (AVX2: 8 floats, 4 doubles; AVX-512: 16 and 8): 1 lane,
# a vector minus/plus one, two vectors plus one, a wide row with a ragged tail, and one past the
# 16 vectors the AVX-512 sparse kernel keeps in registers.
WIDTHS = (1, 7, 8, 9, 15, 16, 17, 33, 100, 257)
LOSS_WIDTHS = (1, 2, 7, 8, 9, 10, 15, 16, 17, 33)

# The AVX2 gemm's blocking (cpp/src/kernels/avx2/gemm.cpp): MR rows x NR columns per microkernel
# tile, KC deep, MC rows and NC columns per packed block. NR and NC depend on the element size.
MR, KC, MC = 6, 256, 72
# The AVX-512 gemm's (cpp/src/kernels/avx512/gemm.cpp): 12 rows x two 64-byte vectors, MC 96;
# KC and NC as AVX2's. The edge-size tests take the sizes around both blockings, on every ISA.
MR_512, MC_512, NR_512_BYTES = 12, 96, 128
ROW_CASES = sorted(
    {v for mr, mc in ((MR, MC), (MR_512, MC_512)) for v in (1, mr - 1, mr, mr + 1, mc - 1, mc, mc + 1, 2 * mc + 1)}
)


def nr(dtype: Any, vector_bytes: int = 64) -> int:
    return vector_bytes // np.dtype(dtype).itemsize  # two vectors: AVX2 16 floats, 8 doubles


def nc(dtype: Any) -> int:
    return 2048 // np.dtype(dtype).itemsize  # 512 floats, 256 doubles


def unit_roundoff(dtype: Any) -> float:
    return float(np.finfo(dtype).eps) / 2.0


def gamma(n: float, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error bound of n roundings."""
    return n * u / (1.0 - n * u)


def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded from the test's parameters, so every case has its own fixed data."""
    return np.random.default_rng([zlib.crc32(repr(k).encode()) for k in key])


def bits(x: np.ndarray) -> np.ndarray:
    """The raw bit patterns of x (NaN == NaN, -0.0 != 0.0)."""
    return np.asarray(x).view(f"u{x.dtype.itemsize}")


def assert_within(got: np.ndarray, expected: np.ndarray, tol: np.ndarray, what: str) -> None:
    """|got - expected| <= tol elementwise, in float64; NaN anywhere fails."""
    got64 = np.asarray(got, dtype=F64)
    expected64 = np.asarray(expected, dtype=F64)
    tol64 = np.broadcast_to(np.asarray(tol, dtype=F64), expected64.shape)
    assert got64.shape == expected64.shape, f"{what}: shape {got64.shape} != {expected64.shape}"
    err = np.abs(got64 - expected64)
    bad = ~(err <= tol64)
    if np.any(bad):
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} entries out of tolerance; first at {i}: "
            f"got {got64[i]!r}, expected {expected64[i]!r}, |err| {err[i]:.3g} > tol {tol64[i]:.3g}"
        )


# ---------------------------------------------------------------------------
# Views with odd layouts
# ---------------------------------------------------------------------------


def in_buffer(
    x: np.ndarray, offset: int = 1, pad: int = 5, row_step: int = 2, fill: float = np.nan
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copy the 2-D array x into a view of a larger 1-D buffer.

    The view's data pointer is `offset` elements past the buffer's start (so, with offset 1, it is
    not 32-byte aligned), its rows are `row_step * (cols + pad)` elements apart, and everything
    around it holds `fill`. NaN around an input catches a kernel that reads past a row's end;
    around an output, `outside` (a mask of the buffer) lets the test check nothing was written
    there. Returns (buffer, view, outside).
    """
    rows, cols = x.shape
    ld = cols + pad
    grid_rows = max(rows * row_step, 1)
    buf = np.full(offset + grid_rows * ld, fill, dtype=x.dtype)
    view = buf[offset:].reshape(grid_rows, ld)[::row_step, :cols][:rows]
    view[...] = x
    outside = np.ones(buf.shape, dtype=bool)
    outside[offset:].reshape(grid_rows, ld)[::row_step, :cols][:rows] = False
    if offset % 8 != 0 and x.size > 0:
        assert view.ctypes.data % 32 != 0  # really misaligned for 32-byte vectors
    return buf, view, outside


def misaligned(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of x whose data pointer is one element past an aligned address."""
    buf = np.empty(x.size + 1, dtype=x.dtype)
    view = buf[1:].reshape(x.shape)
    view[...] = x
    if x.size > 0:
        assert view.ctypes.data % 32 != 0 and view.flags.c_contiguous
    return view


# ---------------------------------------------------------------------------
# gemm
# ---------------------------------------------------------------------------


def uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def check_gemm(
    got: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c0: np.ndarray | None = None,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> None:
    """got vs alpha * a @ b + beta * c0 in float64, within the forward error bound.

    The kernel's C[i, j] is a sum of K products (error gamma_K * sum |a_ik b_kj|, in any order),
    scaled by alpha and added to beta * C: alpha, beta and their products are at most 3 more
    roundings. The AVX2 kernel also stores C between depth blocks of KC and adds the next block
    to it: one more rounding per block. The float64 reference (BLAS) carries its own gamma_K with
    u = 2**-53. Values are O(1) uniform numbers, so nothing underflows.
    """
    dtype = got.dtype
    k = a.shape[1]
    a64, b64 = a.astype(F64), b.astype(F64)
    expected = alpha * (a64 @ b64)
    magnitude = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0.0:
        assert c0 is not None
        expected = expected + beta * c0.astype(F64)
        magnitude = magnitude + abs(beta) * np.abs(c0.astype(F64))
    blocks = -(-k // KC)
    tol = (gamma(k + blocks + 3, unit_roundoff(dtype)) + gamma(k + 2, U64)) * magnitude
    assert_within(got, expected, tol, f"gemm ({a.shape[0]}x{k} @ {k}x{b.shape[1]})")


@pytest.mark.parametrize("m", ROW_CASES)
def test_gemm_rows(isa: str, dtype: Any, m: int) -> None:
    rng = rng_for("gemm-m", m, dtype)
    n, k = nr(dtype) + 1, 33
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    c = K.gemm(a, b)
    assert c.dtype == dtype and c.shape == (m, n)
    check_gemm(c, a, b)


N_CASES = {
    "1": lambda r, c: 1,
    "NR-1": lambda r, c: r - 1,
    "NR": lambda r, c: r,
    "NR+1": lambda r, c: r + 1,
    "2NR+1": lambda r, c: 2 * r + 1,
    "NC-1": lambda r, c: c - 1,
    "NC": lambda r, c: c,
    "NC+1": lambda r, c: c + 1,
    "2NC+NR+3": lambda r, c: 2 * c + r + 3,
}


@pytest.mark.parametrize("panel_bytes", [64, NR_512_BYTES], ids=["avx2-panel", "avx512-panel"])
@pytest.mark.parametrize("n_case", list(N_CASES))
def test_gemm_columns(isa: str, dtype: Any, n_case: str, panel_bytes: int) -> None:
    n = N_CASES[n_case](nr(dtype, panel_bytes), nc(dtype))
    rng = rng_for("gemm-n", n, dtype)
    m, k = MR_512 + 1, 20
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    check_gemm(K.gemm(a, b), a, b)


@pytest.mark.parametrize("k", [1, KC - 1, KC, KC + 1, 2 * KC + 88])
def test_gemm_depth(isa: str, dtype: Any, k: int) -> None:
    rng = rng_for("gemm-k", k, dtype)
    m, n = 2 * MR + 1, nr(dtype) + 3
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    check_gemm(K.gemm(a, b), a, b)


def test_gemm_every_block_ragged(isa: str, dtype: Any) -> None:
    # Every level of blocking has a remainder at once: rows 2*MC+1, columns NC+NR+1, depth
    # 2*KC+88. alpha 0.5 and beta -2 (exact scalings) take the non-chained path through all
    # three depth blocks.
    rng = rng_for("gemm-big", dtype)
    m, n, k = 2 * MC + 1, nc(dtype) + nr(dtype) + 1, 2 * KC + 88
    a, b, c0 = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype), uniform(rng, (m, n), dtype)
    check_gemm(K.gemm(a, b), a, b)
    c = c0.copy()
    out = K.gemm(a, b, c, alpha=0.5, beta=-2.0)
    assert out is c or np.shares_memory(out, c)
    check_gemm(c, a, b, c0, alpha=0.5, beta=-2.0)


@pytest.mark.parametrize("a_transposed", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("b_transposed", [False, True], ids=["b", "bT"])
def test_gemm_transposed_views(
    isa: str, dtype: Any, a_transposed: bool, b_transposed: bool
) -> None:
    rng = rng_for("gemm-t", a_transposed, b_transposed, dtype)
    m, n, k = MC + 1, 2 * nr(dtype) + 1, KC + 1
    a_c, b_c = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    # Transposed views: a = (a_c.T copied).T has the same values with strides swapped.
    a = np.ascontiguousarray(a_c.T).T if a_transposed else a_c
    b = np.ascontiguousarray(b_c.T).T if b_transposed else b_c
    assert a.flags.c_contiguous != a_transposed and b.flags.c_contiguous != b_transposed
    c = K.gemm(a, b)
    check_gemm(c, a, b)
    # The same values in another layout go through the same arithmetic (packing only moves
    # them), so the result is bitwise that of the contiguous operands.
    assert np.array_equal(bits(c), bits(K.gemm(a_c, b_c)))


STRIDE_CASES = {
    # name: (make a from a (2m, 3k) base, make b from a (2k, 3n) base)
    "every-third-column": (lambda x: x[::2, ::3], lambda x: x[::2, ::3]),
    "every-second-row": (lambda x: x[::2, : x.shape[1] // 3], lambda x: x[::2, : x.shape[1] // 3]),
    "negative-strides": (lambda x: x[::-2, ::-3], lambda x: x[-1::-2, ::-3]),
    "transposed-strided": (lambda x: x.T[::3, ::2].T, lambda x: x.T[::-3, ::2].T),
    # Zero strides (broadcast, read-only views): every row of a, every row of b the same.
    "broadcast": (
        lambda x: np.broadcast_to(x[0, : x.shape[1] // 3], (x.shape[0] // 2, x.shape[1] // 3)),
        lambda x: np.broadcast_to(x[0, : x.shape[1] // 3], (x.shape[0] // 2, x.shape[1] // 3)),
    ),
}


@pytest.mark.parametrize("case", list(STRIDE_CASES))
def test_gemm_odd_strides(isa: str, dtype: Any, case: str) -> None:
    rng = rng_for("gemm-s", case, dtype)
    m, n, k = MR + 1, nr(dtype) + 1, KC + 3
    make_a, make_b = STRIDE_CASES[case]
    a = make_a(uniform(rng, (2 * m, 3 * k), dtype))
    b = make_b(uniform(rng, (2 * k, 3 * n), dtype))
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    c = K.gemm(a, b)
    assert c.shape == (a.shape[0], b.shape[1])
    check_gemm(c, a, b)
    assert np.array_equal(bits(c), bits(K.gemm(np.ascontiguousarray(a), np.ascontiguousarray(b))))


def test_gemm_misaligned(isa: str, dtype: Any) -> None:
    rng = rng_for("gemm-mis", dtype)
    m, n, k = MR + 1, 2 * nr(dtype) + 1, 37
    a, b = misaligned(uniform(rng, (m, k), dtype)), misaligned(uniform(rng, (k, n), dtype))
    c0 = uniform(rng, (m, n), dtype)
    c = misaligned(c0)
    K.gemm(a, b, c, beta=0.5)
    check_gemm(c, a, b, c0, beta=0.5)


@pytest.mark.parametrize("reversed_rows", [False, True], ids=["ldc>n", "ldc<0"])
def test_gemm_c_row_stride(isa: str, dtype: Any, reversed_rows: bool) -> None:
    # c is a slice of a wider (and misaligned) buffer: ldc != n. Its tiles at the right edge are
    # partial; the columns and rows outside the slice must keep their bits.
    rng = rng_for("gemm-ldc", reversed_rows, dtype)
    m, n, k = MR + 1, nr(dtype) + 3, 29
    a, b, c0 = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype), uniform(rng, (m, n), dtype)
    buf, c, outside = in_buffer(c0, fill=-7.25)
    if reversed_rows:
        c = c[::-1]
        c0 = c0[::-1]
    before = buf.copy()
    out = K.gemm(a, b, c, alpha=1.0, beta=0.5)
    assert np.shares_memory(out, buf)
    check_gemm(c, a, b, c0, beta=0.5)
    assert np.array_equal(bits(buf[outside]), bits(before[outside]))


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.5, -2.0])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5, -2.0])
def test_gemm_alpha_beta(isa: str, dtype: Any, alpha: float, beta: float) -> None:
    # Depth KC + 5: two depth blocks, so the second block adds to a C that holds alpha * the
    # first block's sum + beta * C (with alpha != 1 that is the non-chained path).
    rng = rng_for("gemm-ab", alpha, beta, dtype)
    m, n, k = MR + 1, nr(dtype) + 3, KC + 5
    a, b, c0 = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype), uniform(rng, (m, n), dtype)
    c = c0.copy()
    out = K.gemm(a, b, c, alpha=alpha, beta=beta)
    assert np.shares_memory(out, c)
    check_gemm(c, a, b, c0, alpha=alpha, beta=beta)
    if alpha == 0.0 and beta == 0.0:
        assert np.all(c == 0)


@pytest.mark.parametrize("k", [0, 3, KC + 44])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_gemm_beta_zero_does_not_read_c(isa: str, dtype: Any, k: int, alpha: float) -> None:
    # BLAS semantics: with beta == 0, C is output only, so NaN (or garbage) in it must not leak.
    rng = rng_for("gemm-nan", k, alpha, dtype)
    m, n = MR + 1, nr(dtype) + 3
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    c = np.full((m, n), np.nan, dtype=dtype)
    K.gemm(a, b, c, alpha=alpha, beta=0.0)
    assert np.all(np.isfinite(c))
    check_gemm(c, a, b, alpha=alpha)


@pytest.mark.parametrize("beta", [0.0, 0.5, -2.0, 1.0 / 3.0])
def test_gemm_empty_depth(isa: str, dtype: Any, beta: float) -> None:
    # k == 0: the product is empty, so C = beta * C: one rounded product, bitwise NumPy's (a
    # Python float times an array keeps the array's dtype).
    rng = rng_for("gemm-k0", beta, dtype)
    m, n = MR + 1, nr(dtype) + 1
    a, b = np.zeros((m, 0), dtype=dtype), np.zeros((0, n), dtype=dtype)
    c0 = uniform(rng, (m, n), dtype)
    c = c0.copy()
    K.gemm(a, b, c, alpha=1.0, beta=beta)
    expected = np.zeros_like(c0) if beta == 0.0 else dtype(beta) * c0
    assert expected.dtype == dtype
    assert np.array_equal(c, expected)
    assert np.all(K.gemm(a, b) == 0)


# (m, n, k, A transposed): the layers of issue 17's tabular network (200 x 54 -> 100 -> 7, each
# pass's product), the edges of both blockings, a depth of three KC blocks (the epilogue only
# after the last), and narrow last panels of both layouts over two depth blocks (the AVX-512
# narrow tiles start C, the epilogue comes with the second block's tiles).
EPILOGUE_SHAPES = [
    (200, 100, 54, False),
    (200, 7, 100, False),
    (200, 100, 7, False),
    (MR_512 + 1, 2 * 16 + 1, 2 * KC + 88, False),
    (MC_512 + 1, 100, 37, True),
    (2 * MC + 1, 7, 64, True),
    (54, 100, 200, True),
    (21, 1, 30, True),
    (2 * MC_512 + 3, 36, KC + 40, False),
    (2 * MC_512 + 3, 36, KC + 40, True),
    (1, 1, 1, False),
]


@pytest.mark.parametrize("shape", EPILOGUE_SHAPES, ids=lambda s: "x".join(str(v) for v in s))
def test_gemm_epilogue(isa: str, dtype: Any, shape: tuple[int, int, int, bool]) -> None:
    # The epilogue is the product, then the pass it replaces (bias_activation's bias and relu,
    # activation_backward's relu): bitwise those two steps, and within gemm's bound of NumPy.
    m, n, k, a_transposed = shape
    rng = rng_for("gemm-epilogue", shape, dtype)
    a = uniform(rng, (m, k), dtype)
    if a_transposed:
        a = np.ascontiguousarray(a.T).T
    b, bias = uniform(rng, (k, n), dtype), uniform(rng, (n,), dtype)
    positive = rng.standard_normal((m, n)).astype(dtype)
    positive[:, ::3] = 0.0  # relu's kink: the gradient is 0 there

    plain = K.gemm(a, b)
    forward = K.gemm(a, b, bias=bias, relu=True)
    assert np.array_equal(bits(forward), bits(K.bias_activation(plain.copy(), bias, "relu")))
    expected = np.maximum(a.astype(F64) @ b.astype(F64) + bias.astype(F64), 0.0)
    magnitude = np.abs(a.astype(F64)) @ np.abs(b.astype(F64)) + np.abs(bias.astype(F64))
    blocks = -(-k // KC)
    tol = (gamma(k + blocks + 1, unit_roundoff(dtype)) + gamma(k + 2, U64)) * magnitude
    assert_within(forward, expected, tol, "gemm + bias + relu")

    linear = K.gemm(a, b, bias=bias)
    assert np.array_equal(bits(linear), bits(K.bias_activation(plain.copy(), bias, "linear")))

    backward = K.gemm(a, b, positive=positive)
    assert np.array_equal(bits(backward), bits(K.activation_backward("relu", positive, positive, plain)))
    assert np.array_equal(backward == 0, (positive <= 0) | (plain == 0))

    # The column sums ride along with any other part: column_sum's bits on the finished C.
    for kwargs in (dict(positive=positive), dict(bias=bias, relu=True), {}):
        c, sums = K.gemm(a, b, column_sums=True, **kwargs)
        assert np.array_equal(bits(c), bits(K.gemm(a, b, **kwargs)))
        assert np.array_equal(bits(sums), bits(K.column_sum(c))), kwargs

    # Plain SGD's step on weights shaped as C: w - lr * c, the multiply then the subtract, each
    # rounded in the dtype (the optimizer's sgd kernel); the weights outside C's shape untouched.
    lr = dtype(0.05)
    weights = uniform(rng, (m, n + 3), dtype)
    w0 = weights.copy()
    K.gemm(a, b, update=weights[:, :n], learning_rate=float(lr))
    assert np.array_equal(bits(weights[:, :n]), bits(w0[:, :n] - lr * plain))
    assert np.array_equal(bits(weights[:, n:]), bits(w0[:, n:]))


@pytest.mark.parametrize("shape", [(200, 100, 7), (MC_512 + 13, 2 * 16 + 5, 37), (9, 40, 256), (1, 1, 1)],
                         ids=lambda s: "x".join(str(v) for v in s))
def test_gemm_over_its_own_mask(isa: str, dtype: Any, shape: tuple[int, int, int]) -> None:
    # kernels.h: with k <= 256, C may be the epilogue's positive itself (a relu layer's delta
    # written over its activation): the bits of the product into a separate C.
    m, n, k = shape
    rng = rng_for("gemm-over-mask", shape, dtype)
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (n, k), dtype).T
    positive = rng.standard_normal((m, n + 3)).astype(dtype)
    positive[:, ::3] = 0.0
    expected = K.gemm(a, b, positive=positive[:, :n].copy())
    c, sums = K.gemm(a, b, positive[:, :n], positive=positive[:, :n], column_sums=True)
    assert c is not None
    assert np.array_equal(bits(positive[:, :n]), bits(expected))
    assert np.array_equal(bits(sums), bits(K.column_sum(expected)))


def test_gemm_epilogue_rejects_bad_operands(isa: str, dtype: Any) -> None:
    a, b = np.ones((3, 4), dtype=dtype), np.ones((4, 5), dtype=dtype)
    with pytest.raises(ValueError, match="bias"):
        K.gemm(a, b, bias=np.ones(4, dtype=dtype))
    with pytest.raises(ValueError, match="positive"):
        K.gemm(a, b, positive=np.ones((3, 4), dtype=dtype))


def test_gemm_empty_output(isa: str, dtype: Any) -> None:
    # m == 0 or n == 0: nothing to compute; the result has the empty shape. (NumPy gives
    # size-0 arrays zero strides, so a layout check must not reject them.)
    rng = rng_for("gemm-empty", dtype)
    a, b = uniform(rng, (4, 5), dtype), uniform(rng, (5, 0), dtype)
    assert K.gemm(a, b).shape == (4, 0)
    assert K.gemm(a, b, np.zeros((4, 0), dtype=dtype), beta=0.5).shape == (4, 0)
    a, b = uniform(rng, (0, 5), dtype), uniform(rng, (5, 3), dtype)
    assert K.gemm(a, b).shape == (0, 3)
    assert K.gemm(a, b, np.zeros((0, 3), dtype=dtype), beta=0.5).shape == (0, 3)


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_gemm_rows_do_not_depend_on_the_batch(isa: str, dtype: Any, beta: float) -> None:
    # Documented in kernels.h: with alpha == 1 every C element is one multiply-add chain over k in
    # increasing order whatever the blocking, so row i of an (m, k) @ (k, n) product is bitwise
    # the (1, k) @ (k, n) product of row i (inference on one sample gives the batch's answer).
    # m spans two MC blocks plus a partial microkernel tile; k two depth blocks; n a partial NR
    # tile past a full NC block.
    rng = rng_for("gemm-rows", beta, dtype)
    m, n, k = 2 * MC + 1, nc(dtype) + nr(dtype) + 3, KC + 44
    a, b, c0 = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype), uniform(rng, (m, n), dtype)
    full = K.gemm(a, b, c0.copy(), alpha=1.0, beta=beta)
    check_gemm(full, a, b, c0, beta=beta)
    for i in range(m):
        row = K.gemm(a[i : i + 1], b, c0[i : i + 1].copy(), alpha=1.0, beta=beta)
        assert np.array_equal(bits(row[0]), bits(full[i])), f"row {i} differs"
    # A block of rows starting mid-tile gives the same bits too.
    part = K.gemm(a[5:80], b, c0[5:80].copy(), alpha=1.0, beta=beta)
    assert np.array_equal(bits(part), bits(full[5:80]))


@pytest.mark.parametrize("layout", ["rows side by side", "row-major"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 34, 36, 39, 40, 107])
@pytest.mark.parametrize("m", [3, 4, 13, 21, 54, 100, 2 * MC + 5])
def test_gemm_narrow_panel(isa: str, dtype: Any, m: int, n: int, layout: str) -> None:
    # A narrow last panel (at most 8 columns past the whole 32-column panels) runs a tile that
    # holds several rows per vector on AVX-512: with A's rows side by side in memory (a
    # transposed view, as the kernel gradients read their input) and with a row-major A
    # (interleaved four rows at a time up to 4 columns, else two) up to 8. Side by side, a row count
    # that is not a multiple of the rows a vector holds (13, 21 and 54 rows; 5 in the last block
    # of 2 MC + 5) ends with a tile that starts early and stores only its new rows; fewer rows
    # than a vector holds, and the rows an interleaved A leaves over, run the one-row-per-vector
    # tiles. All must give the bits of the product one row at a time (the chain property), and
    # the reference's values; k spans two depth blocks (in the second, the narrow tiles continue
    # each element's chain from C).
    rng = rng_for("gemm-narrow", m, n, layout, dtype)
    k = KC + 37
    if layout == "row-major":
        a = uniform(rng, (m, k), dtype)
    else:
        a = uniform(rng, (k, m), dtype).T  # columns contiguous: a(i, k) at a[i + k m]
    b = uniform(rng, (k, n), dtype)
    full = K.gemm(a, b)
    check_gemm(full, a, b)
    for i in sorted({0, 1, m // 2, m - 1}):
        row = K.gemm(a[i : i + 1], b)
        assert np.array_equal(bits(row[0]), bits(full[i])), f"row {i} differs"
    one_block = K.gemm(a[:, :KC], b[:KC])
    check_gemm(one_block, a[:, :KC], b[:KC])
    assert np.array_equal(bits(K.gemm(a[m - 1 :, :KC], b[:KC])[0]), bits(one_block[m - 1]))


def test_gemm_columns_do_not_depend_on_the_blocking(isa: str, dtype: Any) -> None:
    # The same documented chain property, across columns: a column range that starts inside an
    # NR tile (and one past an NC block) gives the bits of the full product's columns.
    rng = rng_for("gemm-cols", dtype)
    m, n, k = MR + 1, nc(dtype) + 2 * nr(dtype) + 5, 70
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    full = K.gemm(a, b)
    for lo, hi in [(3, 3 + nr(dtype)), (nc(dtype) - 1, n), (n - 1, n)]:
        part = K.gemm(a, b[:, lo:hi])
        assert np.array_equal(bits(part), bits(full[:, lo:hi])), f"columns {lo}:{hi} differ"


def test_gemm_large_in_place_b(isa: str, dtype: Any) -> None:
    # A row-major B of at least 512 KB read in place: on AVX-512 the first tile of each panel
    # also asks for the next panel's rows. The asks change no value: each row alone (one-row
    # tiles, no asks) gives the full product's bits, and the reference's values.
    rng = rng_for("gemm-large-b", dtype)
    m, n, k = 2 * MR + 3, 2 * nr(dtype) + 37, 2048
    a, b = uniform(rng, (m, k), dtype), uniform(rng, (k, n), dtype)
    full = K.gemm(a, b)
    check_gemm(full, a, b)
    for i in (0, MR, m - 1):
        row = K.gemm(a[i : i + 1], b)
        assert np.array_equal(bits(row[0]), bits(full[i])), f"row {i} differs"


# ---------------------------------------------------------------------------
# bias + activation
# ---------------------------------------------------------------------------


def activation_tolerance(name: str, z: np.ndarray, expected: np.ndarray, dtype: Any) -> np.ndarray:
    """Bound on |act(z) - reference| for z already in the kernel's dtype.

    sigmoid: exp to within 4 ulp (range reduction by ln2 with a two-part constant, then a
    Taylor polynomial below half an ulp; or libm), then 1 + e and a division: 8 ulp relative.
    tanh: expm1 to within 4 ulp, one add, one division: 8 ulp relative (expm1 keeps relative
    accuracy near 0, so no absolute floor is needed).
    softmax: z_j - max(z) is rounded once, an absolute error u |z_j - max| in the exponent, that
    is a relative error of the same size in exp; exp itself 4 ulp. The denominator, a sum of n
    positive terms, is off by gamma_n plus its terms' errors weighted by their share:
    u (n + 4 + sum_i e_i |z_i - max| / sum_i e_i), with e_i = exp(z_i - max). The reciprocal and
    the product add 2: per element u (|z_j - max| + spread + n + 10) relative, spread being
    that weighted mean.
    linear and relu are exact.
    """
    u = unit_roundoff(dtype) + U64
    if name in ("linear", "relu"):
        return np.zeros_like(expected)
    if name in ("sigmoid", "tanh"):
        return 8 * u * np.abs(expected)
    assert name == "softmax"
    z64 = z.astype(F64)
    distance = z64.max(axis=1, keepdims=True) - z64
    e = np.exp(-distance)
    spread = np.sum(e * distance, axis=1, keepdims=True) / np.sum(e, axis=1, keepdims=True)
    return u * (distance + spread + z.shape[1] + 10) * np.abs(expected)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_bias_activation(
    isa: str, dtype: Any, name: str, width: int, with_bias: bool, layout: str
) -> None:
    rng = rng_for("bias-act", name, width, with_bias, layout, dtype)
    rows = 5
    # N(0, 4): sigmoid/tanh from saturation (|z| ~ 12) to near 0; softmax spread of ~20 per row.
    z0 = (4.0 * rng.standard_normal((rows, width))).astype(dtype)
    if name == "relu":
        z0[:, ::3] = 0.0  # the kink: relu(0) = 0
    bias = rng.standard_normal(width).astype(dtype) if with_bias else None
    if layout == "contiguous":
        z = z0.copy()
        a = K.bias_activation(z, bias, name)
        a_outside_ok = True
    else:
        # z and a: misaligned, rows apart by more than their width, NaN/sentinel all around.
        _, z, _ = in_buffer(z0)
        a_buf, a, a_outside = in_buffer(np.zeros_like(z0), offset=3, pad=2, row_step=3, fill=-7.25)
        before = a_buf.copy()
        out = K.bias_activation(z, bias, name, a)
        assert np.shares_memory(out, a_buf)
        a_outside_ok = bool(np.array_equal(bits(a_buf[a_outside]), bits(before[a_outside])))
    assert a_outside_ok, "bias_activation wrote outside its output view"
    assert a.dtype == dtype and a.shape == (rows, width)
    # z += bias in place: one correctly rounded addition per element, bitwise NumPy's.
    z_expected = z0 + bias if bias is not None else z0
    assert np.array_equal(bits(np.ascontiguousarray(z)), bits(z_expected))
    expected = ref.activation(name, z_expected)
    assert_within(a, expected, activation_tolerance(name, z_expected, expected, dtype), name)
    if name in ("linear", "relu"):
        assert np.array_equal(a, expected.astype(dtype))  # exact (compared as values: -0 == 0)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_bias_activation_in_place(isa: str, dtype: Any, name: str) -> None:
    # a may alias z (documented): the result is bitwise that of separate arrays.
    rng = rng_for("bias-act-alias", name, dtype)
    z0 = (4.0 * rng.standard_normal((3, 17))).astype(dtype)
    bias = rng.standard_normal(17).astype(dtype)
    separate = K.bias_activation(z0.copy(), bias, name)
    z = z0.copy()
    out = K.bias_activation(z, bias, name, z)
    assert np.shares_memory(out, z)
    assert np.array_equal(bits(z), bits(separate))


EXTREMES = [1e30, -1e30, 100.0, -100.0, 0.0, 30.0, -30.0, 1.0, -1.0]  # 9 wide: a vector tail


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax"])
def test_activation_extremes(isa: str, dtype: Any, name: str) -> None:
    # Saturation must give finite, correct values, not overflow: sigmoid(1e30) = 1,
    # sigmoid(-1e30) = 0, tanh(+-1e30) = +-1, softmax of rows with +-1e30 / +-100 sums to 1.
    # The true values at -100 and beyond (3.7e-44, 0) underflow float32, and a kernel may clamp
    # exp's argument to stay in the normal range; outputs are probabilities on the scale of 1,
    # so those are compared with an absolute floor of 2 ulp of 1 on top of the relative bound.
    rows = [
        EXTREMES,
        EXTREMES[::-1],
        [100.0, 100.0, -100.0, 99.0, 98.0, -1e30, 97.0, 100.0, 0.0],
        [-1e30] * 9,
        [1e30] * 9,
    ]
    z = np.array(rows, dtype=dtype)
    a = K.bias_activation(z.copy(), None, name)
    assert np.all(np.isfinite(a))
    expected = ref.activation(name, z)
    floor = 2 * float(np.finfo(dtype).eps)
    tol = activation_tolerance(name, z, expected, dtype) + floor
    assert_within(a, expected, tol, f"{name} at extremes")
    if name == "sigmoid":
        assert_within(a[0, :2], [1.0, 0.0], floor, "sigmoid(+-1e30)")
    if name == "tanh":
        assert_within(a[0, :2], [1.0, -1.0], floor, "tanh(+-1e30)")
    if name == "softmax":
        assert np.all(a >= 0)
        sums = a.astype(F64).sum(axis=1)
        # Each entry within its bound, so the sum within the sum of the bounds.
        assert_within(sums, np.ones(len(rows)), tol.sum(axis=1) + 9 * U64, "softmax row sums")
        assert_within(a[3], np.full(9, 1.0 / 9.0), tol[3], "softmax of equal -1e30")


def test_tanh_keeps_relative_accuracy_near_zero(isa: str, dtype: Any) -> None:
    # tanh(z) ~ z for tiny z: a formula through 1 - 2 / (exp(2z) + 1) would return 0 or a
    # multiple of eps there. The 8-ulp relative bound holds with no absolute floor, down to
    # subnormal-free tiny values and across the vector tail (9 wide).
    tiny = float(np.finfo(dtype).tiny)
    row = [1e-30, -1e-30, 1e-8, -1e-8, 1e-3, -1e-3, 0.1, 64 * tiny, -64 * tiny]
    z = np.array([row, row[::-1]], dtype=dtype)
    a = K.bias_activation(z.copy(), None, "tanh")
    expected = np.tanh(z.astype(F64))
    u = unit_roundoff(dtype) + U64
    assert_within(a, expected, 8 * u * np.abs(expected), "tanh near 0")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_nan_propagates(isa: str, dtype: Any, name: str) -> None:
    # A diverging run must show up as NaN, not be hidden by a clamp or a max(0, z). The
    # reference propagates NaN elementwise, and for softmax to the whole row (its max is NaN).
    rng = rng_for("nan", name, dtype)
    z = rng.standard_normal((4, 17)).astype(dtype)
    nan_at = [(0, 0), (1, 8), (2, 16)]  # first lane, second vector, the tail
    for i, j in nan_at:
        z[i, j] = np.nan
    a = K.bias_activation(z.copy(), None, name)
    expected = ref.activation(name, z)
    assert np.array_equal(np.isnan(a), np.isnan(expected)), (
        f"{name}: NaN at {np.argwhere(np.isnan(a)).tolist()}, "
        f"expected at {np.argwhere(np.isnan(expected)).tolist()}"
    )
    for i, j in nan_at:
        assert np.isnan(a[i, j])
    finite = ~np.isnan(expected)
    assert np.all(np.isfinite(a[finite]))


# ---------------------------------------------------------------------------
# activation backward
# ---------------------------------------------------------------------------


def activation_backward_tolerance(
    name: str, a: np.ndarray, da: np.ndarray, expected: np.ndarray, dtype: Any
) -> np.ndarray:
    """Bound on |dz - reference| for a, da already in the kernel's dtype.

    sigmoid: da * a * (1 - a): three roundings, 4 ulp relative.
    tanh: da * (1 - a*a): a*a rounded (u a^2 absolute, which 1 - a^2 may cancel), the
    subtraction (u |1 - a^2|) and the product: 4 u |da| (|1 - a^2| + a^2).
    softmax: a_j (da_j - dot), dot = sum_i da_i a_i: gamma_n * sum |da_i a_i| for the dot, then
    the subtraction and the product: u |a_j| ((n + 2) sum |da a| + 2 |da_j - dot|).
    linear and relu are exact.
    """
    u = unit_roundoff(dtype) + U64
    a64, da64 = a.astype(F64), da.astype(F64)
    if name in ("linear", "relu"):
        return np.zeros_like(expected)
    if name == "sigmoid":
        return 4 * u * np.abs(expected)
    if name == "tanh":
        return 4 * u * np.abs(da64) * (np.abs(1.0 - a64 * a64) + a64 * a64)
    assert name == "softmax"
    n = a.shape[1]
    dot = (da64 * a64).sum(axis=1, keepdims=True)
    s = np.abs(da64 * a64).sum(axis=1, keepdims=True)
    return u * np.abs(a64) * ((n + 2) * s + 2 * np.abs(da64 - dot))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward(isa: str, dtype: Any, name: str, width: int) -> None:
    rng = rng_for("act-back", name, width, dtype)
    rows = 5
    z0 = (3.0 * rng.standard_normal((rows, width))).astype(dtype)
    if name == "relu":
        z0[:, ::3] = 0.0  # the kink: derivative 0 there (TensorFlow's choice)
    a0 = ref.activation(name, z0).astype(dtype)  # what the forward pass hands over
    da0 = rng.standard_normal((rows, width)).astype(dtype)
    # Every input misaligned, with its own row stride, NaN around it.
    _, z, _ = in_buffer(z0)
    _, a, _ = in_buffer(a0, offset=3, pad=1, row_step=3)
    _, da, _ = in_buffer(da0, offset=5, pad=2, row_step=1)
    dz = K.activation_backward(name, z, a, da)
    assert dz.dtype == dtype and dz.shape == (rows, width)
    expected = ref.activation_backward(name, z0, a0, da0)
    tol = activation_backward_tolerance(name, a0, da0, expected, dtype)
    assert_within(dz, expected, tol, f"{name} backward")
    if name == "linear":
        assert np.array_equal(bits(dz), bits(da0))
    if name == "relu":
        assert np.array_equal(dz, np.where(z0 > 0, da0, 0))
        assert np.all(dz[:, ::3] == 0)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


def make_targets(
    rng: np.random.Generator, name: str, rows: int, width: int, dtype: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(y as the kernel takes it, the dense float64 targets the tolerances need)."""
    if name == "sparse_categorical_crossentropy":
        labels = rng.integers(0, width, size=rows).astype(np.int32)
        labels[0] = width - 1  # the last class: the vector tail
        dense = np.zeros((rows, width))
        dense[np.arange(rows), labels] = 1.0
        return labels, dense
    if name in ("mse", "mae"):
        y = rng.standard_normal((rows, width)).astype(dtype)
        return y, y.astype(F64)
    if name == "binary_crossentropy":
        # Hard 0/1 targets on even rows, soft ones (label smoothing, probabilities) on odd rows.
        y = rng.uniform(0.0, 1.0, size=(rows, width))
        y[::2] = np.round(y[::2])
        y = y.astype(dtype)
        return y, y.astype(F64)
    # categorical: one-hot rows, soft rows (a random distribution), and one row whose targets
    # sum to 1.5 (the gradient softmax(z) * sum(y) - y must use the sum).
    y = np.zeros((rows, width))
    for r in range(rows):
        if r % 2 == 0:
            y[r, rng.integers(0, width)] = 1.0
        else:
            y[r] = rng.dirichlet(np.ones(width))
    y[-1] *= 1.5
    y = y.astype(dtype)
    return y, y.astype(F64)


def make_predictions(
    rng: np.random.Generator, name: str, from_logits: bool, rows: int, width: int, dtype: Any
) -> np.ndarray:
    if name in ("mse", "mae"):
        return rng.standard_normal((rows, width)).astype(dtype)
    if from_logits:
        return (3.0 * rng.standard_normal((rows, width))).astype(dtype)
    if name == "binary_crossentropy":
        # Away from the clip region [0, 1e-7] / [1 - 1e-7, 1] (tested on its own below).
        return rng.uniform(0.01, 0.99, size=(rows, width)).astype(dtype)
    # Categorical from probabilities: unnormalised positive rows (Keras divides by the sum).
    return rng.uniform(0.05, 1.0, size=(rows, width)).astype(dtype)


def loss_tolerances(
    name: str, from_logits: bool, pred: np.ndarray, y: np.ndarray, dtype: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on |row_loss - ref| and on |grad - ref| / |row_weight * grad_scale|.

    pred and y are the kernel's inputs as float64 (y dense). u covers the kernel's roundings
    plus the float64 reference's. "c ulp" for exp/log/log1p is the 4-ulp bound of the
    elementwise functions (see activation_tolerance); a log's absolute error is then
    c u (|log x| + 1), since log x = e ln2 + log(m) adds the exponent's part. Every loss reduces
    over n = width columns: gamma_n times the sum of |terms|.
    """
    u = unit_roundoff(dtype) + U64
    n = pred.shape[1]
    if name == "mse":
        d = pred - y
        # d, d^2, n-term sum, / n: relative (n + 4) u of the (non-negative) mean; gradient
        # scale * 2/n * d: scale (w * grad_scale, both rounded), 2/n and the product: 6 ulp.
        return (n + 4) * u * np.mean(d * d, axis=1), 6 * u * 2 * np.abs(d) / n
    if name == "mae":
        d = pred - y
        # |d| exact once d is rounded (the sign of a rounded difference is exact, so the
        # gradient is sign(d) * scale / n up to 4 roundings of the scale).
        return (n + 3) * u * np.mean(np.abs(d), axis=1), np.full(d.shape, 4 * u / n)
    if name == "binary_crossentropy":
        if from_logits:
            # softplus(x) - x y = max(x, 0) + log1p(exp(-|x|)) - x y: absolute error
            # c u (|x| (1 + |y|) + 1) per term; gradient (sigmoid(x) - y) scale / n with
            # sigmoid to 8 ulp and the difference, products and scale: 12 ulp of the terms.
            x = pred
            per = (n + 8) * u * np.mean(np.abs(x) * (1 + np.abs(y)) + 1, axis=1)
            grad = 12 * u * (ref.sigmoid(x) + np.abs(y)) / n
            return per, grad
        # -(y log p + (1 - y) log(1 - p)): each log c u (|log| + 1) absolute, 1 - p and 1 - y
        # one rounding each; gradient ((1 - y)/(1 - p) - y/p) scale / n: two quotients of
        # rounded operands, their difference, scale: 10 ulp of the two quotients.
        p = pred
        terms = np.abs(y) * (np.abs(np.log(p)) + 1) + np.abs(1 - y) * (np.abs(np.log1p(-p)) + 1)
        per = (n + 8) * u * np.mean(terms, axis=1)
        grad = 10 * u * (np.abs(y / p) + np.abs((1 - y) / (1 - p))) / n
        return per, grad
    assert name in CATEGORICAL
    y_sum = y.sum(axis=1, keepdims=True)
    if from_logits:
        # lse = max + log(sum exp(z - max)). Each exp has relative error u (|z_j - max| + 4),
        # so the sum is off by u (n + 4 + spread), spread = sum_j e_j |z_j - max| / sum_j e_j
        # (terms that underflow carry no weight); the log turns that into an absolute error and
        # adds its own 4 u (|log sum| + 1); adding max rounds once more, by at most
        # min(u |lse|, |log sum|) (round to nearest is never farther than max itself). So
        #   err(lse) <= u (n + 12 + spread + 4 |log sum|) + min(u |lse|, |log sum|) =: u E.
        # Row loss sum_j y_j (lse - z_j): |y_j| (u E + u |lse - z_j|), plus gamma_n of the sum.
        # Gradient (exp(z_j - lse) sum(y) - y_j) scale: exp's argument is off by
        # u (E + |z_j - lse|), exp 4 ulp, sum(y) gamma_n, then the product, difference, scale.
        z = pred
        zmax = z.max(axis=1, keepdims=True)
        e_j = np.exp(z - zmax)
        spread = np.sum(e_j * (zmax - z), axis=1, keepdims=True) / e_j.sum(axis=1, keepdims=True)
        log_sum = np.log(e_j.sum(axis=1, keepdims=True))
        lse = zmax + log_sum
        e = n + 12 + spread + 4 * np.abs(log_sum) + np.minimum(np.abs(lse), np.abs(log_sum) / u)
        per = u * np.sum(np.abs(y) * (e + (n + 2) * np.abs(lse - z)), axis=1)
        s = np.exp(z - lse)
        grad = u * (s * np.abs(y_sum) * (e + np.abs(z - lse) + n + 8) + 4 * np.abs(y))
        return per, grad
    # From probabilities: s = sum p (n positive terms, gamma_n), q = p / s (n + 1 roundings,
    # relative), log of the clipped q: (n + 1) u + c u (|log q| + 1) absolute; summed over the
    # row with gamma_n. Gradient (kept(y) - [kept] y_j / q_j) scale / s: both terms carry
    # (n + 2) relative roundings, their difference one, / s and scale n + 4 more.
    s = pred.sum(axis=1, keepdims=True)
    q = np.clip(pred / s, ref.EPSILON, 1 - ref.EPSILON)
    per = u * np.sum(np.abs(y) * ((2 * n + 8) + (n + 4) * np.abs(np.log(q))), axis=1)
    grad = u * (2 * n + 8) * (np.abs(y_sum) + np.abs(y / q)) / s
    return per, grad


@pytest.mark.parametrize("width", LOSS_WIDTHS)
@pytest.mark.parametrize("from_logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_loss(
    isa: str, dtype: Any, name: str, from_logits: bool, width: int, weighted: bool
) -> None:
    rng = rng_for("loss", name, from_logits, width, weighted, dtype)
    rows = 6
    y, y_dense = make_targets(rng, name, rows, width, dtype)
    pred0 = make_predictions(rng, name, from_logits, rows, width, dtype)
    if name == "mae":
        pred0[0, 0] = y[0, 0]  # the kink: gradient 0 (NumPy's and TensorFlow's sign(0))
    weight = rng.uniform(0.1, 2.0, size=rows).astype(dtype) if weighted else None
    if weight is not None:
        weight[1] = 0.0  # a sample that does not count
    grad_scale = 1.0 / rows  # Keras's mean over the batch
    # pred (and dense y) as misaligned views with a row stride, NaN around them.
    _, pred, _ = in_buffer(pred0)
    if y.ndim == 2:
        _, y, _ = in_buffer(y, offset=3, pad=1, row_step=1)
    total, row_loss, grad = K.loss(name, from_logits, pred, y, weight, grad_scale)
    assert isinstance(total, float)
    assert row_loss.dtype == dtype and row_loss.shape == (rows,)
    assert grad.dtype == dtype and grad.shape == (rows, width)

    y_ref = y if name == "sparse_categorical_crossentropy" else y_dense
    expected_rows = ref.loss(name, y_ref, pred0, from_logits=from_logits)
    # reference.loss_gradient is the gradient of the batch *mean*: times rows, it is the
    # gradient of the sum of the row losses; the kernel scales row r by weight[r] * grad_scale.
    w64 = np.ones(rows) if weight is None else weight.astype(F64)
    row_scale = w64 * grad_scale
    expected_grad = (
        ref.loss_gradient(name, y_ref, pred0, from_logits=from_logits) * rows * row_scale[:, None]
    )
    row_tol, grad_unit_tol = loss_tolerances(name, from_logits, pred0.astype(F64), y_dense, dtype)
    assert_within(row_loss, expected_rows, row_tol, f"{name} row losses")
    assert_within(grad, expected_grad, grad_unit_tol * row_scale[:, None], f"{name} gradient")
    # The total is the weighted sum of the rows, accumulated in double: within the rows'
    # bounds of the reference, and (up to double rounding) the sum of the returned row losses.
    assert_within(
        np.array(total), np.sum(w64 * expected_rows), np.sum(w64 * row_tol), f"{name} total"
    )
    own = w64 * row_loss.astype(F64)
    assert_within(np.array(total), np.sum(own), 2 * rows * U64 * np.sum(np.abs(own)), "total")
    if weight is not None:
        assert np.all(grad[1] == 0)


def test_loss_ignores_from_logits_for_regression(isa: str, dtype: Any) -> None:
    rng = rng_for("loss-regression", dtype)
    pred, y = rng.standard_normal((4, 9)).astype(dtype), rng.standard_normal((4, 9)).astype(dtype)
    for name in ("mse", "mae"):
        plain = K.loss(name, False, pred, y)
        logits = K.loss(name, True, pred, y)
        assert plain[0] == logits[0]
        assert np.array_equal(bits(plain[1]), bits(logits[1]))
        assert np.array_equal(bits(plain[2]), bits(logits[2]))


def clipped_loss(name: str, pred: np.ndarray, y: np.ndarray, dtype: Any) -> np.ndarray:
    """The probability losses with the clip bounds as the dtype holds them.

    Keras (and the kernel) clip to [eps, 1 - eps] in the model's dtype: in float32, 1 - 1e-7
    rounds to 1 - 2**-23, so log(1 - q) at q = 1 is log(1.19e-7) = -15.94, not the float64
    reference's log(1e-7) = -16.12. Away from the clip both agree; at exact 0 and 1 the
    expectation must use the dtype's bounds.
    """
    lo, hi = float(dtype(ref.EPSILON)), float(dtype(1.0 - ref.EPSILON))
    p, t = pred.astype(F64), y.astype(F64)
    if name == "binary_crossentropy":
        q = np.clip(p, lo, hi)
        result: np.ndarray = np.mean(-(t * np.log(q) + (1 - t) * np.log(1 - q)), axis=1)
        return result
    q = np.clip(p / p.sum(axis=1, keepdims=True), lo, hi)
    result = -np.sum(t * np.log(q), axis=1)
    return result


@pytest.mark.parametrize("name", ["binary_crossentropy", *CATEGORICAL])
def test_loss_probabilities_exactly_0_and_1(isa: str, dtype: Any, name: str) -> None:
    # log(0) must not happen: the clip keeps every loss finite (at most -log(eps) ~ 16 per term),
    # and the clipped entries pass no gradient (TensorFlow's clip_by_value).
    p = np.array(
        [
            [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        ],
        dtype=dtype,
    )
    if name == "sparse_categorical_crossentropy":
        labels = np.array([0, 0, 0, 8], dtype=np.int32)  # wrong, right, half right, right
        y_kernel: np.ndarray = labels
        y_dense = np.zeros(p.shape)
        y_dense[np.arange(4), labels] = 1.0
        y_ref: np.ndarray = labels
    else:
        y_dense = np.zeros(p.shape)
        y_dense[:, 0] = 1.0
        y_dense[3, :] = 0.0
        y_dense[3, 8] = 1.0
        if name == "binary_crossentropy":
            y_dense[2, 3] = 0.3  # a soft target on a 0 probability
        y_kernel = y_dense.astype(dtype)
        y_ref = y_kernel
    total, row_loss, grad = K.loss(name, False, p, y_kernel, None, 0.25)
    assert np.isfinite(total) and np.all(np.isfinite(row_loss)) and np.all(np.isfinite(grad))
    expected = clipped_loss(name, p, y_dense, dtype)
    # A few logs (c ulp + the exponent part, see loss_tolerances) per row, summed over 9 terms.
    u = unit_roundoff(dtype) + U64
    assert_within(row_loss, expected, (9 + 8) * u * (np.abs(expected) + 9), f"{name} at 0 and 1")
    assert np.all(row_loss <= 9 * 16.2)  # at most -log(eps) per term (bce: mean, cce: sum)
    if dtype == np.float64:
        assert_within(expected, ref.loss(name, y_ref, p), 64 * U64 * (np.abs(expected) + 1), "ref")
    # Gradient: exact 0 and 1 are clipped, so no gradient flows through them (exactly 0); in the
    # row (0.5, 0.5, 0, ...) the two halves pass. For the categorical losses every quantity there
    # (q = 0.5, y / q = 2, the row sum 1, the scale 0.25) is exact in binary, so the gradient is
    # exactly the reference's (batch-mean gradient over 4 rows, times 4 rows, times grad_scale
    # 0.25); binary cross-entropy divides by n = 9, so it gets its usual bound there.
    expected_grad = ref.loss_gradient(name, y_ref, p)
    if name == "binary_crossentropy":
        clipped = (p == 0) | (p == 1)
        assert np.all(grad[clipped] == 0) and np.all(expected_grad[clipped] == 0)
        _, grad_tol = loss_tolerances(name, False, np.where(clipped, 0.5, p), y_dense, dtype)
        assert_within(grad, expected_grad, grad_tol * 0.25, f"{name} gradient at 0 and 1")
    else:
        assert np.array_equal(grad, expected_grad), f"{name} gradient at 0 and 1: {grad}"


@pytest.mark.parametrize("name", ["binary_crossentropy", *CATEGORICAL])
def test_loss_extreme_logits(isa: str, dtype: Any, name: str) -> None:
    # From logits nothing is clipped: softplus and log-sum-exp stay finite at +-1e30 and +-100.
    z = np.array([EXTREMES, EXTREMES[::-1], [100.0] * 4 + [-100.0] * 5], dtype=dtype)
    rows, width = z.shape
    if name == "sparse_categorical_crossentropy":
        labels = np.array([0, 1, 8], dtype=np.int32)
        y: np.ndarray = labels
        y_dense = np.zeros(z.shape)
        y_dense[np.arange(rows), labels] = 1.0
    else:
        y_dense = np.zeros(z.shape)
        y_dense[:, 0] = 1.0
        y_dense[1] = 0.25 if name == "binary_crossentropy" else 1.0 / width
        y = y_dense.astype(dtype)
    total, row_loss, grad = K.loss(name, True, z, y, None, 1.0 / rows)
    assert np.isfinite(total) and np.all(np.isfinite(row_loss)) and np.all(np.isfinite(grad))
    y_ref = y if name == "sparse_categorical_crossentropy" else y_dense
    expected = ref.loss(name, y_ref, z, from_logits=True)
    expected_grad = ref.loss_gradient(name, y_ref, z, from_logits=True)
    row_tol, grad_tol = loss_tolerances(name, True, z.astype(F64), y_dense, dtype)
    assert_within(row_loss, expected, row_tol, f"{name} at extreme logits")
    # Gradient entries are probabilities minus targets, on the scale of 1 (times 1/(rows n) or
    # 1/rows): where the true probability underflows (exp(-2e30)), an absolute floor of 2 ulp of
    # 1 on that scale.
    unit = 1.0 / rows / (width if name == "binary_crossentropy" else 1)
    floor = 2 * float(np.finfo(dtype).eps) * unit
    assert_within(grad, expected_grad, grad_tol / rows + floor, f"{name} gradient, extreme logits")


# Narrow rows (a classifier's outputs, up to 16 columns) take softmax and cross-entropy from
# logits a group of rows at a time, one vector lane per row: 37 rows are two full groups of 16
# (AVX-512 float32) or several of 8 and 4, and a ragged last group.
NARROW_ROWS = 37


@pytest.mark.parametrize("width", [1, 7, 10, 16, 17])
def test_softmax_rows_in_groups(isa: str, dtype: Any, width: int) -> None:
    rng = rng_for("softmax-groups", width, dtype)
    z0 = (4.0 * rng.standard_normal((NARROW_ROWS, width))).astype(dtype)
    bias = rng.standard_normal(width).astype(dtype)
    _, z, _ = in_buffer(z0)
    a_buf, a, a_outside = in_buffer(np.zeros_like(z0), offset=3, pad=2, row_step=2, fill=-7.25)
    before = a_buf.copy()
    K.bias_activation(z, bias, "softmax", a)
    assert np.array_equal(bits(a_buf[a_outside]), bits(before[a_outside])), "wrote outside a"
    z_expected = z0 + bias
    assert np.array_equal(bits(np.ascontiguousarray(z)), bits(z_expected))
    expected = ref.activation("softmax", z_expected)
    assert_within(a, expected, activation_tolerance("softmax", z_expected, expected, dtype), "softmax")
    # Each row's bits do not depend on the rows computed with it (nor so on a thread split).
    for r in (0, 15, 16, NARROW_ROWS - 1):
        alone = K.bias_activation(z0[r : r + 1].copy(), bias, "softmax")
        assert np.array_equal(bits(alone[0]), bits(np.ascontiguousarray(a[r]))), f"row {r}"


@pytest.mark.parametrize("width", [1, 7, 10, 16, 17])
@pytest.mark.parametrize("name", CATEGORICAL)
def test_cross_entropy_rows_in_groups(isa: str, dtype: Any, name: str, width: int) -> None:
    rng = rng_for("xent-groups", name, width, dtype)
    rows = NARROW_ROWS
    y, y_dense = make_targets(rng, name, rows, width, dtype)
    pred0 = make_predictions(rng, name, True, rows, width, dtype)
    weight = rng.uniform(0.1, 2.0, size=rows).astype(dtype)
    weight[17] = 0.0
    _, pred, _ = in_buffer(pred0)
    if y.ndim == 2:
        _, y, _ = in_buffer(y, offset=3, pad=1, row_step=1)
    total, row_loss, grad = K.loss(name, True, pred, y, weight, 1.0 / rows)
    y_ref = y if name == "sparse_categorical_crossentropy" else y_dense
    w64 = weight.astype(F64)
    expected_rows = ref.loss(name, y_ref, pred0, from_logits=True)
    expected_grad = (
        ref.loss_gradient(name, y_ref, pred0, from_logits=True) * (w64 / rows)[:, None] * rows
    )
    row_tol, grad_unit_tol = loss_tolerances(name, True, pred0.astype(F64), y_dense, dtype)
    assert_within(row_loss, expected_rows, row_tol, f"{name} row losses")
    assert_within(grad, expected_grad, grad_unit_tol * (w64 / rows)[:, None], f"{name} gradient")
    own = w64 * row_loss.astype(F64)
    assert_within(np.array(total), np.sum(own), 2 * rows * U64 * np.sum(np.abs(own)), "total")
    assert np.all(grad[17] == 0)
    for r in (0, 15, 16, rows - 1):
        one = K.loss(name, True, pred0[r : r + 1], y[r : r + 1], weight[r : r + 1], 1.0 / rows)
        assert bits(one[1])[0] == bits(row_loss)[r], f"row {r} loss"
        assert np.array_equal(bits(one[2][0]), bits(grad[r])), f"row {r} gradient"


# ---------------------------------------------------------------------------
# column sum and SGD update
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cols", WIDTHS)
@pytest.mark.parametrize("rows", [0, 1, 3, 100])
def test_column_sum(isa: str, dtype: Any, rows: int, cols: int) -> None:
    rng = rng_for("colsum", rows, cols, dtype)
    x0 = rng.standard_normal((rows, cols)).astype(dtype)
    _, x, _ = in_buffer(x0)
    out = K.column_sum(x)
    assert out.dtype == dtype and out.shape == (cols,)
    # A sum of `rows` terms: gamma_(rows-1) * sum |x| (plus the float64 reference's own).
    x64 = x0.astype(F64)
    tol = (gamma(max(rows - 1, 0), unit_roundoff(dtype)) + gamma(rows, U64)) * np.abs(x64).sum(0)
    assert_within(out, x64.sum(axis=0), tol, "column_sum")
    # Both kernels add the rows in order, one rounding per addition: bitwise the sequential sum
    # in the dtype (so the bias gradient does not depend on the ISA's vector width).
    sequential = np.zeros(cols, dtype=dtype)
    for r in range(rows):
        sequential = sequential + x0[r]
    assert np.array_equal(bits(out), bits(sequential))


@pytest.mark.parametrize("kernel", ["bias_activation", "activation_backward", "loss", "column_sum"])
def test_empty_batch(isa: str, dtype: Any, kernel: str) -> None:
    # A batch of 0 rows (a fresh np.zeros((0, 3)): NumPy gives it zero strides) is valid input:
    # empty results, and the column sum of no rows is 0.
    z = np.zeros((0, 3), dtype=dtype)
    if kernel == "bias_activation":
        assert K.bias_activation(z, np.ones(3, dtype=dtype), "softmax").shape == (0, 3)
    elif kernel == "activation_backward":
        assert K.activation_backward("softmax", z, z, z).shape == (0, 3)
    elif kernel == "loss":
        total, row_loss, grad = K.loss("mse", False, z, z)
        assert total == 0.0 and row_loss.shape == (0,) and grad.shape == (0, 3)
    else:
        out = K.column_sum(z)
        assert out.shape == (3,) and np.all(out == 0)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 9, 16, 17, 1000])
@pytest.mark.parametrize("learning_rate", [0.01, 0.5])
def test_sgd_update(isa: str, dtype: Any, n: int, learning_rate: float) -> None:
    rng = rng_for("sgd", n, learning_rate, dtype)
    w0, g0 = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    w, g = misaligned(w0), misaligned(g0)
    assert K.sgd_update(w, g, learning_rate) is None
    assert np.array_equal(bits(g), bits(g0))  # g is read only
    # w - lr * g with lr rounded to the dtype, lr * g rounded (unless fused) and the
    # difference rounded: u |w_new| + 2 u |lr g|.
    step = learning_rate * g0.astype(F64)
    expected = w0.astype(F64) - step
    u = unit_roundoff(dtype) + U64
    assert_within(w, expected, u * (np.abs(expected) + 2 * np.abs(step)), "sgd_update")


def test_sgd_update_zero_learning_rate_keeps_bits(isa: str, dtype: Any) -> None:
    rng = rng_for("sgd0", dtype)
    w0 = rng.standard_normal(37).astype(dtype)
    g = (1e30 * rng.standard_normal(37)).astype(dtype)
    w = w0.copy()
    K.sgd_update(w, g, 0.0)
    assert np.array_equal(bits(w), bits(w0))


# ---------------------------------------------------------------------------
# bad arguments: exceptions, never a crash
# ---------------------------------------------------------------------------


def _f32(*shape: int) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def _readonly(x: np.ndarray) -> np.ndarray:
    x.flags.writeable = False
    return x


def _fractional_strides() -> np.ndarray:
    # float32 elements 2 bytes apart: strides that are not whole elements.
    raw = np.zeros(64, dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(raw.view(np.float32), shape=(3, 3), strides=(12, 2))


BAD_CALLS: dict[str, tuple[Callable[[], object], type[Exception]]] = {
    "gemm-shapes-do-not-chain": (lambda: K.gemm(_f32(3, 4), _f32(5, 2)), ValueError),
    "gemm-mixed-dtypes": (lambda: K.gemm(_f32(3, 4), np.ones((4, 2))), TypeError),
    "gemm-int-arrays": (
        lambda: K.gemm(np.ones((3, 4), np.int32), np.ones((4, 2), np.int32)),
        TypeError,
    ),
    "gemm-1d": (lambda: K.gemm(_f32(4), _f32(4, 2)), ValueError),
    "gemm-c-shape": (lambda: K.gemm(_f32(3, 4), _f32(4, 2), _f32(2, 3)), ValueError),
    "gemm-c-dtype": (lambda: K.gemm(_f32(3, 4), _f32(4, 2), np.ones((3, 2))), TypeError),
    "gemm-c-columns-strided": (
        lambda: K.gemm(_f32(3, 4), _f32(4, 2), _f32(3, 4)[:, ::2]),
        ValueError,
    ),
    "gemm-c-readonly": (
        lambda: K.gemm(_f32(3, 4), _f32(4, 2), _readonly(_f32(3, 2))),
        ValueError,
    ),
    "gemm-fractional-strides": (lambda: K.gemm(_fractional_strides(), _f32(3, 2)), ValueError),
    "bias-act-unknown": (lambda: K.bias_activation(_f32(2, 3), None, "mish"), ValueError),
    "bias-act-bias-length": (lambda: K.bias_activation(_f32(2, 3), _f32(4), "relu"), ValueError),
    "bias-act-bias-2d": (lambda: K.bias_activation(_f32(2, 3), _f32(1, 3), "relu"), ValueError),
    "bias-act-bias-dtype": (
        lambda: K.bias_activation(_f32(2, 3), np.ones(3), "relu"),
        TypeError,
    ),
    "bias-act-z-readonly": (
        lambda: K.bias_activation(_readonly(_f32(2, 3)), None, "relu"),
        ValueError,
    ),
    "bias-act-z-int": (
        lambda: K.bias_activation(np.ones((2, 3), np.int64), None, "relu"),
        TypeError,
    ),
    "bias-act-z-columns-strided": (
        lambda: K.bias_activation(_f32(2, 6)[:, ::2], None, "relu"),
        ValueError,
    ),
    "bias-act-a-shape": (
        lambda: K.bias_activation(_f32(2, 3), None, "relu", _f32(3, 2)),
        ValueError,
    ),
    "act-back-unknown": (
        lambda: K.activation_backward("mish", _f32(2, 3), _f32(2, 3), _f32(2, 3)),
        ValueError,
    ),
    "act-back-da-shape": (
        lambda: K.activation_backward("tanh", _f32(2, 3), _f32(2, 3), _f32(2, 4)),
        ValueError,
    ),
    "act-back-a-dtype": (
        lambda: K.activation_backward("tanh", _f32(2, 3), np.ones((2, 3)), _f32(2, 3)),
        TypeError,
    ),
    "loss-unknown": (lambda: K.loss("focal_hinge", False, _f32(2, 3), _f32(2, 3)), ValueError),
    "loss-y-shape": (lambda: K.loss("mse", False, _f32(2, 3), _f32(2, 4)), ValueError),
    "loss-y-columns-strided": (
        lambda: K.loss("mse", False, _f32(2, 3), _f32(2, 6)[:, ::2]),
        ValueError,
    ),
    "loss-labels-strided": (
        lambda: K.loss(
            "sparse_categorical_crossentropy", True, _f32(2, 3), np.zeros(4, np.int32)[::2]
        ),
        ValueError,
    ),
    "loss-y-dtype": (lambda: K.loss("mse", False, _f32(2, 3), np.ones((2, 3))), TypeError),
    "loss-pred-int": (
        lambda: K.loss("mse", False, np.ones((2, 3), np.int32), np.ones((2, 3), np.int32)),
        TypeError,
    ),
    "loss-weight-length": (
        lambda: K.loss("mse", False, _f32(2, 3), _f32(2, 3), _f32(3)),
        ValueError,
    ),
    "loss-label-too-large": (
        lambda: K.loss(
            "sparse_categorical_crossentropy", True, _f32(2, 3), np.array([0, 3], np.int32)
        ),
        ValueError,
    ),
    "loss-label-negative": (
        lambda: K.loss(
            "sparse_categorical_crossentropy", True, _f32(2, 3), np.array([-1, 0], np.int32)
        ),
        ValueError,
    ),
    "loss-label-count": (
        lambda: K.loss(
            "sparse_categorical_crossentropy", True, _f32(2, 3), np.array([0, 1, 2], np.int32)
        ),
        ValueError,
    ),
    "loss-labels-int64": (
        lambda: K.loss(
            "sparse_categorical_crossentropy", True, _f32(2, 3), np.array([0, 1], np.int64)
        ),
        TypeError,
    ),
    "column-sum-1d": (lambda: K.column_sum(_f32(5)), ValueError),
    "column-sum-int": (lambda: K.column_sum(np.ones((2, 3), np.int32)), TypeError),
    "sgd-lengths": (lambda: K.sgd_update(_f32(5), _f32(4), 0.1), ValueError),
    "sgd-w-strided": (lambda: K.sgd_update(_f32(10)[::2], _f32(5), 0.1), ValueError),
    "sgd-w-readonly": (lambda: K.sgd_update(_readonly(_f32(5)), _f32(5), 0.1), ValueError),
    "sgd-g-dtype": (lambda: K.sgd_update(_f32(5), np.ones(5), 0.1), TypeError),
    "sgd-w-2d": (lambda: K.sgd_update(_f32(2, 3), _f32(2, 3), 0.1), ValueError),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_arguments_raise(isa: str, case: str) -> None:
    call, error = BAD_CALLS[case]
    with pytest.raises(error):
        call()
    assert fastmlp.active_isa() == isa  # and nothing was switched or broken on the way
