// Scalar reference kernels: the definition every SIMD variant is tested against. Written
// for clarity, one obvious loop each.
#include <cmath>
#include <cstring>

#include "arch/f16.h"
#include "arch/kernels.h"

namespace amskv {
namespace {

template <typename LoadK>
void qk_generic(const float* q, int n_q, int n, int d, float* scores, int ld, LoadK load_k) {
  for (int g = 0; g < n_q; ++g) {
    for (int j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int c = 0; c < d; ++c) acc += q[g * d + c] * load_k(j, c);
      scores[g * ld + j] = acc;
    }
  }
}

void qk_f32(const float* q, int n_q, const float* k, int n, int d, float* scores, int ld) {
  qk_generic(q, n_q, n, d, scores, ld, [&](int j, int c) { return k[(size_t)j * d + c]; });
}

void qk_f16(const float* q, int n_q, const uint16_t* k, int n, int d, float* scores, int ld) {
  qk_generic(q, n_q, n, d, scores, ld,
             [&](int j, int c) { return f16_to_f32(k[(size_t)j * d + c]); });
}

void qk_q8(const float* q, int n_q, const int8_t* k, const float* ks, int n, int d, float* scores,
           int ld) {
  for (int g = 0; g < n_q; ++g) {
    for (int j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int c = 0; c < d; ++c) acc += q[g * d + c] * (float)k[(size_t)j * d + c];
      scores[g * ld + j] = acc * ks[j];
    }
  }
}

void softmax(float* x, int n) {
  float mx = x[0];
  for (int j = 1; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
  float sum = 0.f;
  for (int j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - mx);
    sum += x[j];
  }
  float inv = 1.f / sum;
  for (int j = 0; j < n; ++j) x[j] *= inv;
}

template <typename LoadV>
void av_generic(const float* p, int n_q, int ld, int n, int d, float* out, LoadV load_v) {
  for (int g = 0; g < n_q; ++g) {
    for (int c = 0; c < d; ++c) out[g * d + c] = 0.f;
    for (int j = 0; j < n; ++j)
      for (int c = 0; c < d; ++c) out[g * d + c] += p[g * ld + j] * load_v(j, c);
  }
}

void av_f32(const float* p, int n_q, int ld, const float* v, int n, int d, float* out) {
  av_generic(p, n_q, ld, n, d, out, [&](int j, int c) { return v[(size_t)j * d + c]; });
}

void av_f16(const float* p, int n_q, int ld, const uint16_t* v, int n, int d, float* out) {
  av_generic(p, n_q, ld, n, d, out, [&](int j, int c) { return f16_to_f32(v[(size_t)j * d + c]); });
}

void av_q8(const float* p, int n_q, int ld, const int8_t* v, const float* vs, int n, int d,
           float* out) {
  av_generic(p, n_q, ld, n, d, out,
             [&](int j, int c) { return (float)v[(size_t)j * d + c] * vs[j]; });
}

void rope_normal(float* x, int n_heads, int d, const float* table) {
  for (int h = 0; h < n_heads; ++h) {
    float* r = x + (size_t)h * d;
    for (int c = 0; c < d; c += 2) {
      float a = r[c], b = r[c + 1];
      r[c] = a * table[c] + b * table[d + c];
      r[c + 1] = b * table[c + 1] + a * table[d + c + 1];
    }
  }
}

void rope_neox(float* x, int n_heads, int d, const float* table) {
  const int half = d / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* r = x + (size_t)h * d;
    for (int i = 0; i < half; ++i) {
      float a = r[i], b = r[half + i], c = table[i], s = table[half + i];
      r[i] = a * c - b * s;
      r[half + i] = b * c + a * s;
    }
  }
}

void to_f16(const float* x, uint16_t* y, int n) {
  for (int i = 0; i < n; ++i) {
    float v = x[i] > 65504.f ? 65504.f : (x[i] < -65504.f ? -65504.f : x[i]);
    y[i] = f32_to_f16(v);
  }
}

void from_f16(const uint16_t* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

float to_q8(const float* x, int8_t* y, int n) {
  float mx = 0.f;
  for (int i = 0; i < n; ++i) mx = std::fabs(x[i]) > mx ? std::fabs(x[i]) : mx;
  float inv = mx > 0.f ? 127.f / mx : 0.f;
  for (int i = 0; i < n; ++i) y[i] = (int8_t)std::nearbyint(x[i] * inv);
  return mx / 127.f;
}

void gather_rows(void* base, size_t row_bytes, const int32_t* idx, int n) {
  char* b = (char*)base;
  for (int i = 0; i < n; ++i)
    if (idx[i] != i)
      std::memcpy(b + (size_t)i * row_bytes, b + (size_t)idx[i] * row_bytes, row_bytes);
}

}  // namespace

extern const Kernels kKernelsRef;
constexpr Kernels kKernelsRef = {"ref",  qk_f32,   qk_f16, qk_q8,       softmax,
                                 av_f32, av_f16,   av_q8,  rope_normal, rope_neox,
                                 to_f16, from_f16, to_q8,  gather_rows};

}  // namespace amskv
