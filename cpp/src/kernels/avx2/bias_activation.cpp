// z += bias; a = act(z), a vector at a time; softmax row by row with the max subtracted.
#include <limits>

#include "fastmlp/kernels.h"
#include "row_chunks.h"
#include "vec_math.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

namespace {

template <class T>
typename Vec<T>::reg apply(Activation act, typename Vec<T>::reg z, T alpha) {
  using V = Vec<T>;
  switch (act) {
    case Activation::sigmoid:
      return vsigmoid<T>(z);
    case Activation::tanh:
      return vtanh<T>(z);
    case Activation::relu:
      return V::max(V::zero(), z);  // z second: NaN propagates
    case Activation::leaky_relu:
      return V::select(V::gt(z, V::zero()), z, V::mul(V::set1(alpha), z));
    case Activation::elu:
      return V::select(V::gt(z, V::zero()), z, V::mul(V::set1(alpha), vexpm1<T>(z)));
    case Activation::gelu:
      return vgelu<T>(z);
    case Activation::gelu_tanh:
      return vgelu_tanh<T>(z);
    case Activation::softplus:
      return vsoftplus<T>(z);
    case Activation::swish:
      return V::mul(z, vsigmoid<T>(z));
    default:
      return z;
  }
}

template <class T>
void softmax_row(std::size_t cols, const T* z, T* a) {
  using V = Vec<T>;
  auto vmax = V::set1(-std::numeric_limits<T>::infinity());
  for_each_chunk<T>(cols, [&](const Chunk<T>& c) { vmax = V::max(vmax, c.inside(c.load(z), vmax)); });
  const auto zmax = V::set1(V::hmax(vmax));
  auto vsum = V::zero();
  for_each_chunk<T>(cols, [&](const Chunk<T>& c) {
    const auto e = vexp<T>(V::sub(c.load(z), zmax));  // <= 1: no overflow
    c.store(a, e);
    vsum = V::add(vsum, c.inside(e, V::zero()));
  });
  const auto inv = V::div(V::set1(T(1)), V::set1(V::hsum(vsum)));
  for_each_chunk<T>(cols, [&](const Chunk<T>& c) { c.store(a, V::mul(c.load(a), inv)); });
}

}  // namespace

template <class T>
void bias_activation(const BiasActivationArgs<T>& p) {
  using V = Vec<T>;
  for (std::size_t r = 0; r < p.rows; ++r) {
    T* z = p.z + std::ptrdiff_t(r) * p.ldz;
    T* a = p.a + std::ptrdiff_t(r) * p.lda;
    const bool rowwise = p.activation == Activation::softmax;
    for_each_chunk<T>(p.cols, [&](const Chunk<T>& c) {
      auto v = c.load(z);
      if (p.bias != nullptr) {
        v = V::add(v, c.load(p.bias));
        c.store(z, v);
      }
      if (!rowwise) c.store(a, apply<T>(p.activation, v, p.alpha));
    });
    if (rowwise) softmax_row<T>(p.cols, z, a);
  }
}

template void bias_activation<float>(const BiasActivationArgs<float>&);
template void bias_activation<double>(const BiasActivationArgs<double>&);

}  // namespace fastmlp::avx2
