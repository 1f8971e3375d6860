// Weight penalties a vector at a time; the same operation order as the scalar twin for the
// gradient (so both ISAs give the same bits), the sums of |w| and w^2 in double lanes.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

namespace {

using D = Vec<double>;

// Running sums of |w| and w^2 in double lanes, two of each: a float chunk's lower and upper
// halves go to their own sums, so two add chains run side by side instead of one twice as long.
struct Sums {
  D::reg abs_sum[2] = {D::zero(), D::zero()};
  D::reg square_sum[2] = {D::zero(), D::zero()};
  void add(std::size_t s, __m512d h) {
    abs_sum[s] = D::add(abs_sum[s], D::andnot(D::sign_bit(), h));
    square_sum[s] = D::fmadd(h, h, square_sum[s]);
  }
  // A chunk's lanes (zeros outside the array add nothing).
  void add(__m512 w) {
    add(0, _mm512_cvtps_pd(_mm512_castps512_ps256(w)));
    add(1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1))));
  }
  void add(__m512d w) { add(0, w); }
  double abs_total() const { return D::hsum(D::add(abs_sum[0], abs_sum[1])); }
  double square_total() const { return D::hsum(D::add(square_sum[0], square_sum[1])); }
};

}  // namespace

template <class T>
double regularize(std::size_t n, T l1, T l2, const T* w, T* g) {
  using V = Vec<T>;
  if (g != nullptr) {
    const auto vl1 = V::set1(l1), two_l2 = V::set1(T(2) * l2), one = V::set1(T(1)), zero = V::zero();
    for_each_chunk<T>(n, [&](const Chunk<T>& c) {
      const auto wv = c.load(w);
      const auto sign = V::sub(V::keep(V::gt(wv, zero), one), V::keep(V::lt(wv, zero), one));
      c.store(g, V::add(c.load(g), V::add(V::mul(vl1, sign), V::mul(two_l2, wv))));
    });
    return 0;
  }
  Sums sums;
  for_each_chunk<T>(n, [&](const Chunk<T>& c) { sums.add(c.load(w)); });  // zero outside the array
  return double(l1) * sums.abs_total() + double(l2) * sums.square_total();
}

template double regularize<float>(std::size_t, float, float, const float*, float*);
template double regularize<double>(std::size_t, double, double, const double*, double*);

}  // namespace fastmlp::avx512
