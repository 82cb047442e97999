// AVX-512 (F/BW/DQ/VL) variant. Compiled with the AVX-512 flags, only this file.
#include <immintrin.h>

#include "arch/kernels_simd.h"

namespace amskv {
namespace avx512 {

struct Ops {
  using arch = xsimd::avx512bw;  // xsimd's avx512f level needs DQ intrinsics anyway
  using B = xsimd::batch<float, arch>;
  static B load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
  }
  static B load_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)));
  }
  static void store_f16(uint16_t* p, B x) {
    _mm256_storeu_si256((__m256i*)p, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
  static void store_i8(int8_t* p, B x) {
    _mm_storeu_si128((__m128i*)p, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(x)));
  }
  static B load_nib(const uint8_t* p, bool high) {
    __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p));
    if (high) x = _mm512_srli_epi32(x, 4);
    return _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15)));
  }
  // Lane i = sum of r[i]'s sixteen lanes: fold each row to 256 bits, then two 8-row sums.
  static B haddp(const B* r) {
    __m256 h[16];
    for (int i = 0; i < 16; ++i)
      h[i] = _mm256_add_ps(_mm512_castps512_ps256(r[i]), _mm512_extractf32x8_ps(r[i], 1));
    return _mm512_insertf32x8(_mm512_castps256_ps512(hadd8(h)), hadd8(h + 8), 1);
  }
  static __m256 hadd8(const __m256* x) {
    // hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7]
    __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(x[0], x[1]), _mm256_hadd_ps(x[2], x[3]));
    __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(x[4], x[5]), _mm256_hadd_ps(x[6], x[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
  }
};

}  // namespace avx512

extern const Kernels kKernelsAvx512;
constexpr Kernels kKernelsAvx512 = SimdKernels<avx512::Ops>::table("avx512");

}  // namespace amskv
