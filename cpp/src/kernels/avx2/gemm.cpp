// Blocked matrix product in the BLIS style, with a register-blocked microkernel of MR x NR
// (6 x 16 floats or 6 x 8 doubles: 12 of the 16 ymm registers hold accumulators), NV vector
// loads of B and MR broadcasts of A per step of k.
//   B: panels of op(B) (KC x NR) are packed into aligned scratch, so the microkernel's loads are
//      sequential whatever op(B)'s strides (a transposed B is turned 8 x 8 in registers). A
//      row-major B is read in place when only a few tiles read each panel (b_read_in_place).
//   A: a row-major A is read in place (a broadcast costs the same from any address); a block
//      with contiguous columns (a transposed A) is read in place, or copied into one compact
//      block when several panels of B read it; any other layout is packed into MR-row panels.
// Edge tiles run the same code for exactly their rows and vectors (a 7-column output costs one
// vector per row, not NV), with the last vector's C loads masked and its stores cut to its
// lanes. An epilogue (GemmEpilogue) runs on each tile's accumulators before they are stored,
// after the last block of k. Every C element is one FMA chain over k in increasing order, as in
// every ISA's gemm.
#include <cstdint>
#include <utility>

#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

namespace {

#include "../gemm_epilogue.inc"
#include "../row_prefetch_spread.inc"

constexpr std::size_t kMR = 6;
// Rows of a one-vector tile (a last panel of at most one vector: the 7 outputs of a tabular
// net): 12 accumulators, enough FMAs in flight to cover their latency where 6 are not.
constexpr std::size_t kMR1 = 12;
constexpr std::size_t kNV = 2;    // vectors per row of a tile
constexpr std::size_t kMC = 72;   // rows of A per block (12 microkernel panels)
static_assert(kMC % kMR1 == 0 && kMC % kMR == 0, "a whole block is whole tiles of either height");
constexpr std::size_t kKC = 256;  // depth of one block: B panel 16 KB (float)
static_assert(kKC >= kGemmMaskInPlaceDepth, "C over positive needs one block of k (kernels.h)");
template <class T>
constexpr std::size_t kNR = kNV * Vec<T>::lanes;
template <class T>
constexpr std::size_t kNC = 2048 / sizeof(T);  // packed B block of KC x NC: 512 KB

// Whether a row-major B (rows b_row_bytes apart) is read where it lies by a product of m rows
// and depth k, rather than packed. A panel read in place is KC pieces of NR columns, one from
// each of KC rows of B: the pieces straddle cache lines and, rows a multiple of 512 bytes apart,
// fall into a few of L1's sets, so a deep panel does not stay in L1 from one tile to the next as
// a packed one does. The copy pays for itself once enough tiles read each panel: more than one
// (at most kMR rows), more than five for rows up to 2 KB apart, more than 64 rows for rows under
// 512 bytes apart unless the panel is at most 64 deep (it then stays in L1 as it is). Rows
// further apart are packed unless one tile reads them. (The counts measured on Zen 3:
// docs/performance-log.md.)
constexpr bool b_read_in_place(std::size_t m, std::size_t k, std::size_t b_row_bytes) {
  return m <= kMR || (m <= 5 * kMR && b_row_bytes <= 2048) || ((m <= 64 || k <= 64) && b_row_bytes < 512);
}

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

// An 8 x 8 block of floats (4 x 4 of doubles) transposed in registers: r[i] lane j -> r[j] lane i.
inline void transpose(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
inline void transpose(__m256d (&r)[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
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

// Lanes [0, count) of v to p (count < lanes) by plain stores of 4, 2 and 1 floats (2 and 1
// doubles): AVX2's masked store (vmaskmovps) takes about 12 cycles on AMD's Zen 3, these a few.
inline void store_lanes(float* p, __m256 v, std::size_t count) {
  __m128 x = _mm256_castps256_ps128(v);
  if (count & 4) {
    _mm_storeu_ps(p, x);
    x = _mm256_extractf128_ps(v, 1);
    p += 4;
  }
  if (count & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), x);
    x = _mm_movehl_ps(x, x);
    p += 2;
  }
  if (count & 1) _mm_store_ss(p, x);
}
inline void store_lanes(double* p, __m256d v, std::size_t count) {
  __m128d x = _mm256_castpd256_pd128(v);
  if (count & 2) {
    _mm_storeu_pd(p, x);
    x = _mm256_extractf128_pd(v, 1);
    p += 2;
  }
  if (count & 1) _mm_store_sd(p, x);
}

// Rows [0, R) and vectors [0, NV) of a tile (R <= MR, NV <= kNV), the last vector limited to its
// first last_lanes lanes when `masked` (C beyond them is not touched). Each C element is one FMA chain
// over k in increasing order from its start (0, or beta * C when chained), whichever tile shape
// and operand layout computes it: all give the same bits. chain: C = (beta*C or 0) +
// sum_k a*b (alpha is 1); otherwise C = alpha * sum + beta * C (beta == 0: C not read).
template <class T, std::size_t R, std::size_t NV, bool masked, ALayout layout, bool ahead>
[[gnu::always_inline]] inline void tile_impl(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b,
                                             std::ptrdiff_t sb, T* c, std::ptrdiff_t ldc, std::size_t last_lanes,
                                             bool chain, T alpha, T beta, const GemmEpilogue<T>* ep, const T* b_ahead) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  const auto last = V::tail_mask(last_lanes);  // the last vector's loads; its stores: store_lanes
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
        store_lanes(s, sum, last_lanes);
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
        store_lanes(ci, acc[i][v], last_lanes);
      } else {
        V::storeu(ci, acc[i][v]);
      }
    }
}

template <class T, std::size_t R, std::size_t NV, bool masked, ALayout layout>
void tile(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b, std::ptrdiff_t sb, T* c,
          std::ptrdiff_t ldc, std::size_t last_lanes, bool chain, T alpha, T beta, const GemmEpilogue<T>* ep) {
  tile_impl<T, R, NV, masked, layout, false>(kc, a, sa, b, sb, c, ldc, last_lanes, chain, alpha, beta, ep, nullptr);
}
// A whole tile over a row-major A that also asks for the next panel's rows of an in-place B, two
// lines a step of k (b_ahead: that panel's first row), so that they come from L2 while this
// panel's tiles run. Alpha is 1 (the asks are made only then).
template <class T>
void tile_ahead(std::size_t kc, const T* a, std::ptrdiff_t sa, const T* b, std::ptrdiff_t sb, T* c, std::ptrdiff_t ldc,
                bool chain, T beta, const GemmEpilogue<T>* ep, const T* b_ahead) {
  tile_impl<T, kMR, kNV, false, ALayout::by_row, true>(kc, a, sa, b, sb, c, ldc, Vec<T>::lanes, chain, T(1),
                                                      beta, ep, b_ahead);
}

template <class T>
using TileFn = void (*)(std::size_t, const T*, std::ptrdiff_t, const T*, std::ptrdiff_t, T*, std::ptrdiff_t,
                        std::size_t, bool, T, T, const GemmEpilogue<T>*);

// fn[layout][r - 1][nv - 1][masked]: the tile for r rows and nv vectors; one-vector tiles run up
// to kMR1 rows, two-vector tiles up to kMR (the others stay null).
template <class T>
struct TileTable {
  TileFn<T> fn[2][kMR1][kNV][2];
};
template <class T, std::size_t R, std::size_t NV>
constexpr void set_tiles(TileTable<T>& t) {
  if constexpr (R <= kMR || NV == 1) {
    t.fn[0][R - 1][NV - 1][0] = &tile<T, R, NV, false, ALayout::by_row>;
    t.fn[0][R - 1][NV - 1][1] = &tile<T, R, NV, true, ALayout::by_row>;
    t.fn[1][R - 1][NV - 1][0] = &tile<T, R, NV, false, ALayout::by_column>;
    t.fn[1][R - 1][NV - 1][1] = &tile<T, R, NV, true, ALayout::by_column>;
  }
}
template <class T, std::size_t... I>
constexpr TileTable<T> make_tiles(std::index_sequence<I...>) {
  TileTable<T> t{};
  (set_tiles<T, I / kNV + 1, I % kNV + 1>(t), ...);
  return t;
}
template <class T>
constexpr TileTable<T> kTiles = make_tiles<T>(std::make_index_sequence<kMR1 * kNV>{});

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
  return kMC * kKC + kKC * kNC<T>;  // A block, B block
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
  // A in place when one of its strides is 1 (else packed); a row-major B as b_read_in_place says.
  const bool a_rows = g.a_col == 1, a_in_place = a_rows || g.a_row == 1;
  const bool b_in_place =
      g.b_col == 1 && b_read_in_place(g.m, g.k, std::size_t(g.b_row < 0 ? -g.b_row : g.b_row) * sizeof(T));
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
      const bool finishing = g.epilogue != nullptr && pc + kc == g.k;
      // A partial panel is read in place only when it ends on a whole vector: else packed, once.
      if (b_in_place && last_masked)
        pack_b(kc, nc - last_panel, b_block + std::ptrdiff_t(last_panel), g.b_row, 1, packed_b + last_panel * kc);
      for (std::size_t ic = 0; ic < g.m; ic += kMC) {
        const std::size_t mc = min_size(kMC, g.m - ic);
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
        const std::size_t layout = a_rows ? 0 : 1;
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const std::size_t nr = min_size(NR, nc - jr);
          const std::size_t nv = (nr + L - 1) / L;
          const bool masked = nr % L != 0;
          const std::size_t last = nr - (nv - 1) * L;  // lanes of the last vector
          const bool b_here = b_in_place && !masked;
          const T* b = b_here ? b_block + std::ptrdiff_t(jr) : packed_b + jr * kc;
          const std::ptrdiff_t sb = b_here ? g.b_row : std::ptrdiff_t(NR);
          // One-vector tiles run kMR1 rows where A is read where it lies (packed A comes in
          // panels of kMR rows).
          const std::size_t tile_rows = nv == 1 && a_in_place ? kMR1 : kMR;
          for (std::size_t ir = 0; ir < mc; ir += tile_rows) {
            const std::size_t mr = min_size(tile_rows, mc - ir);
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

}  // namespace fastmlp::avx2
