#include "fastmlp/network.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "fastmlp/dispatch.h"

namespace fastmlp {

template <class T>
Network<T>::Network(std::size_t input_dim, std::vector<LayerSpec> specs) : input_dim_(input_dim) {
  if (input_dim == 0) throw std::invalid_argument("input dimension must be at least 1");
  if (specs.empty()) throw std::invalid_argument("a network needs at least one layer");
  layers_.resize(specs.size());
  for (std::size_t l = 0; l < specs.size(); ++l) {
    if (specs[l].units == 0)
      throw std::invalid_argument("layer " + std::to_string(l) + " has 0 units");
    Layer& layer = layers_[l];
    layer.spec = specs[l];
    const std::size_t in = fan_in(l), out = specs[l].units;
    layer.kernel.resize(in * out);
    layer.kernel_grad.resize(in * out);
    if (specs[l].use_bias) {
      layer.bias.resize(out);
      layer.bias_grad.resize(out);
    }
  }
}

template <class T>
void Network<T>::reserve(std::size_t rows) {
  if (rows <= capacity_) return;
  for (Layer& layer : layers_) {
    const std::size_t n = rows * layer.spec.units;
    layer.z.resize(n);
    layer.delta.resize(n);
    if (layer.spec.activation == Activation::linear) {
      layer.a = layer.z.data();
    } else {
      layer.a_storage.resize(n);
      layer.a = layer.a_storage.data();
    }
  }
  pack_.reserve_at_least(kernels<T>().gemm_pack_elements + 1);
  capacity_ = rows;
}

template <class T>
void Network<T>::forward(const T* x, std::size_t rows) {
  if (rows > capacity_) reserve(rows);
  // The active ISA may have changed since reserve() (tests switch it): keep the scratch big enough.
  const KernelTable<T>& k = kernels<T>();
  pack_.reserve_at_least(k.gemm_pack_elements + 1);
  const T* in = x;
  std::size_t in_dim = input_dim_;
  for (Layer& layer : layers_) {
    const std::size_t out = layer.spec.units;
    k.gemm({rows, out, in_dim, T(1), in, std::ptrdiff_t(in_dim), 1, layer.kernel.data(),
            std::ptrdiff_t(out), 1, T(0), layer.z.data(), std::ptrdiff_t(out), pack_.data()});
    k.bias_activation({rows, out, layer.spec.activation,
                       layer.spec.use_bias ? layer.bias.data() : nullptr, layer.z.data(),
                       std::ptrdiff_t(out), layer.a, std::ptrdiff_t(out)});
    in = layer.a;
    in_dim = out;
  }
}

template <class T>
void Network<T>::output_activation_backward(std::size_t rows) {
  Layer& last = layers_.back();
  const auto ld = std::ptrdiff_t(last.spec.units);
  kernels<T>().activation_backward({rows, last.spec.units, last.spec.activation, last.z.data(), ld,
                                    last.a, ld, last.delta.data(), ld, last.delta.data(), ld});
}

template <class T>
void Network<T>::backward(const T* x, std::size_t rows) {
  const KernelTable<T>& k = kernels<T>();
  for (std::size_t l = layers_.size(); l-- > 0;) {
    Layer& layer = layers_[l];
    const std::size_t in_dim = fan_in(l), out = layer.spec.units;
    const T* in = l == 0 ? x : layers_[l - 1].a;
    // dW = in^T @ delta: in read transposed through its strides.
    k.gemm({in_dim, out, rows, T(1), in, 1, std::ptrdiff_t(in_dim), layer.delta.data(),
            std::ptrdiff_t(out), 1, T(0), layer.kernel_grad.data(), std::ptrdiff_t(out),
            pack_.data()});
    if (layer.spec.use_bias)
      k.column_sum(rows, out, layer.delta.data(), std::ptrdiff_t(out), layer.bias_grad.data());
    if (l == 0) break;
    // dA_prev = delta @ W^T, then through the previous layer's activation, in place.
    Layer& prev = layers_[l - 1];
    k.gemm({rows, in_dim, out, T(1), layer.delta.data(), std::ptrdiff_t(out), 1,
            layer.kernel.data(), 1, std::ptrdiff_t(out), T(0), prev.delta.data(),
            std::ptrdiff_t(in_dim), pack_.data()});
    const auto ld = std::ptrdiff_t(in_dim);
    k.activation_backward({rows, in_dim, prev.spec.activation, prev.z.data(), ld, prev.a, ld,
                           prev.delta.data(), ld, prev.delta.data(), ld});
  }
}

template <class T>
void Network<T>::predict(const T* x, std::size_t n, std::size_t batch, T* out) {
  if (batch == 0) throw std::invalid_argument("batch size must be at least 1");
  const std::size_t out_dim = output_dim();
  for (std::size_t start = 0; start < n; start += batch) {
    const std::size_t rows = n - start < batch ? n - start : batch;
    forward(x + start * input_dim_, rows);
    std::memcpy(out + start * out_dim, output(), rows * out_dim * sizeof(T));
  }
}

template class Network<float>;
template class Network<double>;

}  // namespace fastmlp
