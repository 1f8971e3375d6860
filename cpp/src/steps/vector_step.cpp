// The one-row step (VectorPass, vector_pass.cpp): a batch of one sample, classic per-sample SGD.
// The sample's row is read where it lies (no gathering), each product is one kernel call on
// one thread, and with plain SGD the first kernel is updated inside its gradient pass. Bitwise
// what forward_loss + update on that row give; not for dropout nor batch normalization
// (VectorPass::supports).
#include "fastmlp/dispatch.h"
#include "fastmlp/trainer.h"
#include "prefetch.h"
#include "vector_pass.h"

namespace fastmlp {

template <class T>
void Trainer<T>::step_vector(const DataView<T>& data, const std::uint32_t* order, std::size_t next_rows,
                             bool next_here, Totals& totals) {
  Network<T>& net = *net_;
  VectorPass<T>& pass = *vector_pass_;  // made by train_batches (StepFacts::vector_fits)
  const std::size_t in = net.input_dim(), out = net.output_dim(), i = order[0];
  const T* x = data.x + i * in;
  const T* y = data.y != nullptr ? data.y + i * out : nullptr;
  const std::int32_t* label = data.labels != nullptr ? data.labels + i : nullptr;
  const T* weight = data.weights != nullptr ? data.weights + i : nullptr;
  check_labels(label, 1);
  bool non_finite = false;
  last_step_sparse_ = pass.forward(x, &non_finite);
  prefetch_rows(data.x, in, order + 1, next_rows);
  if (next_rows != 0) prefetch_targets(data, out, order[1]);
  // forward_loss's loss, gradient and sums, for one row.
  const T* pred = uses_logits_ ? net.output_logits() : net.output();
  const auto ld = std::ptrdiff_t(out);
  const double loss = kernels<T>().loss({config_.loss, uses_logits_ || config_.from_logits, 1, out, pred, ld, y, ld,
                                         label, weight, T(1), net.output_delta(), ld, nullptr, T(config_.loss_delta)});
  if (!uses_logits_) net.output_activation_backward(1);
  add_batch(totals, loss, net.regularization_penalty(), 1, y, label);
  if (non_finite) throw_non_finite(data, order, 1);
  // update's backward pass and optimizer step.
  const T lr = T(optimizer_.current_learning_rate());
  // The next row's first product joins the update when the next step is this one's kind, in this
  // call (nothing else can change the weights in between).
  const T* next = next_here && next_rows == 1 ? data.x + std::size_t(order[1]) * in : nullptr;
  const bool fused = pass.backward(x, optimizer_.is_plain_sgd() ? &lr : nullptr, next);
  optimizer_.apply(fused);
}

template void Trainer<float>::step_vector(const DataView<float>&, const std::uint32_t*, std::size_t, bool, Totals&);
template void Trainer<double>::step_vector(const DataView<double>&, const std::uint32_t*, std::size_t, bool,
                                           Totals&);

}  // namespace fastmlp
