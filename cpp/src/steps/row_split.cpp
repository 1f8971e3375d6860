// A training step split by rows of the batch: each thread takes its rows through the whole
// forward and backward pass, then every thread computes its share of the weight gradients.
// Splitting each product by columns instead (network.cpp) costs a barrier per layer and phase,
// and halves only the multiply-adds of the sparse first layer, not its per-nonzero work.
//
// Why the results cannot depend on the split: every activation and delta value is one row's
// FMA chain over its inputs in order (the same kernels as network.cpp, bitwise equal whichever
// is picked), and every weight-gradient value is a chain over all rows of the batch in row
// order, computed by one thread after all rows are done.
#include <algorithm>
#include <cstring>
#include <new>

#include "fastmlp/dispatch.h"
#include "fastmlp/network.h"
#include "fastmlp/sizes.h"
#include "../network_limits.h"
#include "row_split.h"

namespace fastmlp {

namespace {

// Row split of a dense weight gradient in whole 8-row pieces (the bound of the last is n).
std::size_t row_bound(std::size_t n, std::size_t parts, std::size_t p) {
  return p >= parts ? n : std::min(n, (n * p / parts + 4) / 8 * 8);
}

}  // namespace

template <class T>
bool RowSplit<T>::supports(const Network<T>& net) {
  for (std::size_t l = 0; l < net.num_layers(); ++l)
    if (net.spec(l).dropout > 0 || net.spec(l).batch_norm || net.spec(l).input_norm || net.spec(l).input_dropout > 0)
      return false;
  return true;
}

template <class T>
void RowSplit<T>::reserve(std::size_t rows, std::size_t parts) {
  net_.reserve(rows);
  const std::size_t in = net_.input_dim_, stride = in + 8;
  with_context(
      [&] {
        return "the row-split step's buffers for a batch of " + std::to_string(rows) + " rows in " +
               std::to_string(parts) + " parts";
      },
      -1, [&] {
        // rows x stride <= kMaxIndexEntries (reserve): only the parts' lists can be large.
        const std::size_t part_bytes = checked_bytes(rows * in, sizeof(SparseEntry<T>));
        if (scratch_.row_vals.capacity() < rows * stride || scratch_.feature_parts.size() < parts ||
            scratch_.feature_parts[parts - 1].entries.capacity() < rows * in)
          require_memory(checked_add(rows * stride * sizeof(T), checked_mul(parts, part_bytes, "bytes"), "bytes"));
        for (std::size_t t = 0; t < parts; ++t) net_.pack_buffer(t);
        // Each step is strong or only grows a capacity: what it leaves is valid.
        reserve_checked(scratch_.row_vals, rows * stride);
        reserve_checked(scratch_.feature_split, kMaxRowParts + 1);
        reserve_checked(scratch_.feature_parts, kMaxRowParts);
        if (scratch_.feature_parts.size() < parts) scratch_.feature_parts.resize(parts);
        for (std::size_t t = 0; t < parts; ++t) {
          reserve_checked(scratch_.feature_parts[t].starts, in + 1);
          reserve_checked(scratch_.feature_parts[t].entries, rows * in);
        }
      });
}

template <class T>
void RowSplit<T>::prepare(std::size_t rows, std::size_t parts) {
  reserve(rows, parts);
  // Within the capacities reserved above: nothing here allocates.
  const std::size_t in = net_.input_dim_, stride = in + 8;
  typename Network<T>::SparseInput& s = net_.sparse_;
  s.row_starts.resize(rows);
  s.row_ends.resize(rows);
  s.row_cols.resize(rows * stride);
  scratch_.row_vals.resize(rows * stride);
  s.rows = rows;
  net_.clear_input_check();
  if (scratch_.feature_split.size() != parts + 1) {
    scratch_.feature_split.resize(parts + 1);
    for (std::size_t t = 0; t <= parts; ++t) scratch_.feature_split[t] = in * t / parts;
  }
}

template <class T>
std::size_t RowSplit<T>::index_rows(const T* x, std::size_t r0, std::size_t r1) {
  typename Network<T>::SparseInput& s = net_.sparse_;
  const KernelTable<T>& kt = kernels<T>();
  const std::size_t in = net_.input_dim_, stride = in + 8;  // nonzero_indices stores whole vectors
  std::size_t nnz = 0;
  bool non_finite = false;
  for (std::size_t r = r0; r < r1; ++r) {
    s.row_starts[r] = std::uint32_t(r * stride);
    // The values too, while the row is in this core's cache: the weight gradient then reads
    // them in list order instead of picking them out of rows another core gathered.
    const std::size_t count =
        kt.nonzero_indices(in, x + r * in, s.row_cols.data() + r * stride, scratch_.row_vals.data() + r * stride, &non_finite);
    s.row_ends[r] = s.row_starts[r] + std::uint32_t(count);
    nnz += count;
  }
  net_.note_input_check(non_finite);
  return nnz;
}

template <class T>
void RowSplit<T>::rows_product(std::size_t rows, std::size_t n, std::size_t k, const T* a,
                              std::ptrdiff_t a_row, std::ptrdiff_t a_col, const T* b,
                              std::ptrdiff_t b_row, std::ptrdiff_t b_col, T* c, std::ptrdiff_t ldc,
                              std::size_t layer, std::size_t part) {
  const KernelTable<T>& kt = kernels<T>();
  if (rows <= kSmallBatch && b_col == 1 && a_col == 1) {
    kt.sparse_gemm({rows, n, a, a_row, 1, net_.all_starts_.data(), net_.all_ends_[layer].data(), net_.all_indices_.data(), b,
                    b_row, c, ldc});
  } else {
    kt.gemm({rows, n, k, T(1), a, a_row, a_col, b, b_row, b_col, T(0), c, ldc, net_.packs_[part].data()});
  }
}

template <class T>
void RowSplit<T>::forward_rows(const T* x, std::size_t r0, std::size_t r1, std::size_t part) {
  const KernelTable<T>& kt = kernels<T>();
  const std::size_t rows = r1 - r0;
  if (rows == 0) return;
  // Each part decides on its own rows: the sparse and the dense product give the same bits.
  const std::size_t nnz = index_rows(x, r0, r1);
  const bool sparse = input_is_sparse(nnz, rows * net_.input_dim_);
  Layer& first = net_.layers_[0];
  const std::size_t out = first.spec.units;
  const auto ld = std::ptrdiff_t(first.stride);  // of z (the kernel's rows hold out values)
  T* z = first.z.data() + r0 * first.stride;
  if (sparse) {
    // Row r's entries, addressed relative to the part's first row.
    kt.sparse_gemm({rows, out, x + r0 * net_.input_dim_, std::ptrdiff_t(net_.input_dim_), 1, net_.sparse_.row_starts.data() + r0,
                    net_.sparse_.row_ends.data() + r0, net_.sparse_.row_cols.data(), first.kernel.data(),
                    std::ptrdiff_t(out), z, ld});
  } else {
    rows_product(rows, out, net_.input_dim_, x + r0 * net_.input_dim_, std::ptrdiff_t(net_.input_dim_), 1, first.kernel.data(),
                 std::ptrdiff_t(out), 1, z, ld, 0, part);
  }
  forward_rows_after_first(r0, r1, part);
}

template <class T>
void RowSplit<T>::forward_rows_after_first(std::size_t r0, std::size_t r1, std::size_t part) {
  const KernelTable<T>& kt = kernels<T>();
  const std::size_t rows = r1 - r0;
  if (rows == 0) return;
  for (std::size_t l = 0; l < net_.layers_.size(); ++l) {
    Layer& layer = net_.layers_[l];
    const std::size_t in_dim = net_.fan_in(l), out = layer.spec.units;
    const auto ld = std::ptrdiff_t(layer.stride);  // of the layer's buffers (its kernel's rows: out)
    T* z = layer.z.data() + r0 * layer.stride;
    if (l > 0) {
      const std::size_t in_ld = net_.input_stride(l);
      rows_product(rows, out, in_dim, net_.layers_[l - 1].a + r0 * in_ld, std::ptrdiff_t(in_ld), 1, layer.kernel.data(),
                   std::ptrdiff_t(out), 1, z, ld, l, part);
    }
    kt.bias_activation({rows, out, layer.spec.activation, T(layer.spec.alpha),
                        layer.spec.use_bias ? layer.bias.data() : nullptr, z, ld, layer.a + r0 * layer.stride, ld});
    // Every part runs this for its rows at once: written only when not yet so, the layer's line
    // is read by all the parts instead of bouncing between their cores.
    if (layer.out != layer.a) layer.out = layer.a;
    if (layer.dropped_now) layer.dropped_now = false;
  }
}

template <class T>
void RowSplit<T>::output_activation_backward_rows(std::size_t r0, std::size_t r1) {
  Layer& last = net_.layers_.back();
  const std::size_t out = last.spec.units;
  const auto ld = std::ptrdiff_t(last.stride);
  const std::size_t off = r0 * last.stride;
  kernels<T>().activation_backward({r1 - r0, out, last.spec.activation, T(last.spec.alpha), last.z.data() + off,
                                    ld, last.a + off, ld, last.delta.data() + off, ld, last.delta.data() + off, ld});
}

template <class T>
void RowSplit<T>::backward_rows(std::size_t r0, std::size_t r1, std::size_t part) {
  const KernelTable<T>& kt = kernels<T>();
  const std::size_t rows = r1 - r0;
  if (rows == 0) return;
  for (std::size_t l = net_.layers_.size() - 1; l > 0; --l) {
    Layer& layer = net_.layers_[l];
    Layer& prev = net_.layers_[l - 1];
    const std::size_t in_dim = net_.fan_in(l), out = layer.spec.units;
    const auto ld = std::ptrdiff_t(prev.stride);  // of the previous layer's buffers
    T* delta_prev = prev.delta.data() + r0 * prev.stride;
    // dA_prev = delta @ W^T (W read transposed), then through the previous activation.
    kt.gemm({rows, in_dim, out, T(1), layer.delta.data() + r0 * layer.stride, std::ptrdiff_t(layer.stride), 1,
             layer.kernel.data(), 1, std::ptrdiff_t(out), T(0), delta_prev, ld, net_.packs_[part].data()});
    kt.activation_backward({rows, in_dim, prev.spec.activation, T(prev.spec.alpha), prev.z.data() + r0 * prev.stride, ld,
                            prev.a + r0 * prev.stride, ld, delta_prev, ld, delta_prev, ld});
  }
}

template <class T>
bool RowSplit<T>::first_layer_sparse(std::size_t rows) const {
  std::size_t nnz = 0;
  for (std::size_t r = 0; r < rows; ++r) nnz += net_.sparse_.row_ends[r] - net_.sparse_.row_starts[r];
  return input_is_sparse(nnz, rows * net_.input_dim_);
}

template <class T>
bool RowSplit<T>::fuses_first_layer(std::size_t rows, bool plain_sgd) const {
  return net_.fuses_first_kernel(plain_sgd) && first_layer_sparse(rows);
}

template <class T>
void RowSplit<T>::weight_gradients(const T* x, std::size_t rows, std::size_t part, std::size_t parts,
                                  const T* sgd_learning_rate, bool skip_first_kernel) {
  const KernelTable<T>& kt = kernels<T>();
  const bool fused = net_.fuses_first_kernel(sgd_learning_rate != nullptr);
  for (std::size_t l = 0; l < net_.layers_.size(); ++l) {
    Layer& layer = net_.layers_[l];
    const std::size_t in_dim = net_.fan_in(l), out = layer.spec.units;
    const auto ld = std::ptrdiff_t(out);  // of the kernel and its gradient
    const auto delta_ld = std::ptrdiff_t(layer.stride), in_ld = std::ptrdiff_t(net_.input_stride(l));
    const T* in = l == 0 ? x : net_.layers_[l - 1].a;
    std::size_t k0, k1;  // this part's rows of the kernel gradient (input features)
    if (l == 0 && skip_first_kernel) {
      k0 = k1 = 0;
    } else if (l == 0 && first_layer_sparse(rows)) {
      k0 = scratch_.feature_split[part];
      k1 = scratch_.feature_split[part + 1];
      typename RowSplitScratch<T>::FeaturePart& fp = scratch_.feature_parts[part];
      fp.build(rows, net_.sparse_.row_starts.data(), net_.sparse_.row_ends.data(), net_.sparse_.row_cols.data(), scratch_.row_vals.data(),
               std::uint32_t(k0), std::uint32_t(k1));
      if (k1 > k0) {
        SparseGemmArgs<T> args{k1 - k0, out, nullptr, 1, 1, fp.starts.data(), fp.starts.data() + 1,
                               nullptr, layer.delta.data(), delta_ld, layer.kernel_grad.data() + k0 * out, ld};
        args.b_in_cache = true;
        if (fused) {
          args.update = layer.kernel.data() + k0 * out;
          args.learning_rate = *sgd_learning_rate;
        }
        args.entries = fp.entries.data();
        kt.sparse_gemm(args);
      }
      if (fused) k1 = k0;  // nothing more to do
    } else {
      k0 = row_bound(in_dim, parts, part);
      k1 = row_bound(in_dim, parts, part + 1);
      // dW[k0:k1) = in[:, k0:k1)^T @ delta: in read transposed through its strides.
      if (k1 > k0)
        kt.gemm({k1 - k0, out, rows, T(1), in + k0, 1, in_ld, layer.delta.data(), delta_ld, 1, T(0),
                 layer.kernel_grad.data() + k0 * out, ld, net_.packs_[part].data()});
    }
    if (layer.spec.kernel_regularized() && k1 > k0)
      kt.regularize((k1 - k0) * out, T(layer.spec.kernel_l1), T(layer.spec.kernel_l2), layer.kernel.data() + k0 * out,
                    layer.kernel_grad.data() + k0 * out);
    // The biases: whole arrays, spread over the parts by layer.
    if (layer.spec.use_bias && l % parts == part) {
      kt.column_sum(rows, out, layer.delta.data(), delta_ld, layer.bias_grad.data());
      if (layer.spec.bias_regularized())
        kt.regularize(out, T(layer.spec.bias_l1), T(layer.spec.bias_l2), layer.bias.data(), layer.bias_grad.data());
    }
  }
}

template <class T>
void RowSplitScratch<T>::FeaturePart::build(std::size_t num_rows, const std::uint32_t* row_starts, const std::uint32_t* row_ends,
                                    const std::uint32_t* cols, const T* values, std::uint32_t k0, std::uint32_t k1) {
  // Count per feature, turn the counts into offsets, fill with a cursor per feature (kept in
  // starts[k] and restored after). Rows are visited in order, so each list's rows increase.
  auto first_in_range = [&](std::size_t r) { return std::lower_bound(cols + row_starts[r], cols + row_ends[r], k0); };
  starts.assign(k1 - k0 + 1, 0);
  for (std::size_t r = 0; r < num_rows; ++r)
    for (const std::uint32_t* e = first_in_range(r); e < cols + row_ends[r] && *e < k1; ++e) ++starts[*e - k0 + 1];
  for (std::size_t k = 0; k < k1 - k0; ++k) starts[k + 1] += starts[k];
  entries.resize(starts[k1 - k0]);
  for (std::size_t r = 0; r < num_rows; ++r)
    for (const std::uint32_t* e = first_in_range(r); e < cols + row_ends[r] && *e < k1; ++e) {
      const std::uint32_t at = starts[*e - k0]++;
      entries[at] = {std::uint32_t(r), values[e - cols]};
    }
  for (std::size_t k = k1 - k0; k > 0; --k) starts[k] = starts[k - 1];
  starts[0] = 0;
}

template <class T>
void RowSplit<T>::rebalance_features(std::size_t rows, std::size_t parts) {
  // The parts' lists describe the current split only after a step that built them.
  if (parts < 2 || scratch_.feature_parts.size() < parts || scratch_.feature_split.size() != parts + 1 || !first_layer_sparse(rows))
    return;
  // Nonzeros per feature in the last step, from the parts' lists; then bounds at equal shares.
  std::size_t total = 0;
  for (std::size_t t = 0; t < parts; ++t) total += scratch_.feature_parts[t].starts.empty() ? 0 : scratch_.feature_parts[t].starts.back();
  if (total == 0) return;
  std::vector<std::size_t>& split = scratch_.feature_split;
  std::size_t seen = 0, next = 1;
  std::size_t bounds[kMaxRowParts];
  const std::size_t wanted = std::min(parts, kMaxRowParts);
  for (std::size_t t = 0; t < parts && next < wanted; ++t) {
    const typename RowSplitScratch<T>::FeaturePart& fp = scratch_.feature_parts[t];
    const std::size_t k0 = split[t];
    for (std::size_t k = 0; k + 1 < fp.starts.size() && next < wanted; ++k) {
      seen += fp.starts[k + 1] - fp.starts[k];
      while (next < wanted && seen * wanted >= total * next) bounds[next++] = k0 + k + 1;
    }
  }
  if (next != wanted) return;
  for (std::size_t t = 1; t < wanted; ++t) split[t] = std::min(bounds[t], net_.input_dim_);
}

template struct RowSplitScratch<float>;
template struct RowSplitScratch<double>;
template class RowSplit<float>;
template class RowSplit<double>;

}  // namespace fastmlp
