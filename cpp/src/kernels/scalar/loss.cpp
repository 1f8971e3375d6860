// Losses with Keras 3 semantics, per sample, and their gradients.
//   mse, mae, binary_crossentropy: mean over the output columns of the elementwise loss.
//   categorical / sparse_categorical_crossentropy: sum over the columns.
// From probabilities, cross-entropies clip to [eps, 1 - eps] (eps = 1e-7, Keras's backend
// epsilon); the clip passes no gradient strictly outside that range. Categorical cross-entropy
// from probabilities first divides by the row sum, as Keras does, and its gradient includes that.
// From logits nothing is clipped: log-sum-exp and softplus keep every value finite.
// The regression and hinge losses are Keras 3's (keras/src/losses/losses.py), each the mean over
// the columns of an elementwise loss except kl_divergence (a sum) and categorical_hinge (one value
// per row); eps = kLossEpsilon where Keras clips, and a clip passes no gradient outside its range.
#include <cmath>

#include "fastmlp/kernels.h"
#include "scalar_math.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"

namespace {

// Each returns the row's loss and, when g is not null, writes dloss/dpred * scale into g.
template <class T>
T mean_squared_error(const T* pred, const T* y, std::size_t n, T scale, T* g) {
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const T d = pred[j] - y[j];
    sum += d * d;
    if (g != nullptr) g[j] = scale * T(2) * d / T(n);
  }
  return sum / T(n);
}

template <class T>
T mean_absolute_error(const T* pred, const T* y, std::size_t n, T scale, T* g) {
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const T d = pred[j] - y[j];
    sum += std::fabs(d);
    const T sign = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
    if (g != nullptr) g[j] = scale * sign / T(n);
  }
  return sum / T(n);
}

template <class T>
T binary_crossentropy(const T* pred, const T* y, std::size_t n, bool from_logits, T scale, T* g) {
  const T lo = T(kProbabilityEpsilon), hi = T(1.0 - kProbabilityEpsilon);
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    if (from_logits) {
      const T x = pred[j];
      sum += softplus(x) - x * y[j];  // = -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))
      if (g != nullptr) g[j] = scale * (sigmoid(x) - y[j]) / T(n);
    } else {
      const T p = pred[j] < lo ? lo : (pred[j] > hi ? hi : pred[j]);
      sum += -(y[j] * std::log(p) + (T(1) - y[j]) * std::log(T(1) - p));
      const bool clipped = pred[j] < lo || pred[j] > hi;
      if (g != nullptr) g[j] = clipped ? T(0) : scale * -(y[j] / p - (T(1) - y[j]) / (T(1) - p)) / T(n);
    }
  }
  return sum / T(n);
}

// y_dense or label (when y_dense is null) gives the target row.
template <class T>
T categorical_crossentropy(const T* pred, const T* y_dense, std::int32_t label, std::size_t n,
                           bool from_logits, T scale, T* g) {
  auto y = [&](std::size_t j) { return y_dense != nullptr ? y_dense[j] : T(j == std::size_t(label)); };
  T y_sum = 0;
  for (std::size_t j = 0; j < n; ++j) y_sum += y(j);
  if (from_logits) {
    // -sum y log softmax(z) = sum y (lse - z); gradient softmax(z) * sum(y) - y.
    const T lse = log_sum_exp(pred, n);
    T loss = 0;
    for (std::size_t j = 0; j < n; ++j) {
      loss += y(j) * (lse - pred[j]);
      if (g != nullptr) g[j] = scale * (std::exp(pred[j] - lse) * y_sum - y(j));
    }
    return loss;
  }
  const T lo = T(kProbabilityEpsilon), hi = T(1.0 - kProbabilityEpsilon);
  T s = 0;
  for (std::size_t j = 0; j < n; ++j) s += pred[j];
  T loss = 0, kept_y = 0;  // kept_y: sum of y over entries the clip lets gradient through
  for (std::size_t j = 0; j < n; ++j) {
    const T q = pred[j] / s;
    const T qc = q < lo ? lo : (q > hi ? hi : q);
    loss -= y(j) * std::log(qc);
    if (!(q < lo || q > hi)) kept_y += y(j);
  }
  if (g != nullptr) {
    // L = -sum_j y_j log clip(p_j / s):  dL/dp_i = (-[i kept] y_i / q_i + kept_y) / s
    for (std::size_t j = 0; j < n; ++j) {
      const T q = pred[j] / s;
      const bool kept = !(q < lo || q > hi);
      g[j] = scale * ((kept ? -y(j) / q : T(0)) + kept_y) / s;
    }
  }
  return loss;
}

template <class T>
T clip(T x, T lo, T hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

template <class T>
T sign_of(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
}

// Keras's convert_binary_labels_to_hinge turns labels that are all 0 or 1 into -1/1; it decides
// over the whole batch, we per row, so a sample's loss does not depend on its batch mates (the same
// whenever the labels are all in {0, 1} or all in {-1, 1}).
template <class T>
bool binary_row(const T* y, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j)
    if (!(y[j] == T(0) || y[j] == T(1))) return false;
  return true;
}

// The elementwise losses: returns the row's loss (mean over the columns) and, when g is not null,
// writes dloss/dpred * scale into g.
template <class T>
T elementwise(Loss loss, const T* pred, const T* y, std::size_t n, T delta, T scale, T* g) {
  const T eps = T(kLossEpsilon);
  const bool to_signs = (loss == Loss::hinge || loss == Loss::squared_hinge) && binary_row(y, n);
  const T k = scale / T(n);
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const T p = pred[j];
    T l = 0, d = 0;  // the element's loss and its derivative
    switch (loss) {
      case Loss::huber: {
        const T e = p - y[j], a = std::fabs(e);
        const bool quadratic = a <= delta;
        l = quadratic ? T(0.5) * e * e : delta * a - T(0.5) * delta * delta;
        d = quadratic ? e : delta * sign_of(e);
        break;
      }
      case Loss::log_cosh: {  // log cosh e = |e| + softplus(-2|e|) - log 2 (even in e)
        const T e = p - y[j], a = std::fabs(e);
        l = a + softplus(T(-2) * a) - T(0.69314718055994530942);
        d = std::tanh(e);
        break;
      }
      case Loss::poisson:
        l = p - y[j] * std::log(p + eps);
        d = T(1) - y[j] / (p + eps);
        break;
      case Loss::hinge:
      case Loss::squared_hinge: {
        const T t = to_signs ? T(2) * y[j] - T(1) : y[j];
        const T m = T(1) - t * p;
        const T h = m > T(0) ? m : T(0);
        l = loss == Loss::hinge ? h : h * h;
        d = loss == Loss::hinge ? (m > T(0) ? -t : T(0)) : T(-2) * t * h;
        break;
      }
      case Loss::mean_absolute_percentage_error: {
        const T ay = std::fabs(y[j]);
        const T den = ay > eps ? ay : eps;
        l = T(100) * std::fabs((y[j] - p) / den);
        d = T(100) * sign_of(p - y[j]) / den;
        break;
      }
      case Loss::mean_squared_logarithmic_error: {
        const T pc = p > eps ? p : eps, yc = y[j] > eps ? y[j] : eps;
        const T e = std::log(pc + T(1)) - std::log(yc + T(1));
        l = e * e;
        d = p < eps ? T(0) : T(2) * e / (pc + T(1));
        break;
      }
      default:
        break;
    }
    sum += l;
    if (g != nullptr) g[j] = k * d;
  }
  return sum / T(n);
}

// sum y log(y / p) with y and p clipped to [eps, 1].
template <class T>
T kl_divergence(const T* pred, const T* y, std::size_t n, T scale, T* g) {
  const T eps = T(kLossEpsilon);
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const T t = clip(y[j], eps, T(1)), p = clip(pred[j], eps, T(1));
    sum += t * (std::log(t) - std::log(p));
    const bool clipped = pred[j] < eps || pred[j] > T(1);
    if (g != nullptr) g[j] = clipped ? T(0) : -scale * t / p;
  }
  return sum;
}

// max(max_j (1 - y_j) p_j - sum_j y_j p_j + 1, 0). The max's gradient is shared equally by the
// columns that reach it, as TensorFlow's and JAX's reductions share it.
template <class T>
T categorical_hinge(const T* pred, const T* y, std::size_t n, T scale, T* g) {
  T pos = 0, neg = -T(__builtin_inf());
  for (std::size_t j = 0; j < n; ++j) {
    pos += y[j] * pred[j];
    const T v = (T(1) - y[j]) * pred[j];
    neg = v > neg ? v : neg;
  }
  const T m = neg - pos + T(1);
  if (g != nullptr) {
    T ties = 0;
    for (std::size_t j = 0; j < n; ++j) ties += (T(1) - y[j]) * pred[j] == neg ? T(1) : T(0);
    for (std::size_t j = 0; j < n; ++j) {
      const T at_max = (T(1) - y[j]) * pred[j] == neg ? T(1) : T(0);
      g[j] = m > T(0) ? scale * ((T(1) - y[j]) * at_max / ties - y[j]) : T(0);
    }
  }
  return m > T(0) ? m : T(0);
}

}  // namespace

template <class T>
double loss(const LossArgs<T>& p) {
  double total = 0;
  for (std::size_t r = 0; r < p.rows; ++r) {
    const T* pred = p.pred + r * p.ldp;
    const T* y = p.y == nullptr ? nullptr : p.y + r * p.ldy;
    T* g = p.grad == nullptr ? nullptr : p.grad + r * p.ldg;
    const T w = p.row_weight == nullptr ? T(1) : p.row_weight[r];
    const T scale = w * p.grad_scale;
    T row_loss = 0;
    switch (p.loss) {
      case Loss::mse:
        row_loss = mean_squared_error(pred, y, p.cols, scale, g);
        break;
      case Loss::mae:
        row_loss = mean_absolute_error(pred, y, p.cols, scale, g);
        break;
      case Loss::binary_crossentropy:
        row_loss = binary_crossentropy(pred, y, p.cols, p.from_logits, scale, g);
        break;
      case Loss::categorical_crossentropy:
        row_loss = categorical_crossentropy(pred, y, 0, p.cols, p.from_logits, scale, g);
        break;
      case Loss::sparse_categorical_crossentropy:
        row_loss = categorical_crossentropy<T>(pred, nullptr, p.labels[r], p.cols, p.from_logits,
                                               scale, g);
        break;
      case Loss::kl_divergence:
        row_loss = kl_divergence(pred, y, p.cols, scale, g);
        break;
      case Loss::categorical_hinge:
        row_loss = categorical_hinge(pred, y, p.cols, scale, g);
        break;
      case Loss::huber:
      case Loss::log_cosh:
      case Loss::poisson:
      case Loss::hinge:
      case Loss::squared_hinge:
      case Loss::mean_absolute_percentage_error:
      case Loss::mean_squared_logarithmic_error:
        row_loss = elementwise(p.loss, pred, y, p.cols, p.delta, scale, g);
        break;
    }
    if (p.row_loss != nullptr) p.row_loss[r] = row_loss;
    total += double(w) * double(row_loss);
  }
  return total;
}

template double loss<float>(const LossArgs<float>&);
template double loss<double>(const LossArgs<double>&);

}  // namespace fastmlp::scalar
