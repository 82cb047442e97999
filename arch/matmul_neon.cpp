// NEON variant of the matrix-product kernels for aarch64: each row's values widened to int16
// and multiplied into int32 lanes with the token's block of activations (vmlal), one fma per
// row and block.
#include <arm_neon.h>

#include "arch/matmul.h"

namespace amskv {
namespace neon {
namespace {

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
      float32x4_t acc = vdupq_n_f32(0.f), macc = vdupq_n_f32(0.f);
      for (int b = 0; b < nb; ++b) {
        const uint8_t* q = qg + (size_t)b * qbytes;
        __builtin_prefetch(q + kPrefetchBytes);
        if (!Q4) __builtin_prefetch(q + 64 + kPrefetchBytes);
        const int16_t* xb = xq + 32 * b;
        const int16x8_t x0 = vld1q_s16(xb), x1 = vld1q_s16(xb + 8), x2 = vld1q_s16(xb + 16),
                        x3 = vld1q_s16(xb + 24);
        int32_t sums[kPackRows];
        for (int r = 0; r < kPackRows; ++r) {
          int16x8_t l0, l1, h0, h1;  // elements 0-7, 8-15, 16-23, 24-31
          if (Q4) {
            const uint8x16_t v = vld1q_u8(q + 16 * r);
            const uint8x16_t lo = vandq_u8(v, vdupq_n_u8(15)), hi = vshrq_n_u8(v, 4);
            l0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(lo)));
            l1 = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(lo)));
            h0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(hi)));
            h1 = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(hi)));
          } else {
            const int8x16_t lo = vld1q_s8((const int8_t*)q + 16 * r);
            const int8x16_t hi = vld1q_s8((const int8_t*)q + 64 + 16 * r);
            l0 = vmovl_s8(vget_low_s8(lo)), l1 = vmovl_s8(vget_high_s8(lo));
            h0 = vmovl_s8(vget_low_s8(hi)), h1 = vmovl_s8(vget_high_s8(hi));
          }
          int32x4_t s = vmull_s16(vget_low_s16(l0), vget_low_s16(x0));
          s = vmlal_high_s16(s, l0, x0);
          s = vmlal_s16(s, vget_low_s16(l1), vget_low_s16(x1));
          s = vmlal_high_s16(s, l1, x1);
          s = vmlal_s16(s, vget_low_s16(h0), vget_low_s16(x2));
          s = vmlal_high_s16(s, h0, x2);
          s = vmlal_s16(s, vget_low_s16(h1), vget_low_s16(x3));
          s = vmlal_high_s16(s, h1, x3);
          sums[r] = vaddvq_s32(s);
        }
        const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(dg + 4 * b)));
        acc = vfmaq_f32(acc, vcvtq_f32_s32(vld1q_s32(sums)), vmulq_n_f32(d, xd[b]));
        if (Q4)
          macc = vfmaq_n_f32(macc, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(mg + 4 * b))), xs[b]);
      }
      float out[4];
      vst1q_f32(out, vfmaq_n_f32(acc, macc, w.m_scale));
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = out[r];
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
    const int8_t* qg = (const int8_t*)w.q + (size_t)g * nb * 128;
    const int8_t* scg = w.sc + (size_t)g * nb * 8;
    const int8_t* mng = w.mn + (size_t)g * nb * 4;
    const uint16_t* dg = w.d + (size_t)g * ns * 4;
    const uint16_t* mg = w.m + (size_t)g * ns * 4;
    for (int t = 0; t < x.n_tok; ++t) {
      const int16_t* xq = x.q + (size_t)t * k;
      const float* xd = x.d + (size_t)t * nb;
      const float* xs = x.s + (size_t)t * nb;
      float32x4_t acc = vdupq_n_f32(0.f), macc = vdupq_n_f32(0.f);
      for (int b = 0; b < nb; ++b) {
        const int8_t* q = qg + (size_t)b * 128;
        __builtin_prefetch(q + kPrefetchBytes);
        __builtin_prefetch(q + 64 + kPrefetchBytes);
        const int16_t* xb = xq + 32 * b;
        const int16x8_t x0 = vld1q_s16(xb), x1 = vld1q_s16(xb + 8), x2 = vld1q_s16(xb + 16),
                        x3 = vld1q_s16(xb + 24);
        int32_t sums[2][kPackRows];
        for (int r = 0; r < kPackRows; ++r) {
          const int8x16_t lo = vld1q_s8(q + 16 * r), hi = vld1q_s8(q + 64 + 16 * r);
          const int16x8_t l0 = vmovl_s8(vget_low_s8(lo)), l1 = vmovl_s8(vget_high_s8(lo));
          const int16x8_t h0 = vmovl_s8(vget_low_s8(hi)), h1 = vmovl_s8(vget_high_s8(hi));
          int32x4_t s = vmull_s16(vget_low_s16(l0), vget_low_s16(x0));
          s = vmlal_high_s16(s, l0, x0);
          s = vmlal_s16(s, vget_low_s16(l1), vget_low_s16(x1));
          s = vmlal_high_s16(s, l1, x1);
          int32x4_t u = vmull_s16(vget_low_s16(h0), vget_low_s16(x2));
          u = vmlal_high_s16(u, h0, x2);
          u = vmlal_s16(u, vget_low_s16(h1), vget_low_s16(x3));
          u = vmlal_high_s16(u, h1, x3);
          sums[0][r] = vaddvq_s32(s);
          sums[1][r] = vaddvq_s32(u);
        }
        const int sb = b / w.sb;
        const float32x4_t d =
            vmulq_n_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(dg + 4 * sb))), xd[b]);
        const int16x8_t sc = vmovl_s8(vld1_s8(scg + 8 * b));
        const float32x4_t sc0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(sc)));
        const float32x4_t sc1 = vcvtq_f32_s32(vmovl_s16(vget_high_s16(sc)));
        acc = vfmaq_f32(acc, vcvtq_f32_s32(vld1q_s32(sums[0])), vmulq_f32(d, sc0));
        acc = vfmaq_f32(acc, vcvtq_f32_s32(vld1q_s32(sums[1])), vmulq_f32(d, sc1));
        int8_t mn8[8] = {0};
        __builtin_memcpy(mn8, mng + 4 * b, 4);
        const float32x4_t mn = vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(mn8)))));
        const float32x4_t m = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(mg + 4 * sb)));
        macc = vfmaq_n_f32(macc, vmulq_f32(m, mn), xs[b]);
      }
      float out[4];
      vst1q_f32(out, vaddq_f32(acc, macc));
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = out[r];
      }
    }
  }
}

}  // namespace
}  // namespace neon

extern const MatmulKernels kMatmulNeon;
constexpr MatmulKernels kMatmulNeon = {"neon", neon::gemm_q4, neon::gemm_q8, neon::gemm_q8s,
                                       nullptr};

}  // namespace amskv
