// AVX-512 (F/BW/DQ/VL) variant of the matrix-product kernels. Compiled with the AVX-512
// flags, only this file.
#include "arch/matmul_avx512.h"

namespace amskv {
namespace avx512 {
namespace {

struct Dot {
  // a . b + c . d in int32 lanes, four byte products each (u8 x s8: vpmaddubsw, then pairs)
  static __m512i bytes2(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ones = _mm512_set1_epi16(1);
    return _mm512_add_epi32(_mm512_madd_epi16(_mm512_maddubs_epi16(a, b), ones),
                            _mm512_madd_epi16(_mm512_maddubs_epi16(c, d), ones));
  }
  // a . b + c . d in int32 lanes, two int16 products each (vpmaddwd)
  static __m512i words2(__m512i a, __m512i b, __m512i c, __m512i d) {
    return _mm512_add_epi32(_mm512_madd_epi16(a, b), _mm512_madd_epi16(c, d));
  }
};

}  // namespace
}  // namespace avx512

extern const MatmulKernels kMatmulAvx512;
constexpr MatmulKernels kMatmulAvx512 = {"avx512", avx512_gemm_q4<avx512::Dot>,
                                         avx512_gemm_q8<avx512::Dot>, avx512_gemm_q8s,
                                         avx512_unpack_bf16};

}  // namespace amskv
