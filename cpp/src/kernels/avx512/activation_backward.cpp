// dz = da * act'(z), a vector at a time; softmax through its Jacobian, row by row.
#include "fastmlp/kernels.h"
#include "row_chunks.h"
#include "vec_math.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

template <class T>
void activation_backward(const ActivationBackwardArgs<T>& p) {
  using V = Vec<T>;
  const auto one = V::set1(T(1));
  for (std::size_t r = 0; r < p.rows; ++r) {
    const T* z = p.z + std::ptrdiff_t(r) * p.ldz;
    const T* a = p.a + std::ptrdiff_t(r) * p.lda;
    const T* da = p.da + std::ptrdiff_t(r) * p.ldda;
    T* dz = p.dz + std::ptrdiff_t(r) * p.lddz;
    if (p.activation == Activation::softmax) {
      auto vdot = V::zero();
      for_each_chunk<T>(p.cols, [&](const Chunk<T>& c) { vdot = V::fmadd(c.load(da), c.load(a), vdot); });
      const auto dot = V::set1(V::hsum(vdot));
      for_each_chunk<T>(p.cols, [&](const Chunk<T>& c) {
        c.store(dz, V::mul(c.load(a), V::sub(c.load(da), dot)));
      });
      continue;
    }
    for_each_chunk<T>(p.cols, [&](const Chunk<T>& c) {
      const auto g = c.load(da);
      typename V::reg out;
      switch (p.activation) {
        case Activation::sigmoid: {
          const auto s = c.load(a);
          out = V::mul(g, V::mul(s, V::sub(one, s)));
          break;
        }
        case Activation::tanh: {
          const auto t = c.load(a);
          out = V::mul(g, V::fnmadd(t, t, one));
          break;
        }
        case Activation::relu:
          out = V::keep(V::gt(c.load(z), V::zero()), g);
          break;
        case Activation::leaky_relu:
          out = V::select(V::gt(c.load(z), V::zero()), g, V::mul(V::set1(p.alpha), g));
          break;
        case Activation::elu:
          out = V::select(V::gt(c.load(z), V::zero()), g, V::mul(g, V::add(c.load(a), V::set1(p.alpha))));
          break;
        case Activation::gelu: {
          const auto x = c.load(z);
          const auto pdf = V::mul(V::set1(T(kInvSqrt2Pi)), vexp<T>(V::mul(V::set1(T(-0.5)), V::mul(x, x))));
          out = V::mul(g, V::add(vnormal_cdf<T>(x), V::mul(x, pdf)));
          break;
        }
        case Activation::gelu_tanh: {  // s + 2 z s (1 - s) u', s = sigmoid(2u)
          const auto x = c.load(z);
          const auto s = vgelu_tanh_gate<T>(x);
          const auto du = V::mul(V::set1(T(kSqrt2OverPi)), V::add(one, V::mul(V::set1(T(3 * kGeluCubic)), V::mul(x, x))));
          const auto d = V::add(s, V::mul(V::mul(V::set1(T(2)), x), V::mul(V::mul(s, V::sub(one, s)), du)));
          out = V::mul(g, d);
          break;
        }
        case Activation::softplus:
          out = V::mul(g, vsigmoid<T>(c.load(z)));
          break;
        case Activation::swish: {
          const auto x = c.load(z);
          const auto s = vsigmoid<T>(x);
          out = V::mul(g, V::mul(s, V::add(one, V::mul(x, V::sub(one, s)))));
          break;
        }
        default:
          out = g;
      }
      c.store(dz, out);
    });
  }
}

template void activation_backward<float>(const ActivationBackwardArgs<float>&);
template void activation_backward<double>(const ActivationBackwardArgs<double>&);

}  // namespace fastmlp::avx512
