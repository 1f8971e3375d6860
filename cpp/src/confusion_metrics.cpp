// Confusion counts per threshold and output column (metrics.h), as Keras's
// update_confusion_matrix_variables counts them without sample weights.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "fastmlp/metrics.h"

namespace fastmlp {

namespace {

// Keras's NEG_INF: what a prediction outside a row's top k becomes.
constexpr double kNotTopK = -1e10;

template <class T>
T prediction(const ConfusionSpec& spec, T p) {
  return spec.from_logits ? T(1) / (T(1) + std::exp(-p)) : p;
}

// Whether p[j] is among the row's k largest: fewer than k entries rank before it (larger, or
// equal at a lower index), as a stable top-k keeps them.
template <class T>
bool in_top_k(const T* p, std::size_t cols, std::size_t j, std::size_t k) {
  std::size_t before = 0;
  for (std::size_t i = 0; i < cols; ++i) before += p[i] > p[j] || (p[i] == p[j] && i < j);
  return before < k;
}

// The last threshold index a prediction is positive at, by the bucket method; -1 for none
// (never, since the first threshold is below 0). NaN counts as 0, as a prediction at or
// below 0 does.
template <class T>
std::ptrdiff_t bucket(T p, std::size_t n) {
  if (!(p > T(0))) return 0;
  if (p > T(1)) p = T(1);
  const T scaled = std::ceil(p * T(n - 1)) - T(1);
  return std::max<std::ptrdiff_t>(std::ptrdiff_t(scaled), 0);
}

}  // namespace

void check_confusion_spec(const ConfusionSpec& spec) {
  const auto& t = spec.thresholds;
  if (t.empty()) throw std::invalid_argument("a confusion metric needs at least one threshold");
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (!std::isfinite(t[i])) throw std::invalid_argument("thresholds must be finite");
    if (i > 0 && t[i] < t[i - 1]) throw std::invalid_argument("thresholds must be ascending");
  }
  if (spec.evenly && t.size() < 3)
    throw std::invalid_argument("the bucket method needs at least 3 thresholds");
}

template <class T>
void confusion_add(const ConfusionSpec& spec, std::size_t rows, std::size_t cols, const T* pred,
                   std::ptrdiff_t ldp, const T* y, std::ptrdiff_t ldy, std::uint64_t* state) {
  const std::size_t n = spec.thresholds.size();
  const std::size_t stride = confusion_stride(spec);
  std::vector<T> thresholds(n);
  for (std::size_t t = 0; t < n; ++t) thresholds[t] = T(spec.thresholds[t]);
  // The bucket method counts each prediction once, in its bucket, then sums the buckets from
  // the top: bucket b is positive at every threshold up to b.
  std::vector<std::uint64_t> buckets(spec.evenly ? 2 * n * cols : 0, 0);
  std::vector<T> row(cols);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* pr = pred + std::ptrdiff_t(r) * ldp;
    const T* yr = y + std::ptrdiff_t(r) * ldy;
    for (std::size_t c = 0; c < cols; ++c) row[c] = prediction(spec, pr[c]);
    for (std::size_t c = 0; c < cols; ++c) {
      const bool positive = yr[c] != T(0);
      std::uint64_t* s = state + c * stride;
      s[positive ? 0 : 1] += 1;
      T p = row[c];
      if (spec.top_k != 0 && !in_top_k(row.data(), cols, c, spec.top_k)) p = T(kNotTopK);
      if (spec.evenly) {
        buckets[(c * 2 + (positive ? 0 : 1)) * n + std::size_t(bucket(p, n))] += 1;
        continue;
      }
      std::uint64_t* counts = s + 2 + (positive ? 0 : n);
      // Thresholds ascend: p is above a prefix of them.
      for (std::size_t t = 0; t < n && p > thresholds[t]; ++t) counts[t] += 1;
    }
  }
  if (!spec.evenly) return;
  for (std::size_t c = 0; c < cols; ++c)
    for (std::size_t kind = 0; kind < 2; ++kind) {
      const std::uint64_t* b = &buckets[(c * 2 + kind) * n];
      std::uint64_t* counts = state + c * stride + 2 + kind * n;
      std::uint64_t above = 0;
      for (std::size_t t = n; t-- > 0;) {
        above += b[t];
        counts[t] += above;
      }
    }
}

template void confusion_add<float>(const ConfusionSpec&, std::size_t, std::size_t, const float*,
                                   std::ptrdiff_t, const float*, std::ptrdiff_t, std::uint64_t*);
template void confusion_add<double>(const ConfusionSpec&, std::size_t, std::size_t, const double*,
                                    std::ptrdiff_t, const double*, std::ptrdiff_t, std::uint64_t*);

}  // namespace fastmlp
