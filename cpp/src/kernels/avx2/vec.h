// AVX2+FMA vector traits for float (8 lanes) and double (4 lanes), so each kernel is written
// once for both element types. Only AVX2 translation units include this header, and everything
// in it has internal linkage: no AVX2 code can be merged into a caller on another ISA.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace fastmlp::avx2 {
namespace {

template <class T>
struct Vec;

template <>
struct Vec<float> {
  using reg = __m256;
  using mask = __m256i;  // lane mask for partial loads and stores
  static constexpr std::size_t lanes = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_load_ps(p); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_store_ps(p, v); }
  static void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static mask tail_mask(std::size_t n) {  // lanes [0, n) on
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg maskload(const float* p, mask m) { return _mm256_maskload_ps(p, m); }
  static constexpr bool transposes_rows = false;  // a group goes back to rows by scalar stores
  // Lane l holds p[l * stride] (a column of consecutive rows; (lanes - 1) * stride fits an int).
  static reg strided(const float* p, int stride) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i index = _mm256_mullo_epi32(lane, _mm256_set1_epi32(stride));
    // The masked form: the plain one leaves its pass-through operand undefined.
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, index, _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 4);
  }
  static reg from_mask(mask m) { return _mm256_castsi256_ps(m); }  // as a comparison result
  // Lane j holds float(j0 + j): used to build one-hot rows from class indices.
  static reg iota(std::size_t j0) {
    return _mm256_add_ps(_mm256_set1_ps(float(j0)), _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static void maskstore(float* p, mask m, reg v) { _mm256_maskstore_ps(p, m, v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }    // a*b + c
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a*b
  // max/min return the second operand when either is NaN: callers put x second to keep NaN.
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg gt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static reg eq(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static reg lt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static reg bit_and(reg a, reg b) { return _mm256_and_ps(a, b); }
  static reg bit_or(reg a, reg b) { return _mm256_or_ps(a, b); }
  static reg bit_xor(reg a, reg b) { return _mm256_xor_ps(a, b); }
  static reg andnot(reg a, reg b) { return _mm256_andnot_ps(a, b); }  // ~a & b
  // On comparison results (all-ones lanes where true), as AVX-512's k masks offer them.
  static reg keep(reg m, reg v) { return _mm256_and_ps(m, v); }     // v where m, else 0
  static reg drop(reg m, reg v) { return _mm256_andnot_ps(m, v); }  // 0 where m, else v
  static reg either(reg a, reg b) { return _mm256_or_ps(a, b); }    // a or b
  static reg sqrt(reg a) { return _mm256_sqrt_ps(a); }
  static reg select(reg mask_reg, reg if_true, reg if_false) {
    return _mm256_blendv_ps(if_false, if_true, mask_reg);
  }
  static reg sign_bit() { return _mm256_set1_ps(-0.0f); }
  static reg round(reg x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static float hsum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(reg v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // 2^n for integral n in [-126, 127], built in the exponent field.
  static reg pow2i(reg n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  // x = m * 2^e with m in [1, 2), for positive normal x.
  static void frexp1(reg x, reg& m, reg& e) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i exponent = _mm256_srli_epi32(bits, 23);
    e = _mm256_sub_ps(_mm256_cvtepi32_ps(exponent), _mm256_set1_ps(127.0f));
    m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                            _mm256_set1_epi32(0x3f800000)));
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
  using reg = __m256d;
  using mask = __m256i;
  static constexpr std::size_t lanes = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg set1(double x) { return _mm256_set1_pd(x); }
  static reg load(const double* p) { return _mm256_load_pd(p); }
  static reg loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg v) { _mm256_store_pd(p, v); }
  static void storeu(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static mask tail_mask(std::size_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(n)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static reg maskload(const double* p, mask m) { return _mm256_maskload_pd(p, m); }
  static constexpr bool transposes_rows = false;  // a group goes back to rows by scalar stores
  static reg strided(const double* p, int stride) {
    const __m128i index = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(stride));
    return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), p, index, _mm256_castsi256_pd(_mm256_set1_epi64x(-1)), 8);
  }
  static reg from_mask(mask m) { return _mm256_castsi256_pd(m); }
  static reg iota(std::size_t j0) {
    return _mm256_add_pd(_mm256_set1_pd(double(j0)), _mm256_setr_pd(0, 1, 2, 3));
  }
  static void maskstore(double* p, mask m, reg v) { _mm256_maskstore_pd(p, m, v); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_pd(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_pd(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_pd(a, b); }
  static reg gt(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static reg eq(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
  static reg lt(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static reg bit_and(reg a, reg b) { return _mm256_and_pd(a, b); }
  static reg bit_or(reg a, reg b) { return _mm256_or_pd(a, b); }
  static reg bit_xor(reg a, reg b) { return _mm256_xor_pd(a, b); }
  static reg andnot(reg a, reg b) { return _mm256_andnot_pd(a, b); }
  static reg keep(reg m, reg v) { return _mm256_and_pd(m, v); }
  static reg drop(reg m, reg v) { return _mm256_andnot_pd(m, v); }
  static reg either(reg a, reg b) { return _mm256_or_pd(a, b); }
  static reg sqrt(reg a) { return _mm256_sqrt_pd(a); }
  static reg select(reg mask_reg, reg if_true, reg if_false) {
    return _mm256_blendv_pd(if_false, if_true, mask_reg);
  }
  static reg sign_bit() { return _mm256_set1_pd(-0.0); }
  static reg round(reg x) { return _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static double hsum(reg v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static double hmax(reg v) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  // AVX2 has no double<->int64 conversion: adding 2^52 puts a small non-negative integer in the
  // low mantissa bits, where integer instructions can reach it.
  static reg pow2i(reg n) {
    const reg biased = _mm256_add_pd(n, _mm256_set1_pd(1023.0 + 4503599627370496.0));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(biased), 52));
  }
  static void frexp1(reg x, reg& m, reg& e) {
    const __m256i bits = _mm256_castpd_si256(x);
    const __m256i exponent = _mm256_srli_epi64(bits, 52);
    const reg magic = _mm256_set1_pd(4503599627370496.0);  // 2^52
    e = _mm256_sub_pd(_mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(exponent, _mm256_castpd_si256(magic))), magic),
                      _mm256_set1_pd(1023.0));
    m = _mm256_castsi256_pd(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(0x000fffffffffffffLL)),
                        _mm256_set1_epi64x(0x3ff0000000000000LL)));
  }
  static constexpr double exp_lo = -708.0, exp_hi = 709.0;
  static constexpr int exp_terms = 13;
  static constexpr int log_terms = 10;
};

}  // namespace
}  // namespace fastmlp::avx2
