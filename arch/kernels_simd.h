// The SIMD kernels, written once over xsimd batches. Included only by the per-ISA
// translation units (kernels_avx2.cpp, kernels_avx512.cpp, kernels_neon.cpp), each inside
// its own namespace and with its own `Ops`:
//
//   struct Ops {
//     using arch = xsimd::<isa>;
//     static batch load_f16(const uint16_t*);   // W halves -> W floats
//     static batch load_i8(const int8_t*);      // W int8   -> W floats
//     static void store_f16(uint16_t*, batch);  // round to nearest even
//     static void store_i8(int8_t*, batch);     // round to nearest even, saturate
//     static batch haddp(const batch* rows);    // lane i = sum of rows[i]'s lanes
//   };
// (haddp is per ISA because xsimd 8.1's AVX-512 haddp returns its lanes permuted.)
//
// Nothing here may be an inline function with external linkage that generic code could
// share: everything is a member of the Ops-parameterised template or static.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "arch/f16.h"
#include "arch/kernels.h"

template <class Ops>
struct SimdKernels {
  using A = typename Ops::arch;
  using B = xsimd::batch<float, A>;
  static constexpr int W = (int)B::size;

  struct F32 {
    using T = float;
    static B load(const float* p) { return B::load_unaligned(p); }
    static float at(const float* p) { return *p; }
  };
  struct F16 {
    using T = uint16_t;
    static B load(const uint16_t* p) { return Ops::load_f16(p); }
    static float at(const uint16_t* p) { return amskv::f16_to_f32(*p); }
  };
  struct Q8 {
    using T = int8_t;
    static B load(const int8_t* p) { return Ops::load_i8(p); }
    static float at(const int8_t* p) { return (float)*p; }
  };

  // Asks for the `bytes` after [p, p + bytes) a block ahead: the next block's rows arrive
  // while this one is computed (the hardware prefetcher alone leaves the kernels below memory
  // speed here).
  static void prefetch(const void* p, size_t bytes) {
    const char* next = (const char*)p + bytes;
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(next + o);
  }

  static float hmax(B m) {
    alignas(64) float lanes[W];
    m.store_aligned(lanes);
    float r = lanes[0];
    for (int i = 1; i < W; ++i) r = lanes[i] > r ? lanes[i] : r;
    return r;
  }

  template <class L>
  static void qk(const float* q, int n_q, const typename L::T* k, const float* scale, int n, int d,
                 float* scores, int ld) {
    using T = typename L::T;
    const int dv = d / W * W;
    int j0 = 0;
    for (; j0 + W <= n; j0 += W) {  // W keys at a time: W dot products, one haddp
      const T* rows = k + (size_t)j0 * d;
      prefetch(rows, (size_t)W * d * sizeof(T));
      for (int g = 0; g < n_q; ++g) {  // the W rows stay in L1 across the group
        const float* qg = q + (size_t)g * d;
        B acc[W];
#pragma GCC unroll 16
        for (int i = 0; i < W; ++i) acc[i] = B(0.f);
          // Row by row: memory is read in order; the W chains are independent.
#pragma GCC unroll 16
        for (int i = 0; i < W; ++i)
          for (int c = 0; c < dv; c += W)
            acc[i] =
                xsimd::fma(B::load_unaligned(qg + c), L::load(rows + (size_t)i * d + c), acc[i]);
        B sum = Ops::haddp(acc);
        if (dv < d) {  // only AVX-512 with head_dim % 16 == 8
          alignas(64) float tail[W];
          for (int i = 0; i < W; ++i) {
            tail[i] = 0.f;
            for (int c = dv; c < d; ++c) tail[i] += qg[c] * L::at(rows + (size_t)i * d + c);
          }
          sum += B::load_aligned(tail);
        }
        if (scale) sum *= B::load_unaligned(scale + j0);
        sum.store_unaligned(scores + (size_t)g * ld + j0);
      }
    }
    for (; j0 < n; ++j0) {  // the last n % W keys, one at a time
      const T* kj = k + (size_t)j0 * d;
      for (int g = 0; g < n_q; ++g) {
        const float* qg = q + (size_t)g * d;
        B a(0.f);
        for (int c = 0; c < dv; c += W)
          a = xsimd::fma(B::load_unaligned(qg + c), L::load(kj + c), a);
        float s = xsimd::hadd(a);
        for (int c = dv; c < d; ++c) s += qg[c] * L::at(kj + c);
        scores[(size_t)g * ld + j0] = scale ? s * scale[j0] : s;
      }
    }
  }

  // Values in blocks of kBlock rows: a block stays in L1 while every query head of the
  // group adds it up, so V streams from memory once whatever the group size.
  static constexpr int kBlock = 64;

  template <class L>
  static void av(const float* p, int n_q, int ld, const typename L::T* v, const float* scale, int n,
                 int d, float* out) {
    using T = typename L::T;
    const int dv = d / W * W;
    for (int i = 0; i < n_q * d; ++i) out[i] = 0.f;
    for (int j0 = 0; j0 < n; j0 += kBlock) {
      const int j1 = j0 + kBlock < n ? j0 + kBlock : n;
      prefetch(v + (size_t)j0 * d, (size_t)(j1 - j0) * d * sizeof(T));
      for (int g = 0; g < n_q; ++g) {
        const float* pg = p + (size_t)g * ld;
        float* og = out + (size_t)g * d;
        int c = 0;
        for (; c + 4 * W <= dv; c += 4 * W) {  // four output vectors live in registers
          B a0 = B::load_unaligned(og + c), a1 = B::load_unaligned(og + c + W);
          B a2 = B::load_unaligned(og + c + 2 * W), a3 = B::load_unaligned(og + c + 3 * W);
          for (int j = j0; j < j1; ++j) {
            const B pj(scale ? pg[j] * scale[j] : pg[j]);
            const T* r = v + (size_t)j * d + c;
            a0 = xsimd::fma(pj, L::load(r), a0);
            a1 = xsimd::fma(pj, L::load(r + W), a1);
            a2 = xsimd::fma(pj, L::load(r + 2 * W), a2);
            a3 = xsimd::fma(pj, L::load(r + 3 * W), a3);
          }
          a0.store_unaligned(og + c);
          a1.store_unaligned(og + c + W);
          a2.store_unaligned(og + c + 2 * W);
          a3.store_unaligned(og + c + 3 * W);
        }
        for (; c < dv; c += W) {
          B a = B::load_unaligned(og + c);
          for (int j = j0; j < j1; ++j)
            a = xsimd::fma(B(scale ? pg[j] * scale[j] : pg[j]), L::load(v + (size_t)j * d + c), a);
          a.store_unaligned(og + c);
        }
        for (; c < d; ++c) {
          float a = og[c];
          for (int j = j0; j < j1; ++j)
            a += (scale ? pg[j] * scale[j] : pg[j]) * L::at(v + (size_t)j * d + c);
          og[c] = a;
        }
      }
    }
  }

  static void qk_f32(const float* q, int n_q, const float* k, int n, int d, float* s, int ld) {
    qk<F32>(q, n_q, k, nullptr, n, d, s, ld);
  }
  static void qk_f16(const float* q, int n_q, const uint16_t* k, int n, int d, float* s, int ld) {
    qk<F16>(q, n_q, k, nullptr, n, d, s, ld);
  }
  static void qk_q8(const float* q, int n_q, const int8_t* k, const float* ks, int n, int d,
                    float* s, int ld) {
    qk<Q8>(q, n_q, k, ks, n, d, s, ld);
  }
  static void av_f32(const float* p, int n_q, int ld, const float* v, int n, int d, float* o) {
    av<F32>(p, n_q, ld, v, nullptr, n, d, o);
  }
  static void av_f16(const float* p, int n_q, int ld, const uint16_t* v, int n, int d, float* o) {
    av<F16>(p, n_q, ld, v, nullptr, n, d, o);
  }
  static void av_q8(const float* p, int n_q, int ld, const int8_t* v, const float* vs, int n, int d,
                    float* o) {
    av<Q8>(p, n_q, ld, v, vs, n, d, o);
  }

  static void softmax(float* x, int n) {
    const int nv = n / W * W;
    float mx = x[0];
    if (nv > 0) {
      B m = B::load_unaligned(x);
      for (int j = W; j < nv; j += W) m = xsimd::max(m, B::load_unaligned(x + j));
      mx = hmax(m);
    }
    for (int j = nv; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
    const B vmx(mx);
    B vsum(0.f);
    for (int j = 0; j < nv; j += W) {
      B e = xsimd::exp(B::load_unaligned(x + j) - vmx);
      e.store_unaligned(x + j);
      vsum += e;
    }
    float sum = xsimd::hadd(vsum);
    for (int j = nv; j < n; ++j) {
      x[j] = expf(x[j] - mx);
      sum += x[j];
    }
    const float inv = 1.f / sum;
    const B vinv(inv);
    for (int j = 0; j < nv; j += W) (B::load_unaligned(x + j) * vinv).store_unaligned(x + j);
    for (int j = nv; j < n; ++j) x[j] *= inv;
  }

  // Lane i takes lane i ^ 1: swaps the members of each (2i, 2i+1) pair.
  struct SwapPairs {
    static constexpr uint32_t get(uint32_t i, uint32_t) { return i ^ 1u; }
  };

  static void rope_normal(float* x, int n_heads, int d, const float* table) {
    using U = xsimd::batch<uint32_t, A>;
    const int dv = d / W * W;
    for (int h = 0; h < n_heads; ++h) {
      float* r = x + (size_t)h * d;
      for (int c = 0; c < dv; c += W) {
        B v = B::load_unaligned(r + c);
        B sw = xsimd::swizzle(v, xsimd::make_batch_constant<U, SwapPairs>());
        B y = xsimd::fma(v, B::load_unaligned(table + c), sw * B::load_unaligned(table + d + c));
        y.store_unaligned(r + c);
      }
      for (int c = dv; c < d; c += 2) {
        float a = r[c], b = r[c + 1];
        r[c] = a * table[c] + b * table[d + c];
        r[c + 1] = b * table[c + 1] + a * table[d + c + 1];
      }
    }
  }

  static void rope_neox(float* x, int n_heads, int d, const float* table) {
    const int half = d / 2, hv = half / W * W;
    for (int h = 0; h < n_heads; ++h) {
      float* r = x + (size_t)h * d;
      for (int i = 0; i < hv; i += W) {
        B a = B::load_unaligned(r + i), b = B::load_unaligned(r + half + i);
        B c = B::load_unaligned(table + i), s = B::load_unaligned(table + half + i);
        xsimd::fms(a, c, b * s).store_unaligned(r + i);
        xsimd::fma(b, c, a * s).store_unaligned(r + half + i);
      }
      for (int i = hv; i < half; ++i) {
        float a = r[i], b = r[half + i], c = table[i], s = table[half + i];
        r[i] = a * c - b * s;
        r[half + i] = b * c + a * s;
      }
    }
  }

  static void to_f16(const float* x, uint16_t* y, int n) {
    const int nv = n / W * W;
    const B lim(65504.f), nlim(-65504.f);
    for (int i = 0; i < nv; i += W)
      Ops::store_f16(y + i, xsimd::max(xsimd::min(B::load_unaligned(x + i), lim), nlim));
    for (int i = nv; i < n; ++i) {
      float v = x[i] > 65504.f ? 65504.f : (x[i] < -65504.f ? -65504.f : x[i]);
      y[i] = amskv::f32_to_f16(v);
    }
  }

  static void from_f16(const uint16_t* x, float* y, int n) {
    const int nv = n / W * W;
    for (int i = 0; i < nv; i += W) Ops::load_f16(x + i).store_unaligned(y + i);
    for (int i = nv; i < n; ++i) y[i] = amskv::f16_to_f32(x[i]);
  }

  static float to_q8(const float* x, int8_t* y, int n) {
    const int nv = n / W * W;
    float mx = 0.f;
    if (nv > 0) {
      B m(0.f);
      for (int i = 0; i < nv; i += W) m = xsimd::max(m, xsimd::abs(B::load_unaligned(x + i)));
      mx = hmax(m);
    }
    for (int i = nv; i < n; ++i) mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    const float inv = mx > 0.f ? 127.f / mx : 0.f;
    const B vinv(inv);
    for (int i = 0; i < nv; i += W) Ops::store_i8(y + i, B::load_unaligned(x + i) * vinv);
    for (int i = nv; i < n; ++i) y[i] = (int8_t)nearbyintf(x[i] * inv);
    return mx / 127.f;
  }

  static void gather_rows(void* base, size_t row_bytes, const int32_t* idx, int n) {
    using U8 = xsimd::batch<uint8_t, A>;
    constexpr size_t V = U8::size;
    const size_t rv = row_bytes / V * V;
    uint8_t* b = (uint8_t*)base;
    for (int i = 0; i < n; ++i) {
      if (idx[i] == i) continue;
      uint8_t* dst = b + (size_t)i * row_bytes;
      const uint8_t* src = b + (size_t)idx[i] * row_bytes;
      for (size_t c = 0; c < rv; c += V) U8::load_unaligned(src + c).store_unaligned(dst + c);
      if (rv < row_bytes) memcpy(dst + rv, src + rv, row_bytes - rv);
    }
  }

  // constexpr: the per-ISA table is constant-initialised data, so no code compiled with the
  // ISA's flags runs before dispatch has checked the CPU.
  static constexpr amskv::Kernels table(const char* name) {
    return {name,  qk_f32,      qk_f16,    qk_q8,  softmax,  av_f32, av_f16,
            av_q8, rope_normal, rope_neox, to_f16, from_f16, to_q8,  gather_rows};
  }
};
