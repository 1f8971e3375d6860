// Per-sample SGD's fused pass over a first kernel: the update, then the next row's product,
// row by row. The same operations, in the same order, as scalar sparse_gemm's fused update of
// a one-entry row and its product over the listed entries.
#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
void sgd_forward(const SgdForwardArgs<T>& p) {
  for (std::size_t j = 0; j < p.n; ++j) p.out[j] = T(0);
  for (std::size_t k = 0; k < p.rows; ++k) {
    T* w = p.w + std::ptrdiff_t(k) * p.ldw;
    const T u = p.update_x[k], f = p.next_x[k];
    if (!(p.update_skips_zeros && u == T(0))) {
      for (std::size_t j = 0; j < p.n; ++j) {
        T g = T(0);
        g += u * p.delta[j];
        w[j] = w[j] - p.learning_rate * g;
      }
    }
    if (!(p.next_skips_zeros && f == T(0)))
      for (std::size_t j = 0; j < p.n; ++j) p.out[j] += f * w[j];
  }
}

template void sgd_forward<float>(const SgdForwardArgs<float>&);
template void sgd_forward<double>(const SgdForwardArgs<double>&);

}  // namespace fastmlp::scalar
