// Activation functions known to the core. The order is part of the binding's contract.
#pragma once

#include <string>

namespace fastmlp {

enum class Activation : int { linear = 0, sigmoid = 1, tanh = 2, relu = 3, softmax = 4 };

// Throws std::invalid_argument naming the unknown activation.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation act);

}  // namespace fastmlp
