// AVX2 variant of the matrix-product kernels. Compiled with -mavx2 -mfma -mf16c, only this
// file. Per block of a group: each row's 32 values widened to int16 against the token's
// block of activations (two vpmaddwd per row), one fma per row into its own accumulator.
#include <immintrin.h>

#include "arch/matmul.h"

namespace amskv {
namespace avx2 {
namespace {

// 16 bytes of row r's values, elements 0-15 (lo) and 16-31 (hi) of the block, as int16.
template <bool Q4>
inline void row_values(const uint8_t* q, int r, __m256i* lo, __m256i* hi) {
  if (Q4) {
    const __m128i v = _mm_loadu_si128((const __m128i*)(q + 16 * r));
    const __m128i m = _mm_set1_epi8(15);
    *lo = _mm256_cvtepu8_epi16(_mm_and_si128(v, m));
    *hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), m));
  } else {
    *lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(q + 16 * r)));
    *hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(q + 64 + 16 * r)));
  }
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

template <bool Q4>
void gemm(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb;
  const size_t qbytes = Q4 ? 64 : 128;
  for (int g = g0; g < g1; ++g) {
    const uint8_t* qg = w.q + (size_t)g * nb * qbytes;
    const uint16_t* dg = w.d + (size_t)g * nb * 4;
    const uint16_t* mg = Q4 ? w.m + (size_t)g * nb * 4 : nullptr;
    for (int t = 0; t < x.n_tok; ++t) {
      const int16_t* xq = x.q + (size_t)t * k;
      const float* xd = x.d + (size_t)t * nb;
      const float* xs = x.s + (size_t)t * nb;
      __m256 acc[kPackRows] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                               _mm256_setzero_ps()};
      __m128 macc = _mm_setzero_ps();
      for (int b = 0; b < nb; ++b) {
        const uint8_t* q = qg + (size_t)b * qbytes;
        _mm_prefetch((const char*)(q + kPrefetchBytes), _MM_HINT_T0);
        if (!Q4) _mm_prefetch((const char*)(q + 64 + kPrefetchBytes), _MM_HINT_T0);
        const __m256i xl = _mm256_loadu_si256((const __m256i*)(xq + 32 * b));
        const __m256i xh = _mm256_loadu_si256((const __m256i*)(xq + 32 * b + 16));
        alignas(16) float s[4];
        _mm_store_ps(s, _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(dg + 4 * b))),
                                   _mm_set1_ps(xd[b])));
        for (int r = 0; r < kPackRows; ++r) {
          __m256i lo, hi;
          row_values<Q4>(q, r, &lo, &hi);
          const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(lo, xl), _mm256_madd_epi16(hi, xh));
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s[r]), acc[r]);
        }
        if (Q4)
          macc = _mm_fmadd_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(mg + 4 * b))),
                              _mm_set1_ps(xs[b]), macc);
      }
      alignas(16) float m[4];
      _mm_store_ps(m, macc);
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = hsum(acc[r]) + w.m_scale * m[r];
      }
    }
  }
}

void gemm_q4(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  gemm<true>(w, g0, g1, x, y, ldy);
}
void gemm_q8(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  gemm<false>(w, g0, g1, x, y, ldy);
}

// Q8S: each half's products into its own sum, times the half's scale.
void gemm_q8s(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb, ns = nb / w.sb;
  for (int g = g0; g < g1; ++g) {
    const uint8_t* qg = w.q + (size_t)g * nb * 128;
    const int8_t* scg = w.sc + (size_t)g * nb * 8;
    const int8_t* mng = w.mn + (size_t)g * nb * 4;
    const uint16_t* dg = w.d + (size_t)g * ns * 4;
    const uint16_t* mg = w.m + (size_t)g * ns * 4;
    for (int t = 0; t < x.n_tok; ++t) {
      const int16_t* xq = x.q + (size_t)t * k;
      const float* xd = x.d + (size_t)t * nb;
      const float* xs = x.s + (size_t)t * nb;
      __m256 acc[kPackRows] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                               _mm256_setzero_ps()};
      __m128 macc = _mm_setzero_ps();
      for (int b = 0; b < nb; ++b) {
        const uint8_t* q = qg + (size_t)b * 128;
        _mm_prefetch((const char*)(q + kPrefetchBytes), _MM_HINT_T0);
        _mm_prefetch((const char*)(q + 64 + kPrefetchBytes), _MM_HINT_T0);
        const __m256i xl = _mm256_loadu_si256((const __m256i*)(xq + 32 * b));
        const __m256i xh = _mm256_loadu_si256((const __m256i*)(xq + 32 * b + 16));
        const int sb = b / w.sb;
        const __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(dg + 4 * sb))),
                                     _mm_set1_ps(xd[b]));
        alignas(32) float s[8];  // half 0 rows 0-3, half 1 rows 0-3
        _mm256_store_ps(s, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                             _mm_loadl_epi64((const __m128i*)(scg + 8 * b)))),
                                         _mm256_insertf128_ps(_mm256_castps128_ps256(d4), d4, 1)));
        for (int r = 0; r < kPackRows; ++r) {
          __m256i lo, hi;
          row_values<false>(q, r, &lo, &hi);
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(lo, xl)),
                                   _mm256_set1_ps(s[r]), acc[r]);
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(hi, xh)),
                                   _mm256_set1_ps(s[4 + r]), acc[r]);
        }
        int32_t mn4;
        __builtin_memcpy(&mn4, mng + 4 * b, 4);
        const __m128 mn = _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(mn4)));
        macc = _mm_fmadd_ps(
            _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(mg + 4 * sb))), mn),
            _mm_set1_ps(xs[b]), macc);
      }
      alignas(16) float m[4];
      _mm_store_ps(m, macc);
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = hsum(acc[r]) + m[r];
      }
    }
  }
}

// 8 floats to bf16, rounded to nearest even (finite values), in the low 8 words.
inline __m128i bf16(__m256 f) {
  const __m256i b = _mm256_castps_si256(f);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  const __m256i r =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), odd), 16);
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

void unpack_bf16(const PackedMatrix& w, bool q4, int g0, int g1, uint16_t* out, size_t ldo) {
  const int nb = w.nb;
  for (int g = g0; g < g1; ++g)
    for (int b = 0; b < nb; ++b) {
      const size_t gb = (size_t)g * nb + b;
      const uint8_t* q = w.q + gb * (q4 ? 64 : 128);
      for (int r = 0; r < kPackRows; ++r) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(w.d[gb * 4 + r]));
        const __m256 m = _mm256_set1_ps(q4 ? w.m_scale * _cvtsh_ss(w.m[gb * 4 + r]) : 0.f);
        uint16_t* o = out + (size_t)((g - g0) * kPackRows + r) * ldo + 32 * b;
        for (int h = 0; h < 2; ++h) {  // elements 0-7 and 8-15 of each half
          const __m128i v = _mm_loadl_epi64((const __m128i*)(q + 16 * r + 8 * h));
          __m256 lo, hi;
          if (q4) {
            const __m256i u = _mm256_cvtepu8_epi32(v), m15 = _mm256_set1_epi32(15);
            lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(u, m15)), d, m);
            hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(u, 4)), d, m);
          } else {
            const __m128i v2 = _mm_loadl_epi64((const __m128i*)(q + 64 + 16 * r + 8 * h));
            lo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d);
            hi = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v2)), d);
          }
          _mm_storeu_si128((__m128i*)(o + 8 * h), bf16(lo));
          _mm_storeu_si128((__m128i*)(o + 16 + 8 * h), bf16(hi));
        }
      }
    }
}

}  // namespace
}  // namespace avx2

extern const MatmulKernels kMatmulAvx2;
constexpr MatmulKernels kMatmulAvx2 = {"avx2", avx2::gemm_q4, avx2::gemm_q8, avx2::gemm_q8s,
                                       avx2::unpack_bf16};

}  // namespace amskv
