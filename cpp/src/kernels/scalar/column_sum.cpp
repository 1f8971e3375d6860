// The bias gradient: the sum of dz over the batch, per output unit.
#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
void column_sum(std::size_t rows, std::size_t cols, const T* x, std::ptrdiff_t ldx, T* out) {
  for (std::size_t j = 0; j < cols; ++j) out[j] = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < cols; ++j) out[j] += x[r * ldx + j];
  }
}

template void column_sum<float>(std::size_t, std::size_t, const float*, std::ptrdiff_t, float*);
template void column_sum<double>(std::size_t, std::size_t, const double*, std::ptrdiff_t,
                                 double*);

}  // namespace fastmlp::scalar
