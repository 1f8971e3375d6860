#include "fastmlp/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/finite_check.h"
#include "fastmlp/sizes.h"
#include "fastmlp/thread_pool.h"
#include "spin_pause.h"

namespace fastmlp {

namespace {

// Asks for the rows of the next batch early: they come from all over the data set (from
// memory, not cache), and the current step's work hides their latency.
template <class T>
void prefetch_rows(const T* x, std::size_t cols, const std::uint32_t* order, std::size_t rows) {
  for (std::size_t r = 0; r < rows; ++r) {
    const char* row = reinterpret_cast<const char*>(x + std::size_t(order[r]) * cols);
    for (std::size_t off = 0; off < cols * sizeof(T); off += 64) __builtin_prefetch(row + off, 0, 2);
  }
}

// Asks for sample i's targets early (they too come from all over the data set).
template <class T>
void prefetch_targets(const DataView<T>& data, std::size_t out, std::size_t i) {
  if (data.labels != nullptr) __builtin_prefetch(data.labels + i, 0, 2);
  if (data.y != nullptr) __builtin_prefetch(data.y + i * out, 0, 2);
  if (data.weights != nullptr) __builtin_prefetch(data.weights + i, 0, 2);
}

// The row-parallel step gives each thread at least this many multiply-adds (nominal, dense) of
// a batch: waking a worker costs about a microsecond.
constexpr std::size_t kMinRowPartWork = 1 << 16;
// The widest layer for which fit splits steps by rows (see row_parallel_pays).
constexpr std::size_t kMaxRowParallelUnits = 256;
// Rows per chunk after the first layer in a pipelined step: ~4 us of work on MNIST, small
// enough to even out the parts, large enough for the kernels' row blocking (measured: 8-16
// rows ahead of 4 by ~3-5% on the MNIST step, 32 behind).
constexpr std::size_t kRowChunk = 12;

std::atomic<bool> g_row_parallel{true};
std::atomic<bool> g_feature_pipeline{true};

}  // namespace

void set_row_parallel_training(bool on) { g_row_parallel.store(on); }
bool row_parallel_training() { return g_row_parallel.load(std::memory_order_relaxed); }
void set_feature_pipeline_training(bool on) { g_feature_pipeline.store(on); }
bool feature_pipeline_training() { return g_feature_pipeline.load(std::memory_order_relaxed); }

template <class T>
Trainer<T>::Trainer(std::shared_ptr<Network<T>> net, TrainingConfig config,
                    OptimizerConfig optimizer, std::uint64_t seed)
    : net_(std::move(net)),
      config_(std::move(config)),
      uses_logits_(loss_uses_logits(config_.loss, net_->spec(net_->num_layers() - 1).activation,
                                    config_.from_logits)),
      optimizer_(std::move(optimizer), *net_),
      rng_(seed) {
  // Targets are either class indices (sparse loss) or dense rows: every metric must read the kind
  // the loss was given.
  const bool sparse = is_sparse(config_.loss);
  for (Metric m : config_.metrics) {
    const bool sparse_metric =
        m == Metric::sparse_categorical_accuracy || m == Metric::sparse_top_k_categorical_accuracy;
    if (sparse_metric != sparse)
      throw std::invalid_argument(sparse ? "sparse labels need a sparse_* metric"
                                         : "sparse_* metrics need the sparse loss");
  }
}

template <class T>
Totals Trainer<T>::empty_totals() const {
  Totals t;
  t.metrics.assign(config_.metrics.size(), 0.0);
  return t;
}

template <class T>
void Trainer<T>::check_data(const DataView<T>& data) const {
  if (data.x == nullptr) throw std::invalid_argument("x is missing");
  const bool sparse = is_sparse(config_.loss);
  if (sparse && data.labels == nullptr)
    throw std::invalid_argument("sparse_categorical_crossentropy needs integer class labels");
  if (!sparse && data.y == nullptr)
    throw std::invalid_argument(std::string(loss_name(config_.loss)) + " needs dense targets");
  if (data.n > std::numeric_limits<std::uint32_t>::max())
    throw std::invalid_argument("too many samples for one call");
}

template <class T>
void Trainer<T>::begin_epoch(std::size_t n, bool shuffle) {
  if (n > std::numeric_limits<std::uint32_t>::max()) throw std::invalid_argument("too many samples for one call");
  with_context([&] { return "the order of " + std::to_string(n) + " samples"; }, -1, [&] { reserve_checked(order_, n); });
  epoch_rng_ = rng_.state();
  epoch_begun_ = true;
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0u);
  if (shuffle) rng_.shuffle(order_);
}

template <class T>
std::size_t Trainer<T>::num_batches(std::size_t batch_size) const {
  if (batch_size == 0) throw std::invalid_argument("batch_size must be at least 1");
  return order_.size() / batch_size + std::size_t(order_.size() % batch_size != 0);
}

template <class T>
void Trainer<T>::reserve_batches(const DataView<T>& data, std::size_t rows) {
  Network<T>& net = *net_;
  net.reserve(rows);
  with_context([&] { return "the gathered batch of " + std::to_string(rows) + " rows"; }, -1, [&] {
    batch_x_.reserve_at_least(checked_mul(rows, net.input_dim(), "batch values"));
    if (data.y != nullptr) batch_y_.reserve_at_least(checked_mul(rows, net.output_dim(), "batch values"));
    if (data.weights != nullptr) batch_w_.reserve_at_least(rows);
    row_loss_.reserve_at_least(rows);
    reserve_checked(batch_labels_, rows);
    reserve_checked(gradient_seconds_, Network<T>::kMaxRowParts);
  });
}

template <class T>
void Trainer<T>::forward_loss(const T* x, const T* y, const std::int32_t* labels, const T* weights,
                              std::size_t rows, bool gradients, Totals& totals, bool training) {
  Network<T>& net = *net_;
  const std::size_t out = net.output_dim();
  check_labels(labels, rows);
  net.forward(x, rows, training ? &rng_ : nullptr);  // dropout only while training
  const T* pred = uses_logits_ ? net.output_logits() : net.output();
  const LossArgs<T> args{config_.loss,
                         uses_logits_ || config_.from_logits,
                         rows,
                         out,
                         pred,
                         std::ptrdiff_t(out),
                         y,
                         std::ptrdiff_t(out),
                         labels,
                         weights,
                         T(1) / T(rows),
                         gradients ? net.output_delta() : nullptr,
                         std::ptrdiff_t(out),
                         nullptr};
  const double loss = kernels<T>().loss(args);
  if (gradients && !uses_logits_) net.output_activation_backward(rows);
  add_batch(totals, loss, net.regularization_penalty(), rows, y, labels);
}

template <class T>
void Trainer<T>::add_batch(Totals& totals, double loss, double penalty, std::size_t rows, const T* y,
                           const std::int32_t* labels) const {
  const Network<T>& net = *net_;
  const std::size_t out = net.output_dim();
  // Keras adds the weight penalties to the batch's mean loss: here, to every sample's.
  totals.loss += loss + penalty * double(rows);
  for (std::size_t m = 0; m < config_.metrics.size(); ++m)
    totals.metrics[m] += metric_sum<T>(config_.metrics[m], rows, out, net.output(), std::ptrdiff_t(out), y,
                                       std::ptrdiff_t(out), labels, nullptr);
  totals.samples += rows;
}

template <class T>
void Trainer<T>::update(const T* x, std::size_t rows) {
  // Plain SGD lets the first layer update its kernel inside the backward pass.
  const T lr = T(optimizer_.current_learning_rate());
  const bool fused = net_->backward(x, rows, optimizer_.is_plain_sgd() ? &lr : nullptr);
  optimizer_.apply(fused);
}

template <class T>
Totals Trainer<T>::train_batches(const DataView<T>& data, std::size_t batch_size,
                                 std::size_t first, std::size_t count) {
  check_data(data);
  if (batch_size == 0) throw std::invalid_argument("batch_size must be at least 1");
  if (order_.size() != data.n)
    throw std::invalid_argument("begin_epoch was called for " + std::to_string(order_.size()) +
                                " samples, but the data has " + std::to_string(data.n));
  Network<T>& net = *net_;
  const std::size_t in = net.input_dim();
  // A batch_size beyond the data is one batch of all of it (as in Keras): the buffers are sized
  // for the rows a batch can have, never for batch_size itself.
  batch_size = std::min(batch_size, std::max<std::size_t>(data.n, 1));
  // Every buffer the steps use is sized here, before the first step changes anything: when one
  // cannot be had the call is refused with the model as it was, its generator included (this
  // epoch's shuffle, drawn by begin_epoch, is taken back, so the next epoch draws the same).
  try {
    reserve_batches(data, batch_size);
  } catch (...) {
    if (epoch_begun_) rng_.set_state(epoch_rng_);
    throw;
  }
  epoch_begun_ = false;
  batch_labels_.resize(batch_size);
  // The row split's own buffers: when they cannot be had, its steps split by columns instead
  // (the same bits, see network.h).
  bool by_rows = row_parallel_pays();
  if (by_rows) {
    try {
      net.reserve_row_parallel(batch_size, row_parts(batch_size));
    } catch (const SizeError&) {
      by_rows = false;
    } catch (const AllocationError&) {
      by_rows = false;
    }
  }
  Totals totals = empty_totals();
  const std::size_t batches = num_batches(batch_size);
  for (std::size_t b = first; b < batches && b - first < count; ++b) {
    const std::size_t start = b * batch_size;
    const std::size_t rows = std::min(batch_size, data.n - start);
    if (by_rows) {
      train_step_by_rows(data, order_.data() + start, rows, std::min(batch_size, data.n - start - rows), totals,
                         last_step_sparse_ && feature_pipeline_training() && net.supports_feature_pipeline(row_parts(rows)));
      continue;
    }
    // Gather the batch's rows into contiguous buffers (the matrix products want them so); the
    // rows come from all over the data set, so the copy is memory-bound: share it.
    ThreadPool& pool = ThreadPool::instance();
    const std::size_t tasks = std::min(pool.num_threads(), rows * in >= 16384 ? rows : std::size_t(1));
    pool.run(tasks, [&](std::size_t t) {
      const std::size_t r0 = rows * t / tasks, r1 = rows * (t + 1) / tasks;
      gather_x(data, order_.data() + start, r0, r1);
      gather_targets(data, order_.data() + start, r0, r1);
    });
    const std::size_t next = std::min(data.n, start + rows);
    prefetch_rows(data.x, in, order_.data() + next, std::min(batch_size, data.n - next));
    forward_loss(batch_x_.data(), data.y != nullptr ? batch_y_.data() : nullptr,
                 data.labels != nullptr ? batch_labels_.data() : nullptr,
                 data.weights != nullptr ? batch_w_.data() : nullptr, rows, true, totals, true);
    if (net.input_non_finite()) throw_non_finite(data, order_.data() + start, rows);
    update(batch_x_.data(), rows);
  }
  return totals;
}

template <class T>
void Trainer<T>::gather_x(const DataView<T>& data, const std::uint32_t* order, std::size_t r0, std::size_t r1) {
  const std::size_t in = net_->input_dim();
  for (std::size_t r = r0; r < r1; ++r)
    std::memcpy(batch_x_.data() + r * in, data.x + std::size_t(order[r]) * in, in * sizeof(T));
}

template <class T>
void Trainer<T>::gather_targets(const DataView<T>& data, const std::uint32_t* order, std::size_t r0, std::size_t r1) {
  const std::size_t out = net_->output_dim();
  for (std::size_t r = r0; r < r1; ++r) {
    const std::size_t i = order[r];
    if (data.y != nullptr) std::memcpy(batch_y_.data() + r * out, data.y + i * out, out * sizeof(T));
    if (data.labels != nullptr) batch_labels_[r] = data.labels[i];
    if (data.weights != nullptr) batch_w_[r] = data.weights[i];
  }
}

template <class T>
void Trainer<T>::train_step_by_rows(const DataView<T>& data, const std::uint32_t* order, std::size_t rows,
                                    std::size_t next_rows, Totals& totals, bool pipeline_wanted) {
  Network<T>& net = *net_;
  const std::size_t in = net.input_dim(), out = net.output_dim();
  // The small per-row values first (labels must be checked before any thread uses them).
  gather_targets(data, order, 0, rows);
  const T* y = data.y != nullptr ? batch_y_.data() : nullptr;
  const std::int32_t* labels = data.labels != nullptr ? batch_labels_.data() : nullptr;
  const T* weights = data.weights != nullptr ? batch_w_.data() : nullptr;
  check_labels(labels, rows);
  row_loss_.reserve_at_least(rows);

  const std::size_t parts = row_parts(rows);
  ThreadPool& pool = ThreadPool::instance();
  // The pipeline's buffers come with its first step: when they cannot be had, the step is split
  // by rows instead (the same bits).
  bool pipelined = pipeline_wanted;
  if (pipelined) {
    try {
      net.prepare_feature_pipeline(rows, parts);
    } catch (const SizeError&) {
      pipelined = false;
    } catch (const AllocationError&) {
      pipelined = false;
    }
  }
  const T* pred = uses_logits_ ? net.output_logits() : net.output();
  T* delta = net.output_delta();
  const T lr = T(optimizer_.current_learning_rate());
  const bool plain_sgd = optimizer_.is_plain_sgd();
  const T* sgd = plain_sgd ? &lr : nullptr;
  gradient_seconds_.resize(parts);
  // Keras's penalties on the weights before this step's update (as forward_loss adds them).
  const double penalty = net.regularization_penalty();
  // Rows [r0, r1) through the step (after the first layer, in a pipelined one), by part p. Any
  // split of the rows gives the same bits.
  auto rows_part = [&](std::size_t r0, std::size_t r1, std::size_t p) {
    if (pipelined) {
      // The next batch's targets, read at the start of its step by one thread alone.
      for (std::size_t r = r0; r < r1 && r < next_rows; ++r) prefetch_targets(data, out, order[rows + r]);
      net.forward_rows_after_first(r0, r1, p);
    } else {
      gather_x(data, order, r0, r1);
      net.forward_rows(batch_x_.data(), r0, r1, p);
    }
    if (r1 == r0) return;
    const auto ld = std::ptrdiff_t(out);
    kernels<T>().loss({config_.loss, uses_logits_ || config_.from_logits, r1 - r0, out, pred + r0 * out, ld,
                       y == nullptr ? nullptr : y + r0 * out, ld, labels == nullptr ? nullptr : labels + r0,
                       weights == nullptr ? nullptr : weights + r0, T(1) / T(rows), delta + r0 * out, ld,
                       row_loss_.data() + r0});
    if (!uses_logits_) net.output_activation_backward_rows(r0, r1);
    net.backward_rows(r0, r1, p);
  };
  if (pipelined) {
    // One parallel run for the whole step. The first layer, each part over its input columns of
    // every row; then the rows in small chunks, in order, each taken by the next part to be free
    // as soon as the last part has finished their chains: a part ahead in the pipeline starts on
    // them at once, and the parts end within a chunk of each other whatever their speeds in
    // this step. Then, once every part is past its rows, the weight gradients (the next batch's
    // rows were prefetched in the first phase).
    std::atomic<std::size_t> next_row{0}, past_rows{0};
    // The parts wait for each other, so they need a thread each at once: when the pool is busy
    // (another thread's fit), this step is split by rows instead, run part after part.
    pipelined = pool.run_concurrently(parts, [&](std::size_t p) {
      net.first_layer_pipeline(data.x, order, rows, p, order + rows, next_rows);
      for (;;) {
        const std::size_t r0 = next_row.fetch_add(kRowChunk, std::memory_order_relaxed);
        if (r0 >= rows) break;
        const std::size_t r1 = std::min(rows, r0 + kRowChunk);
        net.wait_first_layer_rows(r1, parts);
        rows_part(r0, r1, p);
      }
      past_rows.fetch_add(1, std::memory_order_acq_rel);
      spin_until([&] { return past_rows.load(std::memory_order_acquire) == parts; });
      // Every part has listed its inputs by now: a non-finite one stops the step before any update.
      if (net.input_non_finite()) return;
      const auto start = std::chrono::steady_clock::now();
      net.first_layer_gradient_pipeline(p, parts, sgd);
      net.weight_gradients(nullptr, rows, p, parts, sgd, true);
      gradient_seconds_[p] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
  }
  bool fused;
  if (pipelined) {
    if (net.input_non_finite()) throw_non_finite(data, order, rows);
    fused = net.fuses_first_kernel(plain_sgd);
    net.rebalance_pipeline(parts, gradient_seconds_.data());
    last_step_sparse_ = input_is_sparse(net.pipeline_nonzeros(parts), rows * in);
  } else {
    net.prepare_row_parallel(rows, parts);
    auto equal_share = [&](std::size_t p) { rows_part(rows * p / parts, rows * (p + 1) / parts, p); };
    if (parts == 1) equal_share(0); else pool.run(parts, equal_share);
    if (net.input_non_finite()) throw_non_finite(data, order, rows);
    fused = net.fuses_first_layer(rows, plain_sgd);
    auto gradients_part = [&](std::size_t p) {
      // This part's share of the next batch, while the gradients are computed.
      prefetch_rows(data.x, in, order + rows + next_rows * p / parts, next_rows * (p + 1) / parts - next_rows * p / parts);
      net.weight_gradients(batch_x_.data(), rows, p, parts, sgd, false);
    };
    if (parts == 1) gradients_part(0); else pool.run(parts, gradients_part);
    net.rebalance_features(rows, parts);
    last_step_sparse_ = net.first_layer_sparse(rows);
  }

  // The loss summed as the loss kernel sums it (row order, in double), plus the penalties.
  double loss = 0;
  for (std::size_t r = 0; r < rows; ++r) loss += double(weights == nullptr ? T(1) : weights[r]) * double(row_loss_[r]);
  add_batch(totals, loss, penalty, rows, y, labels);
  optimizer_.apply(fused);
}

template <class T>
bool Trainer<T>::row_parallel_pays() const {
  // Measured on this project's 2-core machine (bench/compare.py, quiet periods): for 784-100-10
  // MNIST the row split ran 2 threads at ~1.35x one (~1.55x with the feature pipeline for the
  // first layer), the column split at ~1.1x; for layers of 512 units and more the column split
  // was ahead (each thread packs and streams only its half of the weights), and on one thread
  // the two are the same work. All give the same bits.
  const Network<T>& net = *net_;
  if (!row_parallel_training() || !net.supports_row_parallel() || ThreadPool::instance().num_threads() < 2)
    return false;
  for (std::size_t l = 0; l < net.num_layers(); ++l)
    if (net.spec(l).units > kMaxRowParallelUnits) return false;
  return true;
}

template <class T>
std::size_t Trainer<T>::row_parts(std::size_t rows) const {
  // One part unless every part gets enough multiply-adds to pay for waking a thread.
  const Network<T>& net = *net_;
  std::size_t macs = 0;
  for (std::size_t l = 0; l < net.num_layers(); ++l) macs += net.fan_in(l) * net.spec(l).units;
  const std::size_t threads = std::min<std::size_t>(ThreadPool::instance().num_threads(), Network<T>::kMaxRowParts);
  return std::max<std::size_t>(1, std::min({threads, rows, rows * macs / kMinRowPartWork}));
}

template <class T>
void Trainer<T>::throw_non_finite(const DataView<T>& data, const std::uint32_t* order, std::size_t rows) const {
  const std::size_t in = net_->input_dim();
  std::size_t first = data.n;
  for (std::size_t r = 0; r < rows; ++r) {
    if (!row_is_finite(data.x + std::size_t(order[r]) * in, in)) first = std::min<std::size_t>(first, order[r]);
  }
  throw NonFiniteInput("x contains NaN or infinity (in sample " + std::to_string(first) + ")");
}

template <class T>
void Trainer<T>::check_labels(const std::int32_t* labels, std::size_t rows) const {
  if (labels == nullptr) return;
  const std::size_t out = net_->output_dim();
  for (std::size_t r = 0; r < rows; ++r)
    if (labels[r] < 0 || std::size_t(labels[r]) >= out)
      throw std::invalid_argument("label " + std::to_string(labels[r]) + " is outside [0, " +
                                  std::to_string(out) + ")");
}

template <class T>
Totals Trainer<T>::train_on_batch(const DataView<T>& data) {
  check_data(data);
  if (data.n == 0) throw std::invalid_argument("the batch is empty");
  Totals totals = empty_totals();
  forward_loss(data.x, data.y, data.labels, data.weights, data.n, true, totals, true);
  update(data.x, data.n);
  return totals;
}

template <class T>
Totals Trainer<T>::evaluate(const DataView<T>& data, std::size_t batch_size) {
  check_data(data);
  if (batch_size == 0) throw std::invalid_argument("batch_size must be at least 1");
  const std::size_t in = net_->input_dim(), out = net_->output_dim();
  // Beyond the data, or beyond what one batch's nonzero lists index, a batch is cut to fit:
  // every sample's values are the same in any batch.
  batch_size = std::min({batch_size, std::max<std::size_t>(data.n, 1), net_->max_batch_rows()});
  Totals totals = empty_totals();
  for (std::size_t start = 0; start < data.n; start += batch_size) {
    const std::size_t rows = std::min(batch_size, data.n - start);
    forward_loss(data.x + start * in, data.y == nullptr ? nullptr : data.y + start * out,
                 data.labels == nullptr ? nullptr : data.labels + start,
                 data.weights == nullptr ? nullptr : data.weights + start, rows, false, totals);
  }
  return totals;
}

template <class T>
double Trainer<T>::compute_gradients(const DataView<T>& data) {
  check_data(data);
  if (data.n == 0) throw std::invalid_argument("the batch is empty");
  Totals totals = empty_totals();
  forward_loss(data.x, data.y, data.labels, data.weights, data.n, true, totals);
  net_->backward(data.x, data.n);
  return totals.loss / double(data.n);
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace fastmlp
