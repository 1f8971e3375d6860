// w -= learning_rate * g with one fused negative multiply-add per vector.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

template <class T>
void sgd_update(std::size_t n, T learning_rate, const T* g, T* w) {
  using V = Vec<T>;
  const auto lr = V::set1(learning_rate);
  for_each_chunk<T>(n, [&](const Chunk<T>& c) { c.store(w, V::fnmadd(lr, c.load(g), c.load(w))); });
}

template void sgd_update<float>(std::size_t, float, const float*, float*);
template void sgd_update<double>(std::size_t, double, const double*, double*);

}  // namespace fastmlp::avx2
