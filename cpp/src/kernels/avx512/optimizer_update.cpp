// The optimizers' update rules a vector at a time, in the same operation order as the scalar twin
// (no FMA contraction, so both ISAs round alike step by step).
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

template <class T>
void optimizer_update(const OptimizerUpdateArgs<T>& p) {
  using V = Vec<T>;
  using reg = typename V::reg;
  const reg lr = V::set1(p.learning_rate), scale = V::set1(p.grad_scale);
  const reg clip_hi = V::set1(p.clip_value), clip_lo = V::set1(-p.clip_value);
  const reg decay = V::set1(p.decay), momentum = V::set1(p.momentum);
  const reg one_minus_b1 = V::set1(T(1) - p.beta_1), one_minus_b2 = V::set1(T(1) - p.beta_2);
  const reg rho = V::set1(p.rho), one_minus_rho = V::set1(T(1) - p.rho), eps = V::set1(p.epsilon);
  for_each_chunk<T>(p.n, [&](const Chunk<T>& c) {
    reg g = V::mul(c.load(p.g), scale);
    g = V::max(clip_lo, V::min(clip_hi, g));  // g second: NaN gradients stay NaN
    reg w = c.load(p.w);
    if (p.decay != T(0)) w = V::sub(w, V::mul(w, decay));
    switch (p.kind) {
      case OptimizerKind::sgd:
        if (p.momentum == T(0)) {
          w = V::sub(w, V::mul(lr, g));
        } else {
          const reg m = V::sub(V::mul(momentum, c.load(p.state[0])), V::mul(lr, g));
          c.store(p.state[0], m);
          w = p.nesterov ? V::add(w, V::sub(V::mul(momentum, m), V::mul(lr, g))) : V::add(w, m);
        }
        break;
      case OptimizerKind::adam: {
        reg m = c.load(p.state[0]), v = c.load(p.state[1]);
        m = V::add(m, V::mul(V::sub(g, m), one_minus_b1));
        v = V::add(v, V::mul(V::sub(V::mul(g, g), v), one_minus_b2));
        c.store(p.state[0], m);
        c.store(p.state[1], v);
        if (p.amsgrad) {
          v = V::max(c.load(p.state[2]), v);
          c.store(p.state[2], v);
        }
        w = V::sub(w, V::div(V::mul(m, lr), V::add(V::sqrt(v), eps)));
        break;
      }
      case OptimizerKind::adagrad: {
        const reg acc = V::add(c.load(p.state[0]), V::mul(g, g));
        c.store(p.state[0], acc);
        w = V::sub(w, V::div(V::mul(lr, g), V::sqrt(V::add(acc, eps))));
        break;
      }
      case OptimizerKind::rmsprop: {
        const reg vel = V::add(V::mul(rho, c.load(p.state[0])), V::mul(one_minus_rho, V::mul(g, g)));
        c.store(p.state[0], vel);
        reg denominator;
        if (p.centered) {
          const reg avg = V::add(V::mul(rho, c.load(p.state[1])), V::mul(one_minus_rho, g));
          c.store(p.state[1], avg);
          denominator = V::add(V::sub(vel, V::mul(avg, avg)), eps);
        } else {
          denominator = V::add(vel, eps);
        }
        const reg increment = V::div(V::mul(lr, g), V::sqrt(denominator));
        if (p.momentum > T(0)) {
          const reg mom = V::add(V::mul(momentum, c.load(p.state[2])), increment);
          c.store(p.state[2], mom);
          w = V::sub(w, mom);
        } else {
          w = V::sub(w, increment);
        }
        break;
      }
    }
    c.store(p.w, w);
  });
}

template <class T>
double sum_squares(std::size_t n, const T* x) {
  // Squares summed in double lanes: a gradient norm is a long reduction.
  using D = Vec<double>;
  auto acc = D::zero();
  for (std::size_t i = 0; i < n; i += D::lanes) {
    const auto m = D::tail_mask(n - i);  // the tail's lanes past n load as zeros
    __m512d v;
    if constexpr (sizeof(T) == 4) {
      v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, reinterpret_cast<const float*>(x) + i));
    } else {
      v = _mm512_maskz_loadu_pd(m, reinterpret_cast<const double*>(x) + i);
    }
    acc = D::fmadd(v, v, acc);
  }
  return D::hsum(acc);
}

template void optimizer_update<float>(const OptimizerUpdateArgs<float>&);
template void optimizer_update<double>(const OptimizerUpdateArgs<double>&);
template double sum_squares<float>(std::size_t, const float*);
template double sum_squares<double>(std::size_t, const double*);

}  // namespace fastmlp::avx512
