// AVX-512 VNNI variant of the matrix-product kernels: the AVX-512 kernel with vpdpwssd, which
// multiplies and accumulates int16 pairs in one instruction. Compiled with the AVX-512 and
// VNNI flags, only this file.
#include "arch/matmul_avx512.h"

namespace amskv {
namespace avx512vnni {
namespace {

struct Dot {
  // a . b + c . d in int32 lanes, four byte products each (u8 x s8: vpdpbusd)
  static __m512i bytes2(__m512i a, __m512i b, __m512i c, __m512i d) {
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), a, b), c, d);
  }
  // a . b + c . d in int32 lanes, two int16 products each (vpdpwssd)
  static __m512i words2(__m512i a, __m512i b, __m512i c, __m512i d) {
    return _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(_mm512_setzero_si512(), a, b), c, d);
  }
};

}  // namespace
}  // namespace avx512vnni

extern const MatmulKernels kMatmulAvx512Vnni;
constexpr MatmulKernels kMatmulAvx512Vnni = {"avx512vnni", avx512_gemm_q4<avx512vnni::Dot>,
                                             avx512_gemm_q8<avx512vnni::Dot>, avx512_gemm_q8s,
                                             avx512_unpack_bf16};

}  // namespace amskv
