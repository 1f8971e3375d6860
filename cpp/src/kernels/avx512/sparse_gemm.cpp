// Sparse rows times dense. Up to 16 vectors of a row of C (256 floats: a whole 100-unit layer, or
// half of a 512-unit one) stay in registers while the row's nonzeros stream by: per nonzero one
// broadcast and up to 16 FMAs with B's row as memory operand, enough independent chains to keep
// both FMA pipes busy. Each element gets the same FMA chain as gemm's without its exact-zero
// terms, so the result is bitwise gemm's.
#include "fastmlp/kernels.h"
#include "vec.h"

#include <algorithm>
#include <utility>

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

namespace {

constexpr int kMaxVectors = 16;
// B rows are fetched this many entries ahead: which row comes next depends on the data, so the
// hardware prefetchers cannot know it, and a row of B is usually an L2 access.
constexpr std::uint32_t kPrefetchAhead = 4;

// Which lanes of a vector of inputs are nonzero (NaN counts as nonzero), and which are NaN or
// infinite (exponent bits all ones: a test on the bits, exact for every NaN). Lanes outside
// `inside` load as zeros: neither.
struct Lanes {
  unsigned nonzero, non_finite;
};
Lanes classify(const float* x, __mmask16 inside) {
  const __m512 v = _mm512_maskz_loadu_ps(inside, x);
  const __m512i exponent = _mm512_set1_epi32(0x7f800000);
  return {_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ),
          _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), exponent), exponent)};
}
Lanes classify(const double* x, __mmask8 inside) {
  const __m512d v = _mm512_maskz_loadu_pd(inside, x);
  const __m512i exponent = _mm512_set1_epi64(0x7ff0000000000000ll);
  return {_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ),
          _mm512_cmpeq_epi64_mask(_mm512_and_si512(_mm512_castpd_si512(v), exponent), exponent)};
}

// classify's counts over the whole vectors of x[0, n): the nonzero lanes counted in vector
// lanes (a masked subtract of -1 each, no mask moved to a general register, one sum at the end),
// NaN and infinity (fpclass: QNaN, +inf, -inf, SNaN) ORed into bad. Returns the count; *done is
// the number of values covered.
std::size_t count_vectors(std::size_t n, const float* x, unsigned& bad, std::size_t* done) {
  __m512i count[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
  __mmask16 special = 0;
  std::size_t j = 0;
  for (; j + 32 <= n; j += 32)
    for (int v = 0; v < 2; ++v) {
      const __m512 lanes = _mm512_loadu_ps(x + j + 16 * v);
      count[v] = _mm512_mask_sub_epi32(count[v], _mm512_cmp_ps_mask(lanes, _mm512_setzero_ps(), _CMP_NEQ_UQ),
                                       count[v], _mm512_set1_epi32(-1));
      special = _kor_mask16(special, _mm512_fpclass_ps_mask(lanes, 0x99));
    }
  bad |= special;
  *done = j;
  return std::size_t(_mm512_reduce_add_epi32(_mm512_add_epi32(count[0], count[1])));
}
std::size_t count_vectors(std::size_t n, const double* x, unsigned& bad, std::size_t* done) {
  __m512i count[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
  __mmask8 special = 0;
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int v = 0; v < 2; ++v) {
      const __m512d lanes = _mm512_loadu_pd(x + j + 8 * v);
      count[v] = _mm512_mask_sub_epi64(count[v], _mm512_cmp_pd_mask(lanes, _mm512_setzero_pd(), _CMP_NEQ_UQ),
                                       count[v], _mm512_set1_epi64(-1));
      special = _kor_mask8(special, _mm512_fpclass_pd_mask(lanes, 0x99));
    }
  bad |= special;
  *done = j;
  return std::size_t(_mm512_reduce_add_epi64(_mm512_add_epi64(count[0], count[1])));
}

// The indices j0 + lane and the values of the lanes in `bits`, packed to the front, written to
// idx and vals: `count` entries (the popcount of bits) when `exact`, else whole vectors (only
// when count + lanes fits in the arrays). Compressing in registers and storing plainly avoids
// compress-to-memory, which some cores run as microcode.
void compress(const float* x, unsigned bits, std::uint32_t j0, bool exact, std::uint32_t* idx, float* vals) {
  const __mmask16 m = __mmask16(bits);
  const __mmask16 out = exact ? __mmask16((1u << __builtin_popcount(bits)) - 1u) : __mmask16(0xffff);
  const __m512i lanes = _mm512_add_epi32(_mm512_set1_epi32(int(j0)),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  _mm512_mask_storeu_epi32(idx, out, _mm512_maskz_compress_epi32(m, lanes));
  if (vals != nullptr) _mm512_mask_storeu_ps(vals, out, _mm512_maskz_compress_ps(m, _mm512_maskz_loadu_ps(m, x)));
}
void compress(const double* x, unsigned bits, std::uint32_t j0, bool exact, std::uint32_t* idx, double* vals) {
  const __mmask8 m = __mmask8(bits);
  const __mmask8 out = exact ? __mmask8((1u << __builtin_popcount(bits)) - 1u) : __mmask8(0xff);
  const __m256i lanes = _mm256_add_epi32(_mm256_set1_epi32(int(j0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  _mm256_mask_storeu_epi32(idx, out, _mm256_maskz_compress_epi32(m, lanes));
  if (vals != nullptr) _mm512_mask_storeu_pd(vals, out, _mm512_maskz_compress_pd(m, _mm512_maskz_loadu_pd(m, x)));
}

// Where an entry's value comes from: A's row, the list's values array, or the entry itself.
enum class Source { a, vals, entries };

// How a register block ends: on a whole vector; with a last vector shifted back to end at the
// block's end (overlapping the one before it: its lanes there get the same chains, so the same
// bits, and every load and store is a plain one); or, for a block narrower than one vector,
// with masked loads and stores.
enum class Tail { whole, overlap, masked };

// Columns [j0, j0 + width) of every row, in NV vectors (the last one placed by `tail`). Each
// variant is its own loop without branches, so that the NV accumulators stay in registers (a
// branch on the tail inside the loop made the compiler store all of them every iteration).
template <class T, int NV, Source source, Tail tail>
void sparse_block(const SparseGemmArgs<T>& p, std::size_t j0, std::size_t width) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  static_assert(tail != Tail::overlap || NV >= 2, "an overlapping last vector needs one before it");
  static_assert(tail != Tail::masked || NV == 1, "masks only for a block of less than a vector");
  // Where the last vector starts, relative to j0.
  const std::size_t last = tail == Tail::overlap ? width - L : std::size_t(NV - 1) * L;
  const typename V::mask mask = V::tail_mask(tail == Tail::masked ? width : L);
  auto load = [&](const T* row, int v) {
    if constexpr (tail == Tail::masked) {
      return V::maskload(row, mask);
    } else {
      return V::loadu(row + (v == NV - 1 ? last : std::size_t(v) * L));
    }
  };
  auto store = [&](T* row, int v, reg value) {
    if constexpr (tail == Tail::masked) {
      V::maskstore(row, mask, value);
    } else {
      V::storeu(row + (v == NV - 1 ? last : std::size_t(v) * L), value);
    }
  };
  for (std::size_t r = 0; r < p.rows; ++r) {
    const std::uint32_t begin = p.starts[r], end = p.ends[r];
    if (p.update != nullptr && begin == end) continue;  // w - lr * 0 == w
    reg acc[NV];
    if (p.continue_chain) {
      const T* from = p.c + std::ptrdiff_t(r) * p.ldc + j0;
      for (int v = 0; v < NV; ++v) acc[v] = load(from, v);
    } else {
      for (int v = 0; v < NV; ++v) acc[v] = V::zero();
    }
    const T* a_row = p.a + std::ptrdiff_t(r) * p.a_row;
    for (std::uint32_t e = begin; e < end; ++e) {
      const std::ptrdiff_t k = source == Source::entries ? p.entries[e].index : p.cols[e];
      const reg x = V::set1(source == Source::entries ? p.entries[e].value
                            : source == Source::vals  ? p.vals[e]
                                                      : a_row[k * p.a_col]);
      const T* b = p.b + k * p.ldb + j0;
      if (!p.b_in_cache) {  // the lines of the block's part of that row, each once (prefetches never fault)
        const std::uint32_t ahead = e + kPrefetchAhead < end ? e + kPrefetchAhead : end - 1;
        const std::ptrdiff_t ka = source == Source::entries ? p.entries[ahead].index : p.cols[ahead];
        const auto from = reinterpret_cast<std::uintptr_t>(p.b + ka * p.ldb + j0);
        const std::uintptr_t last_line = (from + width * sizeof(T) - 1) / 64 * 64;
        for (std::uintptr_t line = from / 64 * 64; line <= last_line; line += 64)
          _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
      }
      for (int v = 0; v < NV; ++v) acc[v] = V::fmadd(x, load(b, v), acc[v]);
    }
    if (p.update == nullptr) {
      T* out = p.c + std::ptrdiff_t(r) * p.ldc + j0;
      for (int v = 0; v < NV; ++v) store(out, v, acc[v]);
      continue;
    }
    // w - lr * g, as the optimizer's sgd kernel computes it. The last vector's weights are read
    // before the vector it overlaps is stored.
    T* out = p.update + std::ptrdiff_t(r) * p.ldc + j0;
    const reg lr = V::set1(p.learning_rate);
    const reg w_last = load(out, NV - 1);
    for (int v = 0; v < NV - 1; ++v) store(out, v, V::sub(load(out, v), V::mul(lr, acc[v])));
    store(out, NV - 1, V::sub(w_last, V::mul(lr, acc[NV - 1])));
  }
}

template <class T>
using BlockFn = void (*)(const SparseGemmArgs<T>&, std::size_t, std::size_t);

// The block for nv vectors (1 to kMaxVectors) ending as `tail` says.
template <class T, Source source, int... NV>
BlockFn<T> block_for(int nv, Tail tail, std::integer_sequence<int, NV...>) {
  constexpr BlockFn<T> whole[] = {&sparse_block<T, NV + 1, source, Tail::whole>...};
  // (nv = 1 never overlaps: its entry is a placeholder.)
  constexpr BlockFn<T> overlap[] = {&sparse_block<T, (NV == 0 ? 2 : NV + 1), source, Tail::overlap>...};
  if (tail == Tail::masked) return &sparse_block<T, 1, source, Tail::masked>;
  return tail == Tail::whole ? whole[nv - 1] : overlap[nv - 1];
}

}  // namespace

template <class T>
std::size_t nonzero_indices(std::size_t n, const T* x, std::uint32_t* idx, T* vals, bool* non_finite) {
  using V = Vec<T>;
  constexpr std::size_t L = V::lanes;
  std::size_t count = 0, j = 0;
  unsigned bad = 0;
  if (idx == nullptr) {  // count only
    // In pieces of at most 2^30 values, so that no lane's count reaches 2^31.
    while (n - j >= 2 * L) {
      std::size_t done = 0;
      count += count_vectors(std::min(n - j, std::size_t(1) << 30), x + j, bad, &done);
      j += done;
    }
    for (; j < n; j += L) {
      const Lanes lanes = classify(x + j, V::tail_mask(n - j));
      bad |= lanes.non_finite;
      count += unsigned(__builtin_popcount(lanes.nonzero));
    }
    if (bad != 0 && non_finite != nullptr) *non_finite = true;
    return count;
  }
  // count <= j: a whole vector stored at idx + count ends by j + L <= n, inside the arrays.
  for (; j + L <= n; j += L) {
    const Lanes lanes = classify(x + j, V::tail_mask(L));
    bad |= lanes.non_finite;
    compress(x + j, lanes.nonzero, std::uint32_t(j), false, idx + count, vals == nullptr ? nullptr : vals + count);
    count += unsigned(__builtin_popcount(lanes.nonzero));
  }
  if (j < n) {  // the tail: only the entries found are written
    const Lanes lanes = classify(x + j, V::tail_mask(n - j));
    bad |= lanes.non_finite;
    compress(x + j, lanes.nonzero, std::uint32_t(j), true, idx + count, vals == nullptr ? nullptr : vals + count);
    count += unsigned(__builtin_popcount(lanes.nonzero));
  }
  if (bad != 0 && non_finite != nullptr) *non_finite = true;
  return count;
}

template <class T>
void sparse_gemm(const SparseGemmArgs<T>& p) {
  using V = Vec<T>;
  constexpr std::size_t L = V::lanes;
  if (p.n == 0) return;
  // Split the row's vectors into as few register blocks as possible, of near-equal size; only
  // the last block may end in a partial vector.
  const std::size_t vectors = (p.n + L - 1) / L;
  const std::size_t blocks = (vectors + kMaxVectors - 1) / kMaxVectors;
  std::size_t j0 = 0;
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    const std::size_t nv = vectors / blocks + (blk < vectors % blocks ? 1 : 0);
    const std::size_t width = blk + 1 == blocks ? p.n - j0 : nv * L;
    const Tail tail = width % L == 0 ? Tail::whole : nv == 1 ? Tail::masked : Tail::overlap;
    const auto seq = std::make_integer_sequence<int, kMaxVectors>{};
    const BlockFn<T> fn = p.entries != nullptr ? block_for<T, Source::entries>(int(nv), tail, seq)
                          : p.vals != nullptr  ? block_for<T, Source::vals>(int(nv), tail, seq)
                                               : block_for<T, Source::a>(int(nv), tail, seq);
    fn(p, j0, width);
    j0 += width;
  }
}

template std::size_t nonzero_indices<float>(std::size_t, const float*, std::uint32_t*, float*, bool*);
template std::size_t nonzero_indices<double>(std::size_t, const double*, std::uint32_t*, double*, bool*);
template void sparse_gemm<float>(const SparseGemmArgs<float>&);
template void sparse_gemm<double>(const SparseGemmArgs<double>&);

}  // namespace fastmlp::avx512
