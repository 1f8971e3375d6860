// Plain gradient descent: w -= learning_rate * g.
#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
void sgd_update(std::size_t n, T learning_rate, const T* g, T* w) {
  for (std::size_t i = 0; i < n; ++i) w[i] -= learning_rate * g[i];
}

template void sgd_update<float>(std::size_t, float, const float*, float*);
template void sgd_update<double>(std::size_t, double, const double*, double*);

}  // namespace fastmlp::scalar
