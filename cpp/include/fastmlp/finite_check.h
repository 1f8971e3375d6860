// The first row of a matrix that holds NaN or infinity: the input check of evaluate and predict
// (and of fit when it does not check while training), run over the pool's threads at memory
// speed (it reads the whole data set once per call).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastmlp {

// Index of the first row of x (rows x cols, row-major) with a non-finite value, or -1.
template <class T>
std::int64_t first_non_finite_row(const T* x, std::size_t rows, std::size_t cols);

// Whether all `cols` values of x are finite.
template <class T>
bool row_is_finite(const T* x, std::size_t cols);

}  // namespace fastmlp
