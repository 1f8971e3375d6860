// The textbook matrix product, one dot product per output element: the readable twin of the
// blocked SIMD kernels. Each element is a chain over k in increasing order starting from zero,
// like the SIMD kernels (there, each step is a fused multiply-add); then the epilogue, if any.
#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

namespace {
#include "../gemm_epilogue.inc"
#include "../row_prefetch_spread.inc"
}  // namespace

template <class T>
void gemm(const GemmArgs<T>& g) {
  RowPrefetchSpread prefetch(g.prefetch, g.m);  // a share of the asked-for lines per row of C
  for (std::size_t i = 0; i < g.m; ++i) {
    prefetch.step();
    for (std::size_t j = 0; j < g.n; ++j) {
      T sum = 0;
      for (std::size_t k = 0; k < g.k; ++k) {
        sum += g.a[i * g.a_row + k * g.a_col] * g.b[k * g.b_row + j * g.b_col];
      }
      // Finished in a local, stored once: C may be the epilogue's positive (kernels.h).
      T& c = g.c[i * g.ldc + j];
      T value = g.beta == T(0) ? g.alpha * sum : g.alpha * sum + g.beta * c;
      if (g.epilogue != nullptr) apply_epilogue(*g.epilogue, i, j, value);
      c = value;
    }
  }
}

template <class T>
std::size_t gemm_pack_elements() {
  return 0;  // no packing: operands are read in place
}

template void gemm<float>(const GemmArgs<float>&);
template void gemm<double>(const GemmArgs<double>&);
template std::size_t gemm_pack_elements<float>();
template std::size_t gemm_pack_elements<double>();

}  // namespace fastmlp::scalar
