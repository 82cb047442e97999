#include "kv/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "arch/f16.h"

namespace amskv {
namespace {

float store_f32(const Kernels&, const float* x, void* row, int d) {
  std::memcpy(row, x, (size_t)d * 4);
  return 1.f;
}
void load_f32(const Kernels&, const void* rows, const float*, int n, int d, float* out) {
  std::memcpy(out, rows, (size_t)n * d * 4);
}
void qk_f32(const Kernels& k, const float* q, int n_q, const void* rows, const float*, int n, int d,
            float* scores, int ld) {
  k.qk_f32(q, n_q, (const float*)rows, n, d, scores, ld);
}
void av_f32(const Kernels& k, const float* p, int n_q, int ld, const void* rows, const float*,
            int n, int d, float* out) {
  k.av_f32(p, n_q, ld, (const float*)rows, n, d, out);
}

float store_f16(const Kernels& k, const float* x, void* row, int d) {
  k.to_f16(x, (uint16_t*)row, d);
  return 1.f;
}
void load_f16(const Kernels& k, const void* rows, const float*, int n, int d, float* out) {
  k.from_f16((const uint16_t*)rows, out, n * d);
}
void qk_f16(const Kernels& k, const float* q, int n_q, const void* rows, const float*, int n, int d,
            float* scores, int ld) {
  k.qk_f16(q, n_q, (const uint16_t*)rows, n, d, scores, ld);
}
void av_f16(const Kernels& k, const float* p, int n_q, int ld, const void* rows, const float*,
            int n, int d, float* out) {
  k.av_f16(p, n_q, ld, (const uint16_t*)rows, n, d, out);
}

float store_q8(const Kernels& k, const float* x, void* row, int d) {
  return k.to_q8(x, (int8_t*)row, d);
}
void load_q8(const Kernels&, const void* rows, const float* scales, int n, int d, float* out) {
  const int8_t* q = (const int8_t*)rows;
  for (int j = 0; j < n; ++j)
    for (int c = 0; c < d; ++c) out[(size_t)j * d + c] = (float)q[(size_t)j * d + c] * scales[j];
}
void qk_q8(const Kernels& k, const float* q, int n_q, const void* rows, const float* scales, int n,
           int d, float* scores, int ld) {
  k.qk_q8(q, n_q, (const int8_t*)rows, scales, n, d, scores, ld);
}
void av_q8(const Kernels& k, const float* p, int n_q, int ld, const void* rows, const float* scales,
           int n, int d, float* out) {
  k.av_q8(p, n_q, ld, (const int8_t*)rows, scales, n, d, out);
}

float store_q4(const Kernels& k, const float* x, void* row, int d) {
  k.to_q4(x, (uint8_t*)row, d);
  return 1.f;
}
void load_q4(const Kernels&, const void* rows, const float*, int n, int d, float* out) {
  const uint8_t* r = (const uint8_t*)rows;
  for (int j = 0; j < n * d / kQ4Block; ++j, r += kQ4BlockBytes) {
    uint16_t h[2];
    std::memcpy(h, r, 4);
    const float scale = f16_to_f32(h[0]), mn = f16_to_f32(h[1]);
    float* o = out + (size_t)j * kQ4Block;
    for (int i = 0; i < 16; ++i) {
      o[i] = scale * (float)(r[4 + i] & 15) + mn;
      o[i + 16] = scale * (float)(r[4 + i] >> 4) + mn;
    }
  }
}
void qk_q4(const Kernels& k, const float* q, int n_q, const void* rows, const float*, int n, int d,
           float* scores, int ld) {
  k.qk_q4(q, n_q, (const uint8_t*)rows, n, d, scores, ld);
}
void av_q4(const Kernels& k, const float* p, int n_q, int ld, const void* rows, const float*, int n,
           int d, float* out) {
  k.av_q4(p, n_q, ld, (const uint8_t*)rows, n, d, out);
}

// q4 keys in a rotated basis: x H / sqrt(d) (H the Walsh-Hadamard matrix, d a power of two)
// spreads a few outlier channels over all of them, so one block scale fits every channel;
// q . k is unchanged when q turns the same way. Loads turn back.
void hadamard(float* x, int d) {
  for (int len = 1; len < d; len <<= 1)
    for (int i = 0; i < d; i += len << 1)
      for (int j = i; j < i + len; ++j) {
        const float a = x[j], b = x[j + len];
        x[j] = a + b;
        x[j + len] = a - b;
      }
  const float s = 1.f / std::sqrt((float)d);
  for (int i = 0; i < d; ++i) x[i] *= s;
}
constexpr int kMaxD = 256, kQRows = 8;
float store_q4h(const Kernels& k, const float* x, void* row, int d) {
  float t[kMaxD];
  std::memcpy(t, x, (size_t)d * 4);
  hadamard(t, d);
  return store_q4(k, t, row, d);
}
void load_q4h(const Kernels& k, const void* rows, const float* s, int n, int d, float* out) {
  load_q4(k, rows, s, n, d, out);
  for (int j = 0; j < n; ++j) hadamard(out + (size_t)j * d, d);
}
void qk_q4h(const Kernels& k, const float* q, int n_q, const void* rows, const float*, int n, int d,
            float* scores, int ld) {
  float t[kQRows * kMaxD];
  for (int g0 = 0; g0 < n_q; g0 += kQRows) {
    const int m = std::min(kQRows, n_q - g0);
    std::memcpy(t, q + (size_t)g0 * d, (size_t)m * d * 4);
    for (int g = 0; g < m; ++g) hadamard(t + (size_t)g * d, d);
    k.qk_q4(t, m, (const uint8_t*)rows, n, d, scores + (size_t)g0 * ld, ld);
  }
}

// The formats.
const DtypeOps kDtypes[] = {
    {"f32", 1, 4, false, false, store_f32, load_f32, qk_f32, av_f32},
    {"f16", 1, 2, false, false, store_f16, load_f16, qk_f16, av_f16},
    {"q8", 1, 1, true, false, store_q8, load_q8, qk_q8, av_q8},
    {"q4", kQ4Block, kQ4BlockBytes, false, false, store_q4, load_q4, qk_q4, av_q4},
    {"q4h", kQ4Block, kQ4BlockBytes, false, true, store_q4h, load_q4h, qk_q4h, av_q4},
};
constexpr int kCount = (int)(sizeof kDtypes / sizeof *kDtypes);

// Indexed by amskv_dtype. Keys lose far more than values at 4 bits (docs/guide.md), hence
// k8v4, and q4h: q4 with its keys turned into a basis where no channel stands out.
const KvDtype kKvDtypes[] = {
    {"f32", &kDtypes[0], &kDtypes[0]},  {"f16", &kDtypes[1], &kDtypes[1]},
    {"q8", &kDtypes[2], &kDtypes[2]},   {"q4", &kDtypes[3], &kDtypes[3]},
    {"k8v4", &kDtypes[2], &kDtypes[3]}, {"q4h", &kDtypes[4], &kDtypes[3]},
};
constexpr int kKvCount = (int)(sizeof kKvDtypes / sizeof *kKvDtypes);

}  // namespace

const DtypeOps* dtype_ops(int format) {
  return format >= 0 && format < kCount ? &kDtypes[format] : nullptr;
}

const KvDtype* kv_dtype(int dtype) {
  return dtype >= 0 && dtype < kKvCount ? &kKvDtypes[dtype] : nullptr;
}

int kv_dtype_count() {
  return kKvCount;
}

}  // namespace amskv
