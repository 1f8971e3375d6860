// dz = da * act'(z): the chain rule through the activation. Sigmoid and tanh derivatives are
// written with their outputs a, which the forward pass already computed.
#include <cmath>

#include "fastmlp/kernels.h"
#include "scalar_math.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
void activation_backward(const ActivationBackwardArgs<T>& p) {
  for (std::size_t r = 0; r < p.rows; ++r) {
    const T* z = p.z + r * p.ldz;
    const T* a = p.a + r * p.lda;
    const T* da = p.da + r * p.ldda;
    T* dz = p.dz + r * p.lddz;
    switch (p.activation) {
      case Activation::linear:
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = da[j];
        break;
      case Activation::sigmoid:  // sigma' = sigma (1 - sigma)
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = da[j] * a[j] * (T(1) - a[j]);
        break;
      case Activation::tanh:  // tanh' = 1 - tanh^2
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = da[j] * (T(1) - a[j] * a[j]);
        break;
      case Activation::relu:  // 1 where z > 0, else 0 (0 at the kink, as TensorFlow)
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = z[j] > T(0) ? da[j] : T(0);
        break;
      case Activation::leaky_relu:  // alpha below 0 (and at 0, as TensorFlow)
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = z[j] > T(0) ? da[j] : p.alpha * da[j];
        break;
      case Activation::elu:  // alpha e^z = a + alpha below 0
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = z[j] > T(0) ? da[j] : da[j] * (a[j] + p.alpha);
        break;
      case Activation::gelu:  // Phi(z) + z phi(z)
        for (std::size_t j = 0; j < p.cols; ++j) {
          const T cdf = T(0.5) * std::erfc(-z[j] * T(kInvSqrt2));
          const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * z[j] * z[j]);
          dz[j] = da[j] * (cdf + z[j] * pdf);
        }
        break;
      case Activation::gelu_tanh:  // s + 2 z s (1 - s) u', s = sigmoid(2u)
        for (std::size_t j = 0; j < p.cols; ++j) {
          const T x = z[j];
          const T s = gelu_tanh_gate(x);
          const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
          dz[j] = da[j] * (s + T(2) * x * s * (T(1) - s) * du);
        }
        break;
      case Activation::softplus:  // sigmoid
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = da[j] * sigmoid(z[j]);
        break;
      case Activation::swish:  // s + z s (1 - s)
        for (std::size_t j = 0; j < p.cols; ++j) {
          const T s = sigmoid(z[j]);
          dz[j] = da[j] * (s * (T(1) + z[j] * (T(1) - s)));
        }
        break;
      case Activation::softmax: {  // Jacobian diag(a) - a a^T applied to da
        T dot = 0;
        for (std::size_t j = 0; j < p.cols; ++j) dot += da[j] * a[j];
        for (std::size_t j = 0; j < p.cols; ++j) dz[j] = a[j] * (da[j] - dot);
        break;
      }
    }
  }
}

template void activation_backward<float>(const ActivationBackwardArgs<float>&);
template void activation_backward<double>(const ActivationBackwardArgs<double>&);

}  // namespace fastmlp::scalar
