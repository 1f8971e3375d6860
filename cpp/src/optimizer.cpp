#include "fastmlp/optimizer.h"

#include <stdexcept>

#include "fastmlp/dispatch.h"

namespace fastmlp {

template <class T>
Optimizer<T>::Optimizer(OptimizerConfig config) : config_(std::move(config)) {
  if (config_.name != "sgd") throw std::invalid_argument("unknown optimizer '" + config_.name + "'");
  if (!(config_.learning_rate >= 0))
    throw std::invalid_argument("learning_rate must be >= 0, got " +
                                std::to_string(config_.learning_rate));
}

template <class T>
void Optimizer<T>::apply(Network<T>& net) {
  const KernelTable<T>& k = kernels<T>();
  const T lr = T(config_.learning_rate);
  for (std::size_t l = 0; l < net.num_layers(); ++l) {
    k.sgd_update(net.fan_in(l) * net.spec(l).units, lr, net.kernel_grad(l), net.kernel(l));
    if (net.spec(l).use_bias) k.sgd_update(net.spec(l).units, lr, net.bias_grad(l), net.bias(l));
  }
  ++iterations_;
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace fastmlp
