// Vectorized exp, expm1, log, log1p, sigmoid, tanh for the AVX-512 kernels, accurate to a few ulp
// over the ranges the kernels use (tested against the float64 reference through every kernel).
//   exp/expm1: x = n ln2 + r with |r| <= ln2/2; Taylor series of e^r - 1 (Horner), scaled by 2^n.
//   log: x = m 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1).
// Internal linkage, AVX-512 translation units only (see vec.h).
#pragma once

#include <math.h>

#include "vec.h"

namespace fastmlp::avx512 {
namespace {

// e^r - 1 for |r| <= ln2/2, relative accuracy kept near 0 (no cancellation).
template <class T>
typename Vec<T>::reg expm1_reduced(typename Vec<T>::reg r) {
  using V = Vec<T>;
  // Horner on r (1 + r/2 (1 + r/3 (1 + ... (1 + r/N)))).
  auto p = V::set1(T(1));
  for (int i = V::exp_terms; i >= 2; --i) p = V::fmadd(V::mul(r, V::set1(T(1) / T(i))), p, V::set1(T(1)));
  return V::mul(r, p);
}

template <class T>
struct Reduced {
  typename Vec<T>::reg n, r;
};

template <class T>
Reduced<T> reduce_ln2(typename Vec<T>::reg x) {
  using V = Vec<T>;
  // ln2 split in a high part with trailing zero bits (so n * ln2_hi is exact) and the rest.
  const T ln2_hi = T(0.693145751953125), ln2_lo = T(1.42860682030941723212e-6);
  // Clamp with x as the second operand of max/min so that NaN passes through.
  x = V::min(V::set1(V::exp_hi), V::max(V::set1(V::exp_lo), x));
  const auto n = V::round(V::mul(x, V::set1(T(1.44269504088896340736))));
  auto r = V::fnmadd(n, V::set1(ln2_hi), x);
  r = V::fnmadd(n, V::set1(ln2_lo), r);
  return {n, r};
}

template <class T>
typename Vec<T>::reg vexp(typename Vec<T>::reg x) {
  using V = Vec<T>;
  const Reduced<T> red = reduce_ln2<T>(x);
  return V::mul(V::add(expm1_reduced<T>(red.r), V::set1(T(1))), V::pow2i(red.n));
}

template <class T>
typename Vec<T>::reg vexpm1(typename Vec<T>::reg x) {
  using V = Vec<T>;
  const Reduced<T> red = reduce_ln2<T>(x);
  const auto small = expm1_reduced<T>(red.r);
  const auto large = V::sub(V::mul(V::add(small, V::set1(T(1))), V::pow2i(red.n)), V::set1(T(1)));
  // n == 0 means |x| < ln2/2, where the series itself is the answer (no 1 + small - 1).
  return V::select(V::eq(red.n, V::zero()), small, large);
}

// Positive normal x only (the kernels clip or sum to >= 1 before taking logs).
template <class T>
typename Vec<T>::reg vlog(typename Vec<T>::reg x) {
  using V = Vec<T>;
  typename V::reg m, e;
  V::frexp1(x, m, e);
  // Move m from [1, 2) to [sqrt(1/2), sqrt(2)) so that |s| <= 0.1716.
  const auto big = V::gt(m, V::set1(T(1.41421356237309504880)));
  m = V::select(big, V::mul(m, V::set1(T(0.5))), m);
  e = V::select(big, V::add(e, V::set1(T(1))), e);
  const auto f = V::sub(m, V::set1(T(1)));
  const auto s = V::div(f, V::add(f, V::set1(T(2))));
  const auto s2 = V::mul(s, s);
  auto p = V::set1(T(1) / T(2 * V::log_terms - 1));
  for (int i = V::log_terms - 2; i >= 0; --i) p = V::fmadd(p, s2, V::set1(T(1) / T(2 * i + 1)));
  const auto log_m = V::mul(V::add(s, s), p);
  return V::fmadd(e, V::set1(T(0.69314718055994530942)), log_m);
}

// log(1 + t) for t >= 0, accurate for tiny t: log(u) * t / (u - 1) with u = 1 + t (Goldberg).
template <class T>
typename Vec<T>::reg vlog1p(typename Vec<T>::reg t) {
  using V = Vec<T>;
  const auto u = V::add(t, V::set1(T(1)));
  const auto um1 = V::sub(u, V::set1(T(1)));
  const auto exact = V::div(V::mul(vlog<T>(u), t), um1);
  return V::select(V::gt(um1, V::zero()), exact, t);  // u == 1: log1p(t) = t to working precision
}

template <class T>
typename Vec<T>::reg vsigmoid(typename Vec<T>::reg z) {
  using V = Vec<T>;
  // 1 / (1 + e^-z): e^-z is clamped, so this stays finite for any z (|z| up to 1e30 and beyond).
  return V::div(V::set1(T(1)), V::add(V::set1(T(1)), vexp<T>(V::bit_xor(z, V::sign_bit()))));
}

template <class T>
typename Vec<T>::reg vtanh(typename Vec<T>::reg z) {
  using V = Vec<T>;
  // tanh|z| = -t / (t + 2) with t = expm1(-2|z|) in (-1, 0]: no overflow, no cancellation at 0.
  const auto sign = V::bit_and(z, V::sign_bit());
  const auto abs_z = V::andnot(V::sign_bit(), z);
  const auto t = vexpm1<T>(V::mul(abs_z, V::set1(T(-2))));
  const auto th = V::div(V::bit_xor(t, V::sign_bit()), V::add(t, V::set1(T(2))));
  return V::bit_or(th, sign);
}

// GELU's constants (see activation.h).
constexpr double kSqrt2OverPi = 0.79788456080286535588, kGeluCubic = 0.044715;
constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;

// Phi(x) = erfc(-x / sqrt 2) / 2, lane by lane through the C library's erfc (no vector erfc
// here; exact GELU is the rarely used one). ::erfc, not std::, so no inline C++ wrapper compiled
// for AVX-512 can be shared with other files.
inline double erfc_lane(double x) { return ::erfc(x); }
inline float erfc_lane(float x) { return ::erfcf(x); }

template <class T>
typename Vec<T>::reg vnormal_cdf(typename Vec<T>::reg x) {
  using V = Vec<T>;
  alignas(64) T lanes[V::lanes];
  V::store(lanes, V::mul(x, V::set1(T(-kInvSqrt2))));
  for (std::size_t i = 0; i < V::lanes; ++i) lanes[i] = T(0.5) * erfc_lane(lanes[i]);
  return V::load(lanes);
}

template <class T>
typename Vec<T>::reg vgelu(typename Vec<T>::reg x) {
  return Vec<T>::mul(x, vnormal_cdf<T>(x));
}

// (1 + tanh u) / 2 = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): no cancellation for u << 0.
template <class T>
typename Vec<T>::reg vgelu_tanh_gate(typename Vec<T>::reg x) {
  using V = Vec<T>;
  const auto u2 = V::mul(V::set1(T(2 * kSqrt2OverPi)), V::add(x, V::mul(V::set1(T(kGeluCubic)), V::mul(x, V::mul(x, x)))));
  return vsigmoid<T>(u2);
}

template <class T>
typename Vec<T>::reg vgelu_tanh(typename Vec<T>::reg x) {
  return Vec<T>::mul(x, vgelu_tanh_gate<T>(x));
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for every x.
template <class T>
typename Vec<T>::reg vsoftplus(typename Vec<T>::reg x) {
  using V = Vec<T>;
  const auto abs_x = V::andnot(V::sign_bit(), x);
  return V::add(V::max(V::zero(), x), vlog1p<T>(vexp<T>(V::bit_xor(abs_x, V::sign_bit()))));
}

}  // namespace
}  // namespace fastmlp::avx512
