// Weight penalties a vector at a time; the same operation order as the scalar twin for the
// gradient (so both ISAs give the same bits), sums in double lanes.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

namespace {
#include "../penalty_total.inc"
}  // namespace

template <class T>
double regularize(std::size_t n, T l1, T l2, const T* w, T* g) {
  using V = Vec<T>;
  if (g != nullptr) {
    const auto vl1 = V::set1(l1), two_l2 = V::set1(T(2) * l2), one = V::set1(T(1)), zero = V::zero();
    for_each_chunk<T>(n, [&](const Chunk<T>& c) {
      const auto wv = c.load(w);
      const auto sign = V::sub(V::bit_and(V::gt(wv, zero), one), V::bit_and(V::lt(wv, zero), one));
      c.store(g, V::add(c.load(g), V::add(V::mul(vl1, sign), V::mul(two_l2, wv))));
    });
    return 0;
  }
  double abs_sum = 0, square_sum = 0;
  for_each_chunk<T>(n, [&](const Chunk<T>& c) {
    const auto wv = c.load(w);  // zero outside the array: adds nothing
    alignas(32) T lanes[V::lanes];
    V::store(lanes, wv);
    for (std::size_t i = 0; i < V::lanes; ++i) {
      abs_sum += lanes[i] < T(0) ? -double(lanes[i]) : double(lanes[i]);
      square_sum += double(lanes[i]) * double(lanes[i]);
    }
  });
  return penalty_total(double(l1), double(l2), abs_sum, square_sum);
}

template double regularize<float>(std::size_t, float, float, const float*, float*);
template double regularize<double>(std::size_t, double, double, const double*, double*);

}  // namespace fastmlp::avx2
