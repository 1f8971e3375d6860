// Vector FMAs in 12 independent chains (2 pipes x 4 cycles latency needs at least 8; 12 leaves
// slack), as a GEMM microkernel would issue them at best: the "FMA peak" our benchmarks report
// their fraction of.
#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

template <class T>
double fma_peak_loop(std::size_t iterations, T* sink) {
  using V = Vec<T>;
  constexpr int kChains = 12;
  typename V::reg acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = V::set1(T(c + 1));
  const auto a = V::set1(T(0.999999)), b = V::set1(T(1e-7));
  for (std::size_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = V::fmadd(acc[c], a, b);
  auto total = V::zero();
  for (int c = 0; c < kChains; ++c) total = V::add(total, acc[c]);
  *sink = V::hsum(total);
  return 2.0 * kChains * double(V::lanes) * double(iterations);
}

template double fma_peak_loop<float>(std::size_t, float*);
template double fma_peak_loop<double>(std::size_t, double*);

}  // namespace fastmlp::avx512
