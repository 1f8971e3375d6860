// Losses with Keras 3 semantics, per sample, and their gradients.
//   mse, mae, binary_crossentropy: mean over the output columns of the elementwise loss.
//   categorical / sparse_categorical_crossentropy: sum over the columns.
// From probabilities, cross-entropies clip to [eps, 1 - eps] (eps = 1e-7, Keras's backend
// epsilon); the clip passes no gradient strictly outside that range. Categorical cross-entropy
// from probabilities first divides by the row sum, as Keras does, and its gradient includes that.
// From logits nothing is clipped: log-sum-exp and softplus keep every value finite.
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
    }
    if (p.row_loss != nullptr) p.row_loss[r] = row_loss;
    total += double(w) * double(row_loss);
  }
  return total;
}

template double loss<float>(const LossArgs<float>&);
template double loss<double>(const LossArgs<double>&);

}  // namespace fastmlp::scalar
