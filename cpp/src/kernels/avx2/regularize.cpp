// Weight penalties a vector at a time; the same operation order as the scalar twin for the
// gradient (so both ISAs give the same bits), the sums of |w| and w^2 in double lanes.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

namespace {

#include "../penalty_total.inc"

using D = Vec<double>;

// The sums of |w| (Abs) and w^2 (Square) of w[0, n) in double lanes, eight chains of each, so
// that the adds do not wait on each other's latency: chain 2 u + h takes half h of the u-th
// float vector of each four (doubles: chain u of each eight vectors).
template <class T, bool Abs, bool Square>
void penalty_sums(std::size_t n, const T* w, double& abs_total, double& square_total) {
  using V = Vec<T>;
  constexpr std::size_t L = V::lanes, U = sizeof(T) == 4 ? 4 : 8;  // vectors per round
  D::reg abs_sum[8], square_sum[8];
  for (std::size_t s = 0; s < 8; ++s) abs_sum[s] = square_sum[s] = D::zero();
  const auto add = [&](std::size_t s, __m256d h) [[gnu::always_inline]] {
    if constexpr (Abs) abs_sum[s] = D::add(abs_sum[s], D::andnot(D::sign_bit(), h));
    if constexpr (Square) square_sum[s] = D::fmadd(h, h, square_sum[s]);
  };
  const auto add_vector = [&](std::size_t u, typename V::reg v) [[gnu::always_inline]] {
    if constexpr (sizeof(T) == 4) {
      add(2 * u, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
      add(2 * u + 1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    } else {
      add(u, v);
    }
  };
  std::size_t j = 0;
  for (; j + U * L <= n; j += U * L) {
    _Pragma("GCC unroll 8")
    for (std::size_t u = 0; u < U; ++u) add_vector(u, V::loadu(w + j + u * L));
  }
  for (; j < n; j += L) add_vector(0, V::maskload(w + j, V::tail_mask(n - j)));  // zeros past n add nothing
  const auto total = [](const D::reg (&sums)[8]) {
    const D::reg t[4] = {D::add(sums[0], sums[4]), D::add(sums[1], sums[5]), D::add(sums[2], sums[6]),
                         D::add(sums[3], sums[7])};
    return D::hsum(D::add(D::add(t[0], t[2]), D::add(t[1], t[3])));
  };
  abs_total = total(abs_sum);
  square_total = total(square_sum);
}

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
  // Only the sums a nonzero factor needs (penalty_total leaves the other term out).
  double abs_total = 0, square_total = 0;
  if (l1 != T(0) && l2 != T(0)) {
    penalty_sums<T, true, true>(n, w, abs_total, square_total);
  } else if (l1 != T(0)) {
    penalty_sums<T, true, false>(n, w, abs_total, square_total);
  } else if (l2 != T(0)) {
    penalty_sums<T, false, true>(n, w, abs_total, square_total);
  }
  return penalty_total(double(l1), double(l2), abs_total, square_total);
}

template double regularize<float>(std::size_t, float, float, const float*, float*);
template double regularize<double>(std::size_t, double, double, const double*, double*);

}  // namespace fastmlp::avx2
