// AVX2 variant of the matrix-product kernels. Compiled with -mavx2 -mfma -mf16c, only this
// file.
#include <immintrin.h>

#include "arch/matmul.h"
#include "arch/unpack_x86.h"

namespace amskv {
namespace avx2 {
namespace {

__m256i block(const int16_t* w, const int16_t* x) {
  const __m256i lo = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i*)w),
                                       _mm256_loadu_si256((const __m256i*)x));
  const __m256i hi = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i*)(w + 16)),
                                       _mm256_loadu_si256((const __m256i*)(x + 16)));
  return _mm256_add_epi32(lo, hi);
}

// Per block: two vpmaddwd give eight exact int32 sums, scaled into eight float lanes.
float dot_i16(const int16_t* w, const float* ws, const int16_t* x, const float* xs, int nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int b = 0;
  for (; b + 2 <= nb; b += 2, w += 64, x += 64) {
    const __m256i p0 = block(w, x), p1 = block(w + 32, x + 32);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(ws[b] * xs[b]), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(ws[b + 1] * xs[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
  }
  if (b < nb)
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(ws[b] * xs[b]), _mm256_cvtepi32_ps(block(w, x)), acc0);
  const __m256 a = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
void unpack_i16(const uint8_t* src, int block_bytes, int offset, int nb, int nibbles, int zero,
                int16_t* out) {
  unpack_i16_x86(src, block_bytes, offset, nb, nibbles, zero, out);
}
}  // namespace
}  // namespace avx2

extern const MatmulKernels kMatmulAvx2;
constexpr MatmulKernels kMatmulAvx2 = {"avx2", avx2::dot_i16, avx2::unpack_i16};

}  // namespace amskv
