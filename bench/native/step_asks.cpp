// Where in a training step to ask for the next batch's rows: a standalone A/B of the five
// products of one step of an in-100-out network (batch B, relu hidden layer), each step's
// batch gathered from N random rows, alternating per epoch between
//   mode 0: no asks; mode 1: asks spread over the forward pass's first product;
//   mode 2: asks spread over the first layer's weight-gradient product (the backward pass's).
// Alternating epochs within one process lets the host's drift cancel out. It calls the AVX2
// gemm directly, so it runs on any x86-64 CPU with AVX2 and FMA. From the repository root:
//   g++ -O3 -std=c++17 -mavx2 -mfma -ffp-contract=off -Icpp/include -Icpp/src/kernels/avx2
//       bench/native/step_asks.cpp cpp/src/kernels/avx2/gemm.cpp -o /tmp/step_asks   (one line)
//   taskset -c 1 /tmp/step_asks 54 7 200 60000 30     # in out batch rows epochs
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "fastmlp/kernels.h"

namespace fastmlp::avx2 {
template <class T>
void gemm(const GemmArgs<T>&);
template <class T>
std::size_t gemm_pack_elements();
}  // namespace fastmlp::avx2

using fastmlp::GemmArgs;
using fastmlp::GemmEpilogue;
using fastmlp::RowPrefetch;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s in out batch rows [epochs]\n", argv[0]);
    return 2;
  }
  const std::size_t in = std::strtoul(argv[1], nullptr, 10), out = std::strtoul(argv[2], nullptr, 10);
  const std::size_t batch = std::strtoul(argv[3], nullptr, 10), rows = std::strtoul(argv[4], nullptr, 10);
  const int epochs = argc > 5 ? std::atoi(argv[5]) : 30;
  const std::size_t hidden = 100, ld = 112;  // the layer's row stride, as Network pads it
  const std::size_t bytes = rows * in * sizeof(float), huge = std::size_t(2) << 20;
  auto* data = static_cast<float*>(std::aligned_alloc(huge, (bytes + huge - 1) / huge * huge));
  madvise(data, bytes, MADV_HUGEPAGE);  // as NumPy's large arrays are
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (std::size_t i = 0; i < rows * in; ++i) data[i] = uniform(rng);
  std::vector<std::uint32_t> order(rows);
  std::iota(order.begin(), order.end(), 0u);
  std::vector<float> x(batch * in), w1(in * hidden), b1(ld), h(batch * ld), w2(hidden * out), b2(out + 8),
      z(batch * out), dw2(hidden * out), dh(batch * ld), db1(ld), dw1(in * hidden);
  for (auto* v : {&w1, &b1, &w2, &b2, &z})
    for (float& e : *v) e = uniform(rng);
  const std::size_t pack_bytes = fastmlp::avx2::gemm_pack_elements<float>() * sizeof(float);
  auto* pack = static_cast<float*>(std::aligned_alloc(64, (pack_bytes + 63) / 64 * 64));
  GemmEpilogue<float> bias_relu{}, bias{}, mask_sum{};
  bias_relu.bias = b1.data();
  bias_relu.relu = true;
  bias.bias = b2.data();
  mask_sum.positive = h.data();
  mask_sum.ld_positive = std::ptrdiff_t(ld);
  mask_sum.column_sums = db1.data();
  const auto I = std::ptrdiff_t(in), O = std::ptrdiff_t(out), H = std::ptrdiff_t(hidden), L = std::ptrdiff_t(ld);
  // As Network runs them: h = relu(x w1 + b1), z = h w2 + b2, dw2 = h^T dz, dh = (dz w2^T) * (h > 0)
  // with db1 its column sums, dw1 = x^T dh.
  const GemmArgs<float> products[5] = {
      {batch, hidden, in, 1.f, x.data(), I, 1, w1.data(), H, 1, 0.f, h.data(), L, pack, &bias_relu, nullptr},
      {batch, out, hidden, 1.f, h.data(), L, 1, w2.data(), O, 1, 0.f, z.data(), O, pack, &bias, nullptr},
      {hidden, out, batch, 1.f, h.data(), 1, L, z.data(), O, 1, 0.f, dw2.data(), O, pack, nullptr, nullptr},
      {batch, hidden, out, 1.f, z.data(), O, 1, w2.data(), 1, O, 0.f, dh.data(), L, pack, &mask_sum, nullptr},
      {in, hidden, batch, 1.f, x.data(), 1, I, dh.data(), L, 1, 0.f, dw1.data(), H, pack, nullptr, nullptr},
  };
  double gather_s[3] = {}, product_s[3] = {};
  int steps[3] = {};
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const int mode = epoch % 3;
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t s = 0; s + batch <= rows; s += batch, ++steps[mode]) {
      auto start = Clock::now();
      for (std::size_t r = 0; r < batch; ++r)
        std::memcpy(x.data() + r * in, data + std::size_t(order[s + r]) * in, in * sizeof(float));
      gather_s[mode] += seconds_since(start);
      const RowPrefetch next{reinterpret_cast<const char*>(data), in * sizeof(float), order.data() + s + batch,
                             s + 2 * batch <= rows ? batch : 0};
      start = Clock::now();
      for (int i = 0; i < 5; ++i) {
        GemmArgs<float> g = products[i];
        if ((mode == 1 && i == 0) || (mode == 2 && i == 4)) g.prefetch = &next;
        fastmlp::avx2::gemm<float>(g);
      }
      product_s[mode] += seconds_since(start);
    }
  }
  const char* names[3] = {"no asks", "asks in the forward product", "asks in the weight-gradient product"};
  for (int m = 0; m < 3; ++m)
    std::printf("%-36s gather %6.2f us  products %7.2f us  step %7.2f us\n", names[m], gather_s[m] / steps[m] * 1e6,
                product_s[m] / steps[m] * 1e6, (gather_s[m] + product_s[m]) / steps[m] * 1e6);
  double check = 0;
  for (float e : dw1) check += e;
  std::printf("(checksum %.6g)\n", check);
  return 0;
}
