// Training and evaluation metrics, summed per sample (Python divides by the sample count).
// They cost O(batch * outputs), nothing next to the matrix products, so one plain version serves
// every ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fastmlp {

enum class Metric : int {
  binary_accuracy = 0,
  categorical_accuracy = 1,
  sparse_categorical_accuracy = 2,
  mean_squared_error = 3,
  mean_absolute_error = 4,
  // The target class is among the k highest predictions (MetricSpec::k); ties at the boundary
  // count as in (TensorFlow's in_top_k): fewer than k classes score strictly higher.
  top_k_categorical_accuracy = 5,
  sparse_top_k_categorical_accuracy = 6,
  // Keras's cross-entropy metrics of the model's outputs: probabilities clipped to
  // [1e-7, 1 - 1e-7] (categorical: first scaled to sum 1), or logits (MetricSpec::from_logits)
  // through log-sigmoid / log-softmax. Binary averages over the outputs.
  binary_crossentropy = 7,
  categorical_crossentropy = 8,
  sparse_categorical_crossentropy = 9,
};

// A metric and its settings.
struct MetricSpec {
  Metric metric;
  std::size_t k = 5;         // top-k metrics: how many of the highest predictions count (>= 1)
  bool from_logits = false;  // cross-entropy metrics: the outputs are logits
};

// A metric by Keras's name; k must be >= 1 (std::invalid_argument otherwise).
MetricSpec parse_metric(const std::string& name, std::size_t k = 5, bool from_logits = false);

// Whether the metric reads integer class labels (the sparse loss's targets).
bool is_sparse_metric(Metric metric);

// Sum over rows of the per-sample metric (Keras's definitions: binary accuracy thresholds at 0.5
// and averages over the outputs; categorical compares argmaxes, first index on ties).
template <class T>
double metric_sum(const MetricSpec& metric, std::size_t rows, std::size_t cols, const T* pred,
                  std::ptrdiff_t ldp, const T* y, std::ptrdiff_t ldy, const std::int32_t* labels,
                  const T* row_weight);

// A metric whose state is counts (Keras's confusion-matrix metrics: AUC, Precision, Recall,
// TruePositives, ...). Counting is unweighted, so the state is integers: any order of batches,
// chunks or threads sums to the same counts, and Python applies Keras's formula to them.
struct ConfusionSpec {
  // Ascending; a prediction p is positive at threshold t when p > t (compared in T, as Keras
  // compares in its metric's dtype).
  std::vector<double> thresholds;
  // Keras's bucket method for thresholds spread evenly over [0, 1] with the end thresholds
  // -epsilon and 1 + epsilon (AUC's): p, clipped to [0, 1], is positive at the thresholds
  // j <= max(ceil(p * (n - 1)) - 1, 0), computed in T.
  bool evenly = false;
  // 0: every prediction counts; k: only each row's k largest (lower index first on ties), the
  // others become -1e10 (Keras's _filter_top_k).
  std::size_t top_k = 0;
  // The predictions are logits: the sigmoid first.
  bool from_logits = false;
};

// Counts per output column c, at state[c * confusion_stride(n) + ...]: [0] the targets that are
// positive (nonzero), [1] those that are zero, [2 + t] true positives and [2 + n + t] false
// positives at threshold t. True and false negatives are the positives (negatives) less those.
inline std::size_t confusion_stride(const ConfusionSpec& spec) { return 2 + 2 * spec.thresholds.size(); }

// Checks the spec (ascending finite thresholds, at least 3 for the bucket method): throws
// std::invalid_argument.
void check_confusion_spec(const ConfusionSpec& spec);

// Adds the counts of rows x cols predictions against dense targets y to `state` (cols *
// confusion_stride values).
template <class T>
void confusion_add(const ConfusionSpec& spec, std::size_t rows, std::size_t cols, const T* pred,
                   std::ptrdiff_t ldp, const T* y, std::ptrdiff_t ldy, std::uint64_t* state);

}  // namespace fastmlp
