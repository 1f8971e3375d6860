#include "fastmlp/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace fastmlp {

namespace {

constexpr const char* kNames[] = {"binary_accuracy",     "categorical_accuracy",
                                  "sparse_categorical_accuracy", "mean_squared_error",
                                  "mean_absolute_error", "top_k_categorical_accuracy",
                                  "sparse_top_k_categorical_accuracy", "binary_crossentropy",
                                  "categorical_crossentropy", "sparse_categorical_crossentropy"};
constexpr int kCount = sizeof(kNames) / sizeof(kNames[0]);
// Keras's backend.epsilon(): the clip of probabilities in its cross-entropies.
constexpr double kEpsilon = 1e-7;

template <class T>
bool in_top_k(const T* p, std::size_t n, std::size_t target, std::size_t k) {
  std::size_t higher = 0;
  for (std::size_t j = 0; j < n; ++j) higher += p[j] > p[target];
  return higher < k;
}

double clip_probability(double p) { return std::min(std::max(p, kEpsilon), 1.0 - kEpsilon); }

// log(sigmoid(x)) without overflow: -softplus(-x).
double log_sigmoid(double x) { return -(std::max(-x, 0.0) + std::log1p(std::exp(-std::fabs(x)))); }

// -log of the predicted probability of class `target` (y == nullptr) or -sum y_j log q_j.
template <class T>
double categorical_crossentropy(const T* p, const T* y, std::size_t cols, std::size_t target, bool logits) {
  std::vector<double> log_q(cols);
  if (logits) {
    double top = double(p[0]);
    for (std::size_t j = 1; j < cols; ++j) top = std::max(top, double(p[j]));
    double sum = 0;
    for (std::size_t j = 0; j < cols; ++j) sum += std::exp(double(p[j]) - top);
    for (std::size_t j = 0; j < cols; ++j) log_q[j] = double(p[j]) - top - std::log(sum);
  } else {
    double sum = 0;
    for (std::size_t j = 0; j < cols; ++j) sum += double(p[j]);
    for (std::size_t j = 0; j < cols; ++j) log_q[j] = std::log(clip_probability(double(p[j]) / sum));
  }
  if (y == nullptr) return -log_q[target];
  double total = 0;
  for (std::size_t j = 0; j < cols; ++j) total -= double(y[j]) * log_q[j];
  return total;
}

template <class T>
std::size_t argmax(const T* v, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < n; ++j)
    if (v[j] > v[best]) best = j;
  return best;
}

template <class T>
double row_metric(const MetricSpec& spec, std::size_t cols, const T* p, const T* y, std::int32_t label) {
  double sum = 0;
  switch (spec.metric) {
    case Metric::binary_accuracy:
      for (std::size_t j = 0; j < cols; ++j) sum += (p[j] > T(0.5) ? T(1) : T(0)) == y[j];
      return sum / double(cols);
    case Metric::categorical_accuracy:
      return argmax(p, cols) == argmax(y, cols) ? 1.0 : 0.0;
    case Metric::sparse_categorical_accuracy:
      return argmax(p, cols) == std::size_t(label) ? 1.0 : 0.0;
    case Metric::mean_squared_error:
      for (std::size_t j = 0; j < cols; ++j) sum += double(p[j] - y[j]) * double(p[j] - y[j]);
      return sum / double(cols);
    case Metric::mean_absolute_error:
      for (std::size_t j = 0; j < cols; ++j) sum += std::fabs(double(p[j] - y[j]));
      return sum / double(cols);
    case Metric::top_k_categorical_accuracy:
      return in_top_k(p, cols, argmax(y, cols), spec.k) ? 1.0 : 0.0;
    case Metric::sparse_top_k_categorical_accuracy:
      return in_top_k(p, cols, std::size_t(label), spec.k) ? 1.0 : 0.0;
    case Metric::binary_crossentropy:
      for (std::size_t j = 0; j < cols; ++j) {
        const double t = double(y[j]);
        if (spec.from_logits) {
          sum -= t * log_sigmoid(double(p[j])) + (1 - t) * log_sigmoid(-double(p[j]));
        } else {
          const double q = clip_probability(double(p[j]));
          sum -= t * std::log(q) + (1 - t) * std::log(1 - q);
        }
      }
      return sum / double(cols);
    case Metric::categorical_crossentropy:
      return categorical_crossentropy(p, y, cols, 0, spec.from_logits);
    case Metric::sparse_categorical_crossentropy:
      return categorical_crossentropy(p, static_cast<const T*>(nullptr), cols, std::size_t(label),
                                      spec.from_logits);
  }
  return 0;
}

}  // namespace

MetricSpec parse_metric(const std::string& name, std::size_t k, bool from_logits) {
  if (k < 1) throw std::invalid_argument("a top-k metric needs k >= 1");
  for (int i = 0; i < kCount; ++i)
    if (name == kNames[i]) return MetricSpec{static_cast<Metric>(i), k, from_logits};
  throw std::invalid_argument("unknown metric '" + name + "'");
}

bool is_sparse_metric(Metric metric) {
  return metric == Metric::sparse_categorical_accuracy || metric == Metric::sparse_top_k_categorical_accuracy ||
         metric == Metric::sparse_categorical_crossentropy;
}

template <class T>
double metric_sum(const MetricSpec& metric, std::size_t rows, std::size_t cols, const T* pred,
                  std::ptrdiff_t ldp, const T* y, std::ptrdiff_t ldy, const std::int32_t* labels,
                  const T* row_weight) {
  double total = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* yr = y == nullptr ? nullptr : y + std::ptrdiff_t(r) * ldy;
    const double w = row_weight == nullptr ? 1.0 : double(row_weight[r]);
    total += w * row_metric(metric, cols, pred + std::ptrdiff_t(r) * ldp, yr,
                            labels == nullptr ? 0 : labels[r]);
  }
  return total;
}

template double metric_sum<float>(const MetricSpec&, std::size_t, std::size_t, const float*, std::ptrdiff_t,
                                  const float*, std::ptrdiff_t, const std::int32_t*, const float*);
template double metric_sum<double>(const MetricSpec&, std::size_t, std::size_t, const double*,
                                   std::ptrdiff_t, const double*, std::ptrdiff_t,
                                   const std::int32_t*, const double*);

}  // namespace fastmlp
