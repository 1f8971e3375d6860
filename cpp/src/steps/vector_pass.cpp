#include "vector_pass.h"

#include <algorithm>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/sizes.h"

namespace fastmlp {

template <class T>
VectorPass<T>::VectorPass(Network<T>& net) : net_(net) {
  const std::size_t in = net.input_dim();
  with_context([&] { return "the one-row lists of " + std::to_string(in) + " input features"; }, -1, [&] {
    reserve_checked(nonzeros_, in + 8);
    reserve_checked(next_nonzeros_, in + 8);
    reserve_checked(zeros_, in);
    reserve_checked(ones_, in);
    reserve_checked(feature_ends_, in);
  });
  nonzeros_.resize(in + 8);
  next_nonzeros_.resize(in + 8);
  zeros_.assign(in, 0);
  ones_.assign(in, 1);
  feature_ends_.assign(in, 0);
}

template <class T>
bool VectorPass<T>::supports(const Network<T>& net) {
  for (std::size_t l = 0; l < net.num_layers(); ++l)
    if (net.spec(l).dropout > 0 || net.spec(l).batch_norm || net.spec(l).input_norm || net.spec(l).input_dropout > 0)
      return false;
  return true;
}

template <class T>
bool VectorPass<T>::forward(const T* x, bool* non_finite) {
  if (net_.capacity_ < 1) net_.reserve(1);
  if (pending_ != nullptr && pending_ == x) {
    // The last backward pass updated the first kernel and ran this row's product through it.
    pending_ = nullptr;
    if (pending_non_finite_) *non_finite = true;
    forward_after_first_product(net_);
    return sparse_;
  }
  pending_ = nullptr;
  sparse_ = forward_row(net_, x, nonzeros_.data(), &nnz_, non_finite);
  return sparse_;
}

template <class T>
bool VectorPass<T>::forward_row(Network<T>& net, const T* x, std::uint32_t* list, std::size_t* nnz,
                                bool* non_finite) {
  const KernelTable<T>& k = kernels<T>();
  const std::size_t in = net.input_dim_, out = net.layers_[0].spec.units;
  const auto ld = std::ptrdiff_t(out);
  // The density test of Network::index_sparse_input, on the row's own list.
  *nnz = k.nonzero_indices(in, x, list, nullptr, non_finite);
  const bool sparse = input_is_sparse(*nnz, in);
  // forward's one-row product: the row's nonzeros on the sparse path, else every index.
  const std::uint32_t list_start = 0, list_end = std::uint32_t(*nnz);
  if (sparse) {
    k.sparse_gemm({1, out, x, std::ptrdiff_t(in), 1, &list_start, &list_end, list, net.layers_[0].kernel.data(), ld,
                   net.layers_[0].z.data(), ld});
  } else {
    k.sparse_gemm({1, out, x, std::ptrdiff_t(in), 1, net.all_starts_.data(), net.all_ends_[0].data(),
                   net.all_indices_.data(), net.layers_[0].kernel.data(), ld, net.layers_[0].z.data(), ld});
  }
  forward_after_first_product(net);
  return sparse;
}

template <class T>
void VectorPass<T>::forward_after_first_product(Network<T>& net) {
  const KernelTable<T>& k = kernels<T>();
  for (std::size_t l = 0; l < net.layers_.size(); ++l) {
    auto& layer = net.layers_[l];
    const std::size_t in_dim = net.fan_in(l), out = layer.spec.units;
    const auto ld = std::ptrdiff_t(out);
    if (l > 0) {  // forward's one-row product over every index
      k.sparse_gemm({1, out, net.layers_[l - 1].out, std::ptrdiff_t(in_dim), 1, net.all_starts_.data(),
                     net.all_ends_[l].data(), net.all_indices_.data(), layer.kernel.data(), ld, layer.z.data(), ld});
    }
    k.bias_activation({1, out, layer.spec.activation, T(layer.spec.alpha),
                       layer.spec.use_bias ? layer.bias.data() : nullptr, layer.z.data(), ld, layer.a, ld});
    layer.out = layer.a;
    layer.dropped_now = false;
  }
}

template <class T>
bool VectorPass<T>::backward(const T* x, const T* sgd_learning_rate, const T* next) {
  Network<T>& net = net_;
  const KernelTable<T>& k = kernels<T>();
  bool fused = false;
  for (std::size_t l = net.layers_.size(); l-- > 0;) {
    auto& layer = net.layers_[l];
    const std::size_t in_dim = net.fan_in(l), out = layer.spec.units;
    const auto ld = std::ptrdiff_t(out);
    const T* in = l == 0 ? x : net.layers_[l - 1].out;
    const bool fuse = l == 0 && net.fuses_first_kernel(sgd_learning_rate != nullptr);
    bool with_next = false;
    if (fuse && next != nullptr) {
      // The update and the next row's product in one pass over the kernel, unless both rows
      // are sparse: then each pass reads only its few rows of the kernel, and they seldom meet.
      bool next_non_finite = false;
      const std::size_t next_nnz = k.nonzero_indices(in_dim, next, next_nonzeros_.data(), nullptr, &next_non_finite);
      const bool next_sparse = input_is_sparse(next_nnz, in_dim);
      if (!(sparse_ && next_sparse)) {
        k.sgd_forward({in_dim, out, layer.kernel.data(), ld, x, sparse_, layer.delta.data(), *sgd_learning_rate,
                       next, next_sparse, layer.z.data()});
        fused = with_next = true;
        nonzeros_.swap(next_nonzeros_);
        nnz_ = next_nnz;
        sparse_ = next_sparse;
        pending_ = next;
        pending_non_finite_ = next_non_finite;
      }
    }
    if (with_next) {
      // Done: the kernel is updated and the next row's first product is in z.
    } else if (l == 0 && (sparse_ || fuse)) {
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
      args.b_in_cache = true;
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
