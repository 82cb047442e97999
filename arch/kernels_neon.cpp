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
  static B load_nib(const uint8_t* p, bool high) {
    uint32_t w;
    memcpy(&w, p, 4);
    uint32x4_t x = vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w)))));
    if (high) x = vshrq_n_u32(x, 4);
    return vcvtq_f32_u32(vandq_u32(x, vdupq_n_u32(15)));
  }
  static B haddp(const B* r) { return vpaddq_f32(vpaddq_f32(r[0], r[1]), vpaddq_f32(r[2], r[3])); }
};

}  // namespace neon

extern const Kernels kKernelsNeon;
constexpr Kernels kKernelsNeon = SimdKernels<neon::Ops>::table("neon");

}  // namespace amskv
