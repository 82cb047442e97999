// NEON variant of the matrix-product kernels for aarch64.
#include <arm_neon.h>

#include "arch/matmul.h"

namespace amskv {
namespace neon {
namespace {

// Per block: widening multiply-accumulates give four exact int32 sums, scaled into four
// float lanes.
float dot_i16(const int16_t* w, const float* ws, const int16_t* x, const float* xs, int nb) {
  float32x4_t acc = vdupq_n_f32(0.f);
  for (int b = 0; b < nb; ++b, w += 32, x += 32) {
    int32x4_t s = vdupq_n_s32(0);
    for (int i = 0; i < 32; i += 8) {
      const int16x8_t a = vld1q_s16(w + i), c = vld1q_s16(x + i);
      s = vmlal_s16(s, vget_low_s16(a), vget_low_s16(c));
      s = vmlal_high_s16(s, a, c);
    }
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), ws[b] * xs[b]);
  }
  return vaddvq_f32(acc);
}
void unpack_i16(const uint8_t* src, int block_bytes, int offset, int nb, int nibbles, int zero,
                int16_t* out) {
  const int16x8_t z = vdupq_n_s16((int16_t)zero);
  for (int b = 0; b < nb; ++b, out += 32) {
    const uint8_t* v = src + (size_t)b * block_bytes + offset;
    if (nibbles) {
      const uint8x16_t x = vld1q_u8(v);
      const uint8x16_t lo = vandq_u8(x, vdupq_n_u8(15)), hi = vshrq_n_u8(x, 4);
      vst1q_s16(out, vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(lo))), z));
      vst1q_s16(out + 8, vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(lo))), z));
      vst1q_s16(out + 16, vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(hi))), z));
      vst1q_s16(out + 24, vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(hi))), z));
    } else {
      const int8x16_t a = vld1q_s8((const int8_t*)v), c = vld1q_s8((const int8_t*)v + 16);
      vst1q_s16(out, vmovl_s8(vget_low_s8(a)));
      vst1q_s16(out + 8, vmovl_s8(vget_high_s8(a)));
      vst1q_s16(out + 16, vmovl_s8(vget_low_s8(c)));
      vst1q_s16(out + 24, vmovl_s8(vget_high_s8(c)));
    }
  }
}
}  // namespace
}  // namespace neon

extern const MatmulKernels kMatmulNeon;
constexpr MatmulKernels kMatmulNeon = {"neon", neon::dot_i16, neon::unpack_i16};

}  // namespace amskv
