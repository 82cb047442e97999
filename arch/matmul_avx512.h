// The AVX-512 matrix-product kernels, shared by the AVX-512 (BW) and AVX-512 VNNI files: each
// includes this with its own flags and its own `Dot` (the 8-bit and 16-bit multiply-adds into
// int32 lanes). static: every including file gets its own copy, compiled with its flags.
//
// Q4: one 64-byte load holds a block of four rows' nibbles; the low and the high nibbles
// (elements 0-15 and 16-31 of the four rows) are multiplied as bytes with the token's block of
// activations split into bytes (q = 256 hi + lo), broadcast to the four rows: each int32 lane
// sums four products of one row, exactly. The block's four scales, times the activations'
// scale, are spread over the lanes of their rows and one fma accumulates; the rows are summed
// up once per group.
//
// Q8: the signed bytes widen to int16 (two registers, rows 0-1 and rows 2-3) against the
// 16-bit activations.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "arch/matmul.h"

namespace amskv {
namespace {

// Lanes 4r..4r+3 hold row r: the four rows' sums of a 128-bit lane each, as [r0 r1 r2 r3].
static inline __m128 avx512_row_sums(__m512 a) {
  a = _mm512_add_ps(a, _mm512_permute_ps(a, 0xb1));  // pairs
  a = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4e));  // quads: every lane holds its row's sum
  return _mm512_castps512_ps128(
      _mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), a));
}

// [r0 r1 r2 r3] from two registers whose lanes 0-7 hold row 0 (or 2) and 8-15 row 1 (or 3):
// each half of 8 lanes folded to one value.
static inline __m128 avx512_half_row_sums(__m512 acc01, __m512 acc23) {
  const __m256 a0 = _mm512_castps512_ps256(acc01), a1 = _mm512_extractf32x8_ps(acc01, 1);
  const __m256 a2 = _mm512_castps512_ps256(acc23), a3 = _mm512_extractf32x8_ps(acc23, 1);
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// One group's rows for NT tokens t0.. (prefill and batched decode take four at a time): the
// nibbles and the rows' scales are unpacked once per block for all of them.
template <class Dot, int NT>
static inline void avx512_q4_tokens(const PackedMatrix& w, int g, const QuantActs& x, int t0,
                                    float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb;
  const __m512i low4 = _mm512_set1_epi8(15);
  const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const uint8_t* qg = w.q + (size_t)g * nb * 64;
  const uint16_t* dg = w.d + (size_t)g * nb * 4;
  const uint16_t* mg = w.m + (size_t)g * nb * 4;
  __m512 acc[NT];
  __m128 macc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps(), macc[t] = _mm_setzero_ps();
  for (int b = 0; b < nb; ++b) {
    _mm_prefetch((const char*)(qg + (size_t)b * 64 + kPrefetchBytes), _MM_HINT_T0);
    const __m512i v = _mm512_loadu_si512(qg + (size_t)b * 64);
    const __m512i w0 = _mm512_and_si512(v, low4);                        // elements 0-15
    const __m512i w1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);  // elements 16-31
    // The four rows' scales, each spread over its row's four lanes.
    const __m512 d = _mm512_permutexvar_ps(
        idx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(dg + 4 * b)))));
    const __m128 m = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(mg + 4 * b)));
    for (int t = 0; t < NT; ++t) {
      const size_t at = (size_t)(t0 + t) * k + 32 * b;
      const __m512i l0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)(x.lo + at)));
      const __m512i l1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)(x.lo + at + 16)));
      const __m512i h0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)(x.hi + at)));
      const __m512i h1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)(x.hi + at + 16)));
      const __m512i hi = Dot::bytes2(w0, h0, w1, h1);  // w (u8) . hi (s8)
      const __m512i lo = Dot::bytes2(l0, w0, l1, w1);  // lo (u8) . w (s8, as it is < 16)
      const __m512i p = _mm512_add_epi32(_mm512_slli_epi32(hi, 8), lo);
      const size_t tb = (size_t)(t0 + t) * nb + b;
      acc[t] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(d, _mm512_set1_ps(x.d[tb])), acc[t]);
      macc[t] = _mm_fmadd_ps(m, _mm_set1_ps(x.s[tb]), macc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(16) float out[4];
    _mm_store_ps(out, _mm_fmadd_ps(_mm_set1_ps(w.m_scale), macc[t], avx512_row_sums(acc[t])));
    for (int r = 0; r < kPackRows; ++r) {
      const int row = g * kPackRows + r;
      if (row < w.n_rows) y[(size_t)(t0 + t) * ldy + row] = out[r];
    }
  }
}

template <class Dot>
static inline void avx512_gemm_q4(const PackedMatrix& w, int g0, int g1, const QuantActs& x,
                                  float* y, size_t ldy) {
  for (int g = g0; g < g1; ++g) {
    int t = 0;
    for (; t + 4 <= x.n_tok; t += 4) avx512_q4_tokens<Dot, 4>(w, g, x, t, y, ldy);
    for (; t < x.n_tok; ++t) avx512_q4_tokens<Dot, 1>(w, g, x, t, y, ldy);
  }
}

// Lanes 0-7 of a result hold row 0 (or 2), lanes 8-15 row 1 (or 3).
template <class Dot>
static inline void avx512_gemm_q8(const PackedMatrix& w, int g0, int g1, const QuantActs& x,
                                  float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb;
  const __m512i idx01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i idx23 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
  for (int g = g0; g < g1; ++g) {
    const uint8_t* qg = w.q + (size_t)g * nb * 128;
    const uint16_t* dg = w.d + (size_t)g * nb * 4;
    for (int t = 0; t < x.n_tok; ++t) {
      const int16_t* xq = x.q + (size_t)t * k;
      const float* xd = x.d + (size_t)t * nb;
      __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
      for (int b = 0; b < nb; ++b) {
        // 4 rows x 16 int8 of elements 0-15, then of elements 16-31.
        _mm_prefetch((const char*)(qg + (size_t)b * 128 + kPrefetchBytes), _MM_HINT_T0);
        _mm_prefetch((const char*)(qg + (size_t)b * 128 + 64 + kPrefetchBytes), _MM_HINT_T0);
        const __m512i lo = _mm512_loadu_si512(qg + (size_t)b * 128);
        const __m512i hi = _mm512_loadu_si512(qg + (size_t)b * 128 + 64);
        const __m512i xl =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(xq + 32 * b)));
        const __m512i xh =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(xq + 32 * b + 16)));
        const __m512i p01 = Dot::words2(_mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo)), xl,
                                        _mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi)), xh);
        const __m512i p23 = Dot::words2(_mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1)), xl,
                                        _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1)), xh);
        const __m128 s4 = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(dg + 4 * b))),
                                     _mm_set1_ps(xd[b]));
        const __m512 s = _mm512_castps128_ps512(s4);
        acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), _mm512_permutexvar_ps(idx01, s), acc01);
        acc23 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), _mm512_permutexvar_ps(idx23, s), acc23);
      }
      alignas(16) float out[4];
      _mm_store_ps(out, avx512_half_row_sums(acc01, acc23));
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = out[r];
      }
    }
  }
}

// Q8S: as Q8, with the halves' products apart (vpmaddwd each), each times its own scale; the
// multipliers of a block are 8 bytes (half 0 rows 0-3, half 1 rows 0-3), made floats once.
static inline void avx512_gemm_q8s(const PackedMatrix& w, int g0, int g1, const QuantActs& x,
                                   float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb, ns = nb / w.sb;
  const __m512i i0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i i1 = _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4);
  const __m512i i2 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
  const __m512i i3 = _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6);
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
      __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
      __m128 macc = _mm_setzero_ps();
      for (int b = 0; b < nb; ++b) {
        _mm_prefetch((const char*)(qg + (size_t)b * 128 + kPrefetchBytes), _MM_HINT_T0);
        _mm_prefetch((const char*)(qg + (size_t)b * 128 + 64 + kPrefetchBytes), _MM_HINT_T0);
        const __m512i lo = _mm512_loadu_si512(qg + (size_t)b * 128);
        const __m512i hi = _mm512_loadu_si512(qg + (size_t)b * 128 + 64);
        const __m512i xl =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(xq + 32 * b)));
        const __m512i xh =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(xq + 32 * b + 16)));
        const __m512i p0 = _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm512_castsi512_si256(lo)), xl);
        const __m512i p1 = _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm512_castsi512_si256(hi)), xh);
        const __m512i p2 =
            _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(lo, 1)), xl);
        const __m512i p3 =
            _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(hi, 1)), xh);
        const int s = b / w.sb;
        const __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(dg + 4 * s))),
                                     _mm_set1_ps(xd[b]));
        const __m256 sc = _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(scg + 8 * b))));
        const __m512 f = _mm512_castps256_ps512(
            _mm256_mul_ps(sc, _mm256_insertf128_ps(_mm256_castps128_ps256(d4), d4, 1)));
        acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(i0, f), acc01);
        acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(i1, f), acc01);
        acc23 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p2), _mm512_permutexvar_ps(i2, f), acc23);
        acc23 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p3), _mm512_permutexvar_ps(i3, f), acc23);
        int32_t mn4;
        __builtin_memcpy(&mn4, mng + 4 * b, 4);
        const __m128 mn = _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(mn4)));
        macc = _mm_fmadd_ps(
            _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(mg + 4 * s))), mn),
            _mm_set1_ps(xs[b]), macc);
      }
      alignas(16) float out[4];
      _mm_store_ps(out, _mm_add_ps(avx512_half_row_sums(acc01, acc23), macc));
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = out[r];
      }
    }
  }
}

// 16 floats to bf16, rounded to nearest even (finite values).
static inline __m256i avx512_bf16(__m512 f) {
  const __m512i b = _mm512_castps_si512(f);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), odd);
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

static inline void avx512_unpack_bf16(const PackedMatrix& w, bool q4, int g0, int g1, uint16_t* out,
                                      size_t ldo) {
  const int nb = w.nb;
  for (int g = g0; g < g1; ++g)
    for (int b = 0; b < nb; ++b) {
      const size_t gb = (size_t)g * nb + b;
      const uint8_t* q = w.q + gb * (q4 ? 64 : 128);
      for (int r = 0; r < kPackRows; ++r) {
        __m512 lo, hi;
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(w.d[gb * 4 + r]));
        if (q4) {
          const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(q + 16 * r)));
          const __m512i m15 = _mm512_set1_epi32(15);
          const __m512 m = _mm512_set1_ps(w.m_scale * _cvtsh_ss(w.m[gb * 4 + r]));
          lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, m15)), d, m);
          hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), d, m);
        } else {
          lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                 _mm_loadu_si128((const __m128i*)(q + 16 * r)))),
                             d);
          hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                 _mm_loadu_si128((const __m128i*)(q + 64 + 16 * r)))),
                             d);
        }
        uint16_t* o = out + (size_t)((g - g0) * kPackRows + r) * ldo + 32 * b;
        _mm256_storeu_si256((__m256i*)o, avx512_bf16(lo));
        _mm256_storeu_si256((__m256i*)(o + 16), avx512_bf16(hi));
      }
    }
}

}  // namespace
}  // namespace amskv
