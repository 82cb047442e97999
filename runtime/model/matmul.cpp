#include "runtime/model/matmul.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

// Rows [r0, r1) of one output for every token.
struct Rows {
  const Matrix* w;
  const float* x;
  const MatmulScratch* xq;
  const MatmulKernels* kern;
  int n_tok;
  float* y;
  int r0, r1;
};

// Groups of packed rows: r0 and r1 are multiples of kPackRows (or r1 the last row).
void rows_packed(const Rows& j) {
  const QuantActs x{j.xq->q.data(), j.xq->d.data(),  j.xq->s.data(),
                    j.n_tok,        j.xq->lo.data(), j.xq->hi.data()};
  const int g0 = j.r0 / kPackRows, g1 = (j.r1 + kPackRows - 1) / kPackRows;
  const size_t ld = (size_t)j.w->t->n_rows;
  if (j.w->q4)
    j.kern->gemm_q4(j.w->packed, g0, g1, x, j.y, ld);
  else
    j.kern->gemm_q8(j.w->packed, g0, g1, x, j.y, ld);
}

// F32 and F16 weights: f32 dot products, eight partial sums updated lane-wise.
void rows_float(const Rows& j) {
  const GgufTensor& w = *j.w->t;
  const int k = (int)w.ne[0];
  const size_t n = (size_t)w.n_rows;
  const bool f16 = w.type == GGML_TYPE_F16;
  for (int r = j.r0; r < j.r1; ++r) {
    const uint8_t* row = w.data + (size_t)r * w.row_bytes;
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

// Round to nearest even for |v| < 2^22, as nearbyint does in the default rounding mode, without
// a library call: adding 1.5 * 2^23 leaves no fraction bits (IEEE arithmetic: the compiler
// may not fold the two steps away).
inline float round_even(float v) {
  return (v + 12582912.f) - 12582912.f;
}

// Blocks [b0, b1) of the activations, like llama.cpp's Q8 rounding with 16 bits:
// d = max|x| / 32767, q = round(x / d).
void quantize_q16(const float* x, int b0, int b1, MatmulScratch* out) {
  x += (size_t)b0 * 32;
  for (int b = b0; b < b1; ++b, x += 32) {
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::fabs(x[i]) > amax ? std::fabs(x[i]) : amax;
    const float d = amax / 32767.f, id = d > 0.f ? 1.f / d : 0.f;
    int16_t* q = out->q.data() + (size_t)b * 32;
    uint8_t* lo = out->lo.data() + (size_t)b * 32;
    int8_t* hi = out->hi.data() + (size_t)b * 32;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      q[i] = (int16_t)round_even(x[i] * id);
      lo[i] = (uint8_t)(q[i] & 255);
      hi[i] = (int8_t)(q[i] >> 8);  // arithmetic: q = 256 hi + lo
      sum += q[i];
    }
    out->d[b] = d;
    out->s[b] = d * (float)sum;
  }
}

// Enough to amortise the call, small enough to balance; whole groups, and 64 bytes of output
// per token, so threads never write the same cache line.
constexpr int kRowsPerTask = 16;
static_assert(kRowsPerTask % kPackRows == 0, "tasks take whole groups");

}  // namespace

bool matmul_supported(int type, int64_t row_len) {
  const GgmlTypeInfo* t = ggml_type_info(type);
  const bool known =
      type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || (t && t->q32.q_offset && t->blck == 32);
  return known && row_len > 0 && row_len % 32 == 0 && row_len <= kMatmulMaxRow;
}

size_t matmul_packed_bytes(const GgufTensor& t) {
  const GgmlTypeInfo* ti = ggml_type_info(t.type);
  if (!ti || !ti->q32.q_offset) return 0;
  const size_t groups = (size_t)(t.n_rows + kPackRows - 1) / kPackRows, nb = (size_t)t.ne[0] / 32;
  const size_t q = groups * nb * (ti->q32.nibbles ? 64 : 128), scales = groups * nb * kPackRows * 2;
  return align64(q) + align64(scales) * (ti->q32.nibbles ? 2 : 1);
}

Matrix matmul_pack(const GgufTensor& t, uint8_t* mem) {
  Matrix m;
  m.t = &t;
  const GgmlTypeInfo* ti = ggml_type_info(t.type);
  if (!ti || !ti->q32.q_offset) return m;
  const GgmlBlock32& b32 = ti->q32;
  const int nb = (int)(t.ne[0] / 32), n = (int)t.n_rows;
  const size_t groups = (size_t)(n + kPackRows - 1) / kPackRows;
  const size_t qbytes = groups * nb * (b32.nibbles ? 64 : 128), scales = groups * nb * kPackRows;
  std::memset(mem, 0, matmul_packed_bytes(t));  // padding rows stay zero
  uint8_t* q = mem;
  uint16_t* d = (uint16_t*)(mem + align64(qbytes));
  uint16_t* mn = b32.nibbles ? (uint16_t*)(mem + align64(qbytes) + align64(scales * 2)) : nullptr;
  for (int r = 0; r < n; ++r)
    for (int b = 0; b < nb; ++b) {
      const uint8_t* blk = t.data + (size_t)r * t.row_bytes + (size_t)b * ti->size;
      const size_t gb = (size_t)(r / kPackRows) * nb + b, lane = (size_t)(r % kPackRows);
      std::memcpy(&d[gb * kPackRows + lane], blk, 2);
      const uint8_t* v = blk + b32.q_offset;
      if (b32.nibbles) {  // 16 bytes of nibbles; Q4_0's zero becomes a minimum of -8 d
        std::memcpy(q + gb * 64 + lane * 16, v, 16);
        std::memcpy(&mn[gb * kPackRows + lane], b32.min_offset ? blk + b32.min_offset : blk, 2);
      } else {  // 32 int8: elements 0-15, then 16-31
        std::memcpy(q + gb * 128 + lane * 16, v, 16);
        std::memcpy(q + gb * 128 + 64 + lane * 16, v + 16, 16);
      }
    }
  m.q4 = b32.nibbles != 0;
  m.packed = PackedMatrix{q, d, mn, b32.min_offset ? 1.f : -(float)b32.zero, nb, n};
  return m;
}

void matmul_row(const Matrix& w, int64_t r, float* out) {
  if (!w.packed.q) {
    gguf_dequantize_row(w.t->type, w.t->data + (size_t)r * w.t->row_bytes, out, (int)w.t->ne[0]);
    return;
  }
  const PackedMatrix& p = w.packed;
  const size_t lane = (size_t)(r % kPackRows), g = (size_t)(r / kPackRows);
  for (int b = 0; b < p.nb; ++b) {
    const size_t gb = g * p.nb + b;
    const float d = f16_to_f32(p.d[gb * kPackRows + lane]);
    if (w.q4) {  // exact products: q < 16 and d has 11 significant bits
      const float m = p.m_scale * f16_to_f32(p.m[gb * kPackRows + lane]);
      const uint8_t* q = p.q + gb * 64 + lane * 16;
      for (int i = 0; i < 16; ++i) {
        out[32 * b + i] = (float)(q[i] & 15) * d + m;
        out[32 * b + 16 + i] = (float)(q[i] >> 4) * d + m;
      }
    } else {
      const int8_t* q = (const int8_t*)p.q + gb * 128 + lane * 16;
      for (int i = 0; i < 16; ++i) {
        out[32 * b + i] = (float)q[i] * d;
        out[32 * b + 16 + i] = (float)q[64 + i] * d;
      }
    }
  }
}

void matmul_scratch_init(MatmulScratch* s, int n_tok, int k) {
  s->q.assign((size_t)n_tok * k, 0);
  s->d.assign((size_t)n_tok * k / 32, 0.f);
  s->s.assign((size_t)n_tok * k / 32, 0.f);
  s->lo.assign((size_t)n_tok * k, 0);
  s->hi.assign((size_t)n_tok * k, 0);
}

void matmul(const MatmulOut* outs, int n_outs, const float* x, int n_tok, MatmulScratch* xq,
            int n_threads) {
  if (n_outs < 1 || n_outs > 8 || n_tok < 1) return;
  if (xq->dnn && onednn_matmul(xq->dnn, outs, n_outs, x, n_tok, n_threads)) return;
  const int k = (int)outs[0].w->t->ne[0];
  bool quantized = false;
  for (int o = 0; o < n_outs; ++o) quantized |= outs[o].w->packed.q != nullptr;
  const MatmulKernels* kern = matmul_kernels();
  // Tasks of kRowsPerTask rows, numbered across the outputs; a task never spans two.
  int first_task[9] = {0};
  for (int o = 0; o < n_outs; ++o)
    first_task[o + 1] =
        first_task[o] + (int)((outs[o].w->t->n_rows + kRowsPerTask - 1) / kRowsPerTask);
  const int n_tasks = first_task[n_outs], n_blocks = n_tok * (k / 32);
  // One parallel region: the activations are quantized in slices, then the rows.
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
#endif
  {
#ifdef _OPENMP
    const int nt = omp_get_num_threads(), me = omp_get_thread_num();
#else
    const int nt = 1, me = 0;
#endif
    if (quantized) {
      quantize_q16(x, (int)((int64_t)n_blocks * me / nt), (int)((int64_t)n_blocks * (me + 1) / nt),
                   xq);
#ifdef _OPENMP
#pragma omp barrier
#endif
    }
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int task = 0; task < n_tasks; ++task) {
      int o = 0;
      while (task >= first_task[o + 1]) ++o;
      const int r0 = (task - first_task[o]) * kRowsPerTask, n_rows = (int)outs[o].w->t->n_rows;
      const int r1 = r0 + kRowsPerTask < n_rows ? r0 + kRowsPerTask : n_rows;
      const Rows j{outs[o].w, x, xq, kern, n_tok, outs[o].y, r0, r1};
      if (outs[o].w->packed.q)
        rows_packed(j);
      else
        rows_float(j);
    }
  }
  (void)n_threads;
}

}  // namespace amskv
