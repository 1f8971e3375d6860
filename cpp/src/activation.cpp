#include "fastmlp/activation.h"

#include <stdexcept>

namespace fastmlp {

namespace {
constexpr const char* kNames[] = {"linear", "sigmoid", "tanh", "relu", "softmax"};
}

Activation parse_activation(const std::string& name) {
  for (int i = 0; i < 5; ++i) {
    if (name == kNames[i]) return static_cast<Activation>(i);
  }
  throw std::invalid_argument("unknown activation '" + name +
                              "'; expected one of: linear, sigmoid, tanh, relu, softmax");
}

const char* activation_name(Activation act) { return kNames[static_cast<int>(act)]; }

}  // namespace fastmlp
