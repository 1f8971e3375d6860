// Optimizers apply one update to every parameter array from the gradients in the network.
// Each update is one pass over the parameters through the kernel table.
#pragma once

#include <string>

#include "fastmlp/network.h"

namespace fastmlp {

struct OptimizerConfig {
  std::string name = "sgd";
  double learning_rate = 0.01;
};

template <class T>
class Optimizer {
 public:
  explicit Optimizer(OptimizerConfig config);
  const OptimizerConfig& config() const { return config_; }
  void set_learning_rate(double lr) { config_.learning_rate = lr; }
  long long iterations() const { return iterations_; }
  // Applies the gradients held by `net` to its parameters.
  void apply(Network<T>& net);

 private:
  OptimizerConfig config_;
  long long iterations_ = 0;
};

}  // namespace fastmlp
