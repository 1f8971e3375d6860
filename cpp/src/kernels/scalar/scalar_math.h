// Scalar elementwise math shared by the scalar kernels: the formulas as a learner would write
// them, in their numerically safe forms.
#pragma once

#include <cmath>
#include <cstddef>

namespace fastmlp::scalar {
namespace {

// Two branches so exp never overflows: exp(-|z|) is at most 1, for |z| up to 1e30 and beyond.
template <class T>
T sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

// max(z, 0), but NaN propagates (so a diverging run shows up as a NaN loss).
template <class T>
T relu(T z) {
  return z > T(0) ? z : (z == z ? T(0) : z);
}

// log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).
template <class T>
T softplus(T x) {
  return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
}

// The constants of GELU: sqrt(2/pi), its cubic coefficient, 1/sqrt(2), 1/sqrt(2 pi).
constexpr double kSqrt2OverPi = 0.79788456080286535588, kGeluCubic = 0.044715;
constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;

// x Phi(x) written with erfc, so that for very negative x it does not cancel to 1 - 1.
template <class T>
T gelu(T x) {
  return T(0.5) * x * std::erfc(-x * T(kInvSqrt2));
}

// (1 + tanh u) / 2 = sigmoid(2u): the same value without cancelling 1 + tanh(u) for u << 0.
template <class T>
T gelu_tanh_gate(T x) {
  return sigmoid(T(2 * kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x));
}

template <class T>
T gelu_tanh(T x) {
  return x * gelu_tanh_gate(x);
}

// log(sum(exp(z))) over n entries, stable: the max is factored out first.
template <class T>
T log_sum_exp(const T* z, std::size_t n) {
  T zmax = z[0];
  for (std::size_t j = 1; j < n; ++j) zmax = z[j] > zmax ? z[j] : zmax;
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) sum += std::exp(z[j] - zmax);
  return zmax + std::log(sum);
}

}  // namespace
}  // namespace fastmlp::scalar
