// Weight penalties a vector at a time; the same operation order as the scalar twin for the
// gradient (so both ISAs give the same bits), the sums of |w| and w^2 in double lanes.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

namespace {

using D = Vec<double>;

// Adds |w| and w^2 of a chunk's lanes (zeros outside the array add nothing) in double.
void add_sums(__m512 w, D::reg& abs_sum, D::reg& square_sum) {
  const __m512d halves[2] = {_mm512_cvtps_pd(_mm512_castps512_ps256(w)),
                             _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)))};
  for (const __m512d h : halves) {
    abs_sum = D::add(abs_sum, D::andnot(D::sign_bit(), h));
    square_sum = D::fmadd(h, h, square_sum);
  }
}
void add_sums(__m512d w, D::reg& abs_sum, D::reg& square_sum) {
  abs_sum = D::add(abs_sum, D::andnot(D::sign_bit(), w));
  square_sum = D::fmadd(w, w, square_sum);
}

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
  auto abs_sum = D::zero(), square_sum = D::zero();
  for_each_chunk<T>(n, [&](const Chunk<T>& c) {
    add_sums(c.load(w), abs_sum, square_sum);  // zero outside the array: adds nothing
  });
  return double(l1) * D::hsum(abs_sum) + double(l2) * D::hsum(square_sum);
}

template double regularize<float>(std::size_t, float, float, const float*, float*);
template double regularize<double>(std::size_t, double, double, const double*, double*);

}  // namespace fastmlp::avx512
