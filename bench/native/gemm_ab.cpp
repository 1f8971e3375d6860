// The AVX2 gemm on the products of this project's networks, timed hot, and optionally two
// builds of it side by side: with -DGEMM_AB the driver links two copies of avx2/gemm.cpp (from
// two trees), compiled under the namespaces avx2_a and avx2_b, and alternates them call by
// call, so that the shared host's drift cancels; it also checks that both give the same bits.
// From the repository root (one line each), for one build:
//   g++ -O3 -std=c++17 -mavx2 -mfma -ffp-contract=off -Icpp/include -Icpp/src/kernels/avx2
//       bench/native/gemm_ab.cpp cpp/src/kernels/avx2/gemm.cpp -o /tmp/gemm_ab
// and for two (OLD: a checkout of the other commit, e.g. `git worktree add /tmp/old HEAD~1`):
//   g++ -c -O3 -std=c++17 -mavx2 -mfma -ffp-contract=off -Icpp/include -Icpp/src/kernels/avx2
//       -Davx2=avx2_a /tmp/old/cpp/src/kernels/avx2/gemm.cpp -o /tmp/gemm_a.o
//   (the same with -Davx2=avx2_b and this tree's file, to /tmp/gemm_b.o)
//   g++ -O3 -std=c++17 -DGEMM_AB -Icpp/include bench/native/gemm_ab.cpp /tmp/gemm_a.o /tmp/gemm_b.o
//       -o /tmp/gemm_ab
//   taskset -c 1 /tmp/gemm_ab [calls]          # best of `calls` per shape (default 300)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "fastmlp/kernels.h"

#ifdef GEMM_AB
#define GEMM_BUILDS X(avx2_a) X(avx2_b)
#else
#define GEMM_BUILDS X(avx2)
#endif
#define X(ns)                                   \
  namespace fastmlp::ns {                       \
  template <class T>                            \
  void gemm(const GemmArgs<T>&);                \
  template <class T>                            \
  std::size_t gemm_pack_elements();             \
  }
GEMM_BUILDS
#undef X

using fastmlp::GemmArgs;
using Clock = std::chrono::steady_clock;

struct Shape {
  std::size_t m, n, k;
  bool a_transposed;  // A given as its transpose (columns contiguous), as a weight gradient reads it
  const char* what;
};

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 300;
  using Fn = void (*)(const GemmArgs<float>&);
#define X(ns) &fastmlp::ns::gemm<float>,
  const Fn builds[] = {GEMM_BUILDS};
#undef X
  const int nb = int(sizeof(builds) / sizeof(builds[0]));
  const Shape shapes[] = {
      {200, 100, 54, false, "tabular 54-100-7: x w1"},
      {54, 100, 200, true, "tabular: x^T dh"},
      {64, 100, 784, false, "784-100-10, batch 64: x w1"},
      {784, 100, 64, true, "784-100-10: x^T dh"},
      {250, 100, 784, false, "784-100-10 predict block"},
      {64, 512, 784, false, "784-512-512-10: x w1"},
      {64, 512, 512, false, "784-512-512-10: h1 w2"},
      {512, 512, 64, true, "784-512-512-10: h1^T dh2"},
      {784, 512, 64, true, "784-512-512-10: x^T dh1"},
      {12, 512, 512, false, "batch 12, 512 wide"},
      {24, 512, 512, false, "batch 24, 512 wide"},
  };
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::size_t pack_elements = 0;
#define X(ns) pack_elements = std::max(pack_elements, fastmlp::ns::gemm_pack_elements<float>());
  GEMM_BUILDS
#undef X
  auto* pack = static_cast<float*>(std::aligned_alloc(64, (pack_elements * sizeof(float) + 63) / 64 * 64));
  for (const Shape& s : shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n);
    for (float& e : a) e = uniform(rng);
    for (float& e : b) e = uniform(rng);
    const std::size_t ldc = (s.n + 15) / 16 * 16;
    std::vector<std::vector<float>> c(nb, std::vector<float>(s.m * ldc));
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < calls; ++r)
      for (int v = 0; v < nb; ++v) {
        const GemmArgs<float> g{s.m, s.n, s.k, 1.f, a.data(),
                                s.a_transposed ? 1 : std::ptrdiff_t(s.k), s.a_transposed ? std::ptrdiff_t(s.m) : 1,
                                b.data(), std::ptrdiff_t(s.n), 1, 0.f, c[v].data(), std::ptrdiff_t(ldc), pack,
                                nullptr, nullptr};
        const auto start = Clock::now();
        builds[v](g);
        best[v] = std::min(best[v], std::chrono::duration<double>(Clock::now() - start).count());
      }
    const double flop = 2.0 * double(s.m) * double(s.n) * double(s.k);
    std::printf("%5zu x %4zu x %4zu %-32s", s.m, s.n, s.k, s.what);
    for (int v = 0; v < nb; ++v) std::printf("  %8.2f us %5.1f GF/s", best[v] * 1e6, flop / best[v] / 1e9);
    if (nb == 2) std::printf("  %s", std::memcmp(c[0].data(), c[1].data(), c[0].size() * sizeof(float)) ? "BITS DIFFER" : "same bits");
    std::printf("\n");
  }
  return 0;
}
