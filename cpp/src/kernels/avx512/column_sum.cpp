// out[j] = sum over rows of x[r, j]: rows added in order, a vector of columns at a time.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

template <class T>
void column_sum(std::size_t rows, std::size_t cols, const T* x, std::ptrdiff_t ldx, T* out) {
  using V = Vec<T>;
  for_each_chunk<T>(cols, [&](const Chunk<T>& c) {
    auto acc = V::zero();
    for (std::size_t r = 0; r < rows; ++r) acc = V::add(acc, c.load(x + std::ptrdiff_t(r) * ldx));
    c.store(out, acc);
  });
}

template void column_sum<float>(std::size_t, std::size_t, const float*, std::ptrdiff_t, float*);
template void column_sum<double>(std::size_t, std::size_t, const double*, std::ptrdiff_t,
                                 double*);

}  // namespace fastmlp::avx512
