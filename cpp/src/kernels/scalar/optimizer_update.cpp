// The optimizers' update rules, one parameter at a time, exactly as kernels.h (and Keras 3)
// writes them.
#include <cmath>

#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

namespace {

// n^-lr_power for Ftrl; the square root (Keras's default power) exactly, as the SIMD twins do.
inline double ftrl_power(double x, double e) { return e == 0.5 ? std::sqrt(x) : ::pow(x, e); }
inline float ftrl_power(float x, float e) { return e == 0.5f ? std::sqrt(x) : ::powf(x, e); }

}  // namespace

template <class T>
void optimizer_update(const OptimizerUpdateArgs<T>& p) {
  const T lr = p.learning_rate;
  for (std::size_t i = 0; i < p.n; ++i) {
    T g = p.g[i] * p.grad_scale;
    g = g > p.clip_value ? p.clip_value : (g < -p.clip_value ? -p.clip_value : g);
    T w = p.w[i];
    if (p.decay != T(0)) w = w - w * p.decay;
    switch (p.kind) {
      case OptimizerKind::sgd:
        if (p.momentum == T(0)) {
          w = w - lr * g;
        } else {
          T& m = p.state[0][i];
          m = p.momentum * m - lr * g;
          w = p.nesterov ? w + (p.momentum * m - lr * g) : w + m;
        }
        break;
      case OptimizerKind::adam: {
        T& m = p.state[0][i];
        T& v = p.state[1][i];
        m = m + (g - m) * (T(1) - p.beta_1);
        v = v + (g * g - v) * (T(1) - p.beta_2);
        T denom_v = v;
        if (p.amsgrad) {
          T& vhat = p.state[2][i];
          vhat = vhat > v ? vhat : v;
          denom_v = vhat;
        }
        w = w - (m * lr) / (std::sqrt(denom_v) + p.epsilon);
        break;
      }
      case OptimizerKind::adagrad: {
        T& acc = p.state[0][i];
        acc = acc + g * g;
        w = w - (lr * g) / std::sqrt(acc + p.epsilon);
        break;
      }
      case OptimizerKind::rmsprop: {
        T& vel = p.state[0][i];
        vel = p.rho * vel + (T(1) - p.rho) * (g * g);
        T denominator;
        if (p.centered) {
          T& avg = p.state[1][i];
          avg = p.rho * avg + (T(1) - p.rho) * g;
          denominator = vel - avg * avg + p.epsilon;
        } else {
          denominator = vel + p.epsilon;
        }
        const T increment = (lr * g) / std::sqrt(denominator);
        if (p.momentum > T(0)) {
          T& mom = p.state[2][i];
          mom = p.momentum * mom + increment;
          w = w - mom;
        } else {
          w = w - increment;
        }
        break;
      }
      case OptimizerKind::nadam: {
        T& m = p.state[0][i];
        T& v = p.state[1][i];
        m = m + (g - m) * (T(1) - p.beta_1);
        v = v + (g * g - v) * (T(1) - p.beta_2);
        const T m_hat = p.m_coef * m + p.g_coef * g;
        w = w - (m_hat * lr) / (std::sqrt(v * p.v_coef) + p.epsilon);
        break;
      }
      case OptimizerKind::adamax: {
        T& m = p.state[0][i];
        T& u = p.state[1][i];
        m = m + (g - m) * (T(1) - p.beta_1);
        const T decayed = p.beta_2 * u, a = std::fabs(g);
        u = decayed > a ? decayed : a;
        w = w - (lr * m) / (u + p.epsilon);
        break;
      }
      case OptimizerKind::lion: {
        T& m = p.state[0][i];
        const T c = m * p.beta_1 + g * (T(1) - p.beta_1);
        const T sign = c > T(0) ? T(1) : (c < T(0) ? T(-1) : T(0));
        w = w - lr * sign;
        m = m * p.beta_2 + g * (T(1) - p.beta_2);
        break;
      }
      case OptimizerKind::adadelta: {
        T& acc_g = p.state[0][i];
        T& acc_d = p.state[1][i];
        acc_g = p.rho * acc_g + (T(1) - p.rho) * (g * g);
        const T d = -(std::sqrt(acc_d + p.epsilon) * g) / std::sqrt(acc_g + p.epsilon);
        acc_d = p.rho * acc_d + (T(1) - p.rho) * (d * d);
        w = w + lr * d;
        break;
      }
      case OptimizerKind::ftrl: {
        T& n = p.state[0][i];
        T& z = p.state[1][i];
        const T e = -p.lr_power;
        const T g2 = g + T(2) * p.l2_shrinkage * w;
        const T n_new = n + g * g;
        const T root_new = ftrl_power(n_new, e);
        z = z + (g2 - (root_new - ftrl_power(n, e)) / lr * w);
        const T quadratic = root_new / lr + T(2) * p.l2;
        const T z_clipped = z > p.l1 ? p.l1 : (z < -p.l1 ? -p.l1 : z);
        w = (z_clipped - z) / quadratic;
        n = n_new;
        break;
      }
    }
    p.w[i] = w;
  }
}

template <class T>
double sum_squares(std::size_t n, const T* x) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return sum;
}

template void optimizer_update<float>(const OptimizerUpdateArgs<float>&);
template void optimizer_update<double>(const OptimizerUpdateArgs<double>&);
template double sum_squares<float>(std::size_t, const float*);
template double sum_squares<double>(std::size_t, const double*);

}  // namespace fastmlp::scalar
