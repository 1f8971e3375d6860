#include "curvature.h"

#include <cmath>

namespace fastmlp::curvature {

namespace {

// Two branches so exp never overflows.
double sigmoid(double z) {
  if (z >= 0) return 1 / (1 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1 + e);
}

// The constants of GELU (as the kernels write them): sqrt(2/pi), the cubic coefficient,
// 1/sqrt(2), 1/sqrt(2 pi).
constexpr double kSqrt2OverPi = 0.79788456080286535588, kGeluCubic = 0.044715;
constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;

}  // namespace

void activation_derivatives(Activation act, double alpha, std::size_t n, const double* z, const double* a,
                            double* fp, double* fpp) {
  for (std::size_t i = 0; i < n; ++i) {
    const double x = z[i];
    double d1 = 1, d2 = 0;
    switch (act) {
      case Activation::linear:
      case Activation::softmax:  // not elementwise: never asked for
        break;
      case Activation::sigmoid:  // s' = s (1 - s), s'' = s' (1 - 2 s)
        d1 = a[i] * (1 - a[i]);
        d2 = d1 * (1 - 2 * a[i]);
        break;
      case Activation::tanh:  // t' = 1 - t^2, t'' = -2 t t'
        d1 = 1 - a[i] * a[i];
        d2 = -2 * a[i] * d1;
        break;
      case Activation::relu:  // 1 above 0, 0 at and below (the gradient's convention); f'' = 0
        d1 = x > 0 ? 1 : 0;
        break;
      case Activation::leaky_relu:  // 1 above 0, alpha at and below; f'' = 0
        d1 = x > 0 ? 1 : alpha;
        break;
      case Activation::elu:  // alpha e^z at and below 0, both derivatives; 1 and 0 above
        if (!(x > 0)) d1 = d2 = alpha * std::exp(x);
        break;
      case Activation::gelu: {  // x Phi(x): Phi + x phi, then phi (2 - x^2)
        const double cdf = 0.5 * std::erfc(-x * kInvSqrt2), pdf = kInvSqrt2Pi * std::exp(-0.5 * x * x);
        d1 = cdf + x * pdf;
        d2 = pdf * (2 - x * x);
        break;
      }
      case Activation::gelu_tanh: {  // x s(x), s = sigmoid(2u), u = c (x + k x^3)
        const double s = sigmoid(2 * kSqrt2OverPi * (x + kGeluCubic * x * x * x));
        const double du = kSqrt2OverPi * (1 + 3 * kGeluCubic * x * x), ddu = kSqrt2OverPi * 6 * kGeluCubic * x;
        const double ds = 2 * s * (1 - s) * du;                                  // s'
        const double dds = 2 * (ds * (1 - 2 * s) * du + s * (1 - s) * ddu);     // s''
        d1 = s + x * ds;
        d2 = 2 * ds + x * dds;
        break;
      }
      case Activation::softplus: {  // sigmoid, then sigmoid (1 - sigmoid)
        const double s = sigmoid(x);
        d1 = s;
        d2 = s * (1 - s);
        break;
      }
      case Activation::swish: {  // x s: s (1 + x (1 - s)), then s (1 - s) (2 + x (1 - 2 s))
        const double s = sigmoid(x);
        d1 = s * (1 + x * (1 - s));
        d2 = s * (1 - s) * (2 + x * (1 - 2 * s));
        break;
      }
    }
    fp[i] = d1;
    fpp[i] = d2;
  }
}

double loss_curvature_row(Loss loss, bool from_logits, std::size_t cols, const double* pred, const double* y,
                          std::int32_t label, double scale, double* d, double* u) {
  auto target = [&](std::size_t j) { return y != nullptr ? y[j] : double(j == std::size_t(label)); };
  const double n = double(cols);
  const double lo = kProbabilityEpsilon, hi = 1.0 - kProbabilityEpsilon;
  for (std::size_t j = 0; j < cols; ++j) u[j] = 0;
  switch (loss) {
    case Loss::mse:  // mean of d^2: 2 / cols on the diagonal
      for (std::size_t j = 0; j < cols; ++j) d[j] = scale * 2 / n;
      return 0;
    case Loss::mae:  // piecewise linear: 0 (its kink included)
      for (std::size_t j = 0; j < cols; ++j) d[j] = 0;
      return 0;
    case Loss::binary_crossentropy:
      for (std::size_t j = 0; j < cols; ++j) {
        double d2 = 0;
        if (from_logits) {  // softplus(x) - x y: sigmoid (1 - sigmoid)
          const double s = sigmoid(pred[j]);
          d2 = s * (1 - s);
        } else if (!(pred[j] < lo || pred[j] > hi)) {  // -(y log p + (1 - y) log(1 - p)); 0 where clipped
          const double p = pred[j], t = target(j);
          d2 = t / (p * p) + (1 - t) / ((1 - p) * (1 - p));
        }
        d[j] = scale * d2 / n;
      }
      return 0;
    case Loss::categorical_crossentropy:
    case Loss::sparse_categorical_crossentropy:
      break;
    default:  // has_curvature(loss) is false: refused before any row is computed
      for (std::size_t j = 0; j < cols; ++j) d[j] = 0;
      return 0;
  }
  double y_sum = 0;
  for (std::size_t j = 0; j < cols; ++j) y_sum += target(j);
  if (from_logits) {
    // sum y (lse - z): sum(y) (diag(p) - p p^T), p = softmax(z).
    double zmax = pred[0];
    for (std::size_t j = 1; j < cols; ++j) zmax = pred[j] > zmax ? pred[j] : zmax;
    double sum = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      u[j] = std::exp(pred[j] - zmax);
      sum += u[j];
    }
    const double c = scale * y_sum;
    for (std::size_t j = 0; j < cols; ++j) {
      u[j] /= sum;
      d[j] = c * u[j];
    }
    return c;
  }
  // -sum over kept j of y_j log(p_j / s) (s = sum p; a clipped q_j = p_j / s is a constant):
  // [j kept] y_j / p_j^2 on the diagonal, minus kept_y / s^2 everywhere.
  double s = 0;
  for (std::size_t j = 0; j < cols; ++j) s += pred[j];
  double kept_y = 0;
  for (std::size_t j = 0; j < cols; ++j) {
    const double q = pred[j] / s;
    const bool kept = !(q < lo || q > hi);
    if (kept) kept_y += target(j);
    d[j] = kept ? scale * target(j) / (pred[j] * pred[j]) : 0.0;
    u[j] = 1;
  }
  return scale * kept_y / (s * s);
}

}  // namespace fastmlp::curvature
