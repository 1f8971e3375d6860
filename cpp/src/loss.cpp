#include "fastmlp/loss.h"

#include <stdexcept>

namespace fastmlp {

namespace {
constexpr const char* kNames[] = {"mse",
                                  "mae",
                                  "binary_crossentropy",
                                  "categorical_crossentropy",
                                  "sparse_categorical_crossentropy",
                                  "huber",
                                  "log_cosh",
                                  "kl_divergence",
                                  "poisson",
                                  "categorical_hinge",
                                  "hinge",
                                  "squared_hinge",
                                  "mean_absolute_percentage_error",
                                  "mean_squared_logarithmic_error"};
constexpr int kCount = int(sizeof(kNames) / sizeof(kNames[0]));
}

Loss parse_loss(const std::string& name) {
  for (int i = 0; i < kCount; ++i) {
    if (name == kNames[i]) return static_cast<Loss>(i);
  }
  throw std::invalid_argument(
      "unknown loss '" + name +
      "'; expected one of: mse, mae, binary_crossentropy, categorical_crossentropy, "
      "sparse_categorical_crossentropy, huber, log_cosh, kl_divergence, poisson, categorical_hinge, "
      "hinge, squared_hinge, mean_absolute_percentage_error, mean_squared_logarithmic_error");
}

const char* loss_name(Loss loss) { return kNames[static_cast<int>(loss)]; }

bool loss_uses_logits(Loss loss, Activation output_activation, bool from_logits) {
  const bool cross_entropy = loss == Loss::binary_crossentropy ||
                             loss == Loss::categorical_crossentropy ||
                             loss == Loss::sparse_categorical_crossentropy;
  if (!cross_entropy) return false;
  if (from_logits) return output_activation == Activation::linear;
  if (loss == Loss::binary_crossentropy) return output_activation == Activation::sigmoid;
  return output_activation == Activation::softmax;
}

}  // namespace fastmlp
