#include "fastmlp/finite_check.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "fastmlp/thread_pool.h"

namespace fastmlp {

namespace {

// Rows per task: about 1 MB of float32 MNIST rows, so a bad row early stops the others soon.
constexpr std::size_t kBlockBytes = 1 << 20;

}  // namespace

// A value is finite when its exponent bits are not all ones; tested on the bits so the loop
// vectorizes and needs no floating-point compare (NaN compares are what it looks for).
template <class T>
bool row_is_finite(const T* x, std::size_t cols) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits all_ones = 0;
  for (std::size_t j = 0; j < cols; ++j) {
    Bits bits;
    std::memcpy(&bits, x + j, sizeof(T));
    all_ones |= Bits((bits & exponent) == exponent);
  }
  return all_ones == 0;
}

template <class T>
std::int64_t first_non_finite_row(const T* x, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0) return -1;
  const std::size_t block = std::max<std::size_t>(1, kBlockBytes / (cols * sizeof(T)));
  const std::size_t blocks = (rows + block - 1) / block;
  std::atomic<std::size_t> first{rows};
  ThreadPool& pool = ThreadPool::instance();
  const std::size_t tasks = std::min(pool.num_threads(), blocks);
  // Task t scans blocks t, t + tasks, ...; it stops at a block past a bad row already found.
  pool.run(tasks, [&](std::size_t t) {
    for (std::size_t b = t; b < blocks; b += tasks) {
      const std::size_t r0 = b * block, r1 = std::min(rows, r0 + block);
      if (r0 >= first.load(std::memory_order_relaxed)) return;
      for (std::size_t r = r0; r < r1; ++r) {
        if (!row_is_finite(x + r * cols, cols)) {
          std::size_t seen = first.load(std::memory_order_relaxed);
          while (r < seen && !first.compare_exchange_weak(seen, r, std::memory_order_relaxed)) {
          }
          return;
        }
      }
    }
  });
  const std::size_t bad = first.load();
  return bad == rows ? -1 : std::int64_t(bad);
}

template std::int64_t first_non_finite_row<float>(const float*, std::size_t, std::size_t);
template std::int64_t first_non_finite_row<double>(const double*, std::size_t, std::size_t);
template bool row_is_finite<float>(const float*, std::size_t);
template bool row_is_finite<double>(const double*, std::size_t);

}  // namespace fastmlp
