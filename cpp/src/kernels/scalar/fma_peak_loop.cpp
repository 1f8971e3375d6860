// Scalar multiply-adds, 8 independent chains: the peak of the scalar path.
#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
double fma_peak_loop(std::size_t iterations, T* sink) {
  T acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const T a = T(0.999999), b = T(1e-7);
  for (std::size_t i = 0; i < iterations; ++i)
    for (T& x : acc) x = x * a + b;
  T total = 0;
  for (T x : acc) total += x;
  *sink = total;
  return 2.0 * 8.0 * double(iterations);
}

template double fma_peak_loop<float>(std::size_t, float*);
template double fma_peak_loop<double>(std::size_t, double*);

}  // namespace fastmlp::scalar
