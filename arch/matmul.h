// arch: the model runner's matrix-product kernels. A table of their own, built into the model
// library, so the core (libamskv.a) carries only attention, RoPE and conversion kernels.
// The same rules as arch/kernels.h: a scalar reference every variant is tested against, one
// translation unit per ISA with its own flags (arch/matmul_<isa>.cpp), and the variant the
// session kernels use (arch/dispatch.cpp picks it once).
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/kernels.h"

namespace amskv {

struct MatmulKernels {
  const char* name;
  // Blocked int16 dot product: sum_b w_scale[b] * x_scale[b] * sum_{i<32} w[32b + i] *
  // x[32b + i] over n_blocks blocks. The integer sum of a block is exact when |w| * |x| * 32
  // < 2^31 (int8 or 4-bit weights against 16-bit activations).
  float (*dot_i16)(const int16_t* w, const float* w_scale, const int16_t* x, const float* x_scale,
                   int n_blocks);
  // The quantized values of n_blocks GGUF blocks of 32 as int16 (scales stay with the
  // caller). Block b starts at src + b * block_bytes; its values start `offset` bytes in:
  // 32 int8 (nibbles = 0), or 16 bytes holding element i in the low nibble of byte i and
  // element i + 16 in the high one, minus `zero` (nibbles = 1: Q4_0 has zero 8, Q4_1 0).
  void (*unpack_i16)(const uint8_t* src, int block_bytes, int offset, int n_blocks, int nibbles,
                     int zero, int16_t* out);
};

extern const MatmulKernels kMatmulRef;
extern const MatmulKernels kMatmulAvx2;
extern const MatmulKernels kMatmulAvx512;
extern const MatmulKernels kMatmulNeon;

const MatmulKernels* matmul_kernels_for(Isa isa);  // nullptr when !isa_supported(isa)
// The variant of the session kernels in use (active_kernels()), or nullptr.
const MatmulKernels* matmul_kernels();

}  // namespace amskv
