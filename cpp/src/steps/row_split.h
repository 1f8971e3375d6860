// The row split (row_split.cpp, the step in steps/rows_step.cpp): its scratch, and the class
// that runs its phases on a Network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastmlp/kernels.h"
#include "fastmlp/network.h"

namespace fastmlp {

// The most parts (threads) a row-split or pipelined step runs in.
constexpr std::size_t kMaxRowParts = 64;

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

// A training step split by rows of the batch, for `parts` threads: each part first runs
// forward_rows and backward_rows on its own rows [r0, r1) (no barrier in between: rows do not
// interact before the weight gradients), then, once every row is done, weight_gradients on its
// share of the weights. Each value goes through the same operations in the same order as in
// Network::forward() and backward(), so the results are bitwise theirs for every split: the
// thread count cannot change them. Two barriers per step instead of one per layer and phase.
// Not for layers with dropout (their masks are drawn in one sequence).
// It writes the network's activations, deltas, gradients and nonzero lists (a friend of
// Network): while a step runs, nothing else may use the network.
template <class T>
class RowSplit {
 public:
  explicit RowSplit(Network<T>& net) : net_(net) {}
  static bool supports(const Network<T>& net);
  // Sizes the buffers for batches of up to `rows` rows in up to `parts` parts (grows only;
  // when it throws, every buffer is left valid). After it, prepare for such batches allocates
  // nothing.
  void reserve(std::size_t rows, std::size_t parts);
  // Readies the buffers for a batch of `rows` rows in `parts` parts (call before the parts run).
  void prepare(std::size_t rows, std::size_t parts);
  // x: the whole batch (rows x input_dim); fills the activations of rows [r0, r1).
  void forward_rows(const T* x, std::size_t r0, std::size_t r1, std::size_t part);
  // The first layer's bias and activation and every later layer for rows [r0, r1) (the first
  // layer's pre-activation already computed: forward_rows, or the feature pipeline).
  void forward_rows_after_first(std::size_t r0, std::size_t r1, std::size_t part);
  // The activation backward of the last layer for rows [r0, r1) (see
  // Network::output_activation_backward).
  void output_activation_backward_rows(std::size_t r0, std::size_t r1);
  // dL/dz of every hidden layer for rows [r0, r1), from the output delta of those rows.
  void backward_rows(std::size_t r0, std::size_t r1, std::size_t part);
  // Whether the first layer's weight gradient takes the sparse path (and so, with plain SGD,
  // fuses the update): decided on the whole batch, as backward() does.
  bool first_layer_sparse(std::size_t rows) const;
  // Part `part` of the kernel and bias gradients (with regularization) of every layer, after
  // every row's backward_rows. With `sgd_learning_rate` and fuses_first_layer(...) true, the
  // first kernel is updated in place instead (see Network::backward()).
  // skip_first_kernel: the first kernel's gradient is done elsewhere (the feature pipeline);
  // x is then not read and may be null.
  void weight_gradients(const T* x, std::size_t rows, std::size_t part, std::size_t parts,
                        const T* sgd_learning_rate, bool skip_first_kernel = false);
  bool fuses_first_layer(std::size_t rows, bool plain_sgd) const;
  // Moves the first layer's feature split so that each part gets a similar number of nonzero
  // inputs next time (any split gives the same results; only the balance changes).
  // Call after the parts' weight_gradients of a step over `rows` rows.
  void rebalance_features(std::size_t rows, std::size_t parts);

 private:
  using Layer = typename Network<T>::Layer;
  // Nonzero lists of rows [r0, r1) of x (the per-row half of Network::index_sparse_input);
  // returns how many entries.
  std::size_t index_rows(const T* x, std::size_t r0, std::size_t r1);
  // C[r0:r1) = A[r0:r1) @ B for one layer (C's rows ldc apart): gemm, or for a few rows the
  // sparse kernel with every index listed (bitwise gemm's), with the scratch of `part`.
  void rows_product(std::size_t rows, std::size_t n, std::size_t k, const T* a, std::ptrdiff_t a_row,
                    std::ptrdiff_t a_col, const T* b, std::ptrdiff_t b_row, std::ptrdiff_t b_col, T* c,
                    std::ptrdiff_t ldc, std::size_t layer, std::size_t part);

  Network<T>& net_;
  RowSplitScratch<T> scratch_;
};

}  // namespace fastmlp
