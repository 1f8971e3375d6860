#include "fastmlp/network.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/finite_check.h"
#include "fastmlp/sizes.h"
#include "fastmlp/thread_pool.h"
#include "network_limits.h"

namespace fastmlp {

namespace {

// Below this many multiply-adds a product runs on one thread: waking a worker costs about a
// microsecond, which must stay small next to the work.
constexpr std::size_t kMinParallelWork = 1 << 15;
// A dense product is split only from this many multiply-adds a thread (about 10 us of one
// core's work; set_min_product_split_work): below it the halves' handoffs, and the rows of C
// and the columns of the weights that move between the cores, cost more than the split saves.
constexpr std::size_t kDefaultMinProductSplitWork = 1 << 21;
// A product asks for the next batch's rows only with at least this many multiply-adds per cache
// line asked for: a line from memory takes about as long as that many take (at the core's
// outstanding-miss limit), so the asks stay hidden behind the arithmetic.
constexpr std::size_t kPrefetchWorkPerLine = 512;
// Elementwise steps (activations) go parallel from this many elements.
constexpr std::size_t kMinParallelElements = 2048;
// Rows per forward pass in predict: at most kPredictBlock, and about kPredictBlockBytes of
// inputs per thread (at least kMinPredictBlock rows). The input check reads a block first, then
// the first product reads it again: a block that fits in the threads' L2 caches is read from
// memory once, not twice.
constexpr std::size_t kPredictBlock = 1024;
constexpr std::size_t kPredictBlockBytes = 768 * 1024;
constexpr std::size_t kMinPredictBlock = 64;
// The first layer takes the sparse path when at most this fraction of the batch's inputs is
// nonzero: per nonzero the sparse kernel costs a few times what gemm spends per input element,
// so it pays only when most inputs are zero.
std::atomic<double> g_sparse_density{0.35};
std::atomic<bool> g_row_padding{true};  // row_stride's padding (set_row_padding)
std::atomic<std::size_t> g_min_product_split_work{kDefaultMinProductSplitWork};

// Whether a layer's activation needs a buffer apart from z. A linear layer's is z itself; so is
// relu's: z is overwritten by max(0, z), which its backward pass may read in z's place, as
// relu(z) > 0 exactly where z > 0 (NaN: false for both). One stream of stores per step fewer.
bool activation_apart(Activation act) { return act != Activation::linear && act != Activation::relu; }

// The row stride of layer l's batch buffers. A hidden layer of at least four cache lines a row
// whose width is not a whole number of lines gets whole lines (100 floats: 112), so that every
// row starts on a line: the products' loads and stores of its rows then split no line (with
// 400-byte rows three in four rows start inside one). The padding is never read. Not padded:
// the last layer (its rows go out as they are), and a layer with a batch normalization or a
// dropout, or whose next layer normalizes its input (their passes read the rows as one
// contiguous block).
template <class T>
std::size_t row_stride(const std::vector<LayerSpec>& specs, std::size_t l) {
  constexpr std::size_t line = 64 / sizeof(T);
  const LayerSpec& spec = specs[l];
  const bool plain = g_row_padding.load() && l + 1 < specs.size() && !spec.batch_norm && spec.dropout == 0 &&
                     !specs[l + 1].input_norm;
  return plain && spec.units >= 4 * line ? (spec.units + line - 1) / line * line : spec.units;
}

// "layer 1's kernel (784 x 100 float32 values)", for the errors of a size.
template <class T>
std::string layer_buffer(std::size_t layer, const char* what, std::size_t rows, std::size_t cols) {
  return "layer " + std::to_string(layer) + "'s " + what + " (" + std::to_string(rows) + " x " + std::to_string(cols) +
         " " + dtype_name<T>() + " values)";
}

// Column t * n / tasks, rounded to whole 8-column vectors (the last bound is n).
std::size_t column_split(std::size_t n, std::size_t tasks, std::size_t t) {
  return t >= tasks ? n : std::min(n, (n * t / tasks + 4) / 8 * 8);
}

// Threads for a step over n columns costing `work` multiply-adds: one below the threshold, and
// never more than there are 8-column vectors.
std::size_t column_tasks(std::size_t n, std::size_t work) {
  const std::size_t threads = ThreadPool::instance().num_threads();
  return std::min({threads, std::max<std::size_t>(1, work / kMinParallelWork), std::max<std::size_t>(1, n / 8)});
}

}  // namespace

void set_sparse_density_threshold(double density) {
  if (!(density >= 0.0 && density <= 1.0))
    throw std::invalid_argument("the sparse density threshold must be in [0, 1]");
  g_sparse_density.store(density);
}
double sparse_density_threshold() { return g_sparse_density.load(); }

void set_row_padding(bool on) { g_row_padding.store(on); }
bool row_padding() { return g_row_padding.load(); }

void set_min_product_split_work(std::size_t n) {
  if (n == 0) throw std::invalid_argument("min_product_split_work must be at least 1, got 0");
  g_min_product_split_work.store(n);
}
std::size_t min_product_split_work() { return g_min_product_split_work.load(); }

bool input_is_sparse(std::size_t nonzeros, std::size_t values) {
  return double(nonzeros) <= g_sparse_density.load(std::memory_order_relaxed) * double(values);
}

template <class T>
Network<T>::Network(std::size_t input_dim, std::vector<LayerSpec> specs) : input_dim_(input_dim) {
  if (input_dim == 0) throw std::invalid_argument("input dimension must be at least 1");
  if (specs.empty()) throw std::invalid_argument("a network needs at least one layer");
  // Every size first: one that cannot be had is refused before anything is allocated.
  std::size_t total = 0;  // the parameters and their gradients, in bytes
  for (std::size_t l = 0; l < specs.size(); ++l) {
    const std::size_t in = l == 0 ? input_dim : specs[l - 1].units, out = specs[l].units;
    if (out == 0) throw std::invalid_argument("layer " + std::to_string(l) + " has 0 units");
    const std::size_t kernel = with_context([&] { return layer_buffer<T>(l, "kernel", in, out); }, long(l), [&] {
      return checked_bytes(checked_mul(in, out, "kernel values"), sizeof(T));
    });
    if (out > kMaxDim)
      throw SizeError("layer " + std::to_string(l) + " has " + std::to_string(out) + " units, more than the " +
                          std::to_string(kMaxDim) + " a layer may have",
                      long(l), kernel);
    if (l == 0 && input_dim > kMaxDim)
      throw SizeError("input dimension " + std::to_string(input_dim) + " is more than the " + std::to_string(kMaxDim) +
                      " input features a network may have");
    if (specs[l].batch_norm && !(specs[l].norm_momentum >= 0 && specs[l].norm_momentum <= 1))
      throw std::invalid_argument("layer " + std::to_string(l) + "'s batch normalization momentum must be in [0, 1]");
    if (specs[l].batch_norm && !(specs[l].norm_epsilon > 0 && std::isfinite(specs[l].norm_epsilon)))
      throw std::invalid_argument("layer " + std::to_string(l) + "'s batch normalization epsilon must be positive");
    if (specs[l].input_norm && !(specs[l].input_norm_momentum >= 0 && specs[l].input_norm_momentum <= 1))
      throw std::invalid_argument("layer " + std::to_string(l) + "'s input batch normalization momentum must be in [0, 1]");
    if (specs[l].input_norm && !(specs[l].input_norm_epsilon > 0 && std::isfinite(specs[l].input_norm_epsilon)))
      throw std::invalid_argument("layer " + std::to_string(l) + "'s input batch normalization epsilon must be positive");
    if (!(specs[l].input_dropout >= 0 && specs[l].input_dropout < 1))
      throw std::invalid_argument("layer " + std::to_string(l) + "'s input dropout rate must be in [0, 1)");
    // Its kernel and bias, and their gradients (kernel <= 1 TiB: no overflow), and its batch
    // normalization's 8 arrays of `out` values, and its input normalization's 8 of `in`.
    const std::size_t bytes = 2 * (kernel + (specs[l].use_bias ? out * sizeof(T) : 0)) +
                              (specs[l].batch_norm ? 8 * out * sizeof(T) : 0) +
                              (specs[l].input_norm ? 8 * in * sizeof(T) : 0);
    with_context([&] { return layer_buffer<T>(l, "kernel, bias and their gradients", in, out); }, long(l),
                 [&] { require_memory(bytes); });
    total = checked_add(total, bytes, "parameter bytes");
  }
  with_context([&] { return std::string("the network's parameters and their gradients"); }, -1,
               [&] { require_memory(total); });
  layers_.resize(specs.size());
  for (std::size_t l = 0; l < specs.size(); ++l) {
    Layer& layer = layers_[l];
    layer.spec = specs[l];
    layer.stride = row_stride<T>(specs, l);
    const std::size_t in = fan_in(l), out = specs[l].units;
    with_context([&] { return layer_buffer<T>(l, "kernel, bias and their gradients", in, out); }, long(l), [&] {
      layer.kernel.resize(in * out);
      layer.kernel_grad.resize(in * out);
      if (specs[l].use_bias) {
        layer.bias.resize(out);
        layer.bias_grad.resize(out);
      }
      if (specs[l].batch_norm) {
        // Keras's initial values: gamma ones, beta zeros, moving mean zeros, variance ones.
        for (AlignedBuffer<T>* b : {&layer.gamma, &layer.beta, &layer.moving_mean, &layer.moving_variance,
                                    &layer.gamma_grad, &layer.beta_grad, &layer.batch_mean, &layer.batch_variance})
          b->resize(out);
        for (std::size_t j = 0; j < out; ++j) layer.gamma[j] = layer.moving_variance[j] = T(1);
      }
      if (specs[l].input_norm) {
        for (AlignedBuffer<T>* b : {&layer.in_gamma, &layer.in_beta, &layer.in_moving_mean, &layer.in_moving_variance,
                                    &layer.in_gamma_grad, &layer.in_beta_grad, &layer.in_batch_mean,
                                    &layer.in_batch_variance})
          b->resize(in);
        for (std::size_t j = 0; j < in; ++j) layer.in_gamma[j] = layer.in_moving_variance[j] = T(1);
      }
    });
  }
  // Every input index, for the small-batch path: row r lists [0, fan_in).
  std::size_t widest = 0;
  for (std::size_t l = 0; l < specs.size(); ++l) widest = std::max(widest, fan_in(l));
  with_context([&] { return "the list of " + std::to_string(widest) + " input indices"; }, -1,
               [&] { reserve_checked(all_indices_, widest); });
  all_indices_.resize(widest);
  for (std::size_t i = 0; i < widest; ++i) all_indices_[i] = std::uint32_t(i);
  all_starts_.assign(kSmallBatch, 0);
  all_ends_.resize(specs.size());
  for (std::size_t l = 0; l < specs.size(); ++l) all_ends_[l].assign(kSmallBatch, std::uint32_t(fan_in(l)));
}

template <class T>
std::size_t Network<T>::max_batch_rows() const {
  return kMaxIndexEntries / (input_dim_ + 8);
}

template <class T>
void Network<T>::reserve(std::size_t rows) {
  if (rows <= capacity_) return;
  const std::size_t in = input_dim_;
  if (rows > max_batch_rows())
    throw SizeError("a batch of " + std::to_string(rows) + " rows of " + std::to_string(in) +
                    " input features is more than the " + std::to_string(max_batch_rows()) +
                    " rows its nonzero lists can index (32-bit offsets); use a smaller batch_size");
  // Each buffer is sized into a fresh one and the whole set is committed only once every
  // allocation has succeeded: a size that cannot be had leaves the old buffers, the pointers
  // into them and capacity_ as they were (and consistent), so the network still runs.
  struct Fresh {
    AlignedBuffer<T> z, a_storage, delta, mask, dropped, pre, in_normed, in_mask, in_dropped, in_delta;
  };
  std::vector<Fresh> fresh(layers_.size());
  std::size_t total = 0;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const LayerSpec& spec = layers_[l].spec;
    // rows <= 2**32 and stride < 2**31: the product fits; the bytes are checked.
    const std::size_t n = rows * layers_[l].stride;
    const std::size_t count = 2 + activation_apart(spec.activation) + 2 * (spec.dropout > 0) + spec.batch_norm;
    const std::size_t bytes = with_context([&] { return layer_buffer<T>(l, "activations", rows, spec.units); }, long(l),
                                           [&] { return checked_bytes(n, sizeof(T)); });
    total = checked_add(total, checked_mul(count, bytes, "activation bytes"), "activation bytes");
    // The input normalization's buffers of rows x fan_in values.
    const std::size_t in_count =
        spec.input_norm ? 1 + 2 * (spec.input_dropout > 0) + (l == 0) : 2 * (spec.input_dropout > 0);
    const std::size_t in_bytes = with_context([&] { return layer_buffer<T>(l, "inputs", rows, fan_in(l)); }, long(l),
                                              [&] { return checked_bytes(rows * fan_in(l), sizeof(T)); });
    total = checked_add(total, checked_mul(in_count, in_bytes, "activation bytes"), "activation bytes");
  }
  // The nonzero lists: rows x (in + 8) <= 2**32 entries (checked above).
  const std::size_t list_bytes = (rows * (in + 8) + rows * in + 3 * rows + 2 * in + 2) * sizeof(std::uint32_t);
  with_context([&] { return "the buffers for a batch of " + std::to_string(rows) + " rows"; }, -1,
               [&] { require_memory(checked_add(total, list_bytes, "batch bytes")); });
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const LayerSpec& spec = layers_[l].spec;
    const std::size_t n = rows * layers_[l].stride;
    with_context([&] { return layer_buffer<T>(l, "activations", rows, spec.units); }, long(l), [&] {
      fresh[l].z.resize(n);
      fresh[l].delta.resize(n);
      if (activation_apart(spec.activation)) fresh[l].a_storage.resize(n);
      if (spec.dropout > 0) {
        fresh[l].mask.resize(n);
        fresh[l].dropped.resize(n);
      }
      if (spec.batch_norm) fresh[l].pre.resize(n);
    });
    const std::size_t n_in = rows * fan_in(l);
    with_context([&] { return layer_buffer<T>(l, "inputs", rows, fan_in(l)); }, long(l), [&] {
      if (spec.input_norm) fresh[l].in_normed.resize(n_in);
      if (spec.input_norm && l == 0) fresh[l].in_delta.resize(n_in);
      if (spec.input_dropout > 0) {
        fresh[l].in_mask.resize(n_in);
        fresh[l].in_dropped.resize(n_in);
      }
    });
  }
  // Vectors: each reserve is strong and only grows a capacity, which leaves them valid.
  with_context([&] { return "the nonzero lists for a batch of " + std::to_string(rows) + " rows"; }, -1, [&] {
    reserve_checked(sparse_.row_starts, rows);
    reserve_checked(sparse_.row_ends, rows);
    reserve_checked(sparse_.row_prefix, rows + 1);
    reserve_checked(sparse_.row_cols, rows * (in + 8));
    reserve_checked(sparse_.feature_starts, in + 1);
    reserve_checked(sparse_.feature_rows, rows * in);
    reserve_checked(sparse_.feature_fill, in);
  });
  // Commit: nothing below throws.
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    layer.z.swap(fresh[l].z);
    layer.delta.swap(fresh[l].delta);
    layer.a_storage.swap(fresh[l].a_storage);
    layer.mask.swap(fresh[l].mask);
    layer.dropped.swap(fresh[l].dropped);
    layer.pre.swap(fresh[l].pre);
    layer.in_normed.swap(fresh[l].in_normed);
    layer.in_mask.swap(fresh[l].in_mask);
    layer.in_dropped.swap(fresh[l].in_dropped);
    layer.in_delta.swap(fresh[l].in_delta);
    layer.in_used = nullptr;
    layer.in_batch_stats_now = false;
    layer.in_dropped_now = false;
    layer.batch_stats_now = false;
    layer.a = activation_apart(layer.spec.activation) ? layer.a_storage.data() : layer.z.data();
    layer.out = layer.a;
    layer.dropped_now = false;
  }
  capacity_ = rows;
}

template <class T>
T* Network<T>::pack_buffer(std::size_t task) {
  // The active ISA may change between calls (tests switch it): size for the current one.
  const std::size_t need = kernels<T>().gemm_pack_elements + 1;
  if (packs_.size() <= task) {
    reserve_checked(packs_, task + 1);
    packs_.resize(task + 1);
  }
  packs_[task].reserve_at_least(need);
  return packs_[task].data();
}

template <class T>
void Network<T>::parallel_gemm(std::size_t m, std::size_t n, std::size_t k, const T* a,
                               std::ptrdiff_t a_row, std::ptrdiff_t a_col, const T* b,
                               std::ptrdiff_t b_row, std::ptrdiff_t b_col, T* c, std::ptrdiff_t ldc,
                               const GemmEpilogue<T>* epilogue) {
  const KernelTable<T>& kt = kernels<T>();
  ThreadPool& pool = ThreadPool::instance();
  std::size_t tasks =
      std::min(pool.num_threads(), std::max<std::size_t>(1, m * n * k / g_min_product_split_work.load(std::memory_order_relaxed)));
  // Split the longer side of C, in whole 16-column / 8-row pieces so tiles stay full; by columns
  // when the epilogue sums them (each column's rows then stay in one call, in order).
  const bool by_columns = n >= m || (epilogue != nullptr && epilogue->column_sums != nullptr);
  const std::size_t extent = by_columns ? n : m, unit = by_columns ? 16 : 8;
  tasks = std::min(tasks, std::max<std::size_t>(1, extent / unit));
  for (std::size_t t = 0; t < tasks; ++t) pack_buffer(t);
  // Part t starts at extent * t / tasks rounded to the nearest whole unit: the parts differ by
  // at most one unit (100 columns in two: 48 and 52, where rounding each part up gave 64 and 36).
  const auto part_start = [&](std::size_t t) {
    return t >= tasks ? extent : std::min(extent, (extent * t / tasks + unit / 2) / unit * unit);
  };
  // Rows to ask for while this product runs, when it is long enough to hide their misses (at
  // least kPrefetchWorkPerLine multiply-adds per line): task t asks for its share of them.
  RowPrefetch asked{};
  if (prefetch_.rows != 0 && m * n * k >= prefetch_.rows * (prefetch_.row_bytes / 64 + 1) * kPrefetchWorkPerLine)
    asked = take_prefetch();
  pool.run(tasks, [&](std::size_t t) {
    RowPrefetch share = asked;
    share.order = asked.order == nullptr ? nullptr : asked.order + asked.rows * t / tasks;
    share.rows = asked.rows * (t + 1) / tasks - asked.rows * t / tasks;
    const std::size_t begin = part_start(t), end = part_start(t + 1);
    if (begin == end) return;
    // This part's epilogue: its columns of the bias, its block of `positive`.
    GemmEpilogue<T> ep{};
    if (epilogue != nullptr) {
      ep = *epilogue;
      if (by_columns && ep.bias != nullptr) ep.bias += begin;
      if (ep.column_sums != nullptr) ep.column_sums += begin;
      if (ep.positive != nullptr)
        ep.positive += by_columns ? std::ptrdiff_t(begin) : std::ptrdiff_t(begin) * ep.ld_positive;
      if (ep.update != nullptr)
        ep.update += by_columns ? std::ptrdiff_t(begin) : std::ptrdiff_t(begin) * ep.ld_update;
    }
    const GemmEpilogue<T>* part = epilogue != nullptr ? &ep : nullptr;
    const RowPrefetch* ask = share.rows != 0 ? &share : nullptr;
    if (by_columns) {
      kt.gemm({m, end - begin, k, T(1), a, a_row, a_col, b + std::ptrdiff_t(begin) * b_col, b_row,
               b_col, T(0), c + begin, ldc, packs_[t].data(), part, ask});
    } else {
      kt.gemm({end - begin, n, k, T(1), a + std::ptrdiff_t(begin) * a_row, a_row, a_col, b, b_row,
               b_col, T(0), c + std::ptrdiff_t(begin) * ldc, ldc, packs_[t].data(), part, ask});
    }
  });
}

template <class T>
void Network<T>::parallel_sparse_gemm(const SparseGemmArgs<T>& args) {
  const KernelTable<T>& kt = kernels<T>();
  ThreadPool& pool = ThreadPool::instance();
  const std::size_t tasks = column_tasks(args.n, (args.ends[args.rows - 1] - args.starts[0]) * args.n);
  if (tasks <= 1) return kt.sparse_gemm(args);
  // Split by output columns: each thread keeps the same columns of the weights (and of z, a and
  // delta) in its own cache from batch to batch; a split by rows would move the whole weight
  // matrix between the cores at every step.
  pool.run(tasks, [&](std::size_t t) {
    const std::size_t j0 = column_split(args.n, tasks, t), j1 = column_split(args.n, tasks, t + 1);
    if (j0 == j1) return;
    SparseGemmArgs<T> part = args;
    part.n = j1 - j0;
    part.b = args.b + j0;
    part.c = args.c + j0;
    if (args.update != nullptr) part.update = args.update + j0;
    kt.sparse_gemm(part);
  });
}

template <class T>
template <class F>
void Network<T>::for_blocks(std::size_t rows, std::size_t cols, Activation act, F&& fn) {
  ThreadPool& pool = ThreadPool::instance();
  const std::size_t elements = rows * cols;
  if (act == Activation::softmax) {  // row-wise: split rows
    const std::size_t tasks = std::min(pool.num_threads(), elements >= kMinParallelElements ? rows : std::size_t(1));
    pool.run(tasks, [&](std::size_t t) { fn(rows * t / tasks, rows * (t + 1) / tasks, 0, cols); });
    return;
  }
  // Elementwise: split columns, as the products do, so each thread touches its own columns (at
  // least one task: a layer narrower than a vector is one task however many rows it has).
  const std::size_t tasks = std::min({pool.num_threads(), elements >= kMinParallelElements ? cols / 8 : std::size_t(1)});
  if (tasks <= 1) return fn(0, rows, 0, cols);
  pool.run(tasks, [&](std::size_t t) {
    const std::size_t j0 = column_split(cols, tasks, t), j1 = column_split(cols, tasks, t + 1);
    if (j0 != j1) fn(0, rows, j0, j1);
  });
}

template <class T>
void Network<T>::index_sparse_input(const T* x, std::size_t rows) {
  SparseInput& s = sparse_;
  const KernelTable<T>& kt = kernels<T>();
  ThreadPool& pool = ThreadPool::instance();
  const std::size_t in = input_dim_, stride = in + 8;  // nonzero_indices stores whole vectors
  const std::size_t tasks = std::min(pool.num_threads(), rows * in >= 16384 ? rows : std::size_t(1));
  auto first_row = [&](std::size_t t) { return rows * t / tasks; };
  s.row_starts.resize(rows);
  s.row_ends.resize(rows);
  s.row_prefix.resize(rows + 1);
  s.row_cols.resize(rows * stride);
  clear_input_check();
  if (!s.active) {
    // After a dense batch, first only count (one pass, which checks the inputs too): dense data
    // then never pays for lists it does not use. The lists are written when this batch is sparse.
    // Each task counts its rows (an integer sum: the same for any split); in a training step
    // they are the rows it gathered (step_columns splits the batch the same way).
    std::atomic<std::size_t> counted{0};
    pool.run(tasks, [&](std::size_t t) {
      bool non_finite = false;
      const std::size_t r0 = first_row(t);
      counted.fetch_add(kt.nonzero_indices((first_row(t + 1) - r0) * in, x + r0 * in, nullptr, nullptr, &non_finite),
                        std::memory_order_relaxed);
      note_input_check(non_finite);
    });
    const std::size_t nnz = counted.load(std::memory_order_relaxed);
    if (!input_is_sparse(nnz, rows * in)) {
      s.nnz = nnz;
      s.rows = rows;
      return;
    }
  }
  pool.run(tasks, [&](std::size_t t) {
    bool non_finite = false;
    for (std::size_t r = first_row(t); r < first_row(t + 1); ++r) {
      s.row_starts[r] = std::uint32_t(r * stride);
      s.row_ends[r] = s.row_starts[r] + std::uint32_t(kt.nonzero_indices(in, x + r * in, s.row_cols.data() + r * stride, nullptr, &non_finite));
    }
    note_input_check(non_finite);
  });
  s.row_prefix[0] = 0;
  for (std::size_t r = 0; r < rows; ++r) s.row_prefix[r + 1] = s.row_prefix[r] + (s.row_ends[r] - s.row_starts[r]);
  const std::size_t nnz = s.row_prefix[rows];
  s.active = input_is_sparse(nnz, rows * in);
  s.nnz = nnz;
  s.rows = rows;
}

template <class T>
void Network<T>::index_sparse_features() {
  SparseInput& s = sparse_;
  const std::size_t in = input_dim_, rows = s.rows, nnz = s.nnz;
  // The same entries per input feature, rows increasing: a counting sort (one thread: split
  // between cores it cost more in cache traffic than it saved), through raw pointers with each
  // row's bounds read once (else every count's store might alias a bound, reloaded per entry).
  s.feature_starts.assign(in + 1, 0);
  s.feature_rows.resize(nnz);
  std::uint32_t* const count = s.feature_starts.data() + 1;
  const std::uint32_t* const cols = s.row_cols.data();
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint32_t* const end = cols + s.row_ends[r];
    for (const std::uint32_t* e = cols + s.row_starts[r]; e != end; ++e) ++count[*e];
  }
  for (std::size_t k = 1; k < in; ++k) count[k] += count[k - 1];
  s.feature_fill.assign(s.feature_starts.begin(), s.feature_starts.end() - 1);
  std::uint32_t* const fill = s.feature_fill.data();
  std::uint32_t* const out = s.feature_rows.data();
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint32_t* const end = cols + s.row_ends[r];
    for (const std::uint32_t* e = cols + s.row_starts[r]; e != end; ++e) out[fill[*e]++] = std::uint32_t(r);
  }
}

template <class T>
void Network<T>::forward(const T* x, std::size_t rows, Rng* dropout_rng, bool logits_only) {
  if (rows > capacity_) reserve(rows);
  const KernelTable<T>& k = kernels<T>();
  index_sparse_input(x, rows);
  const T* in = x;
  std::size_t in_dim = input_dim_;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    const std::size_t out = layer.spec.units;
    // Row strides: of this layer's buffers, and of what its product reads.
    const auto ld = std::ptrdiff_t(layer.stride), in_ld = std::ptrdiff_t(input_stride(l));
    const bool norm = layer.spec.batch_norm;
    if (layer.spec.input_norm) {
      normalize_input(l, in, rows, dropout_rng);
      in = layer.in_used;
    }
    // The product (plus bias) goes to z, or to pre when batch normalization comes between.
    T* product = norm ? layer.pre.data() : layer.z.data();
    // A dense product ends with the bias and the activation in its epilogue when the activation
    // is z itself after them (relu, linear: a is z): the pass over z below is then done.
    const bool sparse_product = l == 0 && sparse_.active && !layer.spec.input_norm;
    const bool dense_product = !sparse_product && rows > kSmallBatch;
    // The last layer's logits alone: z = product + bias, the activation left out.
    const bool logits = logits_only && !norm && l + 1 == layers_.size();
    const bool fused = dense_product && !norm &&
                       (logits || (!activation_apart(layer.spec.activation) && layer.a == layer.z.data()));
    if (sparse_product) {
      parallel_sparse_gemm({rows, out, x, std::ptrdiff_t(in_dim), 1, sparse_.row_starts.data(),
                            sparse_.row_ends.data(), sparse_.row_cols.data(), layer.kernel.data(),
                            std::ptrdiff_t(out), product, ld});
    } else if (rows <= kSmallBatch) {
      // A few rows: the sparse kernel with every index listed skips gemm's packing, and runs
      // the same FMA chains (so the result is bitwise gemm's).
      parallel_sparse_gemm({rows, out, in, in_ld, 1, all_starts_.data(), all_ends_[l].data(), all_indices_.data(),
                            layer.kernel.data(), std::ptrdiff_t(out), product, ld});
    } else if (fused) {
      GemmEpilogue<T> ep{};
      ep.bias = layer.spec.use_bias ? layer.bias.data() : nullptr;
      ep.relu = !logits && layer.spec.activation == Activation::relu;
      parallel_gemm(rows, out, in_dim, in, in_ld, 1, layer.kernel.data(), std::ptrdiff_t(out), 1, product, ld, &ep);
    } else {
      parallel_gemm(rows, out, in_dim, in, in_ld, 1, layer.kernel.data(), std::ptrdiff_t(out), 1, product, ld);
    }
    if (norm && layer.spec.use_bias) {
      for_blocks(rows, out, Activation::linear, [&](std::size_t r0, std::size_t r1, std::size_t j0, std::size_t j1) {
        const auto off = std::ptrdiff_t(r0) * ld + std::ptrdiff_t(j0);
        k.bias_activation({r1 - r0, j1 - j0, Activation::linear, T(0), layer.bias.data() + j0, product + off, ld,
                           product + off, ld});
      });
    }
    if (norm) normalize(l, rows, dropout_rng != nullptr);
    if (logits && !fused) {  // z += bias only
      for_blocks(rows, out, Activation::linear, [&](std::size_t r0, std::size_t r1, std::size_t j0, std::size_t j1) {
        const auto off = std::ptrdiff_t(r0) * ld + std::ptrdiff_t(j0);
        k.bias_activation({r1 - r0, j1 - j0, Activation::linear, T(0),
                           layer.spec.use_bias ? layer.bias.data() + j0 : nullptr, layer.z.data() + off, ld,
                           layer.z.data() + off, ld});
      });
    } else if (!fused && (!norm || layer.spec.activation != Activation::linear)) {
      for_blocks(rows, out, layer.spec.activation, [&](std::size_t r0, std::size_t r1, std::size_t j0, std::size_t j1) {
        const auto off = std::ptrdiff_t(r0) * ld + std::ptrdiff_t(j0);
        k.bias_activation({r1 - r0, j1 - j0, layer.spec.activation, T(layer.spec.alpha),
                           !norm && layer.spec.use_bias ? layer.bias.data() + j0 : nullptr, layer.z.data() + off,
                           ld, layer.a + off, ld});
      });
    }
    layer.out = layer.a;
    layer.dropped_now = false;
    if (dropout_rng != nullptr && layer.spec.dropout > 0 && l + 1 < layers_.size()) {
      // Drawn in one thread, in order: the masks cannot depend on the thread count. Plain
      // loops: this runs on hidden layers only, a small share of a step. (A layer with a dropout
      // has rows of units values: row_stride.)
      const double rate = layer.spec.dropout;
      const T scale = T(1.0 / (1.0 - rate));
      const std::size_t n = rows * out;
      for (std::size_t i = 0; i < n; ++i) {
        const double u = double(dropout_rng->next() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
        layer.mask[i] = u >= rate ? scale : T(0);
        layer.dropped[i] = layer.a[i] * layer.mask[i];
      }
      layer.out = layer.dropped.data();
      layer.dropped_now = true;
    }
    in = layer.out;
    in_dim = out;
  }
}

template <class T>
void Network<T>::output_activation_backward(std::size_t rows) {
  Layer& last = layers_.back();
  const auto ld = std::ptrdiff_t(last.spec.units);
  kernels<T>().activation_backward({rows, last.spec.units, last.spec.activation, T(last.spec.alpha), last.z.data(), ld,
                                    last.a, ld, last.delta.data(), ld, last.delta.data(), ld});
}

template <class T>
bool Network<T>::backward(const T* x, std::size_t rows, const T* sgd_learning_rate) {
  bool fused = false;
  bool bias_grad_summed = false;  // this layer's bias gradient came with the product that made delta
  const KernelTable<T>& k = kernels<T>();
  for (std::size_t l = layers_.size(); l-- > 0;) {
    Layer& layer = layers_[l];
    const std::size_t in_dim = fan_in(l), out = layer.spec.units;
    // Row strides: of this layer's buffers, and of its input's and the input's delta.
    const auto ld = std::ptrdiff_t(layer.stride), in_ld = std::ptrdiff_t(input_stride(l));
    // What the product read, and what the input normalization read (when there is one).
    const T* raw_in = l == 0 ? x : layers_[l - 1].out;
    const T* in = layer.spec.input_norm ? layer.in_used : raw_in;
    if (layer.spec.batch_norm) normalize_backward(l, rows);
    // dW = in^T @ delta: in read transposed through its strides (or its nonzeros, per feature).
    if (l == 0 && sparse_.active && !layer.spec.input_norm) {
      index_sparse_features();
      SparseGemmArgs<T> args{in_dim, out, x, 1, std::ptrdiff_t(in_dim), sparse_.feature_starts.data(),
                             sparse_.feature_starts.data() + 1, sparse_.feature_rows.data(),
                             layer.delta.data(), ld, layer.kernel_grad.data(), std::ptrdiff_t(out)};
      args.b_in_cache = true;
      if (fuses_first_kernel(sgd_learning_rate != nullptr)) {
        args.update = layer.kernel.data();
        args.learning_rate = *sgd_learning_rate;
        fused = true;
      }
      parallel_sparse_gemm(args);
    } else if (l == 0 && !layer.spec.input_norm && fuses_first_kernel(sgd_learning_rate != nullptr)) {
      // Plain SGD: the first kernel takes its step as the product finishes each tile (the
      // optimizer's w - lr * g), its gradient left unstored. Not with an input normalization,
      // whose gradient below reads the kernel before its step.
      GemmEpilogue<T> ep{};
      ep.update = layer.kernel.data();
      ep.ld_update = std::ptrdiff_t(out);
      ep.learning_rate = *sgd_learning_rate;
      parallel_gemm(in_dim, out, rows, in, 1, in_ld, layer.delta.data(), ld, 1, layer.kernel_grad.data(),
                    std::ptrdiff_t(out), &ep);
      fused = true;
    } else {
      parallel_gemm(in_dim, out, rows, in, 1, in_ld, layer.delta.data(), ld, 1, layer.kernel_grad.data(),
                    std::ptrdiff_t(out));
    }
    if (layer.spec.use_bias && !bias_grad_summed)
      k.column_sum(rows, out, layer.delta.data(), ld, layer.bias_grad.data());
    // The penalties' gradients join the loss's (a fused update already applied the kernel's).
    if (layer.spec.kernel_regularized() && !(l == 0 && fused))
      k.regularize(in_dim * out, T(layer.spec.kernel_l1), T(layer.spec.kernel_l2), layer.kernel.data(),
                   layer.kernel_grad.data());
    if (layer.spec.use_bias && layer.spec.bias_regularized())
      k.regularize(out, T(layer.spec.bias_l1), T(layer.spec.bias_l2), layer.bias.data(), layer.bias_grad.data());
    if (l == 0 && !layer.spec.input_norm) break;
    // dA_prev = delta @ W^T (through the input normalization, when there is one), then through
    // the previous layer's activation, in place. Layer 0's input gradient serves only its input
    // normalization's gamma and beta. Straight into a relu (no dropout nor input normalization
    // between), the relu's pass runs in the product's epilogue.
    T* in_delta = l == 0 ? layer.in_delta.data() : layers_[l - 1].delta.data();
    const bool fused_relu = l > 0 && !layer.spec.input_norm && !layers_[l - 1].dropped_now &&
                            layers_[l - 1].spec.activation == Activation::relu;
    GemmEpilogue<T> ep{};
    if (fused_relu) {
      ep.positive = layers_[l - 1].z.data();
      ep.ld_positive = in_ld;
      // The previous layer's bias gradient, the column sums of the delta this product ends
      // with, unless a batch normalization changes that delta first.
      bias_grad_summed = layers_[l - 1].spec.use_bias && !layers_[l - 1].spec.batch_norm && rows > 0;
      if (bias_grad_summed) ep.column_sums = layers_[l - 1].bias_grad.data();
    } else {
      bias_grad_summed = false;
    }
    // Over the relu's own output, when the product is shallow enough for that (kernels.h) and
    // the output is z: the delta then lands in lines the mask just brought into cache, not in a
    // second buffer. The two buffers trade places, so `delta` holds it as below; the layer's
    // output is dead until the next forward pass rewrites z.
    Layer* over = nullptr;
    if (fused_relu && out <= kGemmMaskInPlaceDepth && layers_[l - 1].a == layers_[l - 1].z.data() &&
        layers_[l - 1].out == layers_[l - 1].a) {
      over = &layers_[l - 1];
      in_delta = over->z.data();
    }
    parallel_gemm(rows, in_dim, out, layer.delta.data(), ld, 1, layer.kernel.data(), 1, std::ptrdiff_t(out), in_delta,
                  in_ld, fused_relu ? &ep : nullptr);
    if (over != nullptr) {
      over->z.swap(over->delta);
      over->a = over->out = over->z.data();
    }
    if (layer.spec.input_norm) normalize_input_backward(l, raw_in, in_delta, rows);
    if (l == 0 || fused_relu) continue;
    Layer& prev = layers_[l - 1];
    if (prev.dropped_now) {  // through the dropout (contiguous rows: row_stride), kept values' gradients scaled
      for (std::size_t i = 0; i < rows * in_dim; ++i) prev.delta[i] *= prev.mask[i];
    }
    for_blocks(rows, in_dim, prev.spec.activation, [&](std::size_t r0, std::size_t r1, std::size_t j0, std::size_t j1) {
      const auto off = std::ptrdiff_t(r0) * in_ld + std::ptrdiff_t(j0);
      k.activation_backward({r1 - r0, j1 - j0, prev.spec.activation, T(prev.spec.alpha), prev.z.data() + off, in_ld,
                             prev.a + off, in_ld, prev.delta.data() + off, in_ld, prev.delta.data() + off, in_ld});
    });
  }
  return fused;
}

template <class T>
bool Network<T>::has_batch_norm() const {
  for (const Layer& layer : layers_)
    if (layer.spec.batch_norm || layer.spec.input_norm) return true;
  return false;
}

template <class T>
void Network<T>::normalize(std::size_t l, std::size_t rows, bool training) {
  Layer& layer = layers_[l];
  const LayerSpec& spec = layer.spec;
  const std::size_t out = spec.units;
  const KernelTable<T>& k = kernels<T>();
  // Keras normalizes with the batch's statistics only while training a trainable layer.
  const bool batch_stats = training && spec.norm_trainable;
  T* mean = batch_stats ? layer.batch_mean.data() : layer.moving_mean.data();
  T* variance = batch_stats ? layer.batch_variance.data() : layer.moving_variance.data();
  const T* gamma = spec.norm_scale ? layer.gamma.data() : nullptr;
  const T* beta = spec.norm_center ? layer.beta.data() : nullptr;
  // Each column is one kernel's chain over the rows: any split of the columns gives the same bits.
  for_blocks(rows, out, Activation::linear, [&](std::size_t, std::size_t, std::size_t j0, std::size_t j1) {
    const auto ld = std::ptrdiff_t(layer.stride), off = std::ptrdiff_t(j0);
    k.batch_norm({rows, j1 - j0, layer.pre.data() + off, ld, layer.z.data() + off, ld,
                  gamma != nullptr ? gamma + off : nullptr, beta != nullptr ? beta + off : nullptr,
                  T(spec.norm_epsilon), batch_stats, mean + off, variance + off});
  });
  layer.batch_stats_now = batch_stats;
  if (!batch_stats) return;
  // Keras's update, with the batch's biased variance: moving * momentum + batch * (1 - momentum).
  const T momentum = T(spec.norm_momentum), rest = T(1.0 - spec.norm_momentum);
  for (std::size_t j = 0; j < out; ++j) {
    layer.moving_mean[j] = layer.moving_mean[j] * momentum + layer.batch_mean[j] * rest;
    layer.moving_variance[j] = layer.moving_variance[j] * momentum + layer.batch_variance[j] * rest;
  }
}

template <class T>
void Network<T>::normalize_backward(std::size_t l, std::size_t rows) {
  Layer& layer = layers_[l];
  const LayerSpec& spec = layer.spec;
  const std::size_t out = spec.units;
  const KernelTable<T>& k = kernels<T>();
  const bool batch_stats = layer.batch_stats_now;
  const T* mean = batch_stats ? layer.batch_mean.data() : layer.moving_mean.data();
  const T* variance = batch_stats ? layer.batch_variance.data() : layer.moving_variance.data();
  const T* gamma = spec.norm_scale ? layer.gamma.data() : nullptr;
  T* gamma_grad = spec.norm_scale ? layer.gamma_grad.data() : nullptr;
  T* beta_grad = spec.norm_center ? layer.beta_grad.data() : nullptr;
  for_blocks(rows, out, Activation::linear, [&](std::size_t, std::size_t, std::size_t j0, std::size_t j1) {
    const auto ld = std::ptrdiff_t(layer.stride), off = std::ptrdiff_t(j0);
    k.batch_norm_backward({rows, j1 - j0, layer.pre.data() + off, ld, mean + off, variance + off,
                           gamma != nullptr ? gamma + off : nullptr, T(spec.norm_epsilon), batch_stats,
                           layer.delta.data() + off, ld, gamma_grad != nullptr ? gamma_grad + off : nullptr,
                           beta_grad != nullptr ? beta_grad + off : nullptr});
  });
}

template <class T>
void Network<T>::normalize_input(std::size_t l, const T* in, std::size_t rows, Rng* dropout_rng) {
  Layer& layer = layers_[l];
  const LayerSpec& spec = layer.spec;
  const std::size_t n = fan_in(l);
  const KernelTable<T>& k = kernels<T>();
  const bool batch_stats = dropout_rng != nullptr && spec.input_norm_trainable;
  T* mean = batch_stats ? layer.in_batch_mean.data() : layer.in_moving_mean.data();
  T* variance = batch_stats ? layer.in_batch_variance.data() : layer.in_moving_variance.data();
  const T* gamma = spec.input_norm_scale ? layer.in_gamma.data() : nullptr;
  const T* beta = spec.input_norm_center ? layer.in_beta.data() : nullptr;
  // Each column is one kernel's chain over the rows: any split of the columns gives the same bits.
  for_blocks(rows, n, Activation::linear, [&](std::size_t, std::size_t, std::size_t j0, std::size_t j1) {
    const auto ld = std::ptrdiff_t(n), off = std::ptrdiff_t(j0);
    k.batch_norm({rows, j1 - j0, in + off, ld, layer.in_normed.data() + off, ld,
                  gamma != nullptr ? gamma + off : nullptr, beta != nullptr ? beta + off : nullptr,
                  T(spec.input_norm_epsilon), batch_stats, mean + off, variance + off});
  });
  layer.in_batch_stats_now = batch_stats;
  layer.in_used = layer.in_normed.data();
  layer.in_dropped_now = false;
  if (batch_stats) {
    const T momentum = T(spec.input_norm_momentum), rest = T(1.0 - spec.input_norm_momentum);
    for (std::size_t j = 0; j < n; ++j) {
      layer.in_moving_mean[j] = layer.in_moving_mean[j] * momentum + layer.in_batch_mean[j] * rest;
      layer.in_moving_variance[j] = layer.in_moving_variance[j] * momentum + layer.in_batch_variance[j] * rest;
    }
  }
  if (dropout_rng != nullptr && spec.input_dropout > 0) {
    // Drawn in one thread, in order, after the previous layer's masks (as forward's).
    const double rate = spec.input_dropout;
    const T scale = T(1.0 / (1.0 - rate));
    for (std::size_t i = 0; i < rows * n; ++i) {
      const double u = double(dropout_rng->next() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
      layer.in_mask[i] = u >= rate ? scale : T(0);
      layer.in_dropped[i] = layer.in_normed[i] * layer.in_mask[i];
    }
    layer.in_used = layer.in_dropped.data();
    layer.in_dropped_now = true;
  }
}

template <class T>
void Network<T>::normalize_input_backward(std::size_t l, const T* in, T* delta, std::size_t rows) {
  Layer& layer = layers_[l];
  const LayerSpec& spec = layer.spec;
  const std::size_t n = fan_in(l);
  const KernelTable<T>& k = kernels<T>();
  if (layer.in_dropped_now) {  // through the dropout: the kept values' gradients, scaled
    for (std::size_t i = 0; i < rows * n; ++i) delta[i] *= layer.in_mask[i];
  }
  const bool batch_stats = layer.in_batch_stats_now;
  const T* mean = batch_stats ? layer.in_batch_mean.data() : layer.in_moving_mean.data();
  const T* variance = batch_stats ? layer.in_batch_variance.data() : layer.in_moving_variance.data();
  const T* gamma = spec.input_norm_scale ? layer.in_gamma.data() : nullptr;
  T* gamma_grad = spec.input_norm_scale ? layer.in_gamma_grad.data() : nullptr;
  T* beta_grad = spec.input_norm_center ? layer.in_beta_grad.data() : nullptr;
  for_blocks(rows, n, Activation::linear, [&](std::size_t, std::size_t, std::size_t j0, std::size_t j1) {
    const auto ld = std::ptrdiff_t(n), off = std::ptrdiff_t(j0);
    k.batch_norm_backward({rows, j1 - j0, in + off, ld, mean + off, variance + off,
                           gamma != nullptr ? gamma + off : nullptr, T(spec.input_norm_epsilon), batch_stats,
                           delta + off, ld, gamma_grad != nullptr ? gamma_grad + off : nullptr,
                           beta_grad != nullptr ? beta_grad + off : nullptr});
  });
}

template <class T>
void Network<T>::predict(const T* x, std::size_t n, std::size_t batch, T* out) {
  if (batch == 0) throw std::invalid_argument("batch size must be at least 1");
  // Every row's result is the same in any block, so the block is capped for speed (kPredictBlock,
  // kPredictBlockBytes above), to the rows a batch's nonzero lists can index, and to the rows
  // there are (the buffers then fit the call).
  const std::size_t fits = std::max(kMinPredictBlock, kPredictBlockBytes * ThreadPool::instance().num_threads() /
                                                         (std::max<std::size_t>(input_dim_, 1) * sizeof(T)));
  batch = std::min({batch, kPredictBlock, fits, max_batch_rows(), std::max<std::size_t>(n, 1)});
  const std::size_t out_dim = output_dim();
  for (std::size_t start = 0; start < n; start += batch) {
    const std::size_t rows = n - start < batch ? n - start : batch;
    forward(x + start * input_dim_, rows);
    if (input_non_finite()) throw_non_finite(x + start * input_dim_, rows, start);
    std::memcpy(out + start * out_dim, output(), rows * out_dim * sizeof(T));
  }
}

template <class T>
double Network<T>::regularization_penalty() const {
  const KernelTable<T>& k = kernels<T>();
  double penalty = 0;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    if (!layer.spec.trainable) continue;
    if (layer.spec.kernel_regularized())
      penalty += k.regularize(fan_in(l) * layer.spec.units, T(layer.spec.kernel_l1), T(layer.spec.kernel_l2),
                              layer.kernel.data(), nullptr);
    if (layer.spec.use_bias && layer.spec.bias_regularized())
      penalty += k.regularize(layer.spec.units, T(layer.spec.bias_l1), T(layer.spec.bias_l2), layer.bias.data(), nullptr);
  }
  return penalty;
}

template <class T>
void Network<T>::throw_non_finite(const T* x, std::size_t rows, std::size_t first) const {
  std::size_t r = 0;
  while (r + 1 < rows && row_is_finite(x + r * input_dim_, input_dim_)) ++r;
  throw NonFiniteInput("x contains NaN or infinity (in sample " + std::to_string(first + r) + ")");
}

template <class T>
void Network<T>::check_finite(const T* x, std::size_t rows) const {
  // row_is_finite tests the exponent bits without a branch per value (it vectorizes).
  for (std::size_t r = 0; r < rows; ++r)
    if (!row_is_finite(x + r * input_dim_, input_dim_))
      throw std::invalid_argument("`x` contains NaN or infinity (first in sample " + std::to_string(r) + ")");
}

template class Network<float>;
template class Network<double>;

}  // namespace fastmlp
