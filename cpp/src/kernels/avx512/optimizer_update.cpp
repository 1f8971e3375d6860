// AVX-512's own copy of ../simd/optimizer_update.inc (see there), compiled with this folder's
// flags, and AVX-512's sum_squares.
#include <cmath>

#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"
#include "../simd/optimizer_update.inc"

template <class T>
double sum_squares(std::size_t n, const T* x) {
  // Squares summed in double lanes: a gradient norm is a long reduction.
  using D = Vec<double>;
  auto acc = D::zero();
  for (std::size_t i = 0; i < n; i += D::lanes) {
    const auto m = D::tail_mask(n - i);  // the tail's lanes past n load as zeros
    __m512d v;
    if constexpr (sizeof(T) == 4) {
      v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, reinterpret_cast<const float*>(x) + i));
    } else {
      v = _mm512_maskz_loadu_pd(m, reinterpret_cast<const double*>(x) + i);
    }
    acc = D::fmadd(v, v, acc);
  }
  return D::hsum(acc);
}

template double sum_squares<float>(std::size_t, const float*);
template double sum_squares<double>(std::size_t, const double*);

}  // namespace fastmlp::avx512
