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
};

Loss parse_loss(const std::string& name);
const char* loss_name(Loss loss);

inline bool is_sparse(Loss loss) { return loss == Loss::sparse_categorical_crossentropy; }

// Probability clip used by Keras (backend epsilon) where a cross-entropy is computed from
// probabilities instead of logits.
constexpr double kProbabilityEpsilon = 1e-7;

// True when the loss is computed from the output layer's pre-activation z. Keras's TensorFlow
// backend recovers the logits of a sigmoid or softmax output before a cross-entropy, so it never
// clips there, and its gradient is the exact `p - y`; we do the same.
bool loss_uses_logits(Loss loss, Activation output_activation, bool from_logits);

}  // namespace fastmlp
