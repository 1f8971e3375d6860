// Sparse rows times dense. Up to 13 vectors of a row of C (104 floats: a whole 100-unit layer)
// stay in registers while the row's nonzeros stream by: per nonzero one broadcast and 13 FMAs
// with B's row as memory operand, enough independent chains to keep both FMA pipes busy. For the
// 784-100 MNIST layer at ~19% density this does ~5x fewer multiply-adds than gemm and gives
// bitwise the same result (the same FMA chains without their exact-zero terms).
#include "fastmlp/kernels.h"
#include "vec.h"

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

// Columns [j0, j0 + NV*lanes) of every row; the last vector is limited by `last` when partial.
template <class T, int NV, bool Vals>
void sparse_block(const SparseGemmArgs<T>& p, std::size_t j0, typename Vec<T>::mask last, bool partial) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr std::size_t L = V::lanes;
  const reg lr = V::set1(p.learning_rate);
  for (std::size_t r = 0; r < p.rows; ++r) {
    const std::uint32_t begin = p.starts[r], end = p.ends[r];
    if (p.update != nullptr && begin == end) continue;  // w - lr * 0 == w
    reg acc[NV];
    if (p.continue_chain) {
      const T* from = p.c + std::ptrdiff_t(r) * p.ldc + j0;
      for (int v = 0; v < NV - 1; ++v) acc[v] = V::loadu(from + v * L);
      acc[NV - 1] = partial ? V::maskload(from + (NV - 1) * L, last) : V::loadu(from + (NV - 1) * L);
    } else {
      for (int v = 0; v < NV; ++v) acc[v] = V::zero();
    }
    const T* a_row = p.a + std::ptrdiff_t(r) * p.a_row;
    for (std::uint32_t e = begin; e < end; ++e) {
      const std::ptrdiff_t k = p.cols[e];
      const reg x = V::set1(Vals ? p.vals[e] : a_row[k * p.a_col]);
      const T* b = p.b + k * p.ldb + j0;
      for (int v = 0; v < NV - 1; ++v) acc[v] = V::fmadd(x, V::loadu(b + v * L), acc[v]);
      const reg tail = partial ? V::maskload(b + (NV - 1) * L, last) : V::loadu(b + (NV - 1) * L);
      acc[NV - 1] = V::fmadd(x, tail, acc[NV - 1]);
    }
    const bool update = p.update != nullptr;
    T* out = (update ? p.update : p.c) + std::ptrdiff_t(r) * p.ldc + j0;
    for (int v = 0; v < NV; ++v) {
      const bool masked = partial && v == NV - 1;
      reg value = acc[v];
      if (update) {  // w - lr * g, as the optimizer's sgd kernel computes it
        const reg w = masked ? V::maskload(out + v * L, last) : V::loadu(out + v * L);
        value = V::sub(w, V::mul(lr, value));
      }
      if (masked) {
        V::maskstore(out + v * L, last, value);
      } else {
        V::storeu(out + v * L, value);
      }
    }
  }
}

template <class T>
using BlockFn = void (*)(const SparseGemmArgs<T>&, std::size_t, typename Vec<T>::mask, bool);

template <class T, int... NV>
constexpr BlockFn<T> block_for(int nv, bool vals, std::integer_sequence<int, NV...>) {
  constexpr BlockFn<T> from_a[] = {&sparse_block<T, NV + 1, false>...};
  constexpr BlockFn<T> from_vals[] = {&sparse_block<T, NV + 1, true>...};
  return vals ? from_vals[nv - 1] : from_a[nv - 1];
}

}  // namespace

template <class T>
std::size_t nonzero_indices(std::size_t n, const T* x, std::uint32_t* idx, T* vals) {
  std::size_t count = 0, j = 0;
  const __m256i step = _mm256_set1_epi32(8);
  __m256i base = _mm256_setzero_si256();
  for (; j + 8 <= n; j += 8) {
    const unsigned bits = nonzero_bits(x + j);
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[bits]));
    // Stores all 8 lanes and keeps popcount(bits) of them: hence idx's slack of 8.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + count), _mm256_add_epi32(base, perm));
    if (vals != nullptr) compress_values(x + j, perm, bits, vals + count);
    count += unsigned(__builtin_popcount(bits));
    base = _mm256_add_epi32(base, step);
  }
  for (; j < n; ++j) {
    if (x[j] == T(0)) continue;
    if (vals != nullptr) vals[count] = x[j];
    idx[count++] = std::uint32_t(j);
  }
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
    const std::size_t rest = width - (nv - 1) * L;
    const BlockFn<T> fn = block_for<T>(int(nv), p.vals != nullptr, std::make_integer_sequence<int, kMaxVectors>{});
    fn(p, j0, V::tail_mask(rest), rest != L);
    j0 += width;
  }
}

template std::size_t nonzero_indices<float>(std::size_t, const float*, std::uint32_t*, float*);
template std::size_t nonzero_indices<double>(std::size_t, const double*, std::uint32_t*, double*);
template void sparse_gemm<float>(const SparseGemmArgs<float>&);
template void sparse_gemm<double>(const SparseGemmArgs<double>&);

}  // namespace fastmlp::avx2
