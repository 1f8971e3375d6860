#include "fastmlp/trainer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/thread_pool.h"

namespace fastmlp {

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
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0u);
  if (shuffle) rng_.shuffle(order_);
}

template <class T>
std::size_t Trainer<T>::num_batches(std::size_t batch_size) const {
  return (order_.size() + batch_size - 1) / batch_size;
}

template <class T>
void Trainer<T>::forward_loss(const T* x, const T* y, const std::int32_t* labels, const T* weights,
                              std::size_t rows, bool gradients, Totals& totals, bool training) {
  Network<T>& net = *net_;
  const std::size_t out = net.output_dim();
  if (labels != nullptr) {
    for (std::size_t r = 0; r < rows; ++r)
      if (labels[r] < 0 || std::size_t(labels[r]) >= out)
        throw std::invalid_argument("label " + std::to_string(labels[r]) + " is outside [0, " +
                                    std::to_string(out) + ")");
  }
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
  // Keras adds the weight penalties to the batch's mean loss: here, to every sample's.
  totals.loss += kernels<T>().loss(args) + net.regularization_penalty() * double(rows);
  if (gradients && !uses_logits_) net.output_activation_backward(rows);
  for (std::size_t m = 0; m < config_.metrics.size(); ++m)
    totals.metrics[m] += metric_sum<T>(config_.metrics[m], rows, out, net.output(),
                                       std::ptrdiff_t(out), y, std::ptrdiff_t(out), labels, nullptr);
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
  const std::size_t in = net.input_dim(), out = net.output_dim();
  net.reserve(batch_size);
  batch_x_.reserve_at_least(batch_size * in);
  if (data.y != nullptr) batch_y_.reserve_at_least(batch_size * out);
  batch_labels_.resize(batch_size);
  if (data.weights != nullptr) batch_w_.reserve_at_least(batch_size);
  Totals totals = empty_totals();
  const std::size_t batches = num_batches(batch_size);
  for (std::size_t b = first; b < first + count && b < batches; ++b) {
    const std::size_t start = b * batch_size;
    const std::size_t rows = std::min(batch_size, data.n - start);
    // Gather the batch's rows into contiguous buffers (the matrix products want them so); the
    // rows come from all over the data set, so the copy is memory-bound: share it.
    ThreadPool& pool = ThreadPool::instance();
    const std::size_t tasks = std::min(pool.num_threads(), rows * in >= 16384 ? rows : std::size_t(1));
    pool.run(tasks, [&](std::size_t t) {
      for (std::size_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
        const std::size_t i = order_[start + r];
        std::memcpy(batch_x_.data() + r * in, data.x + i * in, in * sizeof(T));
        if (data.y != nullptr) std::memcpy(batch_y_.data() + r * out, data.y + i * out, out * sizeof(T));
        if (data.labels != nullptr) batch_labels_[r] = data.labels[i];
        if (data.weights != nullptr) batch_w_[r] = data.weights[i];
      }
    });
    forward_loss(batch_x_.data(), data.y != nullptr ? batch_y_.data() : nullptr,
                 data.labels != nullptr ? batch_labels_.data() : nullptr,
                 data.weights != nullptr ? batch_w_.data() : nullptr, rows, true, totals, true);
    update(batch_x_.data(), rows);
  }
  return totals;
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
