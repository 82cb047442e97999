// arch: CPU feature detection and the kernel table.
//
// Every kernel exists as a scalar reference ("ref") and as SIMD variants compiled in their
// own translation units with their own flags (kernels_avx2.cpp, kernels_avx512.cpp,
// kernels_neon.cpp). Generic code only ever calls through a const Kernels table, so no
// AVX-512 instruction can run on a CPU that lacks it.
//
// Shapes: head_dim `d` is a multiple of 8 in [32, 256]. Keys and values of one KV head are
// rows [n][d] in the storage dtype; q8 rows carry one float scale per row.
//
// A q4 row is d / 32 blocks of kQ4BlockBytes: f16 scale, f16 min, then 16 bytes holding
// element i of the block in the low nibble of byte i and element i + 16 in the high one;
// x = scale * q + min (q in [0, 15]). Such a row needs d % 32 == 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace amskv {

constexpr int kQ4Block = 32;       // elements per q4 block
constexpr int kQ4BlockBytes = 20;  // 2 + 2 + 16

enum class Isa { kRef = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3, kCount = 4 };

struct Kernels {
  const char* name;
  // scores[g * ld + j] = dot(q[g * d ...], k[j * d ...]) for g < n_q, j < n.
  void (*qk_f32)(const float* q, int n_q, const float* k, int n, int d, float* scores, int ld);
  void (*qk_f16)(const float* q, int n_q, const uint16_t* k, int n, int d, float* scores, int ld);
  void (*qk_q8)(const float* q, int n_q, const int8_t* k, const float* k_scale, int n, int d,
                float* scores, int ld);
  void (*qk_q4)(const float* q, int n_q, const uint8_t* k, int n, int d, float* scores, int ld);
  // In place, numerically stable: x[j] = exp(x[j] - max) / sum.
  void (*softmax)(float* x, int n);
  // out[g * d + c] = sum_j p[g * ld + j] * v[j * d + c] for g < n_q, c < d.
  void (*av_f32)(const float* p, int n_q, int ld, const float* v, int n, int d, float* out);
  void (*av_f16)(const float* p, int n_q, int ld, const uint16_t* v, int n, int d, float* out);
  void (*av_q8)(const float* p, int n_q, int ld, const int8_t* v, const float* v_scale, int n,
                int d, float* out);
  void (*av_q4)(const float* p, int n_q, int ld, const uint8_t* v, int n, int d, float* out);
  // RoPE on n_heads rows of d floats in place; `table` comes from rope_table() (rope.h).
  void (*rope_normal)(float* x, int n_heads, int d, const float* table);
  void (*rope_neox)(float* x, int n_heads, int d, const float* table);
  // Storage conversion. f16 saturates at +-65504; q8 returns the row scale maxabs/127 and
  // stores round-to-nearest-even(x * 127 / maxabs).
  void (*to_f16)(const float* x, uint16_t* y, int n);
  void (*from_f16)(const uint16_t* x, float* y, int n);
  float (*to_q8)(const float* x, int8_t* y, int n);
  // q4 of n elements (n % 32 == 0): per block min and max of x clamped to +-65504, scale =
  // (max - min) / 15 rounded to f16, min rounded to f16, q = clamp(round-to-nearest-even(
  // (x - min) / scale), 0, 15) with the rounded scale and min (q = 0 when the scale is 0).
  void (*to_q4)(const float* x, uint8_t* y, int n);
  // Compaction: row i = row idx[i] for i < n; idx strictly ascending, so idx[i] >= i and
  // the copy is safe in place.
  void (*gather_rows)(void* base, size_t row_bytes, const int32_t* idx, int n);
};

// The tables, constant-initialised data in their own translation units; each SIMD one
// exists only when the build has AMSKV_HAVE_<ISA> (see CMakeLists.txt).
extern const Kernels kKernelsRef;
extern const Kernels kKernelsAvx2;
extern const Kernels kKernelsAvx512;
extern const Kernels kKernelsNeon;

const char* isa_name(Isa isa);
bool isa_from_name(const char* name, Isa* out);
// The CPU and the build both support this variant.
bool isa_supported(Isa isa);
const Kernels* kernels_for(Isa isa);  // nullptr when !isa_supported(isa)
bool cpu_avx512_vnni();               // AVX-512 and its VNNI extension (the model runner's use)
bool cpu_avx512_bf16();               // AVX-512 and its BF16 extension (oneDNN's bf16 products)
Isa best_isa();

// The table new sessions use: best_isa(), or AMSKV_ISA from the environment, or the one
// forced by set_active_isa.
const Kernels* active_kernels();
bool set_active_isa(const char* name);  // false + thread error when unknown/unsupported

}  // namespace amskv
