// The feature pipeline (feature_pipeline.cpp, the step in steps/pipeline_step.cpp): its scratch,
// and the class that runs its phases on a Network.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fastmlp/kernels.h"
#include "fastmlp/network.h"
#include "row_split.h"

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

// A training step split by input features of the first layer, for `parts` threads, in three
// phases:
//   1. first_layer_pipeline: part p lists the nonzeros of input columns [k0, k1) of every row
//      and continues each row's first-layer chain over them, once part p - 1 has done its
//      columns of that row (a pipeline over the rows);
//   2. RowSplit::forward_rows_after_first, then the loss and RowSplit::backward_rows, for rows
//      [r0, r1), as soon as the last part has finished them (wait_first_layer_rows; no barrier
//      before it);
//   3. once every part is past phase 2 (a barrier in the same parallel run),
//      first_layer_gradient_pipeline on features [k0, k1) (then, when done, chunks of the
//      features of parts that are behind), then RowSplit::weight_gradients for the rest.
// Each part touches only its own rows of the first kernel (but for those chunks). Every
// value is still one chain over the inputs in order, so the results are bitwise those of
// Network::forward() and backward() for every split. Needs sparse-friendly inputs to pay (the
// lists hold every nonzero) and no dropout.
// It writes the first layer's pre-activation, kernel gradient (or kernel) and the network's
// input check (a friend of Network): while a step runs, nothing else may use the network.
template <class T>
class FeaturePipeline {
 public:
  explicit FeaturePipeline(Network<T>& net) : net_(net) {}
  static bool supports(const Network<T>& net, std::size_t parts);
  // Sizes its buffers on the first call for a batch size. Throws SizeError or AllocationError
  // when they cannot be had, leaving the network able to run every other kind of step (and this
  // one, once a later call succeeds).
  void prepare(std::size_t rows, std::size_t parts);
  // The batch's row r is x + order[r] * input_dim (x + r * input_dim when order is null): the
  // rows are read where they are, not gathered first, and the part reads only its columns.
  // next_order: the next batch's next_rows rows, whose columns the part prefetches meanwhile.
  void first_layer_pipeline(const T* x, const std::uint32_t* order, std::size_t rows, std::size_t part,
                            const std::uint32_t* next_order, std::size_t next_rows);
  // Waits until the last part has finished the first layer's chains of rows [0, r1): rows are
  // done in order, so phase 2 of those rows can start inside the same parallel run.
  void wait_first_layer_rows(std::size_t r1, std::size_t parts) const;
  // The first kernel's gradient rows [k0, k1) (or, with `sgd_learning_rate` and no penalty,
  // the plain SGD update of those rows in place, see Network::backward()), in chunks from the
  // front; then chunks from the back of other parts' rows, until every part's are taken.
  void first_layer_gradient_pipeline(std::size_t part, std::size_t parts, const T* sgd_learning_rate);
  // Nonzero inputs of the last pipelined step.
  std::size_t pipeline_nonzeros(std::size_t parts) const;
  // Moves the column split for the next step: each part gets a share of the nonzeros in
  // proportion to the rate at which it got through its gradient phase (nonzeros per second,
  // smoothed over steps), so that the parts finish that phase together even when their cores
  // run at different speeds. gradient_seconds: each part's time in that phase of this step.
  void rebalance_pipeline(std::size_t parts, const double* gradient_seconds);

 private:
  using Layer = typename Network<T>::Layer;
  // The gradient of part q's features [f0, f1) (relative to its first column); returns their
  // entries.
  std::size_t first_layer_gradient_features(std::size_t q, std::size_t f0, std::size_t f1, const T* sgd_learning_rate);

  Network<T>& net_;
  PipelineScratch<T> scratch_;
};

}  // namespace fastmlp
