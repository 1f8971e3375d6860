// Walks a row in whole vectors, then one masked vector for the tail, so elementwise kernels
// handle any width and never touch memory past the row's end. Internal linkage (see vec.h).
#pragma once

#include "vec.h"

namespace fastmlp::avx512 {
namespace {

// A chunk of one row: lanes [j, j + lanes) with `mask` marking the lanes inside the row.
template <class T>
struct Chunk {
  using V = Vec<T>;
  std::size_t j;
  typename V::mask mask;
  bool full;
  typename V::reg load(const T* row) const {
    return full ? V::loadu(row + j) : V::maskload(row + j, mask);
  }
  void store(T* row, typename V::reg v) const {
    if (full) {
      V::storeu(row + j, v);
    } else {
      V::maskstore(row + j, mask, v);
    }
  }
  // v in the row's lanes, `outside` elsewhere (for reductions: 0 for sums, -inf for max).
  typename V::reg inside(typename V::reg v, typename V::reg outside) const {
    return full ? v : V::select(mask, v, outside);
  }
};

template <class T, class F>
void for_each_chunk(std::size_t cols, F&& f) {
  using V = Vec<T>;
  std::size_t j = 0;
  for (; j + V::lanes <= cols; j += V::lanes) f(Chunk<T>{j, V::tail_mask(V::lanes), true});
  if (j < cols) f(Chunk<T>{j, V::tail_mask(cols - j), false});
}

}  // namespace
}  // namespace fastmlp::avx512
