// The kernel table: one instance per instruction set and element type, chosen once at start-up
// (dispatch.h). Kernels take raw pointers, sizes and strides, handle their own tails, never
// allocate and never dispatch. Every ISA implements exactly these signatures; the scalar one is
// the readable twin that the others are tested against (through the NumPy reference).
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastmlp/activation.h"
#include "fastmlp/loss.h"
#include "fastmlp/row_prefetch.h"

namespace fastmlp {

// C[M,N] = alpha * op(A) @ op(B) + beta * C, with op(A)(i,k) = A[i*a_row + k*a_col] and
// op(B)(k,j) = B[k*b_row + j*b_col], so a transpose is only a swap of strides. beta == 0 means C
// is written without being read (BLAS semantics: NaN in C does not leak through).
// For alpha == 1 every C element is one fused multiply-add chain over k in increasing order,
// whatever the blocking, the batch size or the thread count: a row's result never depends on
// which other rows were computed with it.
// What a product does to each element of C after its last step of k, while the tile is still
// in registers (the passes a network runs next, fused; see GemmArgs::epilogue), in this order:
//   c += bias[j]                        when bias is set (bias_activation's add)
//   c = max(0, c), NaN kept             when relu (bias_activation's relu)
//   c = positive(i, j) > 0 ? c : 0      when positive is set (activation_backward's relu),
//                                       positive(i, j) = positive[i * ld_positive + j]
//   column_sums[j] = sum over i of c    when column_sums is set (column_sum on the result):
//                                       the rows added in increasing order from zero, which
//                                       holds because every gemm finishes a column's tiles in
//                                       row order
//   update(i, j) = update(i, j) - learning_rate * c
//                                       when update is set (plain SGD's step, the optimizer's
//                                       multiply then subtract), update(i, j) =
//                                       update[i * ld_update + j]; C's final values may then be
//                                       left unstored (C holds no gradient afterwards)
// Each is the same operation as the pass it replaces: the bits are those of the product, then
// the pass.
// C may be `positive` itself (the same array and row stride: a delta written over the
// activation that masks it) when 1 <= k <= kGemmMaskInPlaceDepth: every ISA then writes each
// element of C once, after reading its own positive(i, j), and reads no other element's.
inline constexpr std::size_t kGemmMaskInPlaceDepth = 256;
template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;
  bool relu = false;
  const T* positive = nullptr;
  std::ptrdiff_t ld_positive = 0;
  T* column_sums = nullptr;
  T* update = nullptr;
  std::ptrdiff_t ld_update = 0;
  T learning_rate = T(0);
  // C's row at this epilogue's origin: 0 for a whole product, the tile's first row once moved to
  // a tile (tile_epilogue). The column sums start from zero at row 0 and continue after it.
  std::size_t origin_row = 0;
};

template <class T>
struct GemmArgs {
  std::size_t m, n, k;
  T alpha;
  const T* a;
  std::ptrdiff_t a_row, a_col;
  const T* b;
  std::ptrdiff_t b_row, b_col;
  T beta;
  T* c;
  std::ptrdiff_t ldc;
  T* pack;  // scratch of at least KernelTable::gemm_pack_elements elements, 64-byte aligned
  // Applied to C's final values when set (C's columns [0, n) are bias's [0, n), C's element
  // (i, j) is positive(i, j)).
  const GemmEpilogue<T>* epilogue = nullptr;
  // Lines asked for while the product runs, a few per tile (row_prefetch.h); the result does not
  // depend on them.
  const RowPrefetch* prefetch = nullptr;
};

// z[r,:] += bias (when bias is not null), then a[r,:] = act(z[r,:]). a may alias z.
template <class T>
struct BiasActivationArgs {
  std::size_t rows, cols;
  Activation activation;
  T alpha;  // leaky_relu's slope, elu's alpha (see activation.h)
  const T* bias;
  T* z;
  std::ptrdiff_t ldz;
  T* a;
  std::ptrdiff_t lda;
};

// dz = da * act'(z) elementwise (softmax: its full Jacobian, row by row). dz may alias da.
// relu reads only whether z > 0, so it may be given relu(z) as z (the network stores only that).
template <class T>
struct ActivationBackwardArgs {
  std::size_t rows, cols;
  Activation activation;
  T alpha;
  const T* z;
  std::ptrdiff_t ldz;
  const T* a;
  std::ptrdiff_t lda;
  const T* da;
  std::ptrdiff_t ldda;
  T* dz;
  std::ptrdiff_t lddz;
};

// Per-sample losses of a batch and the gradient of their weighted sum times grad_scale
// (grad_scale = 1/batch gives Keras's mean over the batch). `pred` holds probabilities/values, or
// logits when from_logits is set. Targets are dense rows `y`, or class indices `labels` for the
// sparse loss (labels must already be validated to lie in [0, cols)).
template <class T>
struct LossArgs {
  Loss loss;
  bool from_logits;
  std::size_t rows, cols;
  const T* pred;
  std::ptrdiff_t ldp;
  const T* y;  // dense targets, or null for the sparse loss
  std::ptrdiff_t ldy;
  const std::int32_t* labels;  // sparse targets, or null
  const T* row_weight;         // per-sample weights, or null for all ones
  T grad_scale;
  T* grad;  // null: no gradient wanted
  std::ptrdiff_t ldg;
  T* row_loss;  // null: per-sample losses not wanted
  T delta = T(kHuberDelta);  // Huber's threshold (other losses ignore it)
};

enum class OptimizerKind : int { sgd = 0, adam = 1, adagrad = 2, rmsprop = 3, nadam = 4, adamax = 5, lion = 6, adadelta = 7, ftrl = 8 };

// One optimizer step over n parameters, fused in one pass and written as Keras 3 writes it:
//   g <- clip(g * grad_scale, -clip_value, clip_value)        (norm and value clipping)
//   w <- w - w * decay                                         (decoupled weight decay, lr folded in)
//   sgd:     momentum == 0: w -= lr g;  else m = momentum m - lr g; w += m (Nesterov: momentum m - lr g)
//   adam:    m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2); amsgrad: vhat = max(vhat, v)
//            w -= m * lr / (sqrt(v or vhat) + epsilon)        (lr is Adam's bias-corrected alpha)
//   adagrad: acc += g^2; w -= lr g / sqrt(acc + epsilon)
//   rmsprop: vel = rho vel + (1 - rho) g^2; centered: avg = rho avg + (1 - rho) g,
//            inc = lr g / sqrt(vel - avg^2 + epsilon) (else sqrt(vel + epsilon));
//            momentum > 0: mom = momentum mom + inc; w -= mom, else w -= inc
//   nadam:   m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
//            w -= (m_coef m + g_coef g) lr / (sqrt(v v_coef) + epsilon)
//            (m_coef = u_{t+1} / (1 - prod u_1..u_{t+1}), g_coef = (1 - u_t) / (1 - prod u_1..u_t),
//            v_coef = 1 / (1 - beta_2^t): Keras's momentum-cache m_hat and v_hat)
//   adamax:  m += (g - m)(1 - beta_1); u = max(beta_2 u, |g|); w -= lr m / (u + epsilon)
//            (lr is divided by 1 - beta_1^t already)
//   lion:    w -= lr sign(beta_1 m + (1 - beta_1) g); m = beta_2 m + (1 - beta_2) g
//   adadelta: acc_g = rho acc_g + (1 - rho) g^2; d = -sqrt(acc_d + eps) g / sqrt(acc_g + eps);
//            acc_d = rho acc_d + (1 - rho) d^2; w += lr d
//   ftrl:    g2 = g + 2 l2_shrinkage w; n' = n + g^2; z += g2 - (n'^-p - n^-p) / lr w;
//            w = (clip(z, -l1, l1) - z) / (n'^-p / lr + 2 l2); n = n'  (p = lr_power; l2
//            includes Keras's beta / (2 lr))
// State slots (null when unused): sgd m; adam m, v, vhat; adagrad acc; rmsprop vel, avg, mom;
// nadam m, v; adamax m, u; lion m; adadelta acc_g, acc_d; ftrl n (accumulator), z (linear).
template <class T>
struct OptimizerUpdateArgs {
  OptimizerKind kind;
  std::size_t n;
  const T* g;
  T* w;
  T* state[3];
  T learning_rate;
  T grad_scale;
  T clip_value;
  T decay;
  T momentum;
  bool nesterov;
  T beta_1, beta_2, epsilon;
  bool amsgrad;
  T rho;
  bool centered;
  T m_coef = T(0), g_coef = T(0), v_coef = T(0);  // nadam
  T lr_power = T(-0.5), l1 = T(0), l2 = T(0), l2_shrinkage = T(0);  // ftrl
};

// An entry of a sparse list that carries its value: index and value side by side, so that
// appending one writes one cache line instead of two (lists built by scattered appends, as the
// feature pipeline's are, then keep half as many lines open).
template <class T>
struct SparseEntry {
  std::uint32_t index;
  T value;
};

// Sparse rows times a dense matrix: for each row r, C[r, :] = sum over the listed columns c
// (cols[starts[r]] ... cols[ends[r] - 1], increasing) of a(r, c) * B[c, :], with
// a(r, c) = a[r*a_row + c*a_col]. Each element is the same chain as gemm's with the zero terms
// left out, and a zero term is an exact no-op in that chain: the result is bitwise what gemm
// (alpha 1, beta 0) gives on the dense matrix. Rows with no entries become zero.
// With a_row = ld, a_col = 1 this is X @ W for a batch X whose nonzeros are listed per row; with
// a_row = 1, a_col = ld and the lists transposed it is X^T @ D (the kernel gradient).
template <class T>
struct SparseGemmArgs {
  std::size_t rows, n;
  const T* a;
  std::ptrdiff_t a_row, a_col;
  const std::uint32_t* starts;  // per row: where its entries begin in cols
  const std::uint32_t* ends;    // and end (for packed CSR lists, ends = starts + 1)
  const std::uint32_t* cols;
  const T* b;
  std::ptrdiff_t ldb;
  T* c;
  std::ptrdiff_t ldc;
  // Fused plain-SGD epilogue: when `update` is set, each row with entries does
  // update[r, :] -= learning_rate * (that row of C) instead of storing C (rows without entries
  // are left alone, as w - lr * 0 == w). Bitwise the same as storing C, then sgd.
  T* update = nullptr;
  T learning_rate = T(0);
  // When set, entry e's value is vals[e] and a is not read: lists that carry their values keep
  // the reads sequential (and on the core that wrote them, in row-parallel training).
  const T* vals = nullptr;
  // When set, entry e is entries[e], its index and its value: cols, vals and a are not read.
  const SparseEntry<T>* entries = nullptr;
  // When set, the rows of B the entries index are few and already in cache (a weight
  // gradient's B is the batch's deltas): the kernel asks for none of them ahead. Values are the
  // same either way.
  bool b_in_cache = false;
  // When set, each row's chain starts from C's current row instead of 0 (update must be null):
  // a row's product split by ranges of its entries, range after range into the same C, gives the
  // bits of one call over all of them.
  bool continue_chain = false;
};

// Per-sample SGD's pass over a first kernel (the one-row step): plain SGD for this row and the
// next row's product through the updated kernel, in one pass over w (rows x n, leading
// dimension ldw). For each row k of w, in order:
//   if update_x[k] is listed, w[k, :] -= learning_rate * (update_x[k] * delta[:]);
//   if next_x[k] is listed,   out[:] += next_x[k] * w[k, :]   (the updated row);
// where x[k] is listed unless the list skips zeros and x[k] == 0; out's chains start from 0.
// Each weight is sparse_gemm's fused update of a one-entry row and out is sparse_gemm's product
// over next_x's listed entries: bitwise the update followed by the product.
template <class T>
struct SgdForwardArgs {
  std::size_t rows, n;
  T* w;
  std::ptrdiff_t ldw;
  const T* update_x;
  bool update_skips_zeros;
  const T* delta;
  T learning_rate;
  const T* next_x;
  bool next_skips_zeros;
  T* out;
};

// Batch normalization of a rows x cols block, column by column (Keras's BatchNormalization on
// the last axis): with batch_stats, mean[j] and variance[j] are written as the batch's mean and
// biased variance of column j (two passes over the rows, in row order, so each column's value is
// one fixed chain whatever other columns are computed with it); otherwise they are read (the
// moving statistics). Then, as Keras's ops.batch_normalization,
//   scale = gamma[j] / sqrt(variance[j] + epsilon),  y[r, j] = x[r, j] * scale + (beta[j] - mean[j] * scale)
// with gamma null meaning 1 and beta null meaning 0. y may be x (in place).
template <class T>
struct BatchNormArgs {
  std::size_t rows, cols;
  const T* x;
  std::ptrdiff_t ldx;
  T* y;
  std::ptrdiff_t ldy;
  const T* gamma;
  const T* beta;
  T epsilon;
  bool batch_stats;
  T* mean;
  T* variance;
};

// The backward pass of BatchNormArgs for the same x, mean, variance, gamma and epsilon, with
// xhat = (x - mean) / sqrt(variance + epsilon) and dy = delta on entry:
//   beta_grad[j] = sum_r dy[r, j],  gamma_grad[j] = sum_r dy[r, j] * xhat[r, j]  (each when not null)
// and delta on exit is dL/dx: with batch_stats (the statistics depend on x)
//   dx = gamma / sqrt(variance + epsilon) / rows * (rows * dy - beta_grad - xhat * gamma_grad),
// otherwise (fixed statistics) dx = dy * gamma / sqrt(variance + epsilon).
template <class T>
struct BatchNormBackwardArgs {
  std::size_t rows, cols;
  const T* x;
  std::ptrdiff_t ldx;
  const T* mean;
  const T* variance;
  const T* gamma;
  T epsilon;
  bool batch_stats;
  T* delta;
  std::ptrdiff_t ldd;
  T* gamma_grad;
  T* beta_grad;
};

template <class T>
struct KernelTable {
  const char* isa;
  std::size_t gemm_pack_elements;
  void (*gemm)(const GemmArgs<T>&);
  void (*bias_activation)(const BiasActivationArgs<T>&);
  void (*activation_backward)(const ActivationBackwardArgs<T>&);
  // Returns the weighted sum of per-sample losses (in double, so long epochs do not drift).
  double (*loss)(const LossArgs<T>&);
  // out[j] = sum over rows of x[r, j] (the bias gradient).
  void (*column_sum)(std::size_t rows, std::size_t cols, const T* x, std::ptrdiff_t ldx, T* out);
  void (*optimizer_update)(const OptimizerUpdateArgs<T>&);
  // Writes the indices j with x[j] != 0 (increasing) to idx and, when vals is not null, the
  // values x[j] beside them; returns how many. idx and vals must have room for n + 8 entries
  // (SIMD versions store whole vectors); with idx null (vals null too) it only counts them. When
  // some x[j] is NaN or infinite, sets *non_finite
  // (if not null; never clears it): training checks its inputs here, where it reads them
  // anyway, instead of in a pass of its own over the whole data set per fit call.
  std::size_t (*nonzero_indices)(std::size_t n, const T* x, std::uint32_t* idx, T* vals, bool* non_finite);
  void (*sparse_gemm)(const SparseGemmArgs<T>&);
  // The machine's FMA peak, measured: `iterations` rounds of independent fused multiply-adds
  // (enough chains to cover the FMA latency on both pipes). Returns the floating-point
  // operations done; *sink receives a value that depends on all of them.
  double (*fma_peak_loop)(std::size_t iterations, T* sink);
  // Keras's l1/l2 weight penalty. g null: returns l1 * sum|w| + l2 * sum w^2 (in double; as in
  // Keras a zero factor's term is left out, so an infinite weight gives inf, not NaN). g not
  // null: adds the penalty's gradient l1 * sign(w) + 2 * l2 * w to g (sign(0) = 0) and returns 0
  // without summing (a step reads its penalty before its gradient pass, from a call without g).
  double (*regularize)(std::size_t n, T l1, T l2, const T* w, T* g);
  // Sum of squares in double (gradient norms for clipnorm).
  double (*sum_squares)(std::size_t n, const T* x);
  void (*batch_norm)(const BatchNormArgs<T>&);
  void (*batch_norm_backward)(const BatchNormBackwardArgs<T>&);
  void (*sgd_forward)(const SgdForwardArgs<T>&);
};

}  // namespace fastmlp
