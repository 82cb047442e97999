#include "runtime/model/matmul.h"

#include <cmath>
#include <cstring>

#include "arch/f16.h"
#include "arch/matmul.h"

namespace amskv {
namespace {

inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// One quantized row as int16 values with a scale (and, with a minimum, an offset) per block:
// w[i] = d[b] * q[i] (+ m[b]), laid out as the type table says (gguf.h GgmlBlock32).
void unpack_row(const MatmulKernels* kern, const GgmlTypeInfo& t, const uint8_t* row, int nb,
                int16_t* q, float* d, float* m) {
  const int bb = (int)t.size;
  for (int b = 0; b < nb; ++b) d[b] = half(row + (size_t)b * bb);
  if (t.q32.min_offset)
    for (int b = 0; b < nb; ++b) m[b] = half(row + (size_t)b * bb + t.q32.min_offset);
  kern->unpack_i16(row, bb, t.q32.q_offset, nb, t.q32.nibbles, t.q32.zero, q);
}

// Rows [r0, r1) of one output for every token.
struct Rows {
  const GgufTensor* w;
  const float* x;
  const MatmulScratch* xq;
  const MatmulKernels* kern;
  int n_tok;
  float* y;
  int r0, r1;
};

void rows_quantized(const Rows& j) {
  const int k = (int)j.w->ne[0], nb = k / 32;
  const size_t n = (size_t)j.w->n_rows;
  alignas(64) int16_t q[kMatmulMaxRow];
  float d[kMatmulMaxRow / 32], m[kMatmulMaxRow / 32];
  const GgmlTypeInfo& type = *ggml_type_info(j.w->type);
  const bool offsets = type.q32.min_offset != 0;
  for (int r = j.r0; r < j.r1; ++r) {
    unpack_row(j.kern, type, j.w->data + (size_t)r * j.w->row_bytes, nb, q, d, m);
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
  const GgmlTypeInfo* t = ggml_type_info(type);
  const bool known =
      type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || (t && t->q32.q_offset && t->blck == 32);
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
  const MatmulKernels* kern = matmul_kernels();
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
