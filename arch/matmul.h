// arch: the model runner's matrix-product kernels. A table of their own, built into the model
// library, so the core (libamskv.a) carries only attention, RoPE and conversion kernels.
// The same rules as arch/kernels.h: a scalar reference every variant is tested against, one
// translation unit per variant with its own flags (arch/matmul_<variant>.cpp), chosen once
// for the CPU (the ISA of the session kernels, and VNNI where the CPU has it).
//
// Weights come repacked at load (runtime/model/matmul.cpp) so a kernel streams them: rows in
// groups of kPackRows, and for each block of 32 columns the group's values side by side with
// their f16 scales apart:
//   Q4 (from Q4_0 and Q4_1): q [groups][nb][4 rows][16 bytes], element i of a block in the low
//     nibble of byte i and element i + 16 in the high one, unsigned; d and m [groups][nb][4]
//     f16; w = d * q + m_scale * m (Q4_1: m_scale 1; Q4_0: m = d, m_scale -8).
//   Q8 (from Q8_0 and Q5_0): q [groups][nb][2][4 rows][16 int8], elements 0-15 of the block for
//     the four rows, then elements 16-31; d [groups][nb][4] f16; w = d * q.
//   Q8S (from Q5_1 and the K-quants Q4_K, Q5_K, Q6_K): the Q8 values, and their scales as the
//     file has them, small integers times f16 scales of a superblock of sb blocks, so the
//     products stay exact: sc [groups][nb][2][4] int8 (half 0 = elements 0-15 of the block, half
//     1 = elements 16-31), mn [groups][nb][4] int8, d and m [groups][nb / sb][4] f16;
//     w = d * sc_half * q + m * mn.
// Activations are quantized to 16 bits per block of 32 (x ~= xd * xq), so every block product
// is an exact integer sum, scaled once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/kernels.h"

namespace amskv {

constexpr int kPackRows = 4;
// How far ahead of the values a kernel reads it asks for them (software prefetch): the
// hardware prefetcher alone leaves a compute-heavy stream well below memory speed here.
// Measured with amskv_microbench_matmul (docs/performance.md): 3 KiB.
constexpr int kPrefetchBytes = 3072;

struct PackedMatrix {
  const uint8_t* q;
  const uint16_t* d;  // f16
  const uint16_t* m;  // f16, Q4 only (null for Q8)
  float m_scale;
  int nb;      // blocks of 32 per row
  int n_rows;  // rows of the matrix (the last group is padded with zero rows)
  // Q8S only (null otherwise): the multipliers, and blocks per superblock of d and m.
  const int8_t* sc = nullptr;
  const int8_t* mn = nullptr;
  int sb = 1;
};

// n_tok tokens of k = 32 nb activations: q [n_tok][k] int16, d [n_tok][nb] the block scales,
// s [n_tok][nb] = d * (sum of the block's q), which the minima multiply. lo and hi [n_tok][k]
// are q's bytes, q = 256 hi + lo (lo unsigned, hi signed): with them a Q4 block is two 8-bit
// dot products (u8 x s8, as VNNI's vpdpbusd and vpmaddubsw take them), still exact.
struct QuantActs {
  const int16_t* q;
  const float* d;
  const float* s;
  int n_tok;
  const uint8_t* lo;
  const int8_t* hi;
};

struct MatmulKernels {
  const char* name;
  // y[t * ldy + r] = row r of w . activations of token t, for the rows of groups [g0, g1)
  // below w.n_rows and every token.
  void (*gemm_q4)(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy);
  void (*gemm_q8)(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy);
  void (*gemm_q8s)(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy);
  // The rows of groups [g0, g1) as bf16 (rounded to nearest even from the f32 value
  // fma(q, d, m_scale * m), or q * d for Q8), row 4 g0 + i at out + i * ldo, 32 nb values each;
  // padding rows come out zero. What a bf16 matrix product (oneDNN) reads. Null where the
  // variant has none (NEON).
  void (*unpack_bf16)(const PackedMatrix& w, bool q4, int g0, int g1, uint16_t* out, size_t ldo);
};

// f32 to bf16, rounded to nearest even (finite values).
inline uint16_t f32_to_bf16(float f) {
  uint32_t b;
  __builtin_memcpy(&b, &f, 4);
  return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

// The variants: the reference, then the SIMD ones of this build (absent ones are null).
enum class MatmulVariant { kRef, kAvx2, kAvx512, kAvx512Vnni, kNeon, kCount };
extern const MatmulKernels kMatmulRef;
extern const MatmulKernels kMatmulAvx2;
extern const MatmulKernels kMatmulAvx512;
extern const MatmulKernels kMatmulAvx512Vnni;
extern const MatmulKernels kMatmulNeon;

// The variant's table when this build has it and the CPU runs it, else nullptr.
const MatmulKernels* matmul_kernels_for(MatmulVariant v);
const char* matmul_variant_name(MatmulVariant v);
// The variant for the session kernels in use (active_kernels()): the same ISA, and the
// AVX-512 VNNI one where the CPU has VNNI; nullptr if none.
const MatmulKernels* matmul_kernels();

}  // namespace amskv
