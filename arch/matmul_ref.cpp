// Scalar reference of the matrix-product kernels, and the choice of table (generic code: it
// reads the per-ISA tables only after the CPU check).
#include <cstring>

#include "arch/matmul.h"

namespace amskv {
namespace {

float dot_i16(const int16_t* w, const float* w_scale, const int16_t* x, const float* x_scale,
              int n_blocks) {
  float sum = 0.f;
  for (int b = 0; b < n_blocks; ++b, w += 32, x += 32) {
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += (int32_t)w[i] * x[i];
    sum += w_scale[b] * x_scale[b] * (float)s;
  }
  return sum;
}

void unpack_i16(const uint8_t* src, int block_bytes, int offset, int n_blocks, int nibbles,
                int zero, int16_t* out) {
  for (int b = 0; b < n_blocks; ++b, out += 32) {
    const uint8_t* v = src + (size_t)b * block_bytes + offset;
    if (!nibbles) {
      for (int i = 0; i < 32; ++i) out[i] = (int8_t)v[i];
    } else {
      for (int i = 0; i < 16; ++i) {
        out[i] = (int16_t)((v[i] & 15) - zero);
        out[i + 16] = (int16_t)((v[i] >> 4) - zero);
      }
    }
  }
}

const MatmulKernels* compiled(Isa isa) {
  switch (isa) {
    case Isa::kRef:
      return &kMatmulRef;
#ifdef AMSKV_HAVE_AVX2
    case Isa::kAvx2:
      return &kMatmulAvx2;
#endif
#ifdef AMSKV_HAVE_AVX512
    case Isa::kAvx512:
      return &kMatmulAvx512;
#endif
#ifdef AMSKV_HAVE_NEON
    case Isa::kNeon:
      return &kMatmulNeon;
#endif
    default:
      return nullptr;
  }
}

}  // namespace

extern const MatmulKernels kMatmulRef;
constexpr MatmulKernels kMatmulRef = {"ref", dot_i16, unpack_i16};

const MatmulKernels* matmul_kernels_for(Isa isa) {
  return isa_supported(isa) ? compiled(isa) : nullptr;
}

const MatmulKernels* matmul_kernels() {
  const Kernels* k = active_kernels();
  Isa isa;
  return k && isa_from_name(k->name, &isa) ? matmul_kernels_for(isa) : nullptr;
}

}  // namespace amskv
