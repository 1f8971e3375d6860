// The row split's scratch (network_rows.cpp): owned by the Network, touched only by the
// row-split step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastmlp/kernels.h"

namespace fastmlp {

template <class T>
struct RowSplitScratch {
  // Row-parallel steps: per part, the per-feature lists of its share of the first layer's
  // inputs, and the first-layer split itself (parts + 1 bounds).
  struct FeaturePart {
    std::vector<std::uint32_t> starts;
    std::vector<SparseEntry<T>> entries;  // row and input value
    // The lists of features [k0, k1) (feature k at k - k0), rows increasing, from per-row
    // sorted column lists (row r: cols[row_starts[r] .. row_ends[r])) and their values.
    void build(std::size_t num_rows, const std::uint32_t* row_starts, const std::uint32_t* row_ends,
               const std::uint32_t* cols, const T* values, std::uint32_t k0, std::uint32_t k1);
  };
  std::vector<FeaturePart> feature_parts;
  std::vector<std::size_t> feature_split;
  // Row-parallel steps: each row's nonzero values beside its columns in row_cols (same slots),
  // written by the part that owns the row.
  std::vector<T> row_vals;
};

}  // namespace fastmlp
