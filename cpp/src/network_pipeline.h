// The feature pipeline's scratch (network_pipeline.cpp): owned by the Network, touched only by
// the pipelined step.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fastmlp/kernels.h"
#include "fastmlp/network.h"
#include "network_rows.h"

namespace fastmlp {

template <class T>
struct PipelineScratch {
  // The feature pipeline: per part, every row's nonzeros among its input columns (indices
  // relative to its first column, in fixed slots of width + 8) and their values; its features'
  // lists (feature k, relative to the first column: its entries, row and value, in the slots
  // [feature_starts[k] = k * rows, feature_ends[k]), rows increasing); the split of the input
  // columns (parts + 1 bounds); per part and row, the step whose chain the part has finished
  // (what the next part waits for).
  // Each part writes its counters every step and the step's serial code reads the others' buffer
  // sizes: a line of its own for each keeps those reads from waiting on another core's writes.
  struct alignas(64) ColumnPart {
    std::vector<std::uint32_t> starts, ends, cols;
    std::vector<T> vals;
    std::vector<std::uint32_t> feature_starts, feature_ends;
    std::vector<SparseEntry<T>> feature_lists;
    alignas(64) std::size_t nnz = 0;  // entries listed
    std::size_t gradient_nnz = 0;     // entries of the features whose gradient it computed
    std::size_t feature_entries(std::size_t f0, std::size_t f1) const {
      std::size_t n = 0;
      for (std::size_t f = f0; f < f1; ++f) n += feature_ends[f] - feature_starts[f];
      return n;
    }
  };
  // Per part, in the gradient phase: the features not yet taken (first << 32 | end, relative to
  // its first column) and the step whose feature lists are ready (so others may take some).
  struct alignas(64) FeatureCursor {
    std::atomic<std::uint64_t> untaken{0};
    std::atomic<std::uint64_t> lists_ready{0};
  };
  std::unique_ptr<FeatureCursor[]> feature_cursors;
  std::vector<ColumnPart> column_parts;
  std::vector<std::size_t> pipeline_split;
  std::vector<double> pipeline_rates;  // per part, smoothed nonzeros per second (0: not yet known)
  std::unique_ptr<std::atomic<std::uint64_t>[]> row_done;
  std::size_t row_done_stride = 0, row_done_size = 0;
  std::uint64_t pipeline_step = 0;
  std::size_t pipeline_rows = 0;  // the buffers above hold batches of up to this many rows
};

}  // namespace fastmlp
