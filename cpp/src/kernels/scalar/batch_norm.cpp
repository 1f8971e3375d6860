// Batch normalization over the rows of a batch, column by column, and its backward pass (the
// definitions are at BatchNormArgs and BatchNormBackwardArgs in fastmlp/kernels.h). Every
// per-column sum runs over the rows in order, so a column's result is one fixed chain.
#include <cmath>

#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

template <class T>
void batch_norm(const BatchNormArgs<T>& a) {
  const T n = T(a.rows);
  for (std::size_t j = 0; j < a.cols; ++j) {
    T m, v;
    if (a.batch_stats) {
      T sum = 0;
      for (std::size_t r = 0; r < a.rows; ++r) sum += a.x[std::ptrdiff_t(r) * a.ldx + std::ptrdiff_t(j)];
      m = sum / n;
      T squares = 0;
      for (std::size_t r = 0; r < a.rows; ++r) {
        const T d = a.x[std::ptrdiff_t(r) * a.ldx + std::ptrdiff_t(j)] - m;
        squares += d * d;
      }
      v = squares / n;
      a.mean[j] = m;
      a.variance[j] = v;
    } else {
      m = a.mean[j];
      v = a.variance[j];
    }
    T scale = T(1) / std::sqrt(v + a.epsilon);
    if (a.gamma != nullptr) scale *= a.gamma[j];
    const T shift = (a.beta != nullptr ? a.beta[j] : T(0)) - m * scale;
    for (std::size_t r = 0; r < a.rows; ++r)
      a.y[std::ptrdiff_t(r) * a.ldy + std::ptrdiff_t(j)] = a.x[std::ptrdiff_t(r) * a.ldx + std::ptrdiff_t(j)] * scale + shift;
  }
}

template <class T>
void batch_norm_backward(const BatchNormBackwardArgs<T>& a) {
  const T n = T(a.rows);
  for (std::size_t j = 0; j < a.cols; ++j) {
    const T m = a.mean[j], inv = T(1) / std::sqrt(a.variance[j] + a.epsilon);
    const T g = a.gamma != nullptr ? a.gamma[j] : T(1);
    T db = 0, dg = 0;
    for (std::size_t r = 0; r < a.rows; ++r) {
      const T dy = a.delta[std::ptrdiff_t(r) * a.ldd + std::ptrdiff_t(j)];
      db += dy;
      dg += dy * ((a.x[std::ptrdiff_t(r) * a.ldx + std::ptrdiff_t(j)] - m) * inv);
    }
    if (a.beta_grad != nullptr) a.beta_grad[j] = db;
    if (a.gamma_grad != nullptr) a.gamma_grad[j] = dg;
    for (std::size_t r = 0; r < a.rows; ++r) {
      T& d = a.delta[std::ptrdiff_t(r) * a.ldd + std::ptrdiff_t(j)];
      if (a.batch_stats) {
        const T xhat = (a.x[std::ptrdiff_t(r) * a.ldx + std::ptrdiff_t(j)] - m) * inv;
        d = g * inv / n * (n * d - db - xhat * dg);
      } else {
        d = d * (g * inv);
      }
    }
  }
}

template void batch_norm<float>(const BatchNormArgs<float>&);
template void batch_norm<double>(const BatchNormArgs<double>&);
template void batch_norm_backward<float>(const BatchNormBackwardArgs<float>&);
template void batch_norm_backward<double>(const BatchNormBackwardArgs<double>&);

}  // namespace fastmlp::scalar
