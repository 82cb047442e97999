#include "runtime/model/matmul.h"

#include <cmath>
#include <cstring>

// x86-64: the row kernels are also built for AVX2 and picked at load time (GCC/Clang
// function multiversioning); elsewhere the baseline ISA (NEON on aarch64) is all there is.
// The integer sums are exact and FMA contraction stays off in ISO C++ mode, so every
// variant gives the same floats.
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define AMSKV_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef AMSKV_CLONES
#define AMSKV_CLONES
#endif
#define AMSKV_INLINE inline __attribute__((always_inline))
// Compilers fully unroll short fixed loops before they vectorize, and the unrolled byte
// code then stays scalar; kept as loops, they vectorize.
#define AMSKV_VECTOR_LOOP _Pragma("GCC unroll 1")

namespace amskv {
namespace {

AMSKV_INLINE float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

AMSKV_INLINE uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Exact half -> float, inline and without tables (Maratyszcza's FP16 library): normals are
// rebiased by a multiply, subnormals come from a magic-number subtraction.
AMSKV_INLINE float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
  const float normal = bits_to_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float subnormal = bits_to_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  return bits_to_f32(sign | (two_w < (1u << 27) ? f32_to_bits(subnormal) : f32_to_bits(normal)));
}

// Bytes of one block of 32 weights.
template <int T>
constexpr int kBlockBytes = T == GGML_TYPE_F32    ? 128
                            : T == GGML_TYPE_F16  ? 64
                            : T == GGML_TYPE_Q8_0 ? 34   // f16 d, int8 q[32]
                            : T == GGML_TYPE_Q4_0 ? 18   // f16 d, 4-bit q[32]
                                                  : 20;  // Q4_1: f16 d, f16 m, 4-bit q[32]

// dot(weight block, activation block). 4-bit blocks hold element i in the low nibble of
// byte i and element i + 16 in the high one; Q4_0 is d * (q - 8), Q4_1 is d * q + m.
template <int T>
AMSKV_INLINE float block_dot(const uint8_t* b, const BlockQ16& x) {
  int32_t s = 0;
  if constexpr (T == GGML_TYPE_Q8_0) {
    const int8_t* q = (const int8_t*)(b + 2);
    AMSKV_VECTOR_LOOP
    for (int i = 0; i < 32; ++i) s += q[i] * x.q[i];
    return half(b) * (x.d * (float)s);
  } else {
    const uint8_t* q = b + (T == GGML_TYPE_Q4_0 ? 2 : 4);
    AMSKV_VECTOR_LOOP
    for (int i = 0; i < 16; ++i) s += (q[i] & 15) * x.q[i] + (q[i] >> 4) * x.q[i + 16];
    if constexpr (T == GGML_TYPE_Q4_0) return half(b) * (x.d * (float)s - 8.f * x.s);
    return half(b) * (x.d * (float)s) + half(b + 2) * x.s;
  }
}

// Rows [r0, r1) of one output for every token.
struct Rows {
  const GgufTensor* w;
  const float* x;
  const BlockQ16* xq;
  int n_tok;
  float* y;
  int r0, r1;
};

template <int T>
AMSKV_INLINE void rows_q(const Rows& j) {
  const int nb = (int)(j.w->ne[0] / 32);
  const size_t n = (size_t)j.w->n_rows;
  for (int r = j.r0; r < j.r1; ++r) {
    const uint8_t* row = j.w->data + (size_t)r * j.w->row_bytes;
    for (int t = 0; t < j.n_tok; ++t) {  // the row stays in L1 across the tokens
      const BlockQ16* xq = j.xq + (size_t)t * nb;
      float sum = 0.f;
      for (int b = 0; b < nb; ++b) sum += block_dot<T>(row + (size_t)b * kBlockBytes<T>, xq[b]);
      j.y[t * n + r] = sum;
    }
  }
}

// F32 and F16 weights: f32 dot products, eight partial sums updated lane-wise.
template <int T>
AMSKV_INLINE void rows_f(const Rows& j) {
  const int k = (int)j.w->ne[0];
  const size_t n = (size_t)j.w->n_rows;
  for (int r = j.r0; r < j.r1; ++r) {
    const uint8_t* row = j.w->data + (size_t)r * j.w->row_bytes;
    for (int t = 0; t < j.n_tok; ++t) {
      const float* x = j.x + (size_t)t * k;
      float acc[8] = {};
      for (int b = 0; b < k / 32; ++b) {
        float w[32];
        if constexpr (T == GGML_TYPE_F32)
          std::memcpy(w, row + (size_t)b * 128, 128);
        else
          for (int i = 0; i < 32; ++i) w[i] = half(row + (size_t)b * 64 + 2 * i);
        for (int i = 0; i < 32; ++i) acc[i % 8] += w[i] * x[b * 32 + i];
      }
      j.y[t * n + r] =
          ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    }
  }
}

AMSKV_CLONES void rows_f32(const Rows& j) {
  rows_f<GGML_TYPE_F32>(j);
}
AMSKV_CLONES void rows_f16(const Rows& j) {
  rows_f<GGML_TYPE_F16>(j);
}
AMSKV_CLONES void rows_q8_0(const Rows& j) {
  rows_q<GGML_TYPE_Q8_0>(j);
}
AMSKV_CLONES void rows_q4_0(const Rows& j) {
  rows_q<GGML_TYPE_Q4_0>(j);
}
AMSKV_CLONES void rows_q4_1(const Rows& j) {
  rows_q<GGML_TYPE_Q4_1>(j);
}

void run_rows(const Rows& j) {
  switch (j.w->type) {
    case GGML_TYPE_F32:
      return rows_f32(j);
    case GGML_TYPE_F16:
      return rows_f16(j);
    case GGML_TYPE_Q8_0:
      return rows_q8_0(j);
    case GGML_TYPE_Q4_0:
      return rows_q4_0(j);
    case GGML_TYPE_Q4_1:
      return rows_q4_1(j);
  }
}

// Like llama.cpp's Q8 rounding with 16 bits: d = max|x| / 32767, q = round(x / d).
void quantize_q16(const float* x, int n_blocks, BlockQ16* out) {
  for (int b = 0; b < n_blocks; ++b, x += 32) {
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 32767.f, id = d > 0.f ? 1.f / d : 0.f;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      out[b].q[i] = (int16_t)std::nearbyint(x[i] * id);
      sum += out[b].q[i];
    }
    out[b].d = d;
    out[b].s = d * (float)sum;
  }
}

constexpr int kRowsPerTask = 16;  // enough to amortise the call, small enough to balance

}  // namespace

bool matmul_supported(int type) {
  return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_Q8_0 ||
         type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_1;
}

void matmul(const MatmulOut* outs, int n_outs, const float* x, int n_tok, BlockQ16* xq,
            int n_threads) {
  if (n_outs < 1 || n_outs > 8 || n_tok < 1) return;
  const int k = (int)outs[0].w->ne[0];
  bool quantized = false;
  for (int o = 0; o < n_outs; ++o)
    quantized |= outs[o].w->type != GGML_TYPE_F32 && outs[o].w->type != GGML_TYPE_F16;
  if (quantized) quantize_q16(x, n_tok * (k / 32), xq);
  // Tasks of kRowsPerTask rows, numbered across the outputs; a task never spans two.
  int first_task[9] = {0};
  for (int o = 0; o < n_outs; ++o)
    first_task[o + 1] =
        first_task[o] + (int)((outs[o].w->n_rows + kRowsPerTask - 1) / kRowsPerTask);
  const int n_tasks = first_task[n_outs];
#ifdef _OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
#endif
  for (int task = 0; task < n_tasks; ++task) {
    int o = 0;
    while (task >= first_task[o + 1]) ++o;
    const int r0 = (task - first_task[o]) * kRowsPerTask, n_rows = (int)outs[o].w->n_rows;
    const int r1 = r0 + kRowsPerTask < n_rows ? r0 + kRowsPerTask : n_rows;
    run_rows(Rows{outs[o].w, x, xq, n_tok, outs[o].y, r0, r1});
  }
  (void)n_threads;
}

}  // namespace amskv
