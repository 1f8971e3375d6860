// A training step split by input features of the first layer (see feature_pipeline.h).
//
// Why: in a step split by rows (row_split.cpp) every thread reads, in its forward pass, the
// first-kernel rows of all the features its images use, and the thread that owns a feature
// then writes that row in the update: each step moves thousands of cache lines between the
// cores, and on narrow networks that traffic, not arithmetic, bounds the step.
// Here part p owns input columns [k0, k1) for the whole step: it lists only those columns of
// each image, runs the first layer's chains over them, and updates the same kernel rows, so the
// first kernel stays on its core (but for the last chunks of features a part that is behind
// hands over). What crosses cores is one 100-value row of the pre-activation per image and
// part, and the deltas.
//
// Why the results cannot depend on the split: a row's pre-activation is one FMA chain over the
// row's nonzero inputs in increasing order. Part 0 starts each row's chain over its columns,
// part 1 continues that same chain (the sparse kernel starts from C's value) once part 0 has
// published the row, and so on, so each chain runs through the same terms in the same order as
// in forward(). Every weight-gradient value is a chain over the rows in increasing order, made
// by the one part that takes its feature.
#include <algorithm>
#include <new>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/network.h"
#include "fastmlp/sizes.h"
#include "feature_pipeline.h"
#include "prefetch.h"

#include "../waiter.h"

namespace fastmlp {

namespace {

// Column bounds fall on whole 32-byte vectors of float inputs, where the nonzero scan reads
// them (finer bounds balance the parts better; the inputs are only read).
constexpr std::size_t kColumnAlign = 8;

// Rows per call of the sparse kernel in the chains: the first part lists this many rows, then
// runs their chains; a later part runs as many as the part before it has published, up to this
// many: a call per row costs more in call overhead than the wait it saves; larger groups make
// the next part wait longer for the last rows.
constexpr std::size_t kChainRows = 8;

std::size_t aligned_column(std::size_t k, std::size_t n) {
  return std::min(n, (k + kColumnAlign / 2) / kColumnAlign * kColumnAlign);
}

// Waits until row `row` of a part's flags holds `value`; the flags' first address is the key
// their writer notifies.
void wait_for(const std::atomic<std::uint64_t>* part_flags, std::size_t row, std::uint64_t value) {
  wait_until(part_flags, [&] { return part_flags[row].load(std::memory_order_acquire) == value; });
}

}  // namespace

template <class T>
bool FeaturePipeline<T>::supports(const Network<T>& net, std::size_t parts) {
  return parts >= 2 && parts <= kMaxRowParts && net.input_dim() >= parts * kColumnAlign && RowSplit<T>::supports(net);
}

template <class T>
void FeaturePipeline<T>::prepare(std::size_t rows, std::size_t parts) {
  net_.reserve(rows);
  for (std::size_t t = 0; t < parts; ++t) net_.pack_buffer(t);
  // Every step but an epoch's first: nothing to size (a smaller last batch uses the front).
  if (rows > scratch_.pipeline_rows || scratch_.pipeline_split.size() != parts + 1) {
    const std::size_t in = net_.input_dim_, slot = in + 8;  // any split fits; nonzero_indices writes whole vectors
    // One line of flags per 8 rows, and a line between parts: part p writes only its own.
    const std::size_t stride = (rows + 7) / 8 * 8 + 8;
    std::unique_ptr<std::atomic<std::uint64_t>[]> flags;
    // Everything is allocated before anything is committed (pipeline_rows last): when a size
    // cannot be had, the buffers in use stay as they were and a later call tries again.
    with_context(
        [&] {
          return "the feature pipeline's buffers for a batch of " + std::to_string(rows) + " rows in " +
                 std::to_string(parts) + " parts";
        },
        -1, [&] {
          // rows x slot <= kMaxIndexEntries (reserve): the lists' offsets and sizes fit.
          const std::size_t part_bytes = rows * slot * (sizeof(std::uint32_t) + sizeof(T)) + 2 * rows * sizeof(std::uint32_t) +
                                         2 * in * sizeof(std::uint32_t) + checked_bytes(rows * in, sizeof(SparseEntry<T>));
          const std::size_t flag_bytes = checked_bytes(checked_mul(stride, parts, "flags"), sizeof(std::atomic<std::uint64_t>));
          require_memory(checked_add(checked_mul(parts, part_bytes, "bytes"), flag_bytes, "bytes"));
          reserve_checked(scratch_.column_parts, kMaxRowParts);
          if (scratch_.column_parts.size() < parts) scratch_.column_parts.resize(parts);
          for (std::size_t t = 0; t < parts; ++t) {
            typename PipelineScratch<T>::ColumnPart& cp = scratch_.column_parts[t];
            reserve_checked(cp.starts, rows);
            reserve_checked(cp.ends, rows);
            reserve_checked(cp.cols, rows * slot);
            reserve_checked(cp.vals, rows * slot);
            reserve_checked(cp.feature_starts, in);
            reserve_checked(cp.feature_ends, in);
            reserve_checked(cp.feature_lists, rows * in);
          }
          if (scratch_.row_done_size < stride * parts) {
            flags.reset(new (std::nothrow) std::atomic<std::uint64_t>[stride * parts]);
            if (!flags) throw AllocationError("cannot allocate " + std::to_string(flag_bytes) + " bytes", -1, flag_bytes);
          }
          if (!scratch_.feature_cursors) {
            scratch_.feature_cursors.reset(new (std::nothrow) typename PipelineScratch<T>::FeatureCursor[kMaxRowParts]);
            if (!scratch_.feature_cursors) throw AllocationError("cannot allocate the parts' cursors");
          }
          reserve_checked(scratch_.pipeline_split, kMaxRowParts + 1);
          reserve_checked(scratch_.pipeline_rates, kMaxRowParts);
        });
    // Commit, within the capacities reserved above: nothing here allocates.
    for (std::size_t t = 0; t < parts; ++t) {
      typename PipelineScratch<T>::ColumnPart& cp = scratch_.column_parts[t];
      cp.starts.resize(rows);
      cp.ends.resize(rows);
      cp.cols.resize(rows * slot);
      cp.vals.resize(rows * slot);
      cp.feature_starts.resize(in);
      cp.feature_ends.resize(in);
      cp.feature_lists.resize(rows * in);
    }
    if (flags) {
      for (std::size_t i = 0; i < stride * parts; ++i) flags[i].store(0, std::memory_order_relaxed);
      scratch_.row_done = std::move(flags);
      scratch_.row_done_size = stride * parts;
    }
    scratch_.row_done_stride = stride;
    if (scratch_.pipeline_split.size() != parts + 1) {
      scratch_.pipeline_split.resize(parts + 1);
      for (std::size_t t = 0; t <= parts; ++t) scratch_.pipeline_split[t] = t == parts ? net_.input_dim_ : aligned_column(net_.input_dim_ * t / parts, net_.input_dim_);
    }
    scratch_.pipeline_rows = rows;
  }
  net_.clear_input_check();
  ++scratch_.pipeline_step;
}

template <class T>
void FeaturePipeline<T>::first_layer_pipeline(const T* x, const std::uint32_t* order, std::size_t rows, std::size_t part,
                                      const std::uint32_t* next_order, std::size_t next_rows) {
  const KernelTable<T>& kt = kernels<T>();
  const std::size_t k0 = scratch_.pipeline_split[part], k1 = scratch_.pipeline_split[part + 1], slot = net_.input_dim_ + 8;
  Layer& layer = net_.layers_[0];
  const std::size_t out = layer.spec.units;
  const auto ld = std::ptrdiff_t(out);
  typename PipelineScratch<T>::ColumnPart& cp = scratch_.column_parts[part];
  const std::uint64_t step = scratch_.pipeline_step;
  std::atomic<std::uint64_t>* previous = part > 0 ? scratch_.row_done.get() + (part - 1) * scratch_.row_done_stride : nullptr;
  std::atomic<std::uint64_t>* mine = scratch_.row_done.get() + part * scratch_.row_done_stride;
  std::size_t nnz = 0;
  bool non_finite = false;
  std::uint32_t* feature_ends = cp.feature_ends.data();
  SparseEntry<T>* feature_lists = cp.feature_lists.data();
  for (std::size_t f = 0; f < k1 - k0; ++f) cp.feature_starts[f] = feature_ends[f] = std::uint32_t(f * rows);
  // Listing straight from the data set's rows: a copy would only be read once, by this loop
  // (the lists carry the values for the kernels). Each entry also goes to the end of its
  // feature's list, for the weight gradient (rows in order, as listed): fixed slots of `rows`
  // per feature need no counting pass first.
  auto row_of = [&](std::size_t r) { return x + (order != nullptr ? std::size_t(order[r]) : r) * net_.input_dim_ + k0; };
  // The rows come from all over the data set, so reading them waits on memory: while row r is
  // listed, this part's columns of the next batch's row r are prefetched, one line per two
  // entries appended: issued in one burst per row they would fill the miss buffers and the core
  // would stall on the prefetches themselves.
  auto list_row = [&](std::size_t r) {
    const char* prefetch = nullptr;
    const char* prefetch_end = nullptr;
    if (r < next_rows) {
      prefetch = reinterpret_cast<const char*>(x + std::size_t(next_order[r]) * net_.input_dim_ + k0);
      prefetch_end = prefetch + (k1 - k0) * sizeof(T);
    }
    const T* row = row_of(r);
    std::uint32_t* cols = cp.cols.data() + r * slot;
    T* vals = cp.vals.data() + r * slot;
    const std::size_t count = kt.nonzero_indices(k1 - k0, row, cols, vals, &non_finite);
    cp.starts[r] = std::uint32_t(r * slot);
    cp.ends[r] = std::uint32_t(r * slot + count);
    nnz += count;
    for (std::size_t e = 0; e < count; ++e) {
      const std::uint32_t at = feature_ends[cols[e]]++;
      feature_lists[at] = {std::uint32_t(r), vals[e]};
      if ((e & 1) == 0 && prefetch < prefetch_end) {
        prefetch_line(prefetch);
        prefetch += 64;
      }
    }
    for (; prefetch < prefetch_end; prefetch += 64) prefetch_line(prefetch);
  };
  // A later part lists all its rows first: by then the part before it is rows ahead, and the
  // rows' different densities no longer make it wait row by row.
  if (previous != nullptr)
    for (std::size_t r = 0; r < rows; ++r) list_row(r);
  for (std::size_t r = 0; r < rows;) {
    // This call's rows: the first part's next group, listed now; a later part's, those the part
    // before it has published (at least row r, waited for).
    std::size_t r_end = std::min(rows, r + kChainRows);
    if (previous == nullptr) {
      for (std::size_t q = r; q < r_end; ++q) list_row(q);
    } else {
      wait_for(previous, r, step);
      std::size_t ready = r + 1;
      while (ready < r_end && previous[ready].load(std::memory_order_acquire) == step) ++ready;
      r_end = ready;
    }
    SparseGemmArgs<T> args{r_end - r, out, nullptr, 1, 1, &cp.starts[r], &cp.ends[r], cp.cols.data(),
                           layer.kernel.data() + k0 * out, ld, layer.z.data() + r * layer.stride,
                           std::ptrdiff_t(layer.stride)};
    args.vals = cp.vals.data();
    args.continue_chain = part > 0;
    kt.sparse_gemm(args);
    for (std::size_t q = r; q < r_end; ++q) mine[q].store(step, std::memory_order_release);
    notify_waiters(mine);
    r = r_end;
  }
  cp.nnz = nnz;
  net_.note_input_check(non_finite);
}

template <class T>
void FeaturePipeline<T>::wait_first_layer_rows(std::size_t r1, std::size_t parts) const {
  if (r1 > 0) wait_for(scratch_.row_done.get() + (parts - 1) * scratch_.row_done_stride, r1 - 1, scratch_.pipeline_step);
}

template <class T>
void FeaturePipeline<T>::first_layer_gradient_pipeline(std::size_t part, std::size_t parts, const T* sgd_learning_rate) {
  const std::size_t width = scratch_.pipeline_split[part + 1] - scratch_.pipeline_split[part];
  typename PipelineScratch<T>::ColumnPart& cp = scratch_.column_parts[part];
  typename PipelineScratch<T>::FeatureCursor& mine = scratch_.feature_cursors[part];
  mine.untaken.store(std::uint64_t(width), std::memory_order_relaxed);
  mine.lists_ready.store(scratch_.pipeline_step, std::memory_order_release);
  // Own features from the front; then, from the back, those of parts still at work (parts
  // whose lists are not ready yet are skipped, not waited for). A chunk is ~1 us of work: a
  // part slowed in this step (an interrupt, the other core's traffic) hands over its last
  // chunks instead of making the others wait at the barrier. Which part computes a feature
  // does not change its bits.
  constexpr std::uint64_t kChunk = 16;
  std::size_t entries = 0;
  for (std::size_t i = 0; i < parts; ++i) {
    const std::size_t q = (part + i) % parts;
    typename PipelineScratch<T>::FeatureCursor& cursor = scratch_.feature_cursors[q];
    if (q != part && cursor.lists_ready.load(std::memory_order_acquire) != scratch_.pipeline_step) continue;
    std::uint64_t untaken = cursor.untaken.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t first = untaken >> 32, end = untaken & 0xffffffffu;
      if (first >= end) break;
      const std::uint64_t f0 = q == part ? first : end - std::min(kChunk, end - first);
      const std::uint64_t f1 = q == part ? std::min(end, first + kChunk) : end;
      const std::uint64_t rest = q == part ? (f1 << 32 | end) : (first << 32 | f0);
      if (!cursor.untaken.compare_exchange_weak(untaken, rest, std::memory_order_relaxed)) continue;
      entries += first_layer_gradient_features(q, std::size_t(f0), std::size_t(f1), sgd_learning_rate);
      untaken = cursor.untaken.load(std::memory_order_relaxed);
    }
  }
  cp.gradient_nnz = entries;
}

template <class T>
std::size_t FeaturePipeline<T>::first_layer_gradient_features(std::size_t q, std::size_t f0, std::size_t f1,
                                                      const T* sgd_learning_rate) {
  const KernelTable<T>& kt = kernels<T>();
  Layer& layer = net_.layers_[0];
  const std::size_t out = layer.spec.units, k0 = scratch_.pipeline_split[q] + f0;
  const auto ld = std::ptrdiff_t(out);
  const typename PipelineScratch<T>::ColumnPart& cp = scratch_.column_parts[q];
  const bool fused = net_.fuses_first_kernel(sgd_learning_rate != nullptr);
  SparseGemmArgs<T> args{f1 - f0, out, nullptr, 1, 1, cp.feature_starts.data() + f0,
                         cp.feature_ends.data() + f0, nullptr, layer.delta.data(), std::ptrdiff_t(layer.stride),
                         layer.kernel_grad.data() + k0 * out, ld};
  args.entries = cp.feature_lists.data();
  args.b_in_cache = true;
  if (fused) {
    args.update = layer.kernel.data() + k0 * out;
    args.learning_rate = *sgd_learning_rate;
  }
  kt.sparse_gemm(args);
  if (layer.spec.kernel_regularized())
    kt.regularize((f1 - f0) * out, T(layer.spec.kernel_l1), T(layer.spec.kernel_l2), layer.kernel.data() + k0 * out,
                  layer.kernel_grad.data() + k0 * out);
  return cp.feature_entries(f0, f1);
}

template <class T>
std::size_t FeaturePipeline<T>::pipeline_nonzeros(std::size_t parts) const {
  std::size_t nnz = 0;
  for (std::size_t t = 0; t < parts && t < scratch_.column_parts.size(); ++t) nnz += scratch_.column_parts[t].nnz;
  return nnz;
}

template <class T>
void FeaturePipeline<T>::rebalance_pipeline(std::size_t parts, const double* gradient_seconds) {
  if (scratch_.pipeline_split.size() != parts + 1 || scratch_.column_parts.size() < parts) return;
  const std::size_t total = pipeline_nonzeros(parts);
  if (total == 0) return;
  // Each part's rate, smoothed: one step's time is noisy (an interrupt, the other core's
  // memory traffic), so a step moves the rate a tenth of the way, and at most by a factor 2.
  if (scratch_.pipeline_rates.size() != parts) scratch_.pipeline_rates.assign(parts, 0.0);
  for (std::size_t t = 0; t < parts; ++t) {
    // What it got through: its own features' entries less those taken by others, plus theirs.
    const double seconds = gradient_seconds[t], nnz = double(scratch_.column_parts[t].gradient_nnz);
    if (!(seconds > 0) || nnz == 0) continue;
    double& rate = scratch_.pipeline_rates[t];
    rate = rate == 0 ? nnz / seconds : rate + 0.1 * (std::clamp(nnz / seconds, rate / 2, rate * 2) - rate);
  }
  // The rates move a tenth of the way per step, so the split needs moving only every few steps;
  // finding it reads every part's per-feature counts, lines the other cores wrote (~1 us of the
  // step's serial time when done every step).
  constexpr std::uint64_t kSplitEvery = 4;
  if (scratch_.pipeline_step % kSplitEvery != 0) return;
  // The target share of each part's end (cumulative), by rate; equal shares until every part
  // has one. A part's time is its fixed work plus its nonzeros over its speed, and rates
  // measured on the whole phase make the shares settle where the parts' times are equal.
  double ends[kMaxRowParts + 1];
  const bool rated = std::all_of(scratch_.pipeline_rates.begin(), scratch_.pipeline_rates.end(), [](double r) { return r > 0; });
  double sum = 0;
  for (std::size_t t = 0; t < parts; ++t) sum += rated ? scratch_.pipeline_rates[t] : 1.0;
  double running = 0;
  for (std::size_t t = 0; t < parts; ++t) {
    running += rated ? scratch_.pipeline_rates[t] : 1.0;
    ends[t] = running / sum;
  }
  // Bounds where the last step's nonzeros per feature (the parts' feature lists) reach those
  // shares, on whole vectors. Any split gives the same results; only the balance changes.
  std::size_t bounds[kMaxRowParts + 1];
  bounds[0] = 0;
  bounds[parts] = net_.input_dim_;
  std::size_t seen = 0, next = 1;
  for (std::size_t t = 0; t < parts && next < parts; ++t) {
    const typename PipelineScratch<T>::ColumnPart& cp = scratch_.column_parts[t];
    const std::size_t k0 = scratch_.pipeline_split[t];
    for (std::size_t k = 0; k0 + k < scratch_.pipeline_split[t + 1] && next < parts; ++k) {
      seen += cp.feature_ends[k] - cp.feature_starts[k];
      while (next < parts && double(seen) >= double(total) * ends[next - 1]) bounds[next++] = aligned_column(k0 + k + 1, net_.input_dim_);
    }
  }
  if (next != parts) return;
  for (std::size_t t = 1; t < parts; ++t) scratch_.pipeline_split[t] = std::max(bounds[t], scratch_.pipeline_split[t - 1]);
}

template class FeaturePipeline<float>;
template class FeaturePipeline<double>;

}  // namespace fastmlp
