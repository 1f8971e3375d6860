// The row split (RowSplit, row_split.cpp): each part takes its rows
// of the batch through the whole forward and backward pass, then, once every row is done,
// computes its share of the weight gradients. Two barriers per step instead of one per layer
// and phase; not for dropout (its masks are drawn in one sequence).
#include <algorithm>

#include "fastmlp/dispatch.h"
#include "fastmlp/thread_pool.h"
#include "fastmlp/trainer.h"
#include "row_split.h"
#include "prefetch.h"

namespace fastmlp {

template <class T>
typename Trainer<T>::RowBatch Trainer<T>::begin_row_step(const DataView<T>& data, const std::uint32_t* order,
                                                         std::size_t rows, std::size_t next_rows) {
  // The small per-row values first (labels must be checked before any thread uses them).
  gather_targets(data, order, 0, rows);
  RowBatch b{&data, order, rows, next_rows, row_parts(rows),
             data.y != nullptr ? batch_y_.data() : nullptr,
             data.labels != nullptr ? batch_labels_.data() : nullptr,
             data.weights != nullptr ? batch_w_.data() : nullptr,
             T(optimizer_.current_learning_rate()), optimizer_.is_plain_sgd(),
             // Keras's penalties on the weights before this step's update (as forward_loss adds them).
             net_->regularization_penalty()};
  check_labels(b.labels, rows);
  row_loss_.reserve_at_least(rows);
  return b;
}

template <class T>
void Trainer<T>::rows_through(const RowBatch& b, std::size_t r0, std::size_t r1, std::size_t p, bool pipelined) {
  Network<T>& net = *net_;
  RowSplit<T>& split = *row_split_;  // made by the step's row_split()
  const DataView<T>& data = *b.data;
  const std::size_t out = net.output_dim();
  if (pipelined) {
    // The next batch's targets, read at the start of its step by one thread alone.
    for (std::size_t r = r0; r < r1 && r < b.next_rows; ++r) prefetch_targets(data, out, b.order[b.rows + r]);
    split.forward_rows_after_first(r0, r1, p);
  } else {
    gather_x(data, b.order, r0, r1);
    split.forward_rows(batch_x_.data(), r0, r1, p);
  }
  if (r1 == r0) return;
  const T* pred = uses_logits_ ? net.output_logits() : net.output();
  T* delta = net.output_delta();
  const auto ld = std::ptrdiff_t(out);
  kernels<T>().loss({config_.loss, uses_logits_ || config_.from_logits, r1 - r0, out, pred + r0 * out, ld,
                     b.y == nullptr ? nullptr : b.y + r0 * out, ld, b.labels == nullptr ? nullptr : b.labels + r0,
                     b.weights == nullptr ? nullptr : b.weights + r0, T(1) / T(b.rows), delta + r0 * out, ld,
                     row_loss_.data() + r0, T(config_.loss_delta)});
  if (!uses_logits_) split.output_activation_backward_rows(r0, r1);
  split.backward_rows(r0, r1, p);
}

template <class T>
void Trainer<T>::finish_row_step(const RowBatch& b, Totals& totals, bool fused) {
  // The loss summed as the loss kernel sums it (row order, in double), plus the penalties.
  double loss = 0;
  for (std::size_t r = 0; r < b.rows; ++r)
    loss += double(b.weights == nullptr ? T(1) : b.weights[r]) * double(row_loss_[r]);
  add_batch(totals, loss, b.penalty, b.rows, b.y, b.labels);
  optimizer_.apply(fused);
}

template <class T>
void Trainer<T>::step_rows(const DataView<T>& data, const std::uint32_t* order, std::size_t rows, std::size_t next_rows,
                           Totals& totals) {
  Network<T>& net = *net_;
  const std::size_t in = net.input_dim();
  const RowBatch b = begin_row_step(data, order, rows, next_rows);
  const std::size_t parts = b.parts;
  ThreadPool& pool = ThreadPool::instance();
  RowSplit<T>& split = row_split();
  split.prepare(rows, parts);
  // One part (a small batch, or one thread) runs here: the same work as the pool's one task.
  pool.run(parts, [&](std::size_t p) { rows_through(b, rows * p / parts, rows * (p + 1) / parts, p, false); });
  if (net.input_non_finite()) throw_non_finite(data, order, rows);
  const bool fused = split.fuses_first_layer(rows, b.plain_sgd);
  pool.run(parts, [&](std::size_t p) {
    // This part's share of the next batch, while the gradients are computed.
    prefetch_rows(data.x, in, order + rows + next_rows * p / parts, next_rows * (p + 1) / parts - next_rows * p / parts);
    split.weight_gradients(batch_x_.data(), rows, p, parts, b.sgd(), false);
  });
  split.rebalance_features(rows, parts);
  last_step_sparse_ = split.first_layer_sparse(rows);
  finish_row_step(b, totals, fused);
}

#define FASTMLP_ROW_STEP(T)                                                                                    \
  template typename Trainer<T>::RowBatch Trainer<T>::begin_row_step(const DataView<T>&, const std::uint32_t*, \
                                                                    std::size_t, std::size_t);               \
  template void Trainer<T>::rows_through(const RowBatch&, std::size_t, std::size_t, std::size_t, bool);       \
  template void Trainer<T>::finish_row_step(const RowBatch&, Totals&, bool);                                  \
  template void Trainer<T>::step_rows(const DataView<T>&, const std::uint32_t*, std::size_t, std::size_t, Totals&);
FASTMLP_ROW_STEP(float)
FASTMLP_ROW_STEP(double)
#undef FASTMLP_ROW_STEP

}  // namespace fastmlp
