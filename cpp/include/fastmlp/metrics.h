// Training and evaluation metrics, summed per sample (Python divides by the sample count).
// They cost O(batch * outputs), nothing next to the matrix products, so one plain version serves
// every ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fastmlp {

enum class Metric : int {
  binary_accuracy = 0,
  categorical_accuracy = 1,
  sparse_categorical_accuracy = 2,
  mean_squared_error = 3,
  mean_absolute_error = 4,
  // The target class is among the k = 5 highest predictions; ties at the boundary count as in
  // (TensorFlow's in_top_k): fewer than k classes score strictly higher.
  top_k_categorical_accuracy = 5,
  sparse_top_k_categorical_accuracy = 6,
};

Metric parse_metric(const std::string& name);

// Sum over rows of the per-sample metric (Keras's definitions: binary accuracy thresholds at 0.5
// and averages over the outputs; categorical compares argmaxes, first index on ties).
template <class T>
double metric_sum(Metric metric, std::size_t rows, std::size_t cols, const T* pred,
                  std::ptrdiff_t ldp, const T* y, std::ptrdiff_t ldy, const std::int32_t* labels,
                  const T* row_weight);

}  // namespace fastmlp
