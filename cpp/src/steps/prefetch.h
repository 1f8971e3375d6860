// Prefetches for the steps of fit: the next batch's rows and targets come from all over the
// data set (from memory, not cache), and the current step's work hides their latency.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastmlp/row_prefetch.h"
#include "fastmlp/trainer.h"

namespace fastmlp {

// Asks for the rows of the next batch early: they come from all over the data set (from
// memory, not cache), and the current step's work hides their latency.
template <class T>
inline void prefetch_rows(const T* x, std::size_t cols, const std::uint32_t* order, std::size_t rows) {
  const std::size_t bytes = cols * sizeof(T);
  for (std::size_t r = 0; r < rows; ++r) {
    const char* row = reinterpret_cast<const char*>(x + std::size_t(order[r]) * cols);
    for (std::size_t off = 0; off < bytes; off += 64) prefetch_line(row + off);
    // A row that starts inside a cache line ends inside one more than the loop reached.
    if (bytes != 0) prefetch_line(row + bytes - 1);
  }
}

// Asks for sample i's targets early (they too come from all over the data set).
template <class T>
inline void prefetch_targets(const DataView<T>& data, std::size_t out, std::size_t i) {
  if (data.labels != nullptr) prefetch_line(data.labels + i);
  if (data.y != nullptr) prefetch_line(data.y + i * out);
  if (data.weights != nullptr) prefetch_line(data.weights + i);
}

}  // namespace fastmlp
