// Blocked matrix product in the BLIS style: panels of op(B) (KC x NR) and op(A) (MC x KC) are
// packed into contiguous, aligned scratch, then a register-blocked microkernel computes an
// MR x NR tile of C with MR * 2 accumulators (6 x 16 floats or 6 x 8 doubles: 12 of the 16 ymm
// registers), two vector loads of B and MR broadcasts of A per step of k. Packing makes any
// transpose or stride cost the same, pads the edges with zeros, and keeps the microkernel's loads
// aligned and sequential.
#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

namespace {

#include "../gemm_epilogue.inc"
#include "../row_prefetch_spread.inc"

constexpr std::size_t kMR = 6;
constexpr std::size_t kMC = 72;   // rows of A packed at once (12 microkernel panels)
constexpr std::size_t kKC = 256;  // depth of one packed block: A panel 6 KB, B panel 16 KB (float)
static_assert(kKC >= kGemmMaskInPlaceDepth, "C over positive needs one block of k (kernels.h)");
template <class T>
constexpr std::size_t kNR = 2 * Vec<T>::lanes;
template <class T>
constexpr std::size_t kNC = 2048 / sizeof(T);  // packed B block of KC x NC: 512 KB, half of L2

std::size_t min_size(std::size_t a, std::size_t b) { return a < b ? a : b; }

template <class T>
void pack_a(std::size_t mc, std::size_t kc, const T* a, std::ptrdiff_t rs, std::ptrdiff_t cs, T* out) {
  for (std::size_t ir = 0; ir < mc; ir += kMR) {
    const std::size_t mr = min_size(kMR, mc - ir);
    const T* panel = a + std::ptrdiff_t(ir) * rs;
    if (mr == kMR) {  // a whole panel: no test per element (small products are mostly packing)
      for (std::size_t k = 0; k < kc; ++k) {
        for (std::size_t i = 0; i < kMR; ++i) out[i] = panel[std::ptrdiff_t(i) * rs + std::ptrdiff_t(k) * cs];
        out += kMR;
      }
      continue;
    }
    for (std::size_t k = 0; k < kc; ++k) {
      for (std::size_t i = 0; i < kMR; ++i) {
        out[i] = i < mr ? panel[std::ptrdiff_t(i) * rs + std::ptrdiff_t(k) * cs] : T(0);
      }
      out += kMR;
    }
  }
}

template <class T>
void pack_b(std::size_t kc, std::size_t nc, const T* b, std::ptrdiff_t rs, std::ptrdiff_t cs, T* out) {
  using V = Vec<T>;
  constexpr std::size_t NR = kNR<T>;
  for (std::size_t jr = 0; jr < nc; jr += NR) {
    const std::size_t nr = min_size(NR, nc - jr);
    const T* panel = b + std::ptrdiff_t(jr) * cs;
    for (std::size_t k = 0; k < kc; ++k) {
      const T* row = panel + std::ptrdiff_t(k) * rs;
      if (cs == 1 && nr == NR) {
        V::store(out, V::loadu(row));
        V::store(out + V::lanes, V::loadu(row + V::lanes));
      } else if (cs == 1) {  // a narrow last panel (10 outputs of MNIST): masked loads, zeros past nr
        V::store(out, V::maskload(row, V::tail_mask(min_size(nr, V::lanes))));
        V::store(out + V::lanes, V::maskload(row + V::lanes, V::tail_mask(nr > V::lanes ? nr - V::lanes : 0)));
      } else {
        for (std::size_t j = 0; j < NR; ++j) out[j] = j < nr ? row[std::ptrdiff_t(j) * cs] : T(0);
      }
      out += NR;
    }
  }
}

// acc[i][h] += sum over k of a(i, k) * b(k, h half), one FMA chain per element in k order:
// the tile's arithmetic, shared by full and edge tiles (so both give the same bits).
template <class T>
[[gnu::always_inline]] inline void accumulate_tile(std::size_t kc, const T* a, const T* b,
                                                   typename Vec<T>::reg (&acc)[kMR][2]) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes, NR = kNR<T>;
  for (std::size_t k = 0; k < kc; ++k) {
    const reg b0 = V::load(b + k * NR);
    const reg b1 = V::load(b + k * NR + L);
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < kMR; ++i) {
      const reg ai = V::set1(a[k * kMR + i]);
      acc[i][0] = V::fmadd(ai, b0, acc[i][0]);
      acc[i][1] = V::fmadd(ai, b1, acc[i][1]);
    }
  }
}

// The epilogue (GemmEpilogue) on row i's vector of columns [j, j + lanes) of a tile whose origin
// `ep` points at, the lanes outside m (a partial vector) neither read nor stored.
template <class T>
typename Vec<T>::reg finish(const GemmEpilogue<T>& ep, typename Vec<T>::reg c, std::size_t i, std::size_t j,
                            typename Vec<T>::mask m, bool part) {
  using V = Vec<T>;
  if (ep.bias != nullptr) c = V::add(c, part ? V::maskload(ep.bias + j, m) : V::loadu(ep.bias + j));
  if (ep.relu) c = V::max(V::zero(), c);  // c second: NaN propagates
  if (ep.positive != nullptr) {
    const T* p = ep.positive + std::ptrdiff_t(i) * ep.ld_positive + std::ptrdiff_t(j);
    c = V::keep(V::gt(part ? V::maskload(p, m) : V::loadu(p), V::zero()), c);
  }
  if (ep.column_sums != nullptr) {  // the tile's rows come here in order
    T* s = ep.column_sums + j;
    const auto before = ep.origin_row + i == 0 ? V::zero() : part ? V::maskload(s, m) : V::loadu(s);
    if (part) {
      V::maskstore(s, m, V::add(before, c));
    } else {
      V::storeu(s, V::add(before, c));
    }
  }
  if (ep.update != nullptr) {  // w - lr * c (C is stored too)
    T* w = ep.update + std::ptrdiff_t(i) * ep.ld_update + std::ptrdiff_t(j);
    const auto next = V::sub(part ? V::maskload(w, m) : V::loadu(w), V::mul(V::set1(ep.learning_rate), c));
    if (part) {
      V::maskstore(w, m, next);
    } else {
      V::storeu(w, next);
    }
  }
  return c;
}

// One full MR x NR tile. chain: C = (beta*C or 0) + sum_k a*b as one FMA chain per element
// (alpha is 1); otherwise C = alpha * sum + beta * C (beta == 0: C not read).
template <class T>
void microkernel(std::size_t kc, const T* a, const T* b, T* c, std::ptrdiff_t ldc, bool chain,
                 T alpha, T beta, const GemmEpilogue<T>* ep) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  reg acc[kMR][2];
  if (chain && beta != T(0)) {
    const reg vbeta = V::set1(beta);
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < kMR; ++i) {
      acc[i][0] = V::mul(vbeta, V::loadu(c + std::ptrdiff_t(i) * ldc));
      acc[i][1] = V::mul(vbeta, V::loadu(c + std::ptrdiff_t(i) * ldc + L));
    }
  } else {
    _Pragma("GCC unroll 16")
    for (std::size_t i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = V::zero();
  }
  accumulate_tile<T>(kc, a, b, acc);
  _Pragma("GCC unroll 16")
  for (std::size_t i = 0; i < kMR; ++i) {
    T* ci = c + std::ptrdiff_t(i) * ldc;
    _Pragma("GCC unroll 16")
    for (std::size_t h = 0; h < 2; ++h) {
      reg out = acc[i][h];
      if (!chain) {
        out = beta == T(0) ? V::mul(V::set1(alpha), out)
                           : V::fmadd(V::set1(alpha), out, V::mul(V::set1(beta), V::loadu(ci + h * L)));
      }
      if (ep != nullptr) out = finish<T>(*ep, out, i, h * L, V::tail_mask(L), false);
      V::storeu(ci + h * L, out);
    }
  }
}

// An edge tile: the microkernel's arithmetic on every row of the panel (rows past mr are zeros
// in the packed A), C read and written only in rows [0, mr) and, through masks, columns [0, nr).
template <class T>
void edge_tile(std::size_t kc, const T* a, const T* b, T* c, std::ptrdiff_t ldc, std::size_t mr,
               std::size_t nr, bool chain, T alpha, T beta, const GemmEpilogue<T>* ep) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  const auto m0 = V::tail_mask(min_size(nr, L)), m1 = V::tail_mask(nr > L ? nr - L : 0);
  reg acc[kMR][2];
  _Pragma("GCC unroll 16")
  for (std::size_t i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = V::zero();
  if (chain && beta != T(0)) {
    const reg vbeta = V::set1(beta);
    for (std::size_t i = 0; i < mr; ++i) {
      acc[i][0] = V::mul(vbeta, V::maskload(c + std::ptrdiff_t(i) * ldc, m0));
      acc[i][1] = V::mul(vbeta, V::maskload(c + std::ptrdiff_t(i) * ldc + L, m1));
    }
  }
  accumulate_tile<T>(kc, a, b, acc);
  for (std::size_t i = 0; i < mr; ++i) {
    T* ci = c + std::ptrdiff_t(i) * ldc;
    for (std::size_t h = 0; h < 2; ++h) {
      const auto m = h == 0 ? m0 : m1;
      reg out = acc[i][h];
      if (!chain) {
        out = beta == T(0) ? V::mul(V::set1(alpha), out)
                           : V::fmadd(V::set1(alpha), out, V::mul(V::set1(beta), V::maskload(ci + h * L, m)));
      }
      if (ep != nullptr) out = finish<T>(*ep, out, i, h * L, m, true);
      V::maskstore(ci + h * L, m, out);
    }
  }
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
  return kMC * kKC + kKC * kNC<T>;
}

template <class T>
void gemm(const GemmArgs<T>& g) {
  constexpr std::size_t NR = kNR<T>, NC = kNC<T>;
  // A share of the asked-for lines before each tile (all of them on return, whatever is left).
  RowPrefetchSpread prefetch(g.prefetch, (g.m + kMR - 1) / kMR * ((g.n + NR - 1) / NR) * ((g.k + kKC - 1) / kKC));
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) return scale_c(g);
  T* packed_a = g.pack;
  T* packed_b = g.pack + kMC * kKC;
  const bool chain = g.alpha == T(1);
  for (std::size_t jc = 0; jc < g.n; jc += NC) {
    const std::size_t nc = min_size(NC, g.n - jc);
    for (std::size_t pc = 0; pc < g.k; pc += kKC) {
      const std::size_t kc = min_size(kKC, g.k - pc);
      // After the first block of k, C holds a partial sum: continue it (beta 1).
      const T beta = pc == 0 ? g.beta : T(1);
      pack_b(kc, nc, g.b + std::ptrdiff_t(pc) * g.b_row + std::ptrdiff_t(jc) * g.b_col, g.b_row,
             g.b_col, packed_b);
      for (std::size_t ic = 0; ic < g.m; ic += kMC) {
        const std::size_t mc = min_size(kMC, g.m - ic);
        pack_a(mc, kc, g.a + std::ptrdiff_t(ic) * g.a_row + std::ptrdiff_t(pc) * g.a_col, g.a_row,
               g.a_col, packed_a);
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const std::size_t nr = min_size(NR, nc - jr);
          for (std::size_t ir = 0; ir < mc; ir += kMR) {
            const std::size_t mr = min_size(kMR, mc - ir);
            T* c = g.c + std::ptrdiff_t(ic + ir) * g.ldc + std::ptrdiff_t(jc + jr);
            const T* a = packed_a + ir * kc;
            const T* b = packed_b + jr * kc;
            // The epilogue with the last block of k, at this tile's origin.
            GemmEpilogue<T> ep{};
            const bool finishing = g.epilogue != nullptr && pc + kc == g.k;
            if (finishing) ep = tile_epilogue(*g.epilogue, ic + ir, jc + jr);
            prefetch.step();
            if (mr == kMR && nr == NR) {
              microkernel<T>(kc, a, b, c, g.ldc, chain, g.alpha, beta, finishing ? &ep : nullptr);
            } else {
              edge_tile<T>(kc, a, b, c, g.ldc, mr, nr, chain, g.alpha, beta, finishing ? &ep : nullptr);
            }
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
