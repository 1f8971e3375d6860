// Blocked matrix product in the BLIS style, with a register-blocked microkernel of MR x NR
// (12 x 32 floats or 12 x 16 doubles: 24 of the 32 zmm registers hold accumulators), NV vector
// loads of B and MR broadcasts of A per step of k.
//   B: panels of op(B) (KC x NR) are packed into aligned scratch, so the microkernel's loads are
//      sequential whatever op(B)'s strides (a transposed B is turned 16 x 16 in registers). With
//      at most MR rows each panel would be read once: a row-major B is then read in place.
//   A: a row-major A is read in place (a broadcast costs the same from any address); a block
//      with contiguous columns (a transposed A) is read in place, or copied into one compact
//      block when several panels of B read it; any other layout is packed into MR-row panels.
// Edge tiles run the same code for exactly their rows and vectors (a 10-column output costs one
// vector per row, not NV), with the last vector's C loads and stores masked. An epilogue
// (GemmEpilogue) runs on each tile's accumulators before they are stored, after the last block
// of k.
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

namespace {

#include "../gemm_epilogue.inc"
#include "../row_prefetch_spread.inc"

constexpr std::size_t kMR = 12;
constexpr std::size_t kNV = 2;    // vectors per row of a tile
constexpr std::size_t kMC = 96;   // rows of A per block (8 microkernel panels)
static_assert(kMC % 16 == 0, "a block of A holds whole groups of narrow rows (gemm's last panel)");
constexpr std::size_t kKC = 256;  // depth of one block: B panel 32 KB (float)
static_assert(kKC >= kGemmMaskInPlaceDepth, "C over positive needs one block of k (kernels.h)");
template <class T>
constexpr std::size_t kNR = kNV * Vec<T>::lanes;
template <class T>
constexpr std::size_t kNC = 2048 / sizeof(T);  // packed B block of KC x NC: 512 KB
template <class T>
constexpr std::ptrdiff_t kNearRows = 2048 / sizeof(T);  // B rows at most 2 KB apart

constexpr std::size_t kAheadBytes = 512 * 1024;  // see ask_ahead in gemm

std::size_t min_size(std::size_t a, std::size_t b) { return a < b ? a : b; }

// Where a tile finds a(i, k): a[i * s + k] (rows contiguous, as a row-major A) or a[i + k * s]
// (columns contiguous: a transposed A, or a packed panel with s = MR).
enum class ALayout { by_row, by_column };

// A panel of op(A) with arbitrary strides, packed by columns: a(i, k) at out[i + k * MR], rows
// [mr, MR) left unset (no tile reads them).
template <class T>
void pack_a(std::size_t mc, std::size_t kc, const T* a, std::ptrdiff_t rs, std::ptrdiff_t cs, T* out) {
  for (std::size_t ir = 0; ir < mc; ir += kMR) {
    const std::size_t mr = min_size(kMR, mc - ir);
    const T* panel = a + std::ptrdiff_t(ir) * rs;
    for (std::size_t k = 0; k < kc; ++k) {
      for (std::size_t i = 0; i < mr; ++i) out[i] = panel[std::ptrdiff_t(i) * rs + std::ptrdiff_t(k) * cs];
      out += kMR;
    }
  }
}

// A block of op(A) whose columns are contiguous (a(i, k) = a[i + k * cs]), copied to
// out[i + k * mc]: the tiles then read one compact block instead of kc rows far apart.
template <class T>
void copy_columns(std::size_t mc, std::size_t kc, const T* a, std::ptrdiff_t cs, T* out) {
  using V = Vec<T>;
  constexpr std::size_t L = V::lanes;
  for (std::size_t k = 0; k < kc; ++k) {
    const T* from = a + std::ptrdiff_t(k) * cs;
    T* to = out + k * mc;
    std::size_t i = 0;
    for (; i + L <= mc; i += L) V::storeu(to + i, V::loadu(from + i));
    if (i < mc) V::maskstore(to + i, V::tail_mask(mc - i), V::maskload(from + i, V::tail_mask(mc - i)));
  }
}

// Packs op(B)'s columns [0, nc) x depth [0, kc) into panels of NR columns: b(k, jr + j) at
// out[jr * kc + k * NR + j], zeros past nc.
template <class T>
void pack_b(std::size_t kc, std::size_t nc, const T* b, std::ptrdiff_t rs, std::ptrdiff_t cs, T* out) {
  using V = Vec<T>;
  constexpr std::size_t L = V::lanes, NR = kNR<T>;
  for (std::size_t jr = 0; jr < nc; jr += NR) {
    const std::size_t nr = min_size(NR, nc - jr);
    const T* panel = b + std::ptrdiff_t(jr) * cs;
    if (cs == 1) {  // rows contiguous: masked loads past nr (the 10 outputs of MNIST) give zeros
      for (std::size_t k = 0; k < kc; ++k) {
        const T* row = panel + std::ptrdiff_t(k) * rs;
        for (std::size_t v = 0; v < kNV; ++v)
          V::store(out + v * L, V::maskload(row + v * L, V::tail_mask(nr > v * L ? nr - v * L : 0)));
        out += NR;
      }
    } else if (rs == 1) {  // columns contiguous (a transposed B): L x L blocks turned in registers
      for (std::size_t k0 = 0; k0 < kc; k0 += L) {
        const auto depth = V::tail_mask(kc - k0);
        for (std::size_t v = 0; v < kNV; ++v) {
          typename V::reg block[L];
          for (std::size_t j = 0; j < L; ++j) {
            const std::size_t col = v * L + j;
            block[j] = col < nr ? V::maskload(panel + std::ptrdiff_t(col) * cs + std::ptrdiff_t(k0), depth) : V::zero();
          }
          transpose(block);
          for (std::size_t k = 0; k < L && k0 + k < kc; ++k) V::store(out + (k0 + k) * NR + v * L, block[k]);
        }
      }
      out += kc * NR;
    } else {
      for (std::size_t k = 0; k < kc; ++k) {
        const T* row = panel + std::ptrdiff_t(k) * rs;
        for (std::size_t j = 0; j < NR; ++j) out[j] = j < nr ? row[std::ptrdiff_t(j) * cs] : T(0);
        out += NR;
      }
    }
  }
}

// acc[i][v] += sum over k of op(A)(i, k) * op(B)(k, vector v), one FMA chain per element in k
// order, with op(A)(i, k) = a[i * sa + k] or a[i + k * sa] (layout) and op(B)(k, j) = b[k * sb + j],
// all NV vectors of B readable. (No masked load in this loop: GCC then keeps acc in memory.)
template <class T, std::size_t R, std::size_t NV, ALayout layout, bool ahead>
[[gnu::always_inline]] inline void accumulate(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b,
                                              std::ptrdiff_t sb, typename Vec<T>::reg (&acc)[R][NV],
                                              const T* b_ahead) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  // One step of k: acc[i][v] += a_k(i) * (B's row at bk, vector v).
  const auto step = [&](const T* bk, auto a_k) [[gnu::always_inline]] {
    reg bv[NV];
    _Pragma("GCC unroll 16")
    for (std::size_t v = 0; v < NV; ++v) bv[v] = V::loadu(bk + v * L);
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < R; ++i) {
      const reg ai = V::set1(a_k(i));
      _Pragma("GCC unroll 16")
      for (std::size_t v = 0; v < NV; ++v) acc[i][v] = V::fmadd(ai, bv[v], acc[i][v]);
    }
  };
  if constexpr (layout == ALayout::by_row) {
    // Rows 4 q + r at p[q] + r * sa: a moving pointer per four rows and the strides sa, 2 sa and
    // 3 sa in registers, so that no row's address is reloaded from the stack in the loop.
    constexpr std::size_t Q = (R + 3) / 4;
    const std::ptrdiff_t stride[4] = {0, sa, 2 * sa, 3 * sa};
    const T* p[Q];
    _Pragma("GCC unroll 16")
    for (std::size_t q = 0; q < Q; ++q) p[q] = a + std::ptrdiff_t(4 * q) * sa;
    for (std::size_t k = 0; k < kc; ++k, b += sb) {
      if constexpr (ahead) {
        prefetch_line(b_ahead);
        prefetch_line(b_ahead + 64 / sizeof(T));
        b_ahead += sb;
      }
      step(b, [&](std::size_t i) { return p[i / 4][stride[i % 4]]; });
      _Pragma("GCC unroll 16")
      for (std::size_t q = 0; q < Q; ++q) ++p[q];
    }
  } else {
    for (std::size_t k = 0; k < kc; ++k, a += sa, b += sb) step(b, [&](std::size_t i) { return a[i]; });
  }
}

// Rows [0, R) and vectors [0, NV) of a tile (R <= MR, NV <= kNV), the last vector limited to the
// lanes in `last` when `masked` (C beyond them is not touched). Each C element is one FMA chain
// over k in increasing order from its start (0, or beta * C when chained), whichever tile shape
// and operand layout computes it: all give the same bits. chain: C = (beta*C or 0) +
// sum_k a*b (alpha is 1); otherwise C = alpha * sum + beta * C (beta == 0: C not read).
template <class T, std::size_t R, std::size_t NV, bool masked, ALayout layout, bool ahead>
[[gnu::always_inline]] inline void tile_impl(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b,
                                             std::ptrdiff_t sb, T* c, std::ptrdiff_t ldc, typename Vec<T>::mask last,
                                             bool chain, T alpha, T beta, const GemmEpilogue<T>* ep, const T* b_ahead) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  reg acc[R][NV];
  _Pragma("GCC unroll 16")
  for (std::size_t i = 0; i < R; ++i)
    _Pragma("GCC unroll 16")
    for (std::size_t v = 0; v < NV; ++v) acc[i][v] = V::zero();
  if (chain && beta != T(0)) {
    const reg vbeta = V::set1(beta);
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < R; ++i)
      _Pragma("GCC unroll 16")
      for (std::size_t v = 0; v < NV; ++v) {
        const T* ci = c + std::ptrdiff_t(i) * ldc + v * L;
        acc[i][v] = V::mul(vbeta, masked && v == NV - 1 ? V::maskload(ci, last) : V::loadu(ci));
      }
  }
  accumulate<T, R, NV, layout, ahead>(kc, a, sa, b, sb, acc, b_ahead);
  // The finish, one pass per operation over the tile's registers (a test per tile, not per
  // element): alpha and beta, then the epilogue (GemmEpilogue) in its order, then the stores.
  // Lanes outside `last` of a masked last vector are neither read nor stored.
  const auto load = [&](const T* p, std::size_t v) { return masked && v == NV - 1 ? V::maskload(p, last) : V::loadu(p); };
  if (!chain) {
    const reg valpha = V::set1(alpha), vbeta = V::set1(beta);
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < R; ++i)
      _Pragma("GCC unroll 16")
      for (std::size_t v = 0; v < NV; ++v)
        acc[i][v] = beta == T(0) ? V::mul(valpha, acc[i][v])
                                 : V::fmadd(valpha, acc[i][v], V::mul(vbeta, load(c + std::ptrdiff_t(i) * ldc + v * L, v)));
  }
  if (ep != nullptr && ep->bias != nullptr) {
    _Pragma("GCC unroll 16")
    for (std::size_t v = 0; v < NV; ++v) {
      const reg bias = load(ep->bias + v * L, v);
      _Pragma("GCC unroll 16")
      for (std::size_t i = 0; i < R; ++i) acc[i][v] = V::add(acc[i][v], bias);
    }
  }
  if (ep != nullptr && ep->relu) {
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < R; ++i)
      _Pragma("GCC unroll 16")
      for (std::size_t v = 0; v < NV; ++v) acc[i][v] = V::max(V::zero(), acc[i][v]);  // acc second: NaN kept
  }
  if (ep != nullptr && ep->positive != nullptr) {
    const T* positive = ep->positive;
    const std::ptrdiff_t ld = ep->ld_positive;
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < R; ++i)
      _Pragma("GCC unroll 16")
      for (std::size_t v = 0; v < NV; ++v)
        acc[i][v] = V::keep(V::gt(load(positive + std::ptrdiff_t(i) * ld + v * L, v), V::zero()), acc[i][v]);
  }
  if (ep != nullptr && ep->column_sums != nullptr) {  // this tile's rows, in order, after the rows above it
    _Pragma("GCC unroll 16")
    for (std::size_t v = 0; v < NV; ++v) {
      T* s = ep->column_sums + v * L;
      reg sum = ep->origin_row == 0 ? V::zero() : load(s, v);
      _Pragma("GCC unroll 16")
      for (std::size_t i = 0; i < R; ++i) sum = V::add(sum, acc[i][v]);
      if (masked && v == NV - 1) {
        V::maskstore(s, last, sum);
      } else {
        V::storeu(s, sum);
      }
    }
  }
  // The stores: to C, or (an SGD update) w - lr * c to the weights instead.
  T* out = c;
  std::ptrdiff_t ld_out = ldc;
  if (ep != nullptr && ep->update != nullptr) {
    const reg lr = V::set1(ep->learning_rate);
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < R; ++i)
      _Pragma("GCC unroll 16")
      for (std::size_t v = 0; v < NV; ++v)
        acc[i][v] = V::sub(load(ep->update + std::ptrdiff_t(i) * ep->ld_update + v * L, v), V::mul(lr, acc[i][v]));
    out = ep->update;
    ld_out = ep->ld_update;
  }
  _Pragma("GCC unroll 16")
  for (std::size_t i = 0; i < R; ++i)
    _Pragma("GCC unroll 16")
    for (std::size_t v = 0; v < NV; ++v) {
      T* ci = out + std::ptrdiff_t(i) * ld_out + v * L;
      if (masked && v == NV - 1) {
        V::maskstore(ci, last, acc[i][v]);
      } else {
        V::storeu(ci, acc[i][v]);
      }
    }
}

template <class T, std::size_t R, std::size_t NV, bool masked, ALayout layout>
void tile(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b, std::ptrdiff_t sb, T* c,
          std::ptrdiff_t ldc, typename Vec<T>::mask last, bool chain, T alpha, T beta, const GemmEpilogue<T>* ep) {
  tile_impl<T, R, NV, masked, layout, false>(kc, a, sa, b, sb, c, ldc, last, chain, alpha, beta, ep, nullptr);
}
// A whole tile over a row-major A that also asks for the next panel's rows of an in-place B, two
// lines a step of k (b_ahead: that panel's first row), so that they come from L2 while this
// panel's tiles run. Alpha is 1 (the asks are made only then).
template <class T>
void tile_ahead(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b, std::ptrdiff_t sb, T* c, std::ptrdiff_t ldc,
                bool chain, T beta, const GemmEpilogue<T>* ep, const T* b_ahead) {
  tile_impl<T, kMR, kNV, false, ALayout::by_row, true>(kc, a, sa, b, sb, c, ldc, Vec<T>::tail_mask(kNR<T>), chain, T(1),
                                                      beta, ep, b_ahead);
}

template <class T>
using TileFn = void (*)(std::size_t, const T*, std::ptrdiff_t, const T*, std::ptrdiff_t, T*, std::ptrdiff_t,
                        typename Vec<T>::mask, bool, T, T, const GemmEpilogue<T>*);

// fn[layout][r - 1][nv - 1][masked]: the tile for r rows and nv vectors.
template <class T>
struct TileTable {
  TileFn<T> fn[2][kMR][kNV][2];
};
template <class T, std::size_t... I>
constexpr TileTable<T> make_tiles(std::index_sequence<I...>) {
  TileTable<T> t{};
  ((t.fn[0][I / kNV][I % kNV][0] = &tile<T, I / kNV + 1, I % kNV + 1, false, ALayout::by_row>,
    t.fn[0][I / kNV][I % kNV][1] = &tile<T, I / kNV + 1, I % kNV + 1, true, ALayout::by_row>,
    t.fn[1][I / kNV][I % kNV][0] = &tile<T, I / kNV + 1, I % kNV + 1, false, ALayout::by_column>,
    t.fn[1][I / kNV][I % kNV][1] = &tile<T, I / kNV + 1, I % kNV + 1, true, ALayout::by_column>),
   ...);
  return t;
}
template <class T>
constexpr TileTable<T> kTiles = make_tiles<T>(std::make_index_sequence<kMR * kNV>{});

// Narrow panels (at most 8 float columns) when A's rows lie side by side (a(i, k) = a[i + k * sa]):
// each vector holds R rows of W = 16 / R columns, lane j * R + i = C(i, j). A's R values are one
// broadcast block (a plain load), B's row is packed as each b(k, j) repeated R times
// (pack_b_rows). One vector FMA then does R rows where a tile of one row per vector used R
// vectors with most lanes masked off; each lane still runs C(i, j)'s chain over k in order from
// zero: the same bits.
template <std::size_t R>
[[gnu::always_inline]] inline __m512 broadcast_rows(const float* a) {
  if constexpr (R == 2) {
    double pair;
    std::memcpy(&pair, a, sizeof pair);
    return _mm512_castpd_ps(_mm512_set1_pd(pair));
  } else if constexpr (R == 4) {
    return _mm512_broadcast_f32x4(_mm_loadu_ps(a));
  } else if constexpr (R == 8) {
    return _mm512_broadcast_f32x8(_mm256_loadu_ps(a));
  } else {
    return _mm512_loadu_ps(a);
  }
}

// B's columns [0, nr) (nr <= 16 / R) over depth kc, packed 16 per k: out[k * 16 + j * R + i] =
// b(k, j), zeros for j >= nr.
template <std::size_t R>
void pack_b_rows(std::size_t kc, std::size_t nr, const float* b, std::ptrdiff_t rs, std::ptrdiff_t cs, float* out) {
  constexpr std::size_t W = 16 / R;
  if (cs == 1) {  // a row's nr values in one masked load (zeros past nr), lane j * R + i <- lane j
    constexpr int shift = R == 2 ? 1 : R == 4 ? 2 : R == 8 ? 3 : 4;
    const __m512i from = _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), shift);
    const __mmask16 cols = __mmask16((1u << nr) - 1u);
    for (std::size_t k = 0; k < kc; ++k) {
      _mm512_store_ps(out, _mm512_permutexvar_ps(from, _mm512_maskz_loadu_ps(cols, b + std::ptrdiff_t(k) * rs)));
      out += 16;
    }
    return;
  }
  for (std::size_t k = 0; k < kc; ++k) {
    const float* row = b + std::ptrdiff_t(k) * rs;
    for (std::size_t j = 0; j < W; ++j) {
      const float v = j < nr ? row[std::ptrdiff_t(j) * cs] : 0.0f;
      for (std::size_t i = 0; i < R; ++i) out[j * R + i] = v;
    }
    out += 16;
  }
}

// Rows [0, 4 G) of a row-major A interleaved four at a time for the narrow tiles: group g's
// a(4 g + i, k) at out[g * kc * 4 + k * 4 + i]. Each 16 values of a row are one load; lanes are
// moved with two-source permutes (eight per 64 values).
void pack_a_rows4(std::size_t groups, std::size_t kc, const float* a, std::ptrdiff_t rs, float* out) {
  const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i quad_lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  const __m512i quad_hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  // Rows 0 and 1 (2 and 3) paired by k, then the pairs paired: v[q] holds k0 + [4 q, 4 q + 4).
  const auto interleave = [&](const __m512 (&x)[4], __m512 (&v)[4]) {
    const __m512d lo01 = _mm512_castps_pd(_mm512_permutex2var_ps(x[0], pair_lo, x[1]));
    const __m512d hi01 = _mm512_castps_pd(_mm512_permutex2var_ps(x[0], pair_hi, x[1]));
    const __m512d lo23 = _mm512_castps_pd(_mm512_permutex2var_ps(x[2], pair_lo, x[3]));
    const __m512d hi23 = _mm512_castps_pd(_mm512_permutex2var_ps(x[2], pair_hi, x[3]));
    v[0] = _mm512_castpd_ps(_mm512_permutex2var_pd(lo01, quad_lo, lo23));
    v[1] = _mm512_castpd_ps(_mm512_permutex2var_pd(lo01, quad_hi, lo23));
    v[2] = _mm512_castpd_ps(_mm512_permutex2var_pd(hi01, quad_lo, hi23));
    v[3] = _mm512_castpd_ps(_mm512_permutex2var_pd(hi01, quad_hi, hi23));
  };
  const std::size_t whole = kc / 16 * 16, rest = kc - whole;
  const __mmask16 in = __mmask16((1u << rest) - 1u);
  for (std::size_t g = 0; g < groups; ++g) {
    const float* row = a + std::ptrdiff_t(g * 4) * rs;
    float* dst = out + g * kc * 4;
    __m512 x[4], v[4];
    for (std::size_t k0 = 0; k0 < whole; k0 += 16, dst += 64) {
      for (std::size_t i = 0; i < 4; ++i) x[i] = _mm512_loadu_ps(row + std::ptrdiff_t(i) * rs + std::ptrdiff_t(k0));
      interleave(x, v);
      for (std::size_t q = 0; q < 4; ++q) _mm512_storeu_ps(dst + q * 16, v[q]);
    }
    if (rest != 0) {
      for (std::size_t i = 0; i < 4; ++i) x[i] = _mm512_maskz_loadu_ps(in, row + std::ptrdiff_t(i) * rs + std::ptrdiff_t(whole));
      interleave(x, v);
      for (std::size_t q = 0; q * 4 < rest; ++q) {
        const std::size_t n = min_size(16, (rest - q * 4) * 4);
        _mm512_mask_storeu_ps(dst + q * 16, n == 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u), v[q]);
      }
    }
  }
}

// Rows [0, 2 G) of a row-major A interleaved two at a time for the narrow tiles: pair g's
// a(2 g + i, k) at out[g * kc * 2 + k * 2 + i]. Each 16 values of a row are one load; lanes are
// moved with two-source permutes (two per 32 values).
void pack_a_rows2(std::size_t pairs, std::size_t kc, const float* a, std::ptrdiff_t rs, float* out) {
  const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const std::size_t whole = kc / 16 * 16, rest = kc - whole;
  const __mmask16 in = __mmask16((1u << rest) - 1u);
  const __mmask16 lo_out = rest >= 8 ? __mmask16(0xffff) : __mmask16((1u << (2 * rest)) - 1u);
  const __mmask16 hi_out = rest <= 8 ? __mmask16(0) : __mmask16((1u << (2 * (rest - 8))) - 1u);
  for (std::size_t g = 0; g < pairs; ++g) {
    const float* r0 = a + std::ptrdiff_t(g * 2) * rs;
    const float* r1 = r0 + rs;
    float* dst = out + g * kc * 2;
    for (std::size_t k0 = 0; k0 < whole; k0 += 16, dst += 32) {
      const __m512 x0 = _mm512_loadu_ps(r0 + k0), x1 = _mm512_loadu_ps(r1 + k0);
      _mm512_storeu_ps(dst, _mm512_permutex2var_ps(x0, pair_lo, x1));
      _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(x0, pair_hi, x1));
    }
    if (rest != 0) {
      const __m512 x0 = _mm512_maskz_loadu_ps(in, r0 + whole), x1 = _mm512_maskz_loadu_ps(in, r1 + whole);
      _mm512_mask_storeu_ps(dst, lo_out, _mm512_permutex2var_ps(x0, pair_lo, x1));
      _mm512_mask_storeu_ps(dst + 16, hi_out, _mm512_permutex2var_ps(x0, pair_hi, x1));
    }
  }
}

// G groups of R rows (rows [0, G * R)) by nr columns, group g's a(g R + i, k) at
// a[g * sg + k * sa + i], sg == R unless `apart` (the groups of pack_a_rows2/4; with sg == R known
// at compile time the G addresses are constant offsets of one pointer): C = sum over k of a * b
// from zero, or from C's values when `chain` (the chained form with beta 0 or 1: a later block of
// k continues each element's chain), then the epilogue's bias and relu when `ep` is set
// (the tile's finish, in its order), stored row by row (lanes j * R + i gathered to row i), or
// with the epilogue's update, w - lr * c stored to the weights instead. Rows [0, skip) (skip < R)
// are computed but not stored: a tile that starts inside the tile before it (the last tile of a
// row count that is not a multiple of R) leaves those rows as that tile stored them.
template <std::size_t R, std::size_t G, bool apart>
void narrow_tile(std::size_t kc, const float* a, std::ptrdiff_t sa, std::ptrdiff_t sg_apart, const float* b, float* c,
                 std::ptrdiff_t ldc, std::size_t nr, std::size_t skip, bool chain, const GemmEpilogue<float>* ep) {
  const std::ptrdiff_t sg = apart ? sg_apart : std::ptrdiff_t(R);
  constexpr int shift = R == 2 ? 1 : R == 4 ? 2 : R == 8 ? 3 : 4;
  const __mmask16 cols = __mmask16((1u << nr) - 1u);
  // Lane l holds column l / R of row l % R of its group (pack_b_rows's layout).
  const __m512i column_of_lane =
      _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), shift);
  __m512 acc[G];
  _Pragma("GCC unroll 16")
  for (std::size_t g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
  if (chain) {  // row i's nr values of C to lanes j * R + i (lanes past nr: zeros, never stored)
    constexpr __mmask16 row0 = R == 2 ? 0x5555 : R == 4 ? 0x1111 : R == 8 ? 0x0101 : 0x0001;
    _Pragma("GCC unroll 16")
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t i = 0; i < R; ++i)
        acc[g] = _mm512_mask_permutexvar_ps(acc[g], __mmask16(row0 << i), column_of_lane,
                                            _mm512_maskz_loadu_ps(cols, c + std::ptrdiff_t(g * R + i) * ldc));
  }
  if constexpr (apart) {
    // Groups 4 q + r at p[q] + r * sg: a moving pointer per four groups and the offsets sg, 2 sg
    // and 3 sg in registers (as accumulate's rows), so that no group's address is reloaded.
    constexpr std::size_t Q = (G + 3) / 4;
    const std::ptrdiff_t offset[4] = {0, sg, 2 * sg, 3 * sg};
    const float* p[Q];
    _Pragma("GCC unroll 16")
    for (std::size_t q = 0; q < Q; ++q) p[q] = a + std::ptrdiff_t(4 * q) * sg;
    for (std::size_t k = 0; k < kc; ++k) {
      const __m512 bv = _mm512_load_ps(b);
      _Pragma("GCC unroll 16")
      for (std::size_t g = 0; g < G; ++g) acc[g] = _mm512_fmadd_ps(broadcast_rows<R>(p[g / 4] + offset[g % 4]), bv, acc[g]);
      _Pragma("GCC unroll 16")
      for (std::size_t q = 0; q < Q; ++q) p[q] += sa;
      b += 16;
    }
  } else {
    for (std::size_t k = 0; k < kc; ++k) {
      const __m512 bv = _mm512_load_ps(b);
      _Pragma("GCC unroll 16")
      for (std::size_t g = 0; g < G; ++g) acc[g] = _mm512_fmadd_ps(broadcast_rows<R>(a + std::ptrdiff_t(g) * sg), bv, acc[g]);
      a += sa;
      b += 16;
    }
  }
  if (ep != nullptr) {
    if (ep->bias != nullptr) {  // bias[j] in lanes j * R + i, as pack_b_rows lays out B
      const __m512 bias = _mm512_permutexvar_ps(column_of_lane, _mm512_maskz_loadu_ps(cols, ep->bias));
      _Pragma("GCC unroll 16")
      for (std::size_t g = 0; g < G; ++g) acc[g] = _mm512_add_ps(acc[g], bias);
    }
    if (ep->relu) {
      _Pragma("GCC unroll 16")
      for (std::size_t g = 0; g < G; ++g) acc[g] = _mm512_max_ps(_mm512_setzero_ps(), acc[g]);  // NaN kept
    }
  }
  // Row i's columns are lanes i, R + i, 2 R + i, ...: moved to lanes [0, W), stored masked to nr.
  __m512i row_lanes[R];
  for (std::size_t i = 0; i < R; ++i)
    row_lanes[i] = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                       _mm512_set1_epi32(int(R))),
                                    _mm512_set1_epi32(int(i)));
  if (ep != nullptr && ep->update != nullptr) {  // w - lr * c to the weights instead of C
    const __m512 lr = _mm512_set1_ps(ep->learning_rate);
    _Pragma("GCC unroll 16")
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t i = 0; i < R; ++i) {
        if (g == 0 && i < skip) continue;
        float* w = ep->update + std::ptrdiff_t(g * R + i) * ep->ld_update;
        const __m512 row = _mm512_permutexvar_ps(row_lanes[i], acc[g]);
        _mm512_mask_storeu_ps(w, cols, _mm512_sub_ps(_mm512_maskz_loadu_ps(cols, w), _mm512_mul_ps(lr, row)));
      }
    return;
  }
  _Pragma("GCC unroll 16")
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t i = 0; i < R; ++i)
      if (g != 0 || i >= skip)
        _mm512_mask_storeu_ps(c + std::ptrdiff_t(g * R + i) * ldc, cols, _mm512_permutexvar_ps(row_lanes[i], acc[g]));
}

using NarrowFn = void (*)(std::size_t, const float*, std::ptrdiff_t, std::ptrdiff_t, const float*, float*, std::ptrdiff_t,
                          std::size_t, std::size_t, bool, const GemmEpilogue<float>*);
constexpr std::size_t kNarrowGroups = 12;  // accumulators per narrow tile: enough to cover the FMA latency

// kNarrow[r][g - 1]: R = 2 << r rows per vector, g groups side by side; kNarrowApart[r][g - 1]:
// R = 2 << r rows per vector (two or four), g groups apart.
template <std::size_t... I>
constexpr std::array<std::array<NarrowFn, kNarrowGroups>, 4> make_narrow(std::index_sequence<I...>) {
  std::array<std::array<NarrowFn, kNarrowGroups>, 4> t{};
  ((t[0][I] = &narrow_tile<2, I + 1, false>, t[1][I] = &narrow_tile<4, I + 1, false>,
    t[2][I] = &narrow_tile<8, I + 1, false>, t[3][I] = &narrow_tile<16, I + 1, false>),
   ...);
  return t;
}
constexpr auto kNarrow = make_narrow(std::make_index_sequence<kNarrowGroups>{});
template <std::size_t... I>
constexpr std::array<std::array<NarrowFn, kNarrowGroups>, 2> make_narrow_apart(std::index_sequence<I...>) {
  return {std::array<NarrowFn, kNarrowGroups>{&narrow_tile<2, I + 1, true>...},
          std::array<NarrowFn, kNarrowGroups>{&narrow_tile<4, I + 1, true>...}};
}
constexpr auto kNarrowApart = make_narrow_apart(std::make_index_sequence<kNarrowGroups>{});

// Rows per vector for a narrow panel of nr float columns: 16 / nr rounded down to a power of 2.
std::size_t narrow_rows(std::size_t nr) { return nr == 1 ? 16 : nr == 2 ? 8 : nr <= 4 ? 4 : 2; }

// The rows of a block of mc rows of A that the narrow tiles (R rows a vector) take: all of them
// when A's rows are read in place side by side and there are more than R (a last tile may then
// start early: rows of the tile before it are recomputed, not stored again), else whole groups
// (an interleaved copy holds whole groups only). The one-row tiles take the rest.
std::size_t narrow_rows_taken(std::size_t mc, std::size_t r, bool interleaved) {
  return mc % r == 0 || (!interleaved && mc > r) ? mc : mc / r * r;
}

template <class T>
void scale_c(const GemmArgs<T>& g) {  // k == 0: the product is empty
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = 0; j < g.n; ++j) {
      T& c = g.c[std::ptrdiff_t(i) * g.ldc + j];
      c = g.beta == T(0) ? T(0) : g.beta * c;
      if (g.epilogue != nullptr) apply_epilogue(*g.epilogue, i, j, c);
    }
}

}  // namespace

template <class T>
std::size_t gemm_pack_elements() {
  return kMC * kKC + kKC * kNC<T> + kKC * kNR<T>;  // A block, B block, a narrow panel
}

template <class T>
void gemm(const GemmArgs<T>& g) {
  using V = Vec<T>;
  constexpr std::size_t L = V::lanes, NR = kNR<T>, NC = kNC<T>;
  // A share of the asked-for lines before each tile (all of them on return, whatever is left).
  RowPrefetchSpread prefetch(g.prefetch, (g.m + kMR - 1) / kMR * ((g.n + NR - 1) / NR) * ((g.k + kKC - 1) / kKC));
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) return scale_c(g);
  T* packed_a = g.pack;
  T* packed_b = g.pack + kMC * kKC;
  const bool chain = g.alpha == T(1);
  // A in place when one of its strides is 1 (else packed); a row-major B in place when no two
  // tiles share it, or when its rows are near each other (a few KB apart: a panel's rows then
  // stream from cache as well as a packed copy would, without the copy).
  const bool a_rows = g.a_col == 1, a_in_place = a_rows || g.a_row == 1;
  const bool b_in_place = g.b_col == 1 && (g.m <= kMR || g.b_row <= kNearRows<T>);
  // An in-place B larger than a core's share of L2 comes from L3 panel by panel, a few lines
  // from each of its rows: more rows than the hardware's prefetchers follow. The first tile of
  // each panel then asks for the next panel's rows (tile_ahead).
  const bool ask_ahead = a_rows && b_in_place && chain && g.k * g.n * sizeof(T) >= kAheadBytes;
  for (std::size_t jc = 0; jc < g.n; jc += NC) {
    const std::size_t nc = min_size(NC, g.n - jc);
    for (std::size_t pc = 0; pc < g.k; pc += kKC) {
      const std::size_t kc = min_size(kKC, g.k - pc);
      // After the first block of k, C holds a partial sum: continue it (beta 1).
      const T beta = pc == 0 ? g.beta : T(1);
      const T* b_block = g.b + std::ptrdiff_t(pc) * g.b_row + std::ptrdiff_t(jc) * g.b_col;
      if (!b_in_place) pack_b(kc, nc, b_block, g.b_row, g.b_col, packed_b);
      const std::size_t last_panel = (nc - 1) / NR * NR;
      const bool last_masked = (nc - last_panel) % L != 0;
      // A narrow last panel with C started from zero or continued (beta 0 or 1, alpha 1: every
      // block of k) and no epilogue part but bias, relu and the SGD update: several rows per
      // vector (narrow_tile), A's rows read side by side in place or, for a row-major A,
      // interleaved four at a time up to 4 columns, else two (pack_a_rows4, pack_a_rows2).
      const bool finishing = g.epilogue != nullptr && pc + kc == g.k;
      std::size_t narrow = 0;  // rows per vector, or 0
      if constexpr (std::is_same_v<T, float>) {
        // A row-major A is interleaved tile by tile, into a copy that stays in L1 for the tile:
        // from four rows on, that costs less than the lanes a one-row tile leaves idle.
        if (nc - last_panel <= 8 && a_in_place && (!a_rows || g.m >= 4) && chain && (beta == T(0) || beta == T(1)) &&
            !(finishing && (g.epilogue->positive != nullptr || g.epilogue->column_sums != nullptr))) {
          narrow = a_rows ? (nc - last_panel <= 4 ? 4 : 2) : narrow_rows(nc - last_panel);
          const T* from = b_block + std::ptrdiff_t(last_panel) * g.b_col;
          T* to = packed_b + kKC * NC;
          switch (narrow) {
            case 2: pack_b_rows<2>(kc, nc - last_panel, from, g.b_row, g.b_col, to); break;
            case 4: pack_b_rows<4>(kc, nc - last_panel, from, g.b_row, g.b_col, to); break;
            case 8: pack_b_rows<8>(kc, nc - last_panel, from, g.b_row, g.b_col, to); break;
            default: pack_b_rows<16>(kc, nc - last_panel, from, g.b_row, g.b_col, to); break;
          }
        }
      }
      // A partial panel is read in place only when it ends on a whole vector: else packed, once,
      // unless the narrow tiles take all its rows (every block of A but the last is whole
      // groups: kMC is a multiple of every group size).
      const std::size_t last_mc = g.m - (g.m - 1) / kMC * kMC;
      if (b_in_place && last_masked && (narrow == 0 || narrow_rows_taken(last_mc, narrow, a_rows) != last_mc))
        pack_b(kc, nc - last_panel, b_block + std::ptrdiff_t(last_panel), g.b_row, 1, packed_b + last_panel * kc);
      // A block that copies nothing of A also takes a short rest of rows (else a last block
      // of a few rows runs narrow tiles of one or two groups, which wait on the FMA latency).
      const bool a_uncopied = a_rows || (a_in_place && nc <= NR);
      for (std::size_t ic = 0, mc = 0; ic < g.m; ic += mc) {
        mc = min_size(kMC, g.m - ic);
        if (a_uncopied && g.m - ic - mc < 16) mc = g.m - ic;
        const T* a_block = g.a + std::ptrdiff_t(ic) * g.a_row + std::ptrdiff_t(pc) * g.a_col;
        // Where the tiles read this block of A: tile ir at a + ir * step, element (i, k) at
        // a[i * sa + k] (by rows) or a[i + k * sa] (by columns).
        const T* a = a_block;
        std::ptrdiff_t sa = g.a_row, step = g.a_row;
        if (!a_rows) {
          sa = g.a_col;
          step = 1;
          if (!a_in_place) {
            pack_a(mc, kc, a_block, g.a_row, g.a_col, packed_a);
            a = packed_a;
            sa = std::ptrdiff_t(kMR);
            step = std::ptrdiff_t(kc);
          } else if (nc > NR && g.a_col != std::ptrdiff_t(mc)) {
            // Columns far apart, read once per panel of B: copy them together (a block whose
            // columns are already adjacent, as a whole batch's transposed inputs are, is read
            // in place).
            copy_columns(mc, kc, a_block, g.a_col, packed_a);
            a = packed_a;
            sa = std::ptrdiff_t(mc);
          }
        }
        // The narrow tiles' view of A: group g's a(g R + i, k) at narrow_a[g * sg + k * sa_narrow + i]
        // (a row-major A: the tile's interleaved copy, made before each tile).
        const float* narrow_a = nullptr;
        std::ptrdiff_t sa_narrow = 0, sg = 0;
        if constexpr (std::is_same_v<T, float>) {
          if (narrow != 0 && a_rows) {
            narrow_a = packed_a;
            sa_narrow = std::ptrdiff_t(narrow);
            sg = std::ptrdiff_t(narrow * kc);
          } else if (narrow != 0) {
            narrow_a = a;
            sa_narrow = sa;
            sg = std::ptrdiff_t(narrow);
          }
        }
        const std::size_t layout = a_rows ? 0 : 1;
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const std::size_t nr = min_size(NR, nc - jr);
          const std::size_t nv = (nr + L - 1) / L;
          const bool masked = nr % L != 0;
          const auto last = V::tail_mask(nr - (nv - 1) * L);
          const bool b_here = b_in_place && !masked;
          const T* b = b_here ? b_block + std::ptrdiff_t(jr) : packed_b + jr * kc;
          const std::ptrdiff_t sb = b_here ? g.b_row : std::ptrdiff_t(NR);
          std::size_t ir = 0;
          if constexpr (std::is_same_v<T, float>) {
            if (narrow != 0 && jr == last_panel) {  // rows [0, rows) here, the rest below
              const std::size_t rows = narrow_rows_taken(mc, narrow, a_rows);
              const std::size_t level = narrow == 2 ? 0 : narrow == 4 ? 1 : narrow == 8 ? 2 : 3;
              // The groups spread evenly over the fewest tiles (a tile of one or two groups waits
              // on each FMA's latency); with a part group, at least two, so that the last tile's
              // early start stays inside the block.
              const std::size_t groups = (rows + narrow - 1) / narrow;
              std::size_t tiles = (groups + kNarrowGroups - 1) / kNarrowGroups;
              if (rows % narrow != 0 && tiles < 2) tiles = 2;
              for (std::size_t t = 0, g0 = 0; t < tiles; ++t) {
                const std::size_t g1 = groups * (t + 1) / tiles, count = g1 - g0;
                const std::size_t start = min_size(g0 * narrow, rows - count * narrow);
                prefetch.step();
                GemmEpilogue<float> ep{};
                if (finishing) ep = tile_epilogue(*g.epilogue, ic + start, jc + jr);
                const NarrowFn fn = a_rows ? kNarrowApart[narrow == 4][count - 1] : kNarrow[level][count - 1];
                // Side by side, row i is at narrow_a + i; interleaved, this tile's groups sg apart.
                if (a_rows) {
                  if (narrow == 4) {
                    pack_a_rows4(count, kc, a + std::ptrdiff_t(start) * g.a_row, g.a_row, packed_a);
                  } else {
                    pack_a_rows2(count, kc, a + std::ptrdiff_t(start) * g.a_row, g.a_row, packed_a);
                  }
                }
                const float* from = a_rows ? narrow_a : narrow_a + std::ptrdiff_t(start);
                float* to = g.c + std::ptrdiff_t(ic + start) * g.ldc + std::ptrdiff_t(jc + jr);
                fn(kc, from, sa_narrow, sg, packed_b + kKC * NC, to, g.ldc, nr, g0 * narrow - start, beta != T(0),
                   finishing ? &ep : nullptr);
                g0 = g1;
              }
              ir = rows;
            }
          }
          for (; ir < mc; ir += kMR) {
            const std::size_t mr = min_size(kMR, mc - ir);
            T* c = g.c + std::ptrdiff_t(ic + ir) * g.ldc + std::ptrdiff_t(jc + jr);
            // The epilogue with the last block of k, at this tile's origin.
            GemmEpilogue<T> ep{};
            if (finishing) ep = tile_epilogue(*g.epilogue, ic + ir, jc + jr);
            prefetch.step();
            if (ask_ahead && ir == 0 && b_here && mr == kMR && nv == kNV && jr + 2 * NR <= nc) {
              tile_ahead<T>(kc, a + std::ptrdiff_t(ir) * step, sa, b, sb, c, g.ldc, chain, beta,
                            finishing ? &ep : nullptr, b + NR);
              continue;
            }
            kTiles<T>.fn[layout][mr - 1][nv - 1][masked](kc, a + std::ptrdiff_t(ir) * step, sa, b, sb, c, g.ldc, last,
                                                         chain, g.alpha, beta, finishing ? &ep : nullptr);
          }
        }
      }
    }
  }
}

template void gemm<float>(const GemmArgs<float>&);
template void gemm<double>(const GemmArgs<double>&);
template std::size_t gemm_pack_elements<float>();
template std::size_t gemm_pack_elements<double>();

}  // namespace fastmlp::avx512
