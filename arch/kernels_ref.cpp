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

// Block b of a q4 row: its scale, min and the 32 values q.
struct Q4Block {
  float scale, min;
  int q[kQ4Block];
};
Q4Block q4_block(const uint8_t* row, int b) {
  const uint8_t* p = row + (size_t)b * kQ4BlockBytes;
  Q4Block blk;
  uint16_t h[2];
  std::memcpy(h, p, 4);
  blk.scale = f16_to_f32(h[0]);
  blk.min = f16_to_f32(h[1]);
  for (int i = 0; i < 16; ++i) {
    blk.q[i] = p[4 + i] & 15;
    blk.q[i + 16] = p[4 + i] >> 4;
  }
  return blk;
}

void qk_q4(const float* q, int n_q, const uint8_t* k, int n, int d, float* scores, int ld) {
  const size_t row = (size_t)d / kQ4Block * kQ4BlockBytes;
  for (int g = 0; g < n_q; ++g)
    for (int j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int b = 0; b < d / kQ4Block; ++b) {
        const Q4Block blk = q4_block(k + (size_t)j * row, b);
        for (int i = 0; i < kQ4Block; ++i)
          acc += q[g * d + b * kQ4Block + i] * (blk.scale * (float)blk.q[i] + blk.min);
      }
      scores[g * ld + j] = acc;
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

void av_q4(const float* p, int n_q, int ld, const uint8_t* v, int n, int d, float* out) {
  const size_t row = (size_t)d / kQ4Block * kQ4BlockBytes;
  for (int g = 0; g < n_q; ++g) {
    for (int c = 0; c < d; ++c) out[g * d + c] = 0.f;
    for (int j = 0; j < n; ++j)
      for (int b = 0; b < d / kQ4Block; ++b) {
        const Q4Block blk = q4_block(v + (size_t)j * row, b);
        for (int i = 0; i < kQ4Block; ++i)
          out[g * d + b * kQ4Block + i] += p[g * ld + j] * (blk.scale * (float)blk.q[i] + blk.min);
      }
  }
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

void to_q4(const float* x, uint8_t* y, int n) {
  for (int b = 0; b < n / kQ4Block; ++b) {
    const float* xb = x + b * kQ4Block;
    float lo = 65504.f, hi = -65504.f;
    for (int i = 0; i < kQ4Block; ++i) {
      lo = xb[i] < lo ? xb[i] : lo;
      hi = xb[i] > hi ? xb[i] : hi;
    }
    lo = lo < -65504.f ? -65504.f : lo;  // a NaN never reaches a session: it is refused
    hi = hi > 65504.f ? 65504.f : (hi < lo ? lo : hi);
    const uint16_t h[2] = {f32_to_f16((hi - lo) / 15.f), f32_to_f16(lo)};
    const float scale = f16_to_f32(h[0]), mn = f16_to_f32(h[1]);
    const float inv = scale > 0.f ? 1.f / scale : 0.f;
    uint8_t* yb = y + (size_t)b * kQ4BlockBytes;
    std::memcpy(yb, h, 4);
    int q[kQ4Block];
    for (int i = 0; i < kQ4Block; ++i) {
      const float t = std::nearbyint((xb[i] - mn) * inv);
      q[i] = t < 0.f ? 0 : (t > 15.f ? 15 : (int)t);
    }
    for (int i = 0; i < 16; ++i) yb[4 + i] = (uint8_t)(q[i] | q[i + 16] << 4);
  }
}

void gather_rows(void* base, size_t row_bytes, const int32_t* idx, int n) {
  char* b = (char*)base;
  for (int i = 0; i < n; ++i)
    if (idx[i] != i)
      std::memcpy(b + (size_t)i * row_bytes, b + (size_t)idx[i] * row_bytes, row_bytes);
}

}  // namespace

extern const Kernels kKernelsRef;
constexpr Kernels kKernelsRef = {"ref",  qk_f32,   qk_f16, qk_q8, qk_q4,       softmax,
                                 av_f32, av_f16,   av_q8,  av_q4, rope_normal, rope_neox,
                                 to_f16, from_f16, to_q8,  to_q4, gather_rows};

}  // namespace amskv
