// Runs training natively: per epoch a seeded shuffle, then batches of gather, forward, loss,
// backward and update, with the loss and metrics summed as it goes. Python asks for a chunk of
// batches at a time and never sees a single batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "fastmlp/hessian.h"
#include "fastmlp/loss.h"
#include "fastmlp/metrics.h"
#include "fastmlp/network.h"
#include "fastmlp/optimizer.h"
#include "fastmlp/rng.h"
#include "fastmlp/steps.h"

namespace fastmlp {

// A data set in memory: x is n x input_dim row-major; targets are either dense rows y
// (n x output_dim) or class indices `labels` (n).
template <class T>
struct DataView {
  const T* x;
  std::size_t n;
  const T* y;
  const std::int32_t* labels;
  const T* weights = nullptr;  // per-sample loss weights (Keras's sample_weight), or null
};

struct TrainingConfig {
  Loss loss;
  bool from_logits;
  std::vector<MetricSpec> metrics;
  double loss_delta = kHuberDelta;  // Huber's threshold
  // Metrics whose state is counts (dense targets only), reduced in Python.
  std::vector<ConfusionSpec> confusions = {};
};

// Sums over the samples seen; divide by `samples` for Keras's per-sample means. `confusions`
// holds each confusion metric's counts (metrics.h's layout), which add up across calls.
struct Totals {
  double loss = 0;
  std::vector<double> metrics;
  std::size_t samples = 0;
  std::vector<std::vector<std::uint64_t>> confusions;
};

template <class T>
class Trainer {
 public:
  Trainer(std::shared_ptr<Network<T>> net, TrainingConfig config, OptimizerConfig optimizer,
          std::uint64_t seed);
  ~Trainer();  // defined where the steps' types are complete

  Network<T>& network() { return *net_; }
  Rng& rng() { return rng_; }
  Optimizer<T>& optimizer() { return optimizer_; }
  const TrainingConfig& config() const { return config_; }

  // Draws this epoch's sample order (identity when shuffle is false).
  void begin_epoch(std::size_t n, bool shuffle);
  std::size_t num_batches(std::size_t batch_size) const;
  // Trains on batches [first, first + count) of the current epoch's order; a batch_size beyond
  // the data is one batch of all of it. Throws NonFiniteInput for a batch with a NaN or infinite
  // input, before its update; SizeError or AllocationError when the buffers for its batches
  // cannot be had, before the first (and then, in an epoch's first call, with the generator as
  // before begin_epoch).
  Totals train_batches(const DataView<T>& data, std::size_t batch_size, std::size_t first,
                       std::size_t count);
  // One update on all of `data` as a single batch, in order.
  Totals train_on_batch(const DataView<T>& data);
  // The loss and metrics over `data`, batch_size rows at a time. Throws NonFiniteInput, naming
  // the first such sample, when x holds NaN or infinity.
  Totals evaluate(const DataView<T>& data, std::size_t batch_size);
  // The step that ran train_batches' last batch (choose_step, after any fallback).
  StepKind last_step() const { return last_step_; }
  // Gradients of the batch-mean loss over all of `data` into the network; returns the loss.
  double compute_gradients(const DataView<T>& data);
  // The loss compute_gradients differentiates, as hessian.h takes it.
  LossSpec loss_spec() const { return {config_.loss, config_.from_logits, uses_logits_}; }

 private:
  // Forward, loss (gradient into the network when `gradients`), metrics; x/y/labels are the
  // batch's own contiguous rows.
  // training: dropout on (training steps); off for evaluation and compute_gradients.
  void forward_loss(const T* x, const T* y, const std::int32_t* labels, const T* weights,
                    std::size_t rows, bool gradients, Totals& totals, bool training = false);
  // A batch's summed loss (`loss`, without penalties), the penalties once per sample, and its
  // metrics (from the network's output) into totals: every kind of step sums the same way.
  void add_batch(Totals& totals, double loss, double penalty, std::size_t rows, const T* y,
                 const std::int32_t* labels) const;
  // Backward pass and optimizer step for the batch x of the last forward.
  void update(const T* x, std::size_t rows);
  void check_data(const DataView<T>& data) const;
  // Sizes the network's and the gathered batch's buffers for batches of up to `rows` rows.
  void reserve_batches(const DataView<T>& data, std::size_t rows);
  void check_labels(const std::int32_t* labels, std::size_t rows) const;
  // The steps of fit, one file each under steps/: each trains on the rows order[0 .. rows) of
  // data (next_rows: the next batch's, order[rows ..), to prefetch), bitwise as forward_loss +
  // update on those rows gathered would. step_pipeline returns false, having changed nothing
  // but its buffers, when it cannot run now (the pool is busy, its buffers cannot be had).
  void step_columns(const DataView<T>& data, const std::uint32_t* order, std::size_t rows, std::size_t next_rows,
                    Totals& totals);
  void step_rows(const DataView<T>& data, const std::uint32_t* order, std::size_t rows, std::size_t next_rows,
                 Totals& totals);
  // A batch of one row (steps/vector_step.cpp): matrix-vector products straight from the
  // sample's row. next_here: the next batch runs in this call, right after this one.
  void step_vector(const DataView<T>& data, const std::uint32_t* order, std::size_t next_rows, bool next_here,
                   Totals& totals);
  bool step_pipeline(const DataView<T>& data, const std::uint32_t* order, std::size_t rows, std::size_t next_rows,
                     Totals& totals);
  // What the row-split steps share (steps/rows_step.cpp): the batch, its targets gathered and
  // checked, the learning rate and the penalties before the update.
  struct RowBatch {
    const DataView<T>* data;
    const std::uint32_t* order;
    std::size_t rows, next_rows, parts;
    const T* y;
    const std::int32_t* labels;
    const T* weights;
    T lr;
    bool plain_sgd;
    double penalty;
    const T* sgd() const { return plain_sgd ? &lr : nullptr; }
  };
  // The row split's and the feature pipeline's state, made by their first use (throw
  // AllocationError when it cannot be).
  RowSplit<T>& row_split();
  FeaturePipeline<T>& feature_pipeline();
  VectorPass<T>& vector_pass();
  RowBatch begin_row_step(const DataView<T>& data, const std::uint32_t* order, std::size_t rows, std::size_t next_rows);
  // Rows [r0, r1) through forward, loss and backward by part p (after the first layer when
  // pipelined). Any split of the rows gives the same bits.
  void rows_through(const RowBatch& b, std::size_t r0, std::size_t r1, std::size_t p, bool pipelined);
  // Sums the batch's loss and metrics and applies the update.
  void finish_row_step(const RowBatch& b, Totals& totals, bool fused);
  // The facts choose_step reads for a batch of `rows` rows.
  StepFacts step_facts(std::size_t rows, bool row_buffers) const;
  std::size_t row_parts(std::size_t rows) const;
  // Rows order[r0 .. r1) of the data into rows r0 .. r1 of the batch buffers: x, and the
  // targets, labels and weights.
  void gather_x(const DataView<T>& data, const std::uint32_t* order, std::size_t r0, std::size_t r1);
  void gather_targets(const DataView<T>& data, const std::uint32_t* order, std::size_t r0, std::size_t r1);
  // Throws NonFiniteInput naming the first sample of the batch order[0 .. rows) whose x is
  // not finite.
  [[noreturn]] void throw_non_finite(const DataView<T>& data, const std::uint32_t* order, std::size_t rows) const;
  Totals empty_totals() const;

  std::shared_ptr<Network<T>> net_;
  TrainingConfig config_;
  bool uses_logits_;
  Optimizer<T> optimizer_;
  Rng rng_;
  // The generator before this epoch's shuffle, while no call of the epoch has got past sizing
  // its buffers (epoch_begun_).
  Rng::State epoch_rng_{};
  bool epoch_begun_ = false;
  std::vector<std::uint32_t> order_;
  AlignedBuffer<T> batch_x_, batch_y_, batch_w_, row_loss_;
  std::vector<std::int32_t> batch_labels_;
  // Whether the last step's inputs were sparse enough for the first layer's sparse path: the
  // next step guesses the same (a wrong guess costs speed, never bits).
  bool last_step_sparse_ = false;
  StepKind last_step_ = StepKind::columns;
  // Pipelined steps: the parts' times in the gradient phase (which set the column split,
  // FeaturePipeline::rebalance_pipeline).
  std::vector<double> gradient_seconds_;
  // The row split (steps/row_split.h), the feature pipeline (steps/feature_pipeline.h) and the
  // one-row passes (steps/vector_pass.h), made by row_split(), feature_pipeline() and
  // vector_pass().
  std::unique_ptr<RowSplit<T>> row_split_;
  std::unique_ptr<FeaturePipeline<T>> feature_pipeline_;
  std::unique_ptr<VectorPass<T>> vector_pass_;
};

}  // namespace fastmlp
