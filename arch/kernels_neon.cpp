// NEON variant for aarch64 (Advanced SIMD is part of the base ISA there).
#include <arm_neon.h>

#include "arch/kernels_simd.h"

namespace amskv {
namespace neon {

struct Ops {
  using arch = xsimd::neon64;
  using B = xsimd::batch<float, arch>;
  static B load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static B load_i8(const int8_t* p) {
    int32_t w;
    memcpy(&w, p, 4);
    int16x8_t s16 = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(w)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(s16)));
  }
  static void store_f16(uint16_t* p, B x) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(x))); }
  static void store_i8(int8_t* p, B x) {
    int16x4_t s16 = vqmovn_s32(vcvtnq_s32_f32(x));  // round to nearest even
    int8x8_t s8 = vqmovn_s16(vcombine_s16(s16, s16));
    int8_t lanes[8];
    vst1_s8(lanes, s8);
    memcpy(p, lanes, 4);
  }
  static B haddp(const B* r) { return vpaddq_f32(vpaddq_f32(r[0], r[1]), vpaddq_f32(r[2], r[3])); }
  // Per block: widening multiply-accumulates give four exact int32 sums, scaled into four
  // float lanes.
  static float dot_i16(const int16_t* w, const float* ws, const int16_t* x, const float* xs,
                       int nb) {
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
  static void unpack_i16(const uint8_t* src, int block_bytes, int offset, int nb, int nibbles,
                         int zero, int16_t* out) {
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
};

}  // namespace neon

extern const Kernels kKernelsNeon;
constexpr Kernels kKernelsNeon = SimdKernels<neon::Ops>::table("neon");

}  // namespace amskv
