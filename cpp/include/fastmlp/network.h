// A stack of dense layers: its parameters, their gradients, and the activations of one batch.
// Buffers are sized for the largest batch seen and reused: the batch loop never allocates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
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
  // Keras's `layer.trainable`: a frozen layer's kernel and bias are never updated and its
  // penalties are not part of the loss (Keras sums the regularizers of trainable weights only).
  bool trainable = true;
  // Keras's BatchNormalization on this layer's product plus bias, before its activation (a
  // Dense layer without an activation, then BatchNormalization, then the activation, if any).
  // While training (and with norm_trainable) it normalizes with the batch's mean and biased
  // variance and moves the moving statistics once per batch:
  //   moving = moving * momentum + batch * (1 - momentum);
  // otherwise (predict, evaluate, a frozen normalization) with the moving statistics. gamma
  // (norm_scale) and beta (norm_center) are trained as the kernel is, unless !norm_trainable.
  bool batch_norm = false;
  double norm_momentum = 0.99, norm_epsilon = 1e-3;
  bool norm_center = true, norm_scale = true;
  bool norm_trainable = true;
  // Keras's BatchNormalization on this layer's input: after the previous layer's activation
  // and dropout (or on the network's input, for layer 0), before the product (a
  // BatchNormalization after an activation, a Dropout or the Input). The same rule as above, per
  // input feature (fan_in values each); then, while training, inverted dropout at input_dropout
  // on the normalized values (a Dropout between the BatchNormalization and this layer).
  bool input_norm = false;
  double input_norm_momentum = 0.99, input_norm_epsilon = 1e-3;
  bool input_norm_center = true, input_norm_scale = true;
  bool input_norm_trainable = true;
  double input_dropout = 0;
  bool kernel_regularized() const { return kernel_l1 != 0 || kernel_l2 != 0; }
  bool bias_regularized() const { return bias_l1 != 0 || bias_l2 != 0; }
};

// The first layer reads only the nonzero inputs of a batch when their fraction is at most this
// threshold (0 turns the sparse path off). The result is bitwise the same either way; only the
// speed differs. For tests and benchmarks.
void set_sparse_density_threshold(double density);
double sparse_density_threshold();
// Whether networks built from now on give their hidden layers' batch rows whole cache lines
// (row_stride in network.cpp; on by default). The bits are the same either way; for tests.
void set_row_padding(bool on);
bool row_padding();
// The least multiply-adds a thread of a split dense product (Network's products split over
// the threads only from twice this); for tests, which split small models. Results do not
// change.
void set_min_product_split_work(std::size_t n);
std::size_t min_product_split_work();
// Whether a batch whose first-layer inputs hold `nonzeros` nonzero values out of `values` takes
// the sparse path (the one density test every kind of step applies).
bool input_is_sparse(std::size_t nonzeros, std::size_t values);

template <class T>
class RowSplit;
template <class T>
class FeaturePipeline;
template <class T>
class VectorPass;

// x holds a NaN or infinite input, found in the pass that lists the inputs' nonzeros anyway
// (the sparse path's density test) instead of a pass of its own over the whole data set:
// thrown by predict, and by train_batches before the update of the batch that holds it (the
// earlier batches of the call are applied; fit keeps a copy of the model's state to put back).
struct NonFiniteInput : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

template <class T>
class Network {
 public:
  Network(std::size_t input_dim, std::vector<LayerSpec> layers);

  std::size_t input_dim() const { return input_dim_; }
  std::size_t output_dim() const { return layers_.back().spec.units; }
  std::size_t num_layers() const { return layers_.size(); }
  const LayerSpec& spec(std::size_t l) const { return layers_.at(l).spec; }
  // Freezes or unfreezes layer l (Keras's `layer.trainable`); takes effect at the next step.
  void set_trainable(std::size_t l, bool trainable) { layers_.at(l).spec.trainable = trainable; }
  // Freezes or unfreezes layer l's batch normalization: frozen, it normalizes with the moving
  // statistics in training too and gamma and beta stay as they are (Keras's frozen layer).
  void set_norm_trainable(std::size_t l, bool trainable) { layers_.at(l).spec.norm_trainable = trainable; }
  // The same for the batch normalization of layer l's input.
  void set_input_norm_trainable(std::size_t l, bool trainable) { layers_.at(l).spec.input_norm_trainable = trainable; }
  std::size_t fan_in(std::size_t l) const { return l == 0 ? input_dim_ : layers_[l - 1].spec.units; }
  // The row stride of layer l's batch buffers (units, or padded: row_stride in network.cpp).
  std::size_t batch_row_stride(std::size_t l) const { return layers_.at(l).stride; }

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

  // The batch normalization's arrays of layer l (units values each); null when the layer has
  // none (gamma without norm_scale, beta without norm_center, all without batch_norm).
  T* gamma(std::size_t l) { return norm_array(layers_.at(l).gamma, layers_[l].spec.norm_scale); }
  T* beta(std::size_t l) { return norm_array(layers_.at(l).beta, layers_[l].spec.norm_center); }
  T* moving_mean(std::size_t l) { return norm_array(layers_.at(l).moving_mean, true); }
  T* moving_variance(std::size_t l) { return norm_array(layers_.at(l).moving_variance, true); }
  T* gamma_grad(std::size_t l) { return norm_array(layers_.at(l).gamma_grad, layers_[l].spec.norm_scale); }
  T* beta_grad(std::size_t l) { return norm_array(layers_.at(l).beta_grad, layers_[l].spec.norm_center); }
  // The arrays of layer l's input batch normalization (fan_in(l) values each), as above.
  T* input_gamma(std::size_t l) { return norm_array(layers_.at(l).in_gamma, layers_[l].spec.input_norm_scale); }
  T* input_beta(std::size_t l) { return norm_array(layers_.at(l).in_beta, layers_[l].spec.input_norm_center); }
  T* input_moving_mean(std::size_t l) { return norm_array(layers_.at(l).in_moving_mean, true); }
  T* input_moving_variance(std::size_t l) { return norm_array(layers_.at(l).in_moving_variance, true); }
  T* input_gamma_grad(std::size_t l) {
    return norm_array(layers_.at(l).in_gamma_grad, layers_[l].spec.input_norm_scale);
  }
  T* input_beta_grad(std::size_t l) { return norm_array(layers_.at(l).in_beta_grad, layers_[l].spec.input_norm_center); }
  // Whether any layer normalizes its batch (steps that split a batch's rows cannot run it).
  bool has_batch_norm() const;

  // Sizes the per-batch buffers for batches of up to `rows` rows (grows only). Strong: throws
  // SizeError or AllocationError (naming the layer and the bytes) with nothing changed.
  void reserve(std::size_t rows);
  // The most rows a batch may have: its nonzero lists take rows x (input_dim + 8) entries at
  // 32-bit offsets (kMaxIndexEntries).
  std::size_t max_batch_rows() const;

  // x: rows x input_dim, row-major. Afterwards output()/output_logits() hold the last layer's
  // activation and pre-activation (a relu layer's z holds its activation: see
  // activation_apart in network.cpp). With `dropout_rng` (training), layers with dropout draw their
  // masks from it, in a fixed order (the same for every thread count). With `logits_only`, the
  // last layer's activation is left out (when it has no batch normalization): output_logits()
  // holds its pre-activation as always, output() is not updated (for a loss that reads the
  // logits while nothing reads the activation).
  void forward(const T* x, std::size_t rows, Rng* dropout_rng = nullptr, bool logits_only = false);
  // Whether an input of the last batch (forward, the row split or the feature pipeline) was
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
  // gradient); returns true when it did, so the optimizer skips that array. A hidden relu
  // layer's activation may be overwritten by its delta (the two buffers then trade places):
  // after backward() only the last layer's output is still the forward pass's.
  bool backward(const T* x, std::size_t rows, const T* sgd_learning_rate = nullptr);

  // Whether, with plain SGD, the first kernel's sparse gradient updates the kernel in place
  // (no penalty to add to the gradient first): the one fused-SGD test every step applies.
  // A frozen first layer is never updated, so nothing is fused.
  bool fuses_first_kernel(bool plain_sgd) const {
    return plain_sgd && layers_[0].spec.trainable && !layers_[0].spec.kernel_regularized();
  }
  // The weight penalties of every layer (the regularization loss Keras adds to the loss).
  double regularization_penalty() const;

  // Predictions for n rows, `batch` rows at a time, into out (n x output_dim). Throws
  // NonFiniteInput, naming the first such sample, when x holds NaN or infinity (out is then
  // partly written).
  void predict(const T* x, std::size_t n, std::size_t batch, T* out);
  // After a forward pass over `rows` rows of x that input_non_finite() says held NaN or
  // infinity: throws NonFiniteInput naming the first such row as sample first + r.
  [[noreturn]] void throw_non_finite(const T* x, std::size_t rows, std::size_t first) const;
  // predict for one row as matrix-vector products (steps/vector_pass.h), without a pool, a
  // pack or a pass of its own over x: bitwise predict's. Throws std::invalid_argument as
  // check_finite does when x holds NaN or infinity. No dropout nor batch normalization
  // (VectorPass::supports); otherwise it runs predict.
  void predict_row(const T* x, T* out);
  // Throws std::invalid_argument naming the first sample with NaN or infinity.
  void check_finite(const T* x, std::size_t rows) const;

  // Rows (the next batch's) for the next large dense product of forward or backward to ask the
  // cache for while it runs, spread over its tiles (fastmlp/row_prefetch.h); that product takes
  // them. take_prefetch() returns and clears what no product took (the caller then asks).
  void prefetch_during_next_product(const RowPrefetch& rows) { prefetch_ = rows; }
  RowPrefetch take_prefetch() { return std::exchange(prefetch_, RowPrefetch{}); }

 private:
  // The training steps that split the work otherwise than forward() and backward() do (the
  // row split, steps/row_split.h; the feature pipeline, steps/feature_pipeline.h) run on these
  // same buffers. They run only inside a training step, while no other call runs on the
  // network, and leave the buffers as forward() and backward() would (bitwise): the invariants
  // above hold after them.
  friend class RowSplit<T>;
  friend class FeaturePipeline<T>;
  friend class VectorPass<T>;

  struct Layer {
    LayerSpec spec;
    AlignedBuffer<T> kernel, bias, kernel_grad, bias_grad;
    // The row stride of the batch buffers below (z, a, delta, mask, dropped, pre): units, or
    // units rounded up to whole cache lines (row_stride); the values past units are never read.
    std::size_t stride = 0;
    AlignedBuffer<T> z, a_storage, delta;  // capacity x stride each
    T* a = nullptr;  // the activation: a_storage, or z itself for a linear or relu layer
    AlignedBuffer<T> mask, dropped;  // dropout: 0 or 1 / (1 - rate) per value, and a * mask
    T* out = nullptr;                // what the next layer reads: a, or dropped while training
    bool dropped_now = false;
    // Batch normalization: its parameters and their gradients, the last batch's statistics
    // (units each), and the product plus bias before it (capacity x units); batch_stats_now
    // says whether the last forward normalized with the batch's statistics.
    AlignedBuffer<T> gamma, beta, moving_mean, moving_variance, gamma_grad, beta_grad;
    AlignedBuffer<T> batch_mean, batch_variance, pre;
    bool batch_stats_now = false;
    // The input batch normalization: its arrays (fan_in each) as above; the normalized input,
    // its dropout mask and the dropped values (capacity x fan_in); for layer 0, dL/d(input)
    // (capacity x fan_in: the product's input gradient, which no earlier layer holds). in_used
    // is what the last forward's product read (in_normed, or in_dropped while training).
    AlignedBuffer<T> in_gamma, in_beta, in_moving_mean, in_moving_variance, in_gamma_grad, in_beta_grad;
    AlignedBuffer<T> in_batch_mean, in_batch_variance, in_normed, in_mask, in_dropped, in_delta;
    const T* in_used = nullptr;
    bool in_batch_stats_now = false, in_dropped_now = false;
  };
  T* norm_array(AlignedBuffer<T>& b, bool present) {
    return present && b.size() != 0 ? b.data() : nullptr;
  }
  // Layer l's batch normalization from pre to z (training: with the batch's statistics, which
  // then move the moving ones), split by columns over the threads.
  void normalize(std::size_t l, std::size_t rows, bool training);
  // delta from dL/dz to dL/d(pre), writing gamma's and beta's gradients.
  void normalize_backward(std::size_t l, std::size_t rows);
  // Layer l's input batch normalization of `in` (rows x fan_in) into in_normed, then (with
  // dropout_rng) its dropout; sets in_used.
  void normalize_input(std::size_t l, const T* in, std::size_t rows, Rng* dropout_rng);
  // `delta` (rows x fan_in) from dL/d(in_used) to dL/d(in), for the `in` of the last forward,
  // writing the input gamma's and beta's gradients.
  void normalize_input_backward(std::size_t l, const T* in, T* delta, std::size_t rows);
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
  // C = A @ B (alpha 1, beta 0), then the epilogue when not null, split over the pool's threads
  // by columns or rows of C.
  void parallel_gemm(std::size_t m, std::size_t n, std::size_t k, const T* a, std::ptrdiff_t a_row,
                     std::ptrdiff_t a_col, const T* b, std::ptrdiff_t b_row, std::ptrdiff_t b_col,
                     T* c, std::ptrdiff_t ldc, const GemmEpilogue<T>* epilogue = nullptr);
  // Split by output columns.
  void parallel_sparse_gemm(const SparseGemmArgs<T>& args);
  // fn(r0, r1, j0, j1) over blocks of a rows x cols activation step, in parallel.
  template <class F>
  void for_blocks(std::size_t rows, std::size_t cols, Activation act, F&& fn);
  T* pack_buffer(std::size_t task);
  // The row stride of what layer l's product reads: the input's, or the previous layer's
  // buffers' (an input normalization's buffers have fan_in(l), which is then that stride too:
  // row_stride pads no layer whose next normalizes its input).
  std::size_t input_stride(std::size_t l) const { return l == 0 ? input_dim_ : layers_[l - 1].stride; }
  std::size_t input_dim_;
  std::vector<Layer> layers_;
  std::size_t capacity_ = 0;
  std::vector<AlignedBuffer<T>> packs_;  // GEMM packing scratch, one per task
  RowPrefetch prefetch_{};                 // see prefetch_during_next_product
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
  // The full index list [0, fan_in) for small batches, with per-row starts (0) and ends.
  std::vector<std::uint32_t> all_indices_, all_starts_;
  std::vector<std::vector<std::uint32_t>> all_ends_;
};

}  // namespace fastmlp
