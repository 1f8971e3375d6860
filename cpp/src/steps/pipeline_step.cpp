// The feature pipeline (FeaturePipeline, feature_pipeline.cpp): the
// first layer split by input features, each part continuing every row's chain over its columns
// after the part before it; then the rows through the rest of the network in small chunks, as
// they become ready; then, after one barrier, each part's weight gradients. For sparse inputs
// (every part lists its own columns' nonzeros), no dropout, and a thread per part at once.
#include <algorithm>
#include <atomic>
#include <chrono>

#include "fastmlp/sizes.h"
#include "fastmlp/thread_pool.h"
#include "fastmlp/trainer.h"
#include "feature_pipeline.h"
#include "row_split.h"
#include "../waiter.h"

namespace fastmlp {

namespace {

// Rows per chunk after the first layer: small enough to even out the parts, large enough for
// the kernels' row blocking.
constexpr std::size_t kRowChunk = 12;

}  // namespace

template <class T>
bool Trainer<T>::step_pipeline(const DataView<T>& data, const std::uint32_t* order, std::size_t rows,
                               std::size_t next_rows, Totals& totals) {
  Network<T>& net = *net_;
  const std::size_t in = net.input_dim();
  const RowBatch b = begin_row_step(data, order, rows, next_rows);
  const std::size_t parts = b.parts;
  ThreadPool& pool = ThreadPool::instance();
  // The pipeline's buffers come with its first step: when they cannot be had, the table's next
  // step runs this one (the same bits).
  RowSplit<T>* split = nullptr;
  FeaturePipeline<T>* pipeline = nullptr;
  try {
    split = &row_split();
    pipeline = &feature_pipeline();
    pipeline->prepare(rows, parts);
  } catch (const SizeError&) {
    return false;
  } catch (const AllocationError&) {
    return false;
  }
  const T* sgd = b.sgd();
  gradient_seconds_.resize(parts);
  // One parallel run for the whole step. The first layer, each part over its input columns of
  // every row; then the rows in small chunks, in order, each taken by the next part to be free
  // as soon as the last part has finished their chains: a part ahead in the pipeline starts on
  // them at once, and the parts end within a chunk of each other whatever their speeds in
  // this step. Then, once every part is past its rows, the weight gradients (the next batch's
  // rows were prefetched in the first phase).
  std::atomic<std::size_t> next_row{0}, past_rows{0};
  // The parts wait for each other, so they need a thread each at once: when the pool is busy
  // (another thread's fit), run_concurrently runs none of them and the table's next step runs
  // this one.
  const bool ran = pool.run_concurrently(parts, [&](std::size_t p) {
    pipeline->first_layer_pipeline(data.x, order, rows, p, order + rows, next_rows);
    for (;;) {
      const std::size_t r0 = next_row.fetch_add(kRowChunk, std::memory_order_relaxed);
      if (r0 >= rows) break;
      const std::size_t r1 = std::min(rows, r0 + kRowChunk);
      pipeline->wait_first_layer_rows(r1, parts);
      rows_through(b, r0, r1, p, true);
    }
    if (past_rows.fetch_add(1, std::memory_order_acq_rel) + 1 == parts) notify_waiters(&past_rows);
    wait_until(&past_rows, [&] { return past_rows.load(std::memory_order_acquire) == parts; });
    // Every part has listed its inputs by now: a non-finite one stops the step before any update.
    if (net.input_non_finite()) return;
    const auto start = std::chrono::steady_clock::now();
    pipeline->first_layer_gradient_pipeline(p, parts, sgd);
    split->weight_gradients(nullptr, rows, p, parts, sgd, true);
    gradient_seconds_[p] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  if (!ran) return false;
  if (net.input_non_finite()) throw_non_finite(data, order, rows);
  pipeline->rebalance_pipeline(parts, gradient_seconds_.data());
  last_step_sparse_ = input_is_sparse(pipeline->pipeline_nonzeros(parts), rows * in);
  finish_row_step(b, totals, net.fuses_first_kernel(b.plain_sgd));
  return true;
}

template bool Trainer<float>::step_pipeline(const DataView<float>&, const std::uint32_t*, std::size_t, std::size_t,
                                            Totals&);
template bool Trainer<double>::step_pipeline(const DataView<double>&, const std::uint32_t*, std::size_t, std::size_t,
                                             Totals&);

}  // namespace fastmlp
