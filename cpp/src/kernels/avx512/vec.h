// AVX-512 (F, VL, BW, DQ) vector traits for float (16 lanes) and double (8 lanes), so each kernel
// is written once for both element types. Comparisons give lane masks (k registers), which
// select, keep and drop apply; tails use the same masks for loads and stores, which never touch
// (or fault on) the lanes left out. Only AVX-512 translation units include this header, and
// everything in it has internal linkage: no AVX-512 code can be merged into a caller on another
// ISA.
#pragma once

// GCC 12's AVX-512 headers initialize their "undefined" operands with themselves (GCC PR105593),
// which -W(maybe-)uninitialized reports wherever such an intrinsic is inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstddef>

namespace fastmlp::avx512 {
namespace {

// 16 x 16 floats (8 x 8 doubles) transposed in registers: rows[i] lane j -> rows[j] lane i.
inline void transpose(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // Now each 128-bit block holds a transposed 4 x 4; move the blocks.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
  }
}
inline void transpose(__m512d (&r)[8]) {
  __m512d t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0x88);
    r[i + 1] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0x88);
    r[i + 2] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0xdd);
    r[i + 3] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0xdd);
  }
  for (int i = 0; i < 2; ++i) {
    t[i] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0x88);
    t[i + 2] = _mm512_shuffle_f64x2(r[i + 2], r[i + 6], 0x88);
    t[i + 4] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0xdd);
    t[i + 6] = _mm512_shuffle_f64x2(r[i + 2], r[i + 6], 0xdd);
  }
  for (int i = 0; i < 8; ++i) r[i] = t[i];
}

template <class T>
struct Vec;

template <>
struct Vec<float> {
  using reg = __m512;
  using mask = __mmask16;
  static constexpr std::size_t lanes = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_load_ps(p); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_store_ps(p, v); }
  static void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static mask tail_mask(std::size_t n) {  // lanes [0, n) on
    return n >= lanes ? mask(0xffff) : mask((1u << n) - 1u);
  }
  static reg maskload(const float* p, mask m) { return _mm512_maskz_loadu_ps(m, p); }
  // Lane l holds p[l * stride] (a column of consecutive rows; (lanes - 1) * stride fits an int).
  static reg strided(const float* p, int stride) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask(0xffff), _mm512_mullo_epi32(lane, _mm512_set1_epi32(stride)), p, 4);
  }
  // A group of 16 rows goes back from column vectors to rows by a transpose (row_groups.inc).
  static constexpr bool transposes_rows = true;
  // p[l * ld + j] = in[j * 16 + l] for 16 rows, columns [0, cols) (cols <= 16) only: a transpose
  // in registers and sixteen masked row stores, in place of 16 * cols scalar stores (or
  // scatters, which cost more here).
  static void store_columns(const float* in, std::size_t cols, float* p, std::ptrdiff_t ld) {
    const mask m = tail_mask(cols);
    __m512 r[16];
    for (std::size_t j = 0; j < 16; ++j) r[j] = j < cols ? _mm512_load_ps(in + j * 16) : _mm512_setzero_ps();
    transpose(r);
    for (std::size_t l = 0; l < 16; ++l) _mm512_mask_storeu_ps(p + std::ptrdiff_t(l) * ld, m, r[l]);
  }
  static void maskstore(float* p, mask m, reg v) { _mm512_mask_storeu_ps(p, m, v); }
  // Lane j holds float(j0 + j): used to build one-hot rows from class indices.
  static reg iota(std::size_t j0) {
    return _mm512_add_ps(_mm512_set1_ps(float(j0)),
                         _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  // The correctly rounded square root (bitwise _mm512_sqrt_ps, checked over all 2^32 inputs;
  // tests/test_optimizers.py checks it through the kernels) at a fraction of the instruction's
  // cost: rsqrt14's estimate y (relative error < 2^-14), s = a y and h = y / 2 refined by one
  // Newton step to ~2^-28, then s + (a - s^2) h, whose residual a - s^2 is exact in an FMA.
  // For a in [2^-96, FLT_MAX] no step overflows and the residual stays a normal number; lanes
  // outside that range (zeros, tiny and subnormal values, infinities, NaNs, negatives) take
  // the instruction itself.
  static reg sqrt(reg a) {
    const reg half = _mm512_set1_ps(0.5f), y = _mm512_rsqrt14_ps(a);
    reg s = _mm512_mul_ps(a, y), h = _mm512_mul_ps(half, y);
    const reg r = _mm512_fnmadd_ps(s, h, half);
    s = _mm512_fmadd_ps(s, r, s);
    h = _mm512_fmadd_ps(h, r, h);
    s = _mm512_fmadd_ps(_mm512_fnmadd_ps(s, s, a), h, s);
    const mask fast = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0x1p-96f), _CMP_GE_OQ) &
                      _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.40282347e38f), _CMP_LE_OQ);
    return fast == mask(0xffff) ? s : _mm512_mask_sqrt_ps(s, mask(~fast), a);
  }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }    // a*b + c
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a*b
  // max/min return the second operand when either is NaN: callers put x second to keep NaN.
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static mask gt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static mask eq(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static mask lt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static reg select(mask m, reg if_true, reg if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
  static reg keep(mask m, reg v) { return _mm512_maskz_mov_ps(m, v); }           // v where m, else 0
  static reg drop(mask m, reg v) { return _mm512_maskz_mov_ps(mask(~m), v); }    // 0 where m, else v
  static mask either(mask a, mask b) { return mask(a | b); }                    // a or b
  static mask from_mask(mask m) { return m; }  // a tail mask already is a comparison result
  static reg bit_and(reg a, reg b) { return _mm512_and_ps(a, b); }
  static reg bit_or(reg a, reg b) { return _mm512_or_ps(a, b); }
  static reg bit_xor(reg a, reg b) { return _mm512_xor_ps(a, b); }
  static reg andnot(reg a, reg b) { return _mm512_andnot_ps(a, b); }  // ~a & b
  static reg sign_bit() { return _mm512_set1_ps(-0.0f); }
  static reg round(reg x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static float hsum(reg v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(reg v) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // 2^n for integral n in [-126, 127], built in the exponent field.
  static reg pow2i(reg n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  // x = m * 2^e with m in [1, 2), for positive normal x.
  static void frexp1(reg x, reg& m, reg& e) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i exponent = _mm512_srli_epi32(bits, 23);
    e = _mm512_sub_ps(_mm512_cvtepi32_ps(exponent), _mm512_set1_ps(127.0f));
    m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)),
                                            _mm512_set1_epi32(0x3f800000)));
  }
  // exp's argument range: 2^n stays a normal number for the n these produce.
  static constexpr float exp_lo = -87.0f, exp_hi = 88.0f;
  // Taylor terms kept in exp/expm1 on |r| <= ln2/2: the next term is below half an ulp.
  static constexpr int exp_terms = 8;
  // Terms of the atanh series in log: s^2 <= 0.0295, s2^5/11 < 2e-9 relative.
  static constexpr int log_terms = 5;
};

template <>
struct Vec<double> {
  using reg = __m512d;
  using mask = __mmask8;
  static constexpr std::size_t lanes = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg set1(double x) { return _mm512_set1_pd(x); }
  static reg load(const double* p) { return _mm512_load_pd(p); }
  static reg loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg v) { _mm512_store_pd(p, v); }
  static void storeu(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static mask tail_mask(std::size_t n) { return n >= lanes ? mask(0xff) : mask((1u << n) - 1u); }
  static reg maskload(const double* p, mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static constexpr bool transposes_rows = false;  // a group goes back to rows by scalar stores
  static reg strided(const double* p, int stride) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm512_mask_i32gather_pd(_mm512_setzero_pd(), mask(0xff), _mm256_mullo_epi32(lane, _mm256_set1_epi32(stride)), p, 8);
  }
  static void maskstore(double* p, mask m, reg v) { _mm512_mask_storeu_pd(p, m, v); }
  static reg iota(std::size_t j0) {
    return _mm512_add_pd(_mm512_set1_pd(double(j0)), _mm512_setr_pd(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_pd(a, b); }
  static reg sqrt(reg a) { return _mm512_sqrt_pd(a); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_pd(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_pd(a, b); }
  static mask gt(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static mask eq(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  static mask lt(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static reg select(mask m, reg if_true, reg if_false) { return _mm512_mask_blend_pd(m, if_false, if_true); }
  static reg keep(mask m, reg v) { return _mm512_maskz_mov_pd(m, v); }
  static reg drop(mask m, reg v) { return _mm512_maskz_mov_pd(mask(~m), v); }
  static mask either(mask a, mask b) { return mask(a | b); }
  static mask from_mask(mask m) { return m; }
  static reg bit_and(reg a, reg b) { return _mm512_and_pd(a, b); }
  static reg bit_or(reg a, reg b) { return _mm512_or_pd(a, b); }
  static reg bit_xor(reg a, reg b) { return _mm512_xor_pd(a, b); }
  static reg andnot(reg a, reg b) { return _mm512_andnot_pd(a, b); }
  static reg sign_bit() { return _mm512_set1_pd(-0.0); }
  static reg round(reg x) { return _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static double hsum(reg v) {
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static double hmax(reg v) {
    const __m256d h = _mm256_max_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  // 2^n for integral n in [-1022, 1023]: AVX-512DQ converts doubles to 64-bit integers.
  static reg pow2i(reg n) {
    const __m512i e = _mm512_add_epi64(_mm512_cvtpd_epi64(n), _mm512_set1_epi64(1023));
    return _mm512_castsi512_pd(_mm512_slli_epi64(e, 52));
  }
  static void frexp1(reg x, reg& m, reg& e) {
    const __m512i bits = _mm512_castpd_si512(x);
    const __m512i exponent = _mm512_srli_epi64(bits, 52);
    e = _mm512_sub_pd(_mm512_cvtepi64_pd(exponent), _mm512_set1_pd(1023.0));
    m = _mm512_castsi512_pd(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi64(0x000fffffffffffffLL)),
                                            _mm512_set1_epi64(0x3ff0000000000000LL)));
  }
  static constexpr double exp_lo = -708.0, exp_hi = 709.0;
  static constexpr int exp_terms = 13;
  static constexpr int log_terms = 10;
};

}  // namespace
}  // namespace fastmlp::avx512
