// Weight penalties (Keras's L1L2 regularizer): their value and their gradient, one pass.
#include <cmath>

#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

namespace {
#include "../penalty_total.inc"
}  // namespace

template <class T>
double regularize(std::size_t n, T l1, T l2, const T* w, T* g) {
  if (g != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const T sign = w[i] > T(0) ? T(1) : (w[i] < T(0) ? T(-1) : T(0));
      g[i] = g[i] + (l1 * sign + T(2) * l2 * w[i]);
    }
    return 0;
  }
  double abs_sum = 0, square_sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    abs_sum += std::fabs(double(w[i]));
    square_sum += double(w[i]) * double(w[i]);
  }
  return penalty_total(double(l1), double(l2), abs_sum, square_sum);
}

template double regularize<float>(std::size_t, float, float, const float*, float*);
template double regularize<double>(std::size_t, double, double, const double*, double*);

}  // namespace fastmlp::scalar
