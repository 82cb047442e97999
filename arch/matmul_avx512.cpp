// AVX-512 (F/BW/DQ/VL) variant of the matrix-product kernels. Compiled with the AVX-512
// flags, only this file.
#include <immintrin.h>

#include "arch/matmul.h"
#include "arch/unpack_x86.h"

namespace amskv {
namespace avx512 {
namespace {

__m512i block(const int16_t* w, const int16_t* x) {
  return _mm512_madd_epi16(_mm512_loadu_si512(w), _mm512_loadu_si512(x));
}

// Per block: one vpmaddwd gives sixteen exact int32 sums, scaled into sixteen float lanes.
float dot_i16(const int16_t* w, const float* ws, const int16_t* x, const float* xs, int nb) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int b = 0;
  for (; b + 2 <= nb; b += 2, w += 64, x += 64) {
    const __m512i p0 = block(w, x), p1 = block(w + 32, x + 32);
    acc0 = _mm512_fmadd_ps(_mm512_set1_ps(ws[b] * xs[b]), _mm512_cvtepi32_ps(p0), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_set1_ps(ws[b + 1] * xs[b + 1]), _mm512_cvtepi32_ps(p1), acc1);
  }
  if (b < nb)
    acc0 = _mm512_fmadd_ps(_mm512_set1_ps(ws[b] * xs[b]), _mm512_cvtepi32_ps(block(w, x)), acc0);
  const __m512 a = _mm512_add_ps(acc0, acc1);
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
void unpack_i16(const uint8_t* src, int block_bytes, int offset, int nb, int nibbles, int zero,
                int16_t* out) {
  unpack_i16_x86(src, block_bytes, offset, nb, nibbles, zero, out);
}
}  // namespace
}  // namespace avx512

extern const MatmulKernels kMatmulAvx512;
constexpr MatmulKernels kMatmulAvx512 = {"avx512", avx512::dot_i16, avx512::unpack_i16};

}  // namespace amskv
