// One row through the network as matrix-vector products, and its gradients as outer products:
// the batch-1 step's passes (steps/vector_step.cpp). No gathering, packing of the first layer,
// thread pool or per-batch lists: with plain SGD one pass over the first kernel updates it and
// runs the next sample's first product (kernel sgd_forward), straight from the samples' rows.
//
// Bitwise what Network::forward and Network::backward give for a batch of that one row: every
// product is the kernel call those make for one row (sparse_gemm over the row's nonzeros, or
// over every index when the row is dense, as the density test decides; gemm where they call
// gemm), and the fused plain-SGD update of the first kernel is sparse_gemm's epilogue (or
// sgd_forward's, the same operations), the same w - lr * g as the optimizer's kernel. Runs only inside a training step, on the network's own
// buffers (as RowSplit does), and leaves them as forward and backward would.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastmlp/network.h"

namespace fastmlp {

template <class T>
class VectorPass {
 public:
  // Sizes its lists for the network's input (throws AllocationError when they cannot be had).
  explicit VectorPass(Network<T>& net);
  // Whether it can run the network at all: no dropout (its masks are drawn by forward) and no
  // batch normalization (a batch of one row has no variance to normalize by).
  static bool supports(const Network<T>& net);

  // x: one row of input_dim values. Afterwards the network's activations are forward's for that
  // row. Returns whether the first layer took the sparse path; sets *non_finite when an input
  // is NaN or infinite (never clears it).
  bool forward(const T* x, bool* non_finite);
  // The same forward pass with the caller's list (input_dim + 8 entries; receives the row's
  // nonzero indices, *nnz of them): Network::predict_row's. Returns whether the first layer
  // took the sparse path. The network's buffers must hold a row (Network::reserve(1)).
  static bool forward_row(Network<T>& net, const T* x, std::uint32_t* list, std::size_t* nnz, bool* non_finite);
  // forward for every layer after the first layer's product (already in its z).
  static void forward_after_first_product(Network<T>& net);
  // The gradients of every layer from output_delta(), for the row of the last forward. With
  // `sgd_learning_rate`, applies plain SGD to the first kernel in the same pass where
  // Network::fuses_first_kernel allows it; returns true when it did (the optimizer skips it).
  // With `next` too (the next step's row, when that step runs here next with the weights as
  // this one leaves them), the fused update also runs next's first product through the updated
  // kernel (kernel sgd_forward: each weight is read and written once per step) unless both
  // rows are sparse; the next forward(next) then starts after that product. Bitwise the same as
  // doing them apart.
  bool backward(const T* x, const T* sgd_learning_rate, const T* next = nullptr);
  // Forgets a product made for a next row (another step ran, or the call ended).
  void drop_pending() { pending_ = nullptr; }

 private:
  Network<T>& net_;
  // The row's nonzero input indices (input_dim + 8 entries: nonzero_indices stores vectors).
  std::vector<std::uint32_t> nonzeros_, next_nonzeros_;  // this row's, and the next row's (swapped in)
  std::size_t nnz_ = 0;
  bool sparse_ = false;
  // The first kernel's gradient as input_dim one-row products: feature k lists the one batch
  // row (index 0) when it enters the product, nothing when it is skipped.
  std::vector<std::uint32_t> zeros_, ones_, feature_ends_;
  // The row whose first product the last backward made (null: none), and whether it holds
  // NaN or infinity; nonzeros_, nnz_ and sparse_ are then that row's.
  const T* pending_ = nullptr;
  bool pending_non_finite_ = false;
};

}  // namespace fastmlp
