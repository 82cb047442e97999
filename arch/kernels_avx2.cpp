// AVX2 + FMA + F16C variant. Compiled with -mavx2 -mfma -mf16c, only this file.
#include <immintrin.h>

#include "arch/kernels_simd.h"

namespace amskv {
namespace avx2 {

struct Ops {
  using arch = xsimd::fma3<xsimd::avx2>;
  using B = xsimd::batch<float, arch>;
  static B load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
  }
  static B load_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
  }
  static void store_f16(uint16_t* p, B x) {
    _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
  static void store_i8(int8_t* p, B x) {
    __m256i i = _mm256_cvtps_epi32(x);  // MXCSR default: round to nearest even
    __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i*)p, _mm_packs_epi16(s16, s16));
  }
  static B load_nib(const uint8_t* p, bool high) {
    __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p));
    if (high) x = _mm256_srli_epi32(x, 4);
    return _mm256_cvtepi32_ps(_mm256_and_si256(x, _mm256_set1_epi32(15)));
  }
  static B haddp(const B* r) { return hadd8(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]); }
  // Lane i = sum of x_i's eight lanes.
  static __m256 hadd8(__m256 x0, __m256 x1, __m256 x2, __m256 x3, __m256 x4, __m256 x5, __m256 x6,
                      __m256 x7) {
    // hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7]
    __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(x0, x1), _mm256_hadd_ps(x2, x3));
    __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(x4, x5), _mm256_hadd_ps(x6, x7));
    // u0 = [x0..x3 low-half sums | x0..x3 high-half sums], u1 likewise for x4..x7
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
  }
};

}  // namespace avx2

extern const Kernels kKernelsAvx2;
constexpr Kernels kKernelsAvx2 = SimdKernels<avx2::Ops>::table("avx2");

}  // namespace amskv
