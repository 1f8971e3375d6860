// The column split: the batch gathered into contiguous rows, then Network::forward/backward,
// whose every product splits its output columns over the threads (one parallel run per layer
// and phase). Runs anything, dropout included.
#include <algorithm>

#include "fastmlp/thread_pool.h"
#include "fastmlp/trainer.h"
#include "prefetch.h"

namespace fastmlp {

namespace {
constexpr std::size_t kAskedRowBytes = 1024;  // see step_columns
}  // namespace

template <class T>
void Trainer<T>::step_columns(const DataView<T>& data, const std::uint32_t* order, std::size_t rows,
                              std::size_t next_rows, Totals& totals) {
  Network<T>& net = *net_;
  const std::size_t in = net.input_dim();
  // Gather the batch's rows into contiguous buffers (the matrix products want them so); the
  // rows come from all over the data set, so the copy is memory-bound: share it.
  ThreadPool& pool = ThreadPool::instance();
  const std::size_t tasks = std::min(pool.num_threads(), rows * in >= 16384 ? rows : std::size_t(1));
  pool.run(tasks, [&](std::size_t t) {
    const std::size_t r0 = rows * t / tasks, r1 = rows * (t + 1) / tasks;
    gather_x(data, order, r0, r1);
    gather_targets(data, order, r0, r1);
  });
  // The ask below never outlives this step (it points into this call's data), whatever throws.
  struct AskedUntilReturn {
    Network<T>& net;
    ~AskedUntilReturn() { net.take_prefetch(); }
  } asked{net};
  // Short rows of the next batch are asked for during the step's first large product (when it
  // has none, all at once at the end): each is a few lines that no hardware prefetcher predicts.
  // Longer rows are left to the hardware, which streams a row after its first lines; asking for
  // them too made the step slower.
  if (in * sizeof(T) <= kAskedRowBytes)
    net.prefetch_during_next_product({reinterpret_cast<const char*>(data.x), in * sizeof(T), order + rows, next_rows});
  forward_loss(batch_x_.data(), data.y != nullptr ? batch_y_.data() : nullptr,
               data.labels != nullptr ? batch_labels_.data() : nullptr,
               data.weights != nullptr ? batch_w_.data() : nullptr, rows, true, totals, true);
  if (net.input_non_finite()) throw_non_finite(data, order, rows);
  update(batch_x_.data(), rows);
  if (net.take_prefetch().rows != 0) prefetch_rows(data.x, in, order + rows, next_rows);
}

template void Trainer<float>::step_columns(const DataView<float>&, const std::uint32_t*, std::size_t, std::size_t,
                                           Totals&);
template void Trainer<double>::step_columns(const DataView<double>&, const std::uint32_t*, std::size_t, std::size_t,
                                            Totals&);

}  // namespace fastmlp
