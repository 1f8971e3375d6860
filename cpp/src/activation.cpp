#include "fastmlp/activation.h"

#include <stdexcept>

namespace fastmlp {

namespace {
constexpr const char* kNames[] = {"linear",     "sigmoid", "tanh", "relu",      "softmax", "leaky_relu",
                                  "elu",        "gelu",    "gelu_tanh", "softplus", "swish"};
constexpr int kCount = sizeof(kNames) / sizeof(kNames[0]);
}  // namespace

Activation parse_activation(const std::string& name) {
  if (name == "silu") return Activation::swish;
  for (int i = 0; i < kCount; ++i) {
    if (name == kNames[i]) return static_cast<Activation>(i);
  }
  std::string known;
  for (int i = 0; i < kCount; ++i) known += std::string(i ? ", " : "") + kNames[i];
  throw std::invalid_argument("unknown activation '" + name + "'; expected one of: " + known + ", silu");
}

double default_activation_alpha(Activation act) {
  if (act == Activation::leaky_relu) return 0.2;
  if (act == Activation::elu) return 1.0;
  return 0.0;
}


}  // namespace fastmlp
