// AVX2's own copy of ../simd/optimizer_update.inc (see there), compiled with this folder's
// flags, and AVX2's sum_squares.
#include <cmath>

#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"
#include "../simd/optimizer_update.inc"

template <class T>
double sum_squares(std::size_t n, const T* x) {
  // Squares summed in double lanes: a gradient norm is a long reduction.
  __m256d acc = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d v;
    if constexpr (sizeof(T) == 4) {
      v = _mm256_cvtps_pd(_mm_loadu_ps(reinterpret_cast<const float*>(x) + i));
    } else {
      v = _mm256_loadu_pd(reinterpret_cast<const double*>(x) + i);
    }
    acc = _mm256_fmadd_pd(v, v, acc);
  }
  double sum = Vec<double>::hsum(acc);
  for (; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return sum;
}

template double sum_squares<float>(std::size_t, const float*);
template double sum_squares<double>(std::size_t, const double*);

}  // namespace fastmlp::avx2
