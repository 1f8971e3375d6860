// z += bias; a = act(z), a vector at a time; softmax row by row with the max subtracted.
#include "fastmlp/kernels.h"
#include "row_chunks.h"
#include "vec_math.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

namespace {

// Inlined into a loop made for one activation (see bias_activation), the switch folds away.
template <class T>
[[gnu::always_inline]] inline typename Vec<T>::reg apply(Activation act, typename Vec<T>::reg z, T alpha) {
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
  auto vmax = V::set1(-T(__builtin_inf()));
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

// One loop per activation: with the activation chosen per vector, the call and the switch in
// the loop kept the exp's constants out of registers and cost ~3x the sigmoid itself.
template <class T, Activation act>
void bias_activation_rows(const BiasActivationArgs<T>& p) {
  using V = Vec<T>;
  for (std::size_t r = 0; r < p.rows; ++r) {
    T* z = p.z + std::ptrdiff_t(r) * p.ldz;
    T* a = p.a + std::ptrdiff_t(r) * p.lda;
    constexpr bool rowwise = act == Activation::softmax;
    for_each_chunk<T>(p.cols, [&](const Chunk<T>& c) {
      auto v = c.load(z);
      if (p.bias != nullptr) {
        v = V::add(v, c.load(p.bias));
        c.store(z, v);
      }
      if (!rowwise) c.store(a, apply<T>(act, v, p.alpha));
    });
    if (rowwise) softmax_row<T>(p.cols, z, a);
  }
}

}  // namespace

template <class T>
void bias_activation(const BiasActivationArgs<T>& p) {
  switch (p.activation) {
    case Activation::sigmoid: return bias_activation_rows<T, Activation::sigmoid>(p);
    case Activation::tanh: return bias_activation_rows<T, Activation::tanh>(p);
    case Activation::relu: return bias_activation_rows<T, Activation::relu>(p);
    case Activation::softmax: return bias_activation_rows<T, Activation::softmax>(p);
    case Activation::leaky_relu: return bias_activation_rows<T, Activation::leaky_relu>(p);
    case Activation::elu: return bias_activation_rows<T, Activation::elu>(p);
    case Activation::gelu: return bias_activation_rows<T, Activation::gelu>(p);
    case Activation::gelu_tanh: return bias_activation_rows<T, Activation::gelu_tanh>(p);
    case Activation::softplus: return bias_activation_rows<T, Activation::softplus>(p);
    case Activation::swish: return bias_activation_rows<T, Activation::swish>(p);
    default: return bias_activation_rows<T, Activation::linear>(p);
  }
}

template void bias_activation<float>(const BiasActivationArgs<float>&);
template void bias_activation<double>(const BiasActivationArgs<double>&);

}  // namespace fastmlp::avx512
