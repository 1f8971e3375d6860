// z += bias; a = act(z), row by row.
#include <cmath>

#include "fastmlp/kernels.h"
#include "scalar_math.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

namespace {

template <class T>
void softmax_row(std::size_t n, const T* z, T* a) {
  T zmax = z[0];
  for (std::size_t j = 1; j < n; ++j) zmax = z[j] > zmax ? z[j] : zmax;
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    a[j] = std::exp(z[j] - zmax);  // <= 1: subtracting the max keeps exp from overflowing
    sum += a[j];
  }
  for (std::size_t j = 0; j < n; ++j) a[j] /= sum;
}

}  // namespace

template <class T>
void bias_activation(const BiasActivationArgs<T>& p) {
  for (std::size_t r = 0; r < p.rows; ++r) {
    T* z = p.z + r * p.ldz;
    T* a = p.a + r * p.lda;
    if (p.bias != nullptr) {
      for (std::size_t j = 0; j < p.cols; ++j) z[j] += p.bias[j];
    }
    switch (p.activation) {
      case Activation::linear:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = z[j];
        break;
      case Activation::sigmoid:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = sigmoid(z[j]);
        break;
      case Activation::tanh:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = std::tanh(z[j]);
        break;
      case Activation::relu:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = relu(z[j]);
        break;
      case Activation::softmax:
        softmax_row(p.cols, z, a);
        break;
      case Activation::leaky_relu:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = z[j] > T(0) ? z[j] : p.alpha * z[j];
        break;
      case Activation::elu:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = z[j] > T(0) ? z[j] : p.alpha * std::expm1(z[j]);
        break;
      case Activation::gelu:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = gelu(z[j]);
        break;
      case Activation::gelu_tanh:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = gelu_tanh(z[j]);
        break;
      case Activation::softplus:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = softplus(z[j]);
        break;
      case Activation::swish:
        for (std::size_t j = 0; j < p.cols; ++j) a[j] = z[j] * sigmoid(z[j]);
        break;
    }
  }
}

template void bias_activation<float>(const BiasActivationArgs<float>&);
template void bias_activation<double>(const BiasActivationArgs<double>&);

}  // namespace fastmlp::scalar
