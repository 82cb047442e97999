#include "runtime/model/matmul.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cfloat>
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
  if (j.w->packing == Packing::kQ4)
    j.kern->gemm_q4(j.w->packed, g0, g1, x, j.y, ld);
  else if (j.w->packing == Packing::kQ8)
    j.kern->gemm_q8(j.w->packed, g0, g1, x, j.y, ld);
  else
    j.kern->gemm_q8s(j.w->packed, g0, g1, x, j.y, ld);
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
// d = max|x| / 32767, q = round(x / d). A block holding NaN or Inf (weights of an untrusted
// file can make them) gets q = 0 and d = NaN, so its products are NaN, never undefined casts;
// a block too small for 1 / d to be finite becomes zeros.
void quantize_q16(const float* x, int b0, int b1, MatmulScratch* out) {
  x += (size_t)b0 * 32;
  for (int b = b0; b < b1; ++b, x += 32) {
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::fabs(x[i]) > amax ? std::fabs(x[i]) : amax;
    float d = amax / 32767.f, id = d > 0.f ? 1.f / d : 0.f;
    if (!(id <= FLT_MAX)) id = 0.f;
    bool bad = false;
    int16_t* q = out->q.data() + (size_t)b * 32;
    uint8_t* lo = out->lo.data() + (size_t)b * 32;
    int8_t* hi = out->hi.data() + (size_t)b * 32;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const float r = round_even(x[i] * id);
      const bool ok = std::fabs(r) <= 32767.f;  // false for NaN and Inf
      bad |= !ok;
      q[i] = ok ? (int16_t)r : 0;
      lo[i] = (uint8_t)(q[i] & 255);
      hi[i] = (int8_t)(q[i] >> 8);  // arithmetic: q = 256 hi + lo
      sum += q[i];
    }
    if (bad) d = NAN;
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
  const bool known = type == GGML_TYPE_F32 || type == GGML_TYPE_F16 ||
                     (t && t->q32.q_offset && t->blck == 32) || (t && t->ints.decode);
  const int64_t blck = t && t->blck > 32 ? t->blck : 32;
  return known && row_len > 0 && row_len % blck == 0 && row_len <= kMatmulMaxRow;
}

namespace {

// Where each array of a packed matrix starts in its block, and the block's size.
struct PackedArrays {
  Packing packing = Packing::kNone;
  size_t q = 0, d = 0, m = 0, sc = 0, mn = 0, bytes = 0;
  int sb = 1;  // blocks of 32 per superblock (Q8S)
};

PackedArrays packed_arrays(const GgufTensor& t) {
  PackedArrays a;
  const GgmlTypeInfo* ti = ggml_type_info(t.type);
  if (!ti) return a;
  if (ti->q32.q_offset)
    a.packing = ti->q32.nibbles ? Packing::kQ4 : Packing::kQ8;
  else if (ti->ints.decode)
    a.packing = ti->ints.plain ? Packing::kQ8 : Packing::kQ8S;
  else
    return a;
  const size_t groups = (size_t)(t.n_rows + kPackRows - 1) / kPackRows, nb = (size_t)t.ne[0] / 32;
  a.sb = a.packing == Packing::kQ8S ? (int)(ti->blck / 32) : 1;
  const size_t scales = groups * (nb / a.sb) * kPackRows * 2;  // f16, per superblock
  size_t at = align64(groups * nb * (a.packing == Packing::kQ4 ? 64 : 128));
  a.d = at, at += align64(scales);
  if (a.packing != Packing::kQ8) a.m = at, at += align64(scales);
  if (a.packing == Packing::kQ8S) {
    a.sc = at, at += align64(groups * nb * 8);
    a.mn = at, at += align64(groups * nb * 4);
  }
  a.bytes = at;
  return a;
}

}  // namespace

size_t matmul_packed_bytes(const GgufTensor& t) {
  return packed_arrays(t).bytes;
}

Matrix matmul_pack(const GgufTensor& t, uint8_t* mem) {
  Matrix m;
  m.t = &t;
  const PackedArrays a = packed_arrays(t);
  if (a.packing == Packing::kNone) return m;
  const GgmlTypeInfo* ti = ggml_type_info(t.type);
  const int nb = (int)(t.ne[0] / 32), n = (int)t.n_rows, ns = nb / a.sb;
  std::memset(mem, 0, a.bytes);  // padding rows stay zero
  uint8_t* q = mem;
  uint16_t* d = (uint16_t*)(mem + a.d);
  uint16_t* mn = a.m ? (uint16_t*)(mem + a.m) : nullptr;
  int8_t* isc = a.sc ? (int8_t*)(mem + a.sc) : nullptr;
  int8_t* imn = a.mn ? (int8_t*)(mem + a.mn) : nullptr;
  const GgmlBlock32& b32 = ti->q32;
  float m_scale = 1.f;
  if (b32.q_offset) {
    m_scale = b32.min_offset ? 1.f : -(float)b32.zero;
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
  } else {  // from the integers: a file block is sb blocks of 32 (one superblock)
    GgmlIntBlock ib;
    for (int r = 0; r < n; ++r)
      for (int s = 0; s < (int)(t.ne[0] / ti->blck); ++s) {
        ti->ints.decode(t.data + (size_t)r * t.row_bytes + (size_t)s * ti->size, &ib);
        const size_t lane = (size_t)(r % kPackRows), g = (size_t)(r / kPackRows);
        const int per = (int)(ti->blck / 32);  // blocks of 32 in the file's block
        for (int i = 0; i < per; ++i) {
          const size_t gb = g * nb + (size_t)s * per + i;
          std::memcpy(q + gb * 128 + lane * 16, ib.q + 32 * i, 16);
          std::memcpy(q + gb * 128 + 64 + lane * 16, ib.q + 32 * i + 16, 16);
          if (a.packing == Packing::kQ8) {
            d[gb * kPackRows + lane] = ib.d;
            continue;
          }
          isc[gb * 8 + lane] = ib.sc[2 * i];
          isc[gb * 8 + 4 + lane] = ib.sc[2 * i + 1];
          imn[gb * 4 + lane] = ib.mn[i];
        }
        if (a.packing == Packing::kQ8S) {
          const size_t gs = g * ns + (size_t)s * per / a.sb;
          d[gs * kPackRows + lane] = ib.d;
          mn[gs * kPackRows + lane] = ib.m;
        }
      }
  }
  m.packing = a.packing;
  m.packed = PackedMatrix{q, d, mn, m_scale, nb, n};
  m.packed.sc = isc, m.packed.mn = imn, m.packed.sb = a.sb;
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
    const size_t gb = g * p.nb + b, gs = g * (p.nb / p.sb) + b / p.sb;
    const float d = f16_to_f32(p.d[gs * kPackRows + lane]);
    if (w.packing == Packing::kQ8S) {  // as the file's dequantization: (d sc) q + m mn
      const int8_t* q = (const int8_t*)p.q + gb * 128 + lane * 16;
      const float m = f16_to_f32(p.m[gs * kPackRows + lane]);
      const int8_t mn = p.mn[gb * 4 + lane];
      for (int h = 0; h < 2; ++h) {
        const float ds = d * (float)p.sc[gb * 8 + 4 * h + lane];
        for (int i = 0; i < 16; ++i) {
          const float v = ds * (float)q[64 * h + i];
          out[32 * b + 16 * h + i] = mn ? v + m * (float)mn : v;
        }
      }
    } else if (w.packing == Packing::kQ4) {  // exact products: q < 16 and d has 11 significant bits
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
