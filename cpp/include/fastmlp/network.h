// A stack of dense layers: its parameters, their gradients, and the activations of one batch.
// Buffers are sized for the largest batch seen and reused: the batch loop never allocates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fastmlp/activation.h"
#include "fastmlp/aligned_buffer.h"
#include "fastmlp/kernels.h"
#include "fastmlp/rng.h"

namespace fastmlp {

struct LayerSpec {
  std::size_t units;
  Activation activation;
  bool use_bias;
  double alpha = 0;  // the activation's parameter (leaky_relu slope, elu alpha)
  // Inverted dropout on this layer's output while training: each value is kept with probability
  // 1 - dropout and then scaled by 1 / (1 - dropout) (Keras's Dropout after this layer).
  double dropout = 0;
  // Keras's L1L2 penalties on the kernel and the bias (0: none), added to the loss.
  double kernel_l1 = 0, kernel_l2 = 0, bias_l1 = 0, bias_l2 = 0;
  bool kernel_regularized() const { return kernel_l1 != 0 || kernel_l2 != 0; }
  bool bias_regularized() const { return bias_l1 != 0 || bias_l2 != 0; }
};

// The first layer reads only the nonzero inputs of a batch when their fraction is at most this
// threshold (0 turns the sparse path off). The result is bitwise the same either way; only the
// speed differs. For tests and benchmarks.
void set_sparse_density_threshold(double density);
double sparse_density_threshold();
// Whether a batch whose first-layer inputs hold `nonzeros` nonzero values out of `values` takes
// the sparse path (the one density test every kind of step applies).
bool input_is_sparse(std::size_t nonzeros, std::size_t values);

template <class T>
struct PipelineScratch;
template <class T>
class RowSplit;

template <class T>
class Network {
 public:
  Network(std::size_t input_dim, std::vector<LayerSpec> layers);
  ~Network();  // defined where the steps' scratch types are complete

  std::size_t input_dim() const { return input_dim_; }
  std::size_t output_dim() const { return layers_.back().spec.units; }
  std::size_t num_layers() const { return layers_.size(); }
  const LayerSpec& spec(std::size_t l) const { return layers_.at(l).spec; }
  std::size_t fan_in(std::size_t l) const { return l == 0 ? input_dim_ : layers_[l - 1].spec.units; }

  // Parameters in Keras's layout: kernel (fan_in, units) row-major, bias (units,).
  T* kernel(std::size_t l) { return layers_.at(l).kernel.data(); }
  T* bias(std::size_t l) { return layers_.at(l).spec.use_bias ? layers_[l].bias.data() : nullptr; }
  const T* kernel_grad(std::size_t l) const { return layers_.at(l).kernel_grad.data(); }
  const T* bias_grad(std::size_t l) const {
    return layers_.at(l).spec.use_bias ? layers_[l].bias_grad.data() : nullptr;
  }
  T* kernel_grad(std::size_t l) { return layers_.at(l).kernel_grad.data(); }
  T* bias_grad(std::size_t l) {
    return layers_.at(l).spec.use_bias ? layers_[l].bias_grad.data() : nullptr;
  }

  // Sizes the per-batch buffers for batches of up to `rows` rows (grows only). Strong: throws
  // SizeError or AllocationError (naming the layer and the bytes) with nothing changed.
  void reserve(std::size_t rows);
  // The most rows a batch may have: its nonzero lists take rows x (input_dim + 8) entries at
  // 32-bit offsets (kMaxIndexEntries).
  std::size_t max_batch_rows() const;

  // x: rows x input_dim, row-major. Afterwards output()/output_logits() hold the last layer's
  // activation and pre-activation. With `dropout_rng` (training), layers with dropout draw their
  // masks from it, in a fixed order (the same for every thread count).
  void forward(const T* x, std::size_t rows, Rng* dropout_rng = nullptr);
  // Whether an input of the last batch (forward, the row-parallel or the pipelined step) was
  // NaN or infinite: seen while listing the nonzeros, which reads every input of the batch.
  bool input_non_finite() const { return input_non_finite_->set.load(std::memory_order_relaxed); }
  const T* output() const { return layers_.back().a; }
  const T* output_logits() const { return layers_.back().z.data(); }

  // The last layer's dL/dz, to be filled (by the loss) before backward().
  T* output_delta() { return layers_.back().delta.data(); }
  // Turns dL/da of the last layer, already in output_delta(), into dL/dz.
  void output_activation_backward(std::size_t rows);
  // Kernel and bias gradients of every layer from output_delta(), for the batch x of the last
  // forward(). With `sgd_learning_rate` set, a first layer on the sparse path applies plain SGD
  // to its kernel directly (bitwise the same as gradient then update, without writing the
  // gradient); returns true when it did, so the optimizer skips that array.
  bool backward(const T* x, std::size_t rows, const T* sgd_learning_rate = nullptr);

  // A training step split by input features of the first layer (network_pipeline.cpp), for
  // `parts` threads, in three phases:
  //   1. first_layer_pipeline: part p lists the nonzeros of input columns [k0, k1) of every row
  //      and continues each row's first-layer chain over them, once part p - 1 has done its
  //      columns of that row (a pipeline over the rows);
  //   2. forward_rows_after_first, then the loss and backward_rows, for rows [r0, r1), as soon
  //      as the last part has finished them (wait_first_layer_rows; no barrier before it);
  //   3. once every part is past phase 2 (a barrier in the same parallel run),
  //      first_layer_gradient_pipeline on features [k0, k1) (then, when done, chunks of the
  //      features of parts that are behind), then weight_gradients for the rest.
  // Each part touches only its own rows of the first kernel (but for those chunks). Every
  // value is still one chain over the inputs in order, so the results are bitwise those of
  // forward() and backward() for every split. Needs sparse-friendly inputs to pay (the lists
  // hold every nonzero) and no dropout.
  bool supports_feature_pipeline(std::size_t parts) const;
  // Sizes its buffers on the first call for a batch size. Throws SizeError or AllocationError
  // when they cannot be had, leaving the network able to run every other kind of step (and this
  // one, once a later call succeeds).
  void prepare_feature_pipeline(std::size_t rows, std::size_t parts);
  // The batch's row r is x + order[r] * input_dim (x + r * input_dim when order is null): the
  // rows are read where they are, not gathered first, and the part reads only its columns.
  // next_order: the next batch's next_rows rows, whose columns the part prefetches meanwhile.
  void first_layer_pipeline(const T* x, const std::uint32_t* order, std::size_t rows, std::size_t part,
                            const std::uint32_t* next_order, std::size_t next_rows);
  // Waits until the last part has finished the first layer's chains of rows [0, r1): rows are
  // done in order, so phase 2 of those rows can start inside the same parallel run.
  void wait_first_layer_rows(std::size_t r1, std::size_t parts) const;
  // The first kernel's gradient rows [k0, k1) (or, with `sgd_learning_rate` and no penalty,
  // the plain SGD update of those rows in place, see backward()), in chunks from the front;
  // then chunks from the back of other parts' rows, until every part's are taken.
  void first_layer_gradient_pipeline(std::size_t part, std::size_t parts, const T* sgd_learning_rate);
  // Whether, with plain SGD, the first kernel's sparse gradient updates the kernel in place
  // (no penalty to add to the gradient first): the one fused-SGD test every step applies.
  bool fuses_first_kernel(bool plain_sgd) const { return plain_sgd && !layers_[0].spec.kernel_regularized(); }
  // Nonzero inputs of the last pipelined step.
  std::size_t pipeline_nonzeros(std::size_t parts) const;
  // Moves the column split for the next step: each part gets a share of the nonzeros in
  // proportion to the rate at which it got through its gradient phase (nonzeros per second,
  // smoothed over steps), so that the parts finish that phase together even when their cores
  // run at different speeds. gradient_seconds: each part's time in that phase of this step.
  void rebalance_pipeline(std::size_t parts, const double* gradient_seconds);

  // The weight penalties of every layer (the regularization loss Keras adds to the loss).
  double regularization_penalty() const;

  // Predictions for n rows, `batch` rows at a time, into out (n x output_dim).
  void predict(const T* x, std::size_t n, std::size_t batch, T* out);
  // Throws std::invalid_argument naming the first sample with NaN or infinity.
  void check_finite(const T* x, std::size_t rows) const;

 private:
  // The row split (network_rows.h) runs forward() and backward() by rows on the same buffers;
  // it is used only while no other call runs on the network (a training step), so nothing here
  // changes under another call.
  friend class RowSplit<T>;

  struct Layer {
    LayerSpec spec;
    AlignedBuffer<T> kernel, bias, kernel_grad, bias_grad;
    AlignedBuffer<T> z, a_storage, delta;  // capacity x units each
    T* a = nullptr;  // the activation: a_storage, or z itself for a linear layer
    AlignedBuffer<T> mask, dropped;  // dropout: 0 or 1 / (1 - rate) per value, and a * mask
    T* out = nullptr;                // what the next layer reads: a, or dropped while training
    bool dropped_now = false;
  };
  // The batch's nonzero inputs, per row and per input feature, when the first layer takes the
  // sparse path. Row r's columns sit at row_cols[row_starts[r] .. row_ends[r]) in a fixed slot of
  // input_dim + 8 entries, so threads index rows independently; row_prefix counts the entries
  // before each row (for balancing). Feature k's rows are feature_rows[feature_starts[k] ..
  // feature_starts[k + 1]), increasing.
  struct SparseInput {
    bool active = false;
    std::size_t rows = 0, nnz = 0;
    std::vector<std::uint32_t> row_starts, row_ends, row_prefix, row_cols;
    std::vector<std::uint32_t> feature_starts, feature_rows, feature_fill;
  };
  void index_sparse_input(const T* x, std::size_t rows);
  // The per-feature lists, from the per-row ones (needed only by a backward pass).
  void index_sparse_features();
  // C = A @ B (alpha 1, beta 0), split over the pool's threads by columns or rows of C.
  void parallel_gemm(std::size_t m, std::size_t n, std::size_t k, const T* a, std::ptrdiff_t a_row,
                     std::ptrdiff_t a_col, const T* b, std::ptrdiff_t b_row, std::ptrdiff_t b_col,
                     T* c, std::ptrdiff_t ldc);
  // Split by output columns.
  void parallel_sparse_gemm(const SparseGemmArgs<T>& args);
  // fn(r0, r1, j0, j1) over blocks of a rows x cols activation step, in parallel.
  template <class F>
  void for_blocks(std::size_t rows, std::size_t cols, Activation act, F&& fn);
  T* pack_buffer(std::size_t task);
  std::size_t input_dim_;
  std::vector<Layer> layers_;
  std::size_t capacity_ = 0;
  std::vector<AlignedBuffer<T>> packs_;  // GEMM packing scratch, one per task
  SparseInput sparse_;
  // Set by any thread that lists a non-finite input, cleared before each batch (on a line of its
  // own: every part reads it in each pipelined step, and it is written only when set).
  struct alignas(64) InputCheck {
    std::atomic<bool> set{false};
  };
  std::unique_ptr<InputCheck> input_non_finite_ = std::make_unique<InputCheck>();
  void clear_input_check() {
    if (input_non_finite_->set.load(std::memory_order_relaxed)) input_non_finite_->set.store(false, std::memory_order_relaxed);
  }
  // A thread's listing saw a non-finite input (`seen`, from nonzero_indices).
  void note_input_check(bool seen) {
    if (seen) input_non_finite_->set.store(true, std::memory_order_relaxed);
  }
  // The feature pipeline's scratch (network_pipeline.h): made by its first step, so networks
  // that never run one carry none of it.
  std::unique_ptr<PipelineScratch<T>> pipeline_;
  // The gradient of part q's features [f0, f1) (relative to its first column); returns their
  // entries.
  std::size_t first_layer_gradient_features(std::size_t q, std::size_t f0, std::size_t f1, const T* sgd_learning_rate);
  // The full index list [0, fan_in) for small batches, with per-row starts (0) and ends.
  std::vector<std::uint32_t> all_indices_, all_starts_;
  std::vector<std::vector<std::uint32_t>> all_ends_;
};

}  // namespace fastmlp
