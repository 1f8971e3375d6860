// Loss functions known to the core, with Keras 3 semantics (mean over the batch).
#pragma once

#include <string>

#include "fastmlp/activation.h"

namespace fastmlp {

enum class Loss : int {
  mse = 0,
  mae = 1,
  binary_crossentropy = 2,
  categorical_crossentropy = 3,
  sparse_categorical_crossentropy = 4,
  huber = 5,
  log_cosh = 6,
  kl_divergence = 7,
  poisson = 8,
  categorical_hinge = 9,
  hinge = 10,
  squared_hinge = 11,
  mean_absolute_percentage_error = 12,
  mean_squared_logarithmic_error = 13,
};

// Huber's default threshold between its quadratic and linear parts (Keras's `delta`).
constexpr double kHuberDelta = 1.0;

Loss parse_loss(const std::string& name);
const char* loss_name(Loss loss);

inline bool is_sparse(Loss loss) { return loss == Loss::sparse_categorical_crossentropy; }

// True for the losses whose Hessian the second-order methods know (curvature.cpp): the first five.
inline bool has_curvature(Loss loss) { return static_cast<int>(loss) <= static_cast<int>(Loss::sparse_categorical_crossentropy); }

// Probability clip used by Keras (backend epsilon) where a cross-entropy is computed from
// probabilities instead of logits.
constexpr double kProbabilityEpsilon = 1e-7;

// Keras's backend epsilon where its other losses clip or guard: KL divergence clips y and pred to
// [eps, 1], Poisson takes log(pred + eps), MAPE divides by max(|y|, eps), MSLE takes
// log(max(x, eps) + 1).
constexpr double kLossEpsilon = 1e-7;

// True when the loss is computed from the output layer's pre-activation z. Keras's TensorFlow
// backend recovers the logits of a sigmoid or softmax output before a cross-entropy, so it never
// clips there, and its gradient is the exact `p - y`; we do the same.
bool loss_uses_logits(Loss loss, Activation output_activation, bool from_logits);

}  // namespace fastmlp
