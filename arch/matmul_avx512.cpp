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

void gemm_q4(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  avx512_gemm_q4<Dot>(w, g0, g1, x, y, ldy);
}
void gemm_q8(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  avx512_gemm_q8<Dot>(w, g0, g1, x, y, ldy);
}

void unpack_bf16(const PackedMatrix& w, bool q4, int g0, int g1, uint16_t* out, size_t ldo) {
  avx512_unpack_bf16(w, q4, g0, g1, out, ldo);
}

}  // namespace
}  // namespace avx512

extern const MatmulKernels kMatmulAvx512;
constexpr MatmulKernels kMatmulAvx512 = {"avx512", avx512::gemm_q4, avx512::gemm_q8,
                                         avx512::unpack_bf16};

}  // namespace amskv
