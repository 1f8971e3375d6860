#include "fastmlp/metrics.h"

#include <cmath>
#include <stdexcept>

namespace fastmlp {

namespace {

constexpr const char* kNames[] = {"binary_accuracy",     "categorical_accuracy",
                                  "sparse_categorical_accuracy", "mean_squared_error",
                                  "mean_absolute_error", "top_k_categorical_accuracy",
                                  "sparse_top_k_categorical_accuracy"};
constexpr int kCount = sizeof(kNames) / sizeof(kNames[0]);
constexpr std::size_t kTopK = 5;

template <class T>
bool in_top_k(const T* p, std::size_t n, std::size_t target) {
  std::size_t higher = 0;
  for (std::size_t j = 0; j < n; ++j) higher += p[j] > p[target];
  return higher < kTopK;
}

template <class T>
std::size_t argmax(const T* v, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < n; ++j)
    if (v[j] > v[best]) best = j;
  return best;
}

template <class T>
double row_metric(Metric metric, std::size_t cols, const T* p, const T* y, std::int32_t label) {
  double sum = 0;
  switch (metric) {
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
      return in_top_k(p, cols, argmax(y, cols)) ? 1.0 : 0.0;
    case Metric::sparse_top_k_categorical_accuracy:
      return in_top_k(p, cols, std::size_t(label)) ? 1.0 : 0.0;
  }
  return 0;
}

}  // namespace

Metric parse_metric(const std::string& name) {
  for (int i = 0; i < kCount; ++i)
    if (name == kNames[i]) return static_cast<Metric>(i);
  throw std::invalid_argument("unknown metric '" + name + "'");
}

template <class T>
double metric_sum(Metric metric, std::size_t rows, std::size_t cols, const T* pred,
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

template double metric_sum<float>(Metric, std::size_t, std::size_t, const float*, std::ptrdiff_t,
                                  const float*, std::ptrdiff_t, const std::int32_t*, const float*);
template double metric_sum<double>(Metric, std::size_t, std::size_t, const double*,
                                   std::ptrdiff_t, const double*, std::ptrdiff_t,
                                   const std::int32_t*, const double*);

}  // namespace fastmlp
