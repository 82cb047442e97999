#include "runtime/model/matmul.h"

#include <cmath>
#include <cstring>

#include "arch/kernels.h"

namespace amskv {
namespace {

float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Exact half -> float, inline and without tables (Maratyszcza's FP16 library): normals are
// rebiased by a multiply, subnormals come from a magic-number subtraction.
inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
  const float normal = bits_to_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float subnormal = bits_to_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  return bits_to_f32(sign | (two_w < (1u << 27) ? f32_to_bits(subnormal) : f32_to_bits(normal)));
}

// Bytes of one block of 32 weights.
int block_bytes(int type) {
  switch (type) {
    case GGML_TYPE_F32:
      return 128;
    case GGML_TYPE_F16:
      return 64;
    case GGML_TYPE_Q8_0:
      return 34;  // f16 d, int8 q[32]
    case GGML_TYPE_Q4_0:
      return 18;  // f16 d, 4-bit q[32]
    default:
      return 20;  // Q4_1: f16 d, f16 m, 4-bit q[32]
  }
}

// One quantized row as int16 values with a scale (and for Q4_1 an offset) per block:
// w[i] = d[b] * q[i] (+ m[b]). Q4_0 stores q + 8.
void unpack_row(const Kernels* kern, int type, const uint8_t* row, int nb, int16_t* q, float* d,
                float* m) {
  const int bb = block_bytes(type);
  for (int b = 0; b < nb; ++b) d[b] = half(row + (size_t)b * bb);
  if (type == GGML_TYPE_Q4_1)
    for (int b = 0; b < nb; ++b) m[b] = half(row + (size_t)b * bb + 2);
  if (type == GGML_TYPE_Q8_0)
    kern->unpack_i16(row, bb, 2, nb, 0, 0, q);
  else if (type == GGML_TYPE_Q4_0)
    kern->unpack_i16(row, bb, 2, nb, 1, 8, q);
  else
    kern->unpack_i16(row, bb, 4, nb, 1, 0, q);
}

// Rows [r0, r1) of one output for every token.
struct Rows {
  const GgufTensor* w;
  const float* x;
  const MatmulScratch* xq;
  const Kernels* kern;
  int n_tok;
  float* y;
  int r0, r1;
};

void rows_quantized(const Rows& j) {
  const int k = (int)j.w->ne[0], nb = k / 32;
  const size_t n = (size_t)j.w->n_rows;
  alignas(64) int16_t q[kMatmulMaxRow];
  float d[kMatmulMaxRow / 32], m[kMatmulMaxRow / 32];
  const bool offsets = j.w->type == GGML_TYPE_Q4_1;
  for (int r = j.r0; r < j.r1; ++r) {
    unpack_row(j.kern, j.w->type, j.w->data + (size_t)r * j.w->row_bytes, nb, q, d, m);
    for (int t = 0; t < j.n_tok; ++t) {  // the unpacked row stays in L1 across the tokens
      const float* xd = j.xq->d.data() + (size_t)t * nb;
      float y = j.kern->dot_i16(q, d, j.xq->q.data() + (size_t)t * k, xd, nb);
      if (offsets) {
        const float* xs = j.xq->s.data() + (size_t)t * nb;
        for (int b = 0; b < nb; ++b) y += m[b] * xs[b];
      }
      j.y[t * n + r] = y;
    }
  }
}

// F32 and F16 weights: f32 dot products, eight partial sums updated lane-wise.
void rows_float(const Rows& j) {
  const int k = (int)j.w->ne[0];
  const size_t n = (size_t)j.w->n_rows;
  const bool f16 = j.w->type == GGML_TYPE_F16;
  for (int r = j.r0; r < j.r1; ++r) {
    const uint8_t* row = j.w->data + (size_t)r * j.w->row_bytes;
    for (int t = 0; t < j.n_tok; ++t) {
      const float* x = j.x + (size_t)t * k;
      float acc[8] = {};
      for (int b = 0; b < k / 32; ++b) {
        float w[32];
        if (!f16)
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

// Like llama.cpp's Q8 rounding with 16 bits: d = max|x| / 32767, q = round(x / d).
void quantize_q16(const float* x, int n_blocks, MatmulScratch* out) {
  for (int b = 0; b < n_blocks; ++b, x += 32) {
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 32767.f, id = d > 0.f ? 1.f / d : 0.f;
    int16_t* q = out->q.data() + (size_t)b * 32;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      q[i] = (int16_t)std::nearbyint(x[i] * id);
      sum += q[i];
    }
    out->d[b] = d;
    out->s[b] = d * (float)sum;
  }
}

constexpr int kRowsPerTask = 16;  // enough to amortise the call, small enough to balance

}  // namespace

bool matmul_supported(int type, int64_t row_len) {
  const bool known = type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_Q8_0 ||
                     type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_1;
  return known && row_len > 0 && row_len % 32 == 0 && row_len <= kMatmulMaxRow;
}

void matmul_scratch_init(MatmulScratch* s, int n_tok, int k) {
  s->q.assign((size_t)n_tok * k, 0);
  s->d.assign((size_t)n_tok * k / 32, 0.f);
  s->s.assign((size_t)n_tok * k / 32, 0.f);
}

void matmul(const MatmulOut* outs, int n_outs, const float* x, int n_tok, MatmulScratch* xq,
            int n_threads) {
  if (n_outs < 1 || n_outs > 8 || n_tok < 1) return;
  const int k = (int)outs[0].w->ne[0];
  bool quantized = false;
  for (int o = 0; o < n_outs; ++o)
    quantized |= outs[o].w->type != GGML_TYPE_F32 && outs[o].w->type != GGML_TYPE_F16;
  if (quantized) quantize_q16(x, n_tok * (k / 32), xq);
  const Kernels* kern = active_kernels();
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
    const Rows j{outs[o].w, x, xq, kern, n_tok, outs[o].y, r0, r1};
    const int type = outs[o].w->type;
    if (type == GGML_TYPE_F32 || type == GGML_TYPE_F16)
      rows_float(j);
    else
      rows_quantized(j);
  }
  (void)n_threads;
}

}  // namespace amskv
