// Sparse rows times dense: skip the zero entries of a batch (MNIST images are ~80% zeros).
// The same multiply-add chain as scalar gemm, minus its exact-zero terms.
#include <cmath>

#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
std::size_t nonzero_indices(std::size_t n, const T* x, std::uint32_t* idx, T* vals, bool* non_finite) {
  std::size_t count = 0;
  bool finite = true;
  for (std::size_t j = 0; j < n; ++j) {
    if (x[j] == T(0)) continue;
    if (vals != nullptr) vals[count] = x[j];
    if (idx != nullptr) idx[count] = std::uint32_t(j);
    ++count;
    finite = finite && std::isfinite(x[j]);
  }
  if (!finite && non_finite != nullptr) *non_finite = true;
  return count;
}

template <class T>
void sparse_gemm(const SparseGemmArgs<T>& p) {
  for (std::size_t r = 0; r < p.rows; ++r) {
    const bool empty = p.starts[r] == p.ends[r];
    if (p.update != nullptr && empty) continue;  // w - lr * 0 == w
    T* out = (p.update != nullptr ? p.update : p.c) + std::ptrdiff_t(r) * p.ldc;
    for (std::size_t j = 0; j < p.n; ++j) {
      T sum = p.continue_chain ? out[j] : T(0);
      for (std::uint32_t e = p.starts[r]; e < p.ends[r]; ++e) {
        const std::size_t k = p.entries != nullptr ? p.entries[e].index : p.cols[e];
        const T value = p.entries != nullptr ? p.entries[e].value
                        : p.vals != nullptr  ? p.vals[e]
                                             : p.a[std::ptrdiff_t(r) * p.a_row + std::ptrdiff_t(k) * p.a_col];
        sum += value * p.b[std::ptrdiff_t(k) * p.ldb + j];
      }
      // Fused plain SGD: the same w - lr * g as the optimizer's kernel.
      out[j] = p.update != nullptr ? out[j] - p.learning_rate * sum : sum;
    }
  }
}

template std::size_t nonzero_indices<float>(std::size_t, const float*, std::uint32_t*, float*, bool*);
template std::size_t nonzero_indices<double>(std::size_t, const double*, std::uint32_t*, double*, bool*);
template void sparse_gemm<float>(const SparseGemmArgs<float>&);
template void sparse_gemm<double>(const SparseGemmArgs<double>&);

}  // namespace fastmlp::scalar
