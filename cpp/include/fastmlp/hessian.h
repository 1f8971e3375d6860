// The exact Hessian of a network's loss with respect to all its weights, and its product with a
// vector, by Pearlmutter's R-operator (forward-over-reverse differentiation): for a direction v
// in weight space, one forward pass of the directional derivatives R{z}, R{a} and one backward
// pass of R{delta} give R{grad L} = H v exactly (no finite step). The full H is H e_p for every
// unit vector e_p, taken in blocks of directions that the products treat as extra batch rows.
//
// The loss is the one compute_gradients differentiates: the batch mean of the per-sample losses
// (each times its sample weight, divided by the number of samples), plus the layers' L1/L2
// penalties, with dropout off. Everything runs in float64, whatever the network's type: its
// weights, inputs and targets are converted first.
//
// Where a second derivative does not exist, the one of the side the gradient takes is used:
// relu and leaky_relu have f'' = 0 (their kink gets the gradient's f'), elu has alpha e^z for
// z <= 0 and 0 above; MAE and an L1 penalty have 0 (their kinks included); a probability the
// cross-entropy clips (outside [1e-7, 1 - 1e-7]) passes no gradient and so no curvature.
#pragma once

#include <cstddef>

#include "fastmlp/loss.h"
#include "fastmlp/network.h"

namespace fastmlp {

template <class T>
struct DataView;

// The most weights whose full Hessian is computed: 20000 x 20000 float64 values are 3.2 GB.
// Beyond it, hessian_vector_product still applies H without forming it.
constexpr std::size_t kMaxHessianParameters = 20000;

// The loss as the trainer computes it: which loss, whether its input holds logits, and whether
// it reads the output layer's pre-activation z (loss_uses_logits) instead of its activation.
struct LossSpec {
  Loss loss;
  bool from_logits;
  bool uses_logits;
};

// The number of trainable weights P (kernels and biases of every layer).
template <class T>
std::size_t parameter_count(const Network<T>& net);

// The bytes of a P x P float64 Hessian. SizeError naming P and those bytes when P is over
// kMaxHessianParameters or the bytes over the machine's memory: checked before anything is
// allocated.
std::size_t hessian_bytes(std::size_t parameters);

// H into out (P x P, row-major; rows and columns in get_weights() order, each array flattened
// in C order). Exactly symmetric: the mean of the computed H and its transpose. Throws
// std::invalid_argument when x holds NaN or infinity, or when H is not finite (naming the first
// weight whose row is not), SizeError / AllocationError when the scratch cannot be had.
template <class T>
void loss_hessian(Network<T>& net, const LossSpec& loss, const DataView<T>& data, double* out);

// H v into out (P values), v of P values, without forming H. Throws as loss_hessian.
template <class T>
void loss_hessian_vector_product(Network<T>& net, const LossSpec& loss, const DataView<T>& data, const double* v,
                                 double* out);

}  // namespace fastmlp
