// One row through the network for the per-sample predict loop (predict_on_batch(x[i:i+1])):
// VectorPass's forward on the network's own buffers, whose list of the row's nonzeros also
// checks the row for NaN and infinity.
#include <cstring>
#include <stdexcept>

#include "fastmlp/network.h"
#include "steps/vector_pass.h"

namespace fastmlp {

template <class T>
void Network<T>::predict_row(const T* x, T* out) {
  if (!VectorPass<T>::supports(*this)) {
    check_finite(x, 1);
    return predict(x, 1, 1, out);
  }
  if (capacity_ < 1) reserve(1);
  // reserve(1) gave the list room for input_dim + 8 entries: no allocation here.
  sparse_.row_cols.resize(input_dim_ + 8);
  std::size_t nnz = 0;
  bool non_finite = false;
  VectorPass<T>::forward_row(*this, x, sparse_.row_cols.data(), &nnz, &non_finite);
  if (non_finite) check_finite(x, 1);
  std::memcpy(out, output(), output_dim() * sizeof(T));
}

template void Network<float>::predict_row(const float*, float*);
template void Network<double>::predict_row(const double*, double*);

}  // namespace fastmlp
