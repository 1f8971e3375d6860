// Sparse rows times dense. Up to 13 vectors of a row of C (104 floats: a whole 100-unit layer)
// stay in registers while the row's nonzeros stream by: per nonzero one broadcast and 13 FMAs
// with B's row as memory operand, enough independent chains to keep both FMA pipes busy. For the
// 784-100 MNIST layer at ~19% density this does ~5x fewer multiply-adds than gemm and gives
// bitwise the same result (the same FMA chains without their exact-zero terms).
#include "fastmlp/kernels.h"
#include "vec.h"

#include <cmath>
#include <utility>

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"

namespace {

constexpr int kMaxVectors = 13;

// For each 8-bit mask, the positions of its set bits packed to the front: one permutation
// compacts the indices of a vector's nonzero lanes without a branch per element (a loop over set
// bits cost 15% of an MNIST epoch in mispredictions).
struct CompressTable {
  alignas(32) std::uint32_t lanes[256][8];
  constexpr CompressTable() : lanes{} {
    for (unsigned mask = 0; mask < 256; ++mask) {
      unsigned k = 0;
      for (unsigned bit = 0; bit < 8; ++bit)
        if (mask & (1u << bit)) lanes[mask][k++] = bit;
    }
  }
};
constexpr CompressTable kCompress{};

// Which of 8 values are nonzero (NaN counts as nonzero), as bits.
unsigned nonzero_bits(const float* x) {
  return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), _mm256_setzero_ps(), _CMP_NEQ_UQ)));
}
unsigned nonzero_bits(const double* x) {
  const __m256d zero = _mm256_setzero_pd();
  const unsigned lo = unsigned(_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(x), zero, _CMP_NEQ_UQ)));
  const unsigned hi = unsigned(_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(x + 4), zero, _CMP_NEQ_UQ)));
  return lo | (hi << 4);
}

// Lanes of 8 inputs whose exponent bits are all ones (NaN or infinite): a test on the bits,
// exact for every NaN, accumulated with OR over a row and looked at once at its end.
__m256i non_finite_lanes(const float* x) {
  const __m256i exponent = _mm256_set1_epi32(0x7f800000);
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return _mm256_cmpeq_epi32(_mm256_and_si256(bits, exponent), exponent);
}
__m256i non_finite_lanes(const double* x) {
  const __m256i exponent = _mm256_set1_epi64x(0x7ff0000000000000ll);
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4));
  return _mm256_or_si256(_mm256_cmpeq_epi64(_mm256_and_si256(lo, exponent), exponent),
                         _mm256_cmpeq_epi64(_mm256_and_si256(hi, exponent), exponent));
}

// The values of 8 inputs in the lanes `perm` picks (the nonzero ones, packed to the front), stored
// as a whole vector: the same permutation as their indices, without a loop over the set bits.
void compress_values(const float* x, __m256i perm, unsigned, float* out) {
  _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(_mm256_loadu_ps(x), perm));
}
// Eight doubles span two vectors and no one permute packs them: one store per nonzero.
void compress_values(const double* x, __m256i, unsigned bits, double* out) {
  const std::uint32_t* lanes = kCompress.lanes[bits];
  for (int e = 0, count = __builtin_popcount(bits); e < count; ++e) out[e] = x[lanes[e]];
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
  std::size_t count = 0, j = 0;
  const __m256i step = _mm256_set1_epi32(8);
  __m256i base = _mm256_setzero_si256();
  __m256i bad = _mm256_setzero_si256();
  for (; idx == nullptr && j + 8 <= n; j += 8) {  // count only
    bad = _mm256_or_si256(bad, non_finite_lanes(x + j));
    count += unsigned(__builtin_popcount(nonzero_bits(x + j)));
  }
  for (; j + 8 <= n; j += 8) {
    bad = _mm256_or_si256(bad, non_finite_lanes(x + j));
    const unsigned bits = nonzero_bits(x + j);
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[bits]));
    // Stores all 8 lanes and keeps popcount(bits) of them: hence idx's slack of 8.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + count), _mm256_add_epi32(base, perm));
    if (vals != nullptr) compress_values(x + j, perm, bits, vals + count);
    count += unsigned(__builtin_popcount(bits));
    base = _mm256_add_epi32(base, step);
  }
  bool finite = _mm256_testz_si256(bad, bad) != 0;
  for (; j < n; ++j) {
    if (x[j] == T(0)) continue;
    if (vals != nullptr) vals[count] = x[j];
    if (idx != nullptr) idx[count] = std::uint32_t(j);
    ++count;
    finite = finite && std::isfinite(x[j]);
  }
  if (!finite && non_finite != nullptr) *non_finite = true;
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

}  // namespace fastmlp::avx2
