#include "fastmlp/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/finite_check.h"
#include "fastmlp/sizes.h"
#include "fastmlp/thread_pool.h"
#include "steps/feature_pipeline.h"
#include "steps/row_split.h"
#include "steps/vector_pass.h"

namespace fastmlp {

namespace {

}  // namespace

template <class T>
Trainer<T>::~Trainer() = default;

template <class T>
RowSplit<T>& Trainer<T>::row_split() {
  if (!row_split_) {
    row_split_.reset(new (std::nothrow) RowSplit<T>(*net_));
    if (!row_split_) throw AllocationError("cannot allocate the row split's state");
  }
  return *row_split_;
}

template <class T>
FeaturePipeline<T>& Trainer<T>::feature_pipeline() {
  if (!feature_pipeline_) {
    feature_pipeline_.reset(new (std::nothrow) FeaturePipeline<T>(*net_));
    if (!feature_pipeline_) throw AllocationError("cannot allocate the feature pipeline's state");
  }
  return *feature_pipeline_;
}

template <class T>
VectorPass<T>& Trainer<T>::vector_pass() {
  if (!vector_pass_) {
    vector_pass_.reset(new (std::nothrow) VectorPass<T>(*net_));
    if (!vector_pass_) throw AllocationError("cannot allocate the one-row step's state");
  }
  return *vector_pass_;
}

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
  for (const MetricSpec& m : config_.metrics) {
    if (is_sparse_metric(m.metric) != sparse)
      throw std::invalid_argument(sparse ? "sparse labels need a sparse_* metric"
                                         : "sparse_* metrics need the sparse loss");
  }
  for (const ConfusionSpec& spec : config_.confusions) {
    if (sparse) throw std::invalid_argument("confusion metrics need dense targets, not the sparse loss");
    check_confusion_spec(spec);
    checked_mul(confusion_stride(spec), net_->output_dim(), "confusion counts");
  }
}

template <class T>
Totals Trainer<T>::empty_totals() const {
  Totals t;
  t.metrics.assign(config_.metrics.size(), 0.0);
  for (const ConfusionSpec& spec : config_.confusions)
    t.confusions.emplace_back(confusion_stride(spec) * net_->output_dim(), 0);
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
    reserve_checked(gradient_seconds_, kMaxRowParts);
  });
}

template <class T>
void Trainer<T>::forward_loss(const T* x, const T* y, const std::int32_t* labels, const T* weights,
                              std::size_t rows, bool gradients, Totals& totals, bool training) {
  Network<T>& net = *net_;
  const std::size_t out = net.output_dim();
  check_labels(labels, rows);
  // A loss from the logits with no metric to read the predictions: the output activation is
  // left out (its values would be read by nothing).
  const bool logits_only =
      gradients && uses_logits_ && config_.metrics.empty() && config_.confusions.empty();
  net.forward(x, rows, training ? &rng_ : nullptr, logits_only);  // dropout only while training
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
                         nullptr,
                         T(config_.loss_delta)};
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
  for (std::size_t m = 0; m < config_.confusions.size(); ++m)
    confusion_add<T>(config_.confusions[m], rows, out, net.output(), std::ptrdiff_t(out), y, std::ptrdiff_t(out),
                     totals.confusions[m].data());
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
  // The row split's own buffers, when a row-split step may be chosen: when they cannot be had,
  // the table runs the column split instead (the same bits, see network.h).
  bool row_buffers = RowSplit<T>::supports(net);
  if (row_buffers && choose_step(step_facts(batch_size, true)) != StepKind::columns) {
    try {
      row_split().reserve(batch_size, row_parts(batch_size));
    } catch (const SizeError&) {
      row_buffers = false;
    } catch (const AllocationError&) {
      row_buffers = false;
    }
  }
  // The one-row step's lists, when a batch of one row may come (batch_size 1, or the last
  // batch's remainder): when they cannot be had, the table runs another step (the same bits).
  if ((batch_size == 1 || data.n % batch_size == 1) && VectorPass<T>::supports(net)) {
    try {
      vector_pass();
    } catch (const SizeError&) {
    } catch (const AllocationError&) {
    }
  }
  // A product made for a next row in an earlier call (cut short by an error) is stale.
  if (vector_pass_) vector_pass_->drop_pending();
  Totals totals = empty_totals();
  const std::size_t batches = num_batches(batch_size);
  for (std::size_t b = first; b < batches && b - first < count; ++b) {
    const std::size_t start = b * batch_size;
    const std::size_t rows = std::min(batch_size, data.n - start);
    const std::size_t next_rows = std::min(batch_size, data.n - start - rows);
    const std::uint32_t* order = order_.data() + start;
    const StepFacts facts = step_facts(rows, row_buffers);
    StepKind kind = choose_step(facts);
    const ThreadPool::CallerAlone alone(facts.alone);
    for (;;) {
      bool ran = true;
      switch (kind) {
        case StepKind::vector: step_vector(data, order, next_rows, b + 1 < batches && b + 1 - first < count, totals); break;
        case StepKind::pipeline: ran = step_pipeline(data, order, rows, next_rows, totals); break;
        case StepKind::rows: step_rows(data, order, rows, next_rows, totals); break;
        case StepKind::columns: step_columns(data, order, rows, next_rows, totals); break;
      }
      if (ran) break;
      kind = fallback_step(kind, facts);
    }
    // A first product made for the next row is used only by the next vector step of this call.
    if (kind != StepKind::vector && vector_pass_) vector_pass_->drop_pending();
    last_step_ = kind;
  }
  if (vector_pass_) vector_pass_->drop_pending();
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
StepFacts Trainer<T>::step_facts(std::size_t rows, bool row_buffers) const {
  const Network<T>& net = *net_;
  StepFacts f;
  f.threads = ThreadPool::instance().num_threads();
  f.parts = row_parts(rows);
  f.alone = f.threads >= 2 && f.parts == 1;
  if (f.alone) f.threads = 1;
  for (std::size_t l = 0; l < net.num_layers(); ++l) f.widest_layer = std::max(f.widest_layer, net.spec(l).units);
  f.row_split_fits = row_buffers && RowSplit<T>::supports(net);
  f.pipeline_fits = f.row_split_fits && FeaturePipeline<T>::supports(net, f.parts);
  f.last_step_sparse = last_step_sparse_;
  f.vector_fits = rows == 1 && vector_pass_ != nullptr && VectorPass<T>::supports(net);
  return f;
}

template <class T>
std::size_t Trainer<T>::row_parts(std::size_t rows) const {
  // One part unless every part gets enough multiply-adds to pay for waking a thread.
  const Network<T>& net = *net_;
  std::size_t macs = 0;
  for (std::size_t l = 0; l < net.num_layers(); ++l) macs += net.fan_in(l) * net.spec(l).units;
  const std::size_t threads = std::min<std::size_t>(ThreadPool::instance().num_threads(), kMaxRowParts);
  return std::max<std::size_t>(1, std::min({threads, rows, rows * macs / min_row_part_work()}));
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
    if (net_->input_non_finite()) net_->throw_non_finite(data.x + start * in, rows, start);
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
