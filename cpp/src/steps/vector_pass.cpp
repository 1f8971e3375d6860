#include "vector_pass.h"

#include <new>

#include "fastmlp/dispatch.h"
#include "fastmlp/sizes.h"

namespace fastmlp {

template <class T>
VectorPass<T>::VectorPass(Network<T>& net) : net_(net) {
  const std::size_t in = net.input_dim();
  with_context([&] { return "the one-row lists of " + std::to_string(in) + " input features"; }, -1, [&] {
    reserve_checked(nonzeros_, in + 8);
    reserve_checked(zeros_, in);
    reserve_checked(ones_, in);
    reserve_checked(feature_ends_, in);
  });
  nonzeros_.resize(in + 8);
  zeros_.assign(in, 0);
  ones_.assign(in, 1);
  feature_ends_.assign(in, 0);
}

template <class T>
bool VectorPass<T>::supports(const Network<T>& net) {
  for (std::size_t l = 0; l < net.num_layers(); ++l)
    if (net.spec(l).dropout > 0 || net.spec(l).batch_norm) return false;
  return true;
}

template <class T>
bool VectorPass<T>::forward(const T* x, bool* non_finite) {
  if (net_.capacity_ < 1) net_.reserve(1);
  sparse_ = forward_row(net_, x, nonzeros_.data(), &nnz_, non_finite);
  return sparse_;
}

template <class T>
bool VectorPass<T>::forward_row(Network<T>& net, const T* x, std::uint32_t* list, std::size_t* nnz,
                                bool* non_finite) {
  const KernelTable<T>& k = kernels<T>();
  const std::size_t in_dim0 = net.input_dim_;
  // The density test of Network::index_sparse_input, on the row's own list.
  *nnz = k.nonzero_indices(in_dim0, x, list, nullptr, non_finite);
  const bool sparse = input_is_sparse(*nnz, in_dim0);
  const std::uint32_t list_start = 0, list_end = std::uint32_t(*nnz);
  const T* in = x;
  std::size_t in_dim = in_dim0;
  for (std::size_t l = 0; l < net.layers_.size(); ++l) {
    auto& layer = net.layers_[l];
    const std::size_t out = layer.spec.units;
    const auto ld = std::ptrdiff_t(out);
    // forward's one-row products: the row's nonzeros on the sparse path, else every index.
    if (l == 0 && sparse) {
      k.sparse_gemm({1, out, x, std::ptrdiff_t(in_dim), 1, &list_start, &list_end, list, layer.kernel.data(), ld,
                     layer.z.data(), ld});
    } else {
      k.sparse_gemm({1, out, in, std::ptrdiff_t(in_dim), 1, net.all_starts_.data(), net.all_ends_[l].data(),
                     net.all_indices_.data(), layer.kernel.data(), ld, layer.z.data(), ld});
    }
    k.bias_activation({1, out, layer.spec.activation, T(layer.spec.alpha),
                       layer.spec.use_bias ? layer.bias.data() : nullptr, layer.z.data(), ld, layer.a, ld});
    layer.out = layer.a;
    layer.dropped_now = false;
    in = layer.out;
    in_dim = out;
  }
  return sparse;
}

template <class T>
bool VectorPass<T>::backward(const T* x, const T* sgd_learning_rate) {
  Network<T>& net = net_;
  const KernelTable<T>& k = kernels<T>();
  bool fused = false;
  for (std::size_t l = net.layers_.size(); l-- > 0;) {
    auto& layer = net.layers_[l];
    const std::size_t in_dim = net.fan_in(l), out = layer.spec.units;
    const auto ld = std::ptrdiff_t(out);
    const T* in = l == 0 ? x : net.layers_[l - 1].out;
    const bool fuse = l == 0 && net.fuses_first_kernel(sgd_learning_rate != nullptr);
    if (l == 0 && (sparse_ || fuse)) {
      // dW = x^T delta as input_dim one-row products (each x[k] * delta, one rounding, as
      // gemm's chain of one term), over the row's nonzeros on the sparse path (backward's
      // per-feature lists) and over every feature otherwise (gemm's products).
      const std::uint32_t* ends = ones_.data();
      if (sparse_) {
        std::fill(feature_ends_.begin(), feature_ends_.end(), 0u);
        for (std::size_t e = 0; e < nnz_; ++e) feature_ends_[nonzeros_[e]] = 1;
        ends = feature_ends_.data();
      }
      SparseGemmArgs<T> args{in_dim, out, x, 1, std::ptrdiff_t(in_dim), zeros_.data(), ends, zeros_.data(),
                             layer.delta.data(), ld, layer.kernel_grad.data(), ld};
      if (fuse) {
        args.update = layer.kernel.data();
        args.learning_rate = *sgd_learning_rate;
        fused = true;
      }
      k.sparse_gemm(args);
    } else {
      // backward's gemm, as parallel_gemm calls it for one task.
      k.gemm({in_dim, out, 1, T(1), in, 1, std::ptrdiff_t(in_dim), layer.delta.data(), ld, 1, T(0),
              layer.kernel_grad.data(), ld, net.pack_buffer(0)});
    }
    if (layer.spec.use_bias) k.column_sum(1, out, layer.delta.data(), ld, layer.bias_grad.data());
    if (layer.spec.kernel_regularized() && !(l == 0 && fused))
      k.regularize(in_dim * out, T(layer.spec.kernel_l1), T(layer.spec.kernel_l2), layer.kernel.data(),
                   layer.kernel_grad.data());
    if (layer.spec.use_bias && layer.spec.bias_regularized())
      k.regularize(out, T(layer.spec.bias_l1), T(layer.spec.bias_l2), layer.bias.data(), layer.bias_grad.data());
    if (l == 0) break;
    // dA_prev = delta W^T (backward's gemm for one row), then through the activation.
    auto& prev = net.layers_[l - 1];
    const auto ldp = std::ptrdiff_t(in_dim);
    k.gemm({1, in_dim, out, T(1), layer.delta.data(), ld, 1, layer.kernel.data(), 1, ld, T(0), prev.delta.data(),
            ldp, net.pack_buffer(0)});
    k.activation_backward({1, in_dim, prev.spec.activation, T(prev.spec.alpha), prev.z.data(), ldp, prev.a, ldp,
                           prev.delta.data(), ldp, prev.delta.data(), ldp});
  }
  return fused;
}

template class VectorPass<float>;
template class VectorPass<double>;

}  // namespace fastmlp
