// Asking the cache for rows before they are read. A training step gathers its batch's rows from
// all over the data set, so each row waits on memory unless it was asked for earlier; the ask
// for the next batch is spread over a long-running product (a few lines per tile,
// kernels/row_prefetch_spread.inc), because asked all at once the lines fill the core's miss
// buffers and the core stalls on the asks.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#endif

namespace fastmlp {

// Asks for the cache line holding p, toward the L2 cache (prefetcht1). On x86 with GCC or Clang
// an asm statement: GCC deletes a loop whose body is only __builtin_prefetch (the builtin has no
// side effect it must keep), and with it every ask for a batch's rows. Internal linkage: each
// kernel file, built for its own instruction set, keeps its own copy.
static inline void prefetch_line(const void* p) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  asm volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
#else
  __builtin_prefetch(p, 0, 2);
#endif
}

// Rows to ask for: row r is the row_bytes at base + order[r] * row_bytes, r in [0, rows).
struct RowPrefetch {
  const char* base = nullptr;
  std::size_t row_bytes = 0;
  const std::uint32_t* order = nullptr;
  std::size_t rows = 0;
};

}  // namespace fastmlp
