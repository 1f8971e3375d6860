// Activation functions known to the core. The order is part of the binding's contract.
#pragma once

#include <string>

namespace fastmlp {

enum class Activation : int {
  linear = 0,
  sigmoid = 1,
  tanh = 2,
  relu = 3,
  softmax = 4,
  leaky_relu = 5,  // x > 0 ? x : alpha x            (alpha: Keras's negative_slope, 0.2)
  elu = 6,         // x > 0 ? x : alpha (e^x - 1)    (alpha 1.0)
  gelu = 7,        // x Phi(x), Phi the normal CDF: 0.5 x (1 + erf(x / sqrt 2))
  gelu_tanh = 8,   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (GELU's approximation)
  softplus = 9,    // log(1 + e^x)
  swish = 10,      // x sigmoid(x)  (also called silu)
};

// Throws std::invalid_argument naming the unknown activation.
Activation parse_activation(const std::string& name);
// The parameter an activation takes by default (leaky_relu 0.2, elu 1.0, else 0).
double default_activation_alpha(Activation act);

}  // namespace fastmlp
