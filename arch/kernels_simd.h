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
//     static batch load_nib(const uint8_t*, bool high);  // W nibbles -> W floats
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

  static float hmax(B m) {
    alignas(64) float lanes[W];
    m.store_aligned(lanes);
    float r = lanes[0];
    for (int i = 1; i < W; ++i) r = lanes[i] > r ? lanes[i] : r;
    return r;
  }

  // GQA: up to four heads of a group score a block of W / 4 keys together. Each key row is
  // converted once for all of them (the conversion, not the arithmetic, bounds this kernel
  // per head); the sums of the four heads' keys come out of one haddp (lane h * W / 4 + i).
  // The accumulators, 4 x W / 4 vectors, stay in registers on every ISA.
  static constexpr int kGroupKeys = W / 4;

  template <class L, int NH>
  static void qk_heads(const float* q, int g0, const typename L::T* rows, const float* scale, int d,
                       float* scores, int ld) {
    constexpr int KB = kGroupKeys;
    B acc[4 * KB];
#pragma GCC unroll 16
    for (int i = 0; i < 4 * KB; ++i) acc[i] = B(0.f);
    for (int c = 0; c < d; c += 4 * W)
#pragma GCC unroll 4
      for (int i = 0; i < KB; ++i) {
        const typename L::T* r = rows + (size_t)i * d + c;
        const B k0 = L::load(r), k1 = L::load(r + W), k2 = L::load(r + 2 * W),
                k3 = L::load(r + 3 * W);
#pragma GCC unroll 4
        for (int h = 0; h < NH; ++h) {
          const float* qh = q + (size_t)(g0 + h) * d + c;
          B a = xsimd::fma(B::load_unaligned(qh), k0, acc[h * KB + i]);
          a = xsimd::fma(B::load_unaligned(qh + W), k1, a);
          a = xsimd::fma(B::load_unaligned(qh + 2 * W), k2, a);
          acc[h * KB + i] = xsimd::fma(B::load_unaligned(qh + 3 * W), k3, a);
        }
      }
    alignas(64) float sum[W];
    Ops::haddp(acc).store_aligned(sum);
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < KB; ++i)
        scores[(size_t)(g0 + h) * ld + i] = scale ? sum[h * KB + i] * scale[i] : sum[h * KB + i];
  }

  template <class L>
  static void qk(const float* q, int n_q, const typename L::T* k, const float* scale, int n, int d,
                 float* scores, int ld) {
    using T = typename L::T;
    int j0 = 0;
    if (n_q > 1 && d % (4 * W) == 0) {  // the group together, W / 4 keys at a time
      for (; j0 + kGroupKeys <= n; j0 += kGroupKeys) {
        const T* rows = k + (size_t)j0 * d;
        const float* sc = scale ? scale + j0 : nullptr;
        for (int g0 = 0; g0 < n_q; g0 += 4) {
          const int nh = n_q - g0 < 4 ? n_q - g0 : 4;
          if (nh == 1) qk_heads<L, 1>(q, g0, rows, sc, d, scores + j0, ld);
          if (nh == 2) qk_heads<L, 2>(q, g0, rows, sc, d, scores + j0, ld);
          if (nh == 3) qk_heads<L, 3>(q, g0, rows, sc, d, scores + j0, ld);
          if (nh == 4) qk_heads<L, 4>(q, g0, rows, sc, d, scores + j0, ld);
        }
      }
    }
    const int dv = d / W * W;
    // One head (or a head_dim the group path does not take): W keys at a time, W dot
    // products, one haddp.
    for (; j0 + W <= n; j0 += W) {
      const T* rows = k + (size_t)j0 * d;
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

  // Heads of a group that add up a block together (their accumulators in registers): the
  // block's rows are converted once for all of them. AVX2 has 16 registers, the others 32.
  static constexpr int kHeadsPerPass = W == 8 ? 2 : 4;

  // Rows [j0, j1) into output vectors [c, c + 4 W) of heads [g0, g0 + NG), with every row
  // converted once for the NG heads.
  template <class L, int NG>
  static void av_heads(const float* p, int g0, int ld, const typename L::T* v, const float* scale,
                       int j0, int j1, int d, int c, float* out) {
    B a[NG][4];
    for (int g = 0; g < NG; ++g)
      for (int i = 0; i < 4; ++i)
        a[g][i] = B::load_unaligned(out + (size_t)(g0 + g) * d + c + i * W);
    for (int j = j0; j < j1; ++j) {
      const typename L::T* r = v + (size_t)j * d + c;
      const B r0 = L::load(r), r1 = L::load(r + W), r2 = L::load(r + 2 * W),
              r3 = L::load(r + 3 * W);
      for (int g = 0; g < NG; ++g) {
        const float pg = p[(size_t)(g0 + g) * ld + j];
        const B pj(scale ? pg * scale[j] : pg);
        a[g][0] = xsimd::fma(pj, r0, a[g][0]);
        a[g][1] = xsimd::fma(pj, r1, a[g][1]);
        a[g][2] = xsimd::fma(pj, r2, a[g][2]);
        a[g][3] = xsimd::fma(pj, r3, a[g][3]);
      }
    }
    for (int g = 0; g < NG; ++g)
      for (int i = 0; i < 4; ++i) a[g][i].store_unaligned(out + (size_t)(g0 + g) * d + c + i * W);
  }

  template <class L>
  static void av(const float* p, int n_q, int ld, const typename L::T* v, const float* scale, int n,
                 int d, float* out) {
    const int dv = d / W * W;
    for (int i = 0; i < n_q * d; ++i) out[i] = 0.f;
    for (int j0 = 0; j0 < n; j0 += kBlock) {
      const int j1 = j0 + kBlock < n ? j0 + kBlock : n;
      int c = 0;
      for (; c + 4 * W <= dv; c += 4 * W)  // four output vectors per head live in registers
        for (int g0 = 0; g0 < n_q; g0 += kHeadsPerPass) {
          switch (n_q - g0 < kHeadsPerPass ? n_q - g0 : kHeadsPerPass) {
            case 1:
              av_heads<L, 1>(p, g0, ld, v, scale, j0, j1, d, c, out);
              break;
            case 2:
              av_heads<L, 2>(p, g0, ld, v, scale, j0, j1, d, c, out);
              break;
            case 3:
              av_heads < L, kHeadsPerPass<3 ? 1 : 3>(p, g0, ld, v, scale, j0, j1, d, c, out);
              break;
            default:
              av_heads<L, kHeadsPerPass>(p, g0, ld, v, scale, j0, j1, d, c, out);
          }
        }
      for (int g = 0; g < n_q; ++g) {  // the rest of the dimensions, one head at a time
        const float* pg = p + (size_t)g * ld;
        float* og = out + (size_t)g * d;
        int cc = c;
        for (; cc < dv; cc += W) {
          B a = B::load_unaligned(og + cc);
          for (int j = j0; j < j1; ++j)
            a = xsimd::fma(B(scale ? pg[j] * scale[j] : pg[j]), L::load(v + (size_t)j * d + cc), a);
          a.store_unaligned(og + cc);
        }
        for (; cc < d; ++cc) {
          float a = og[cc];
          for (int j = j0; j < j1; ++j)
            a += (scale ? pg[j] * scale[j] : pg[j]) * L::at(v + (size_t)j * d + cc);
          og[cc] = a;
        }
      }
    }
  }

  // q4 (layout in kernels.h): a block's 32 elements are kQ4Vecs vectors, vector v from bytes
  // (v * W) % 16 of the block, low nibbles for the first half, high ones for the second.
  static constexpr int kQ4Vecs = amskv::kQ4Block / W;
  static B q4_vec(const uint8_t* blk, int v) {
    return Ops::load_nib(blk + 4 + (v * W) % 16, v * W >= 16);
  }
  static void q4_scale_min(const uint8_t* blk, float* scale, float* mn) {
    uint16_t h[2];
    memcpy(h, blk, 4);
    *scale = amskv::f16_to_f32(h[0]);
    *mn = amskv::f16_to_f32(h[1]);
  }

  // Score = sum over blocks of scale * (q . nibbles) + min * sum(q). Up to four heads of a
  // group score W keys together: each key's nibbles are unpacked once for all of them.
  static constexpr int kQ4MaxBlocks = 256 / amskv::kQ4Block;

  template <int NH>
  static void qk_q4_heads(const float* q, int g0, const uint8_t* rows, int nk, int d,
                          const float (*qsum)[kQ4MaxBlocks], float* scores, int ld) {
    const int nb = d / amskv::kQ4Block;
    const size_t row = (size_t)nb * amskv::kQ4BlockBytes;
    B acc[NH][W];
    alignas(64) float msum[NH][W];
    for (int i = 0; i < nk; ++i) {
      const uint8_t* r = rows + (size_t)i * row;
      B a[NH];
      float m[NH];
      for (int h = 0; h < NH; ++h) a[h] = B(0.f), m[h] = 0.f;
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = r + (size_t)b * amskv::kQ4BlockBytes;
        float sc, mn;
        q4_scale_min(blk, &sc, &mn);
        B t[NH];
        for (int h = 0; h < NH; ++h) t[h] = B(0.f);
        for (int v = 0; v < kQ4Vecs; ++v) {
          const B nib = q4_vec(blk, v);
          for (int h = 0; h < NH; ++h)
            t[h] = xsimd::fma(
                B::load_unaligned(q + (size_t)(g0 + h) * d + b * amskv::kQ4Block + v * W), nib,
                t[h]);
        }
        const B vs(sc);
        for (int h = 0; h < NH; ++h) {
          a[h] = xsimd::fma(vs, t[h], a[h]);
          m[h] += mn * qsum[h][b];
        }
      }
      for (int h = 0; h < NH; ++h) acc[h][i] = a[h], msum[h][i] = m[h];
    }
    for (int h = 0; h < NH; ++h) {
      float* out = scores + (size_t)(g0 + h) * ld;
      if (nk == W) {
        (Ops::haddp(acc[h]) + B::load_aligned(msum[h])).store_unaligned(out);
      } else {
        for (int i = 0; i < nk; ++i) out[i] = xsimd::hadd(acc[h][i]) + msum[h][i];
      }
    }
  }

  static void qk_q4(const float* q, int n_q, const uint8_t* k, int n, int d, float* scores,
                    int ld) {
    const int nb = d / amskv::kQ4Block;
    const size_t row = (size_t)nb * amskv::kQ4BlockBytes;
    for (int g0 = 0; g0 < n_q; g0 += 4) {
      const int nh = n_q - g0 < 4 ? n_q - g0 : 4;
      float qsum[4][kQ4MaxBlocks];
      for (int h = 0; h < nh; ++h)
        for (int b = 0; b < nb; ++b) {
          const float* qb = q + (size_t)(g0 + h) * d + b * amskv::kQ4Block;
          B t(0.f);
          for (int v = 0; v < kQ4Vecs; ++v) t += B::load_unaligned(qb + v * W);
          qsum[h][b] = xsimd::hadd(t);
        }
      for (int j0 = 0; j0 < n; j0 += W) {
        const int nk = n - j0 < W ? n - j0 : W;
        const uint8_t* rows = k + (size_t)j0 * row;
        float* out = scores + j0;
        if (nh == 1) qk_q4_heads<1>(q, g0, rows, nk, d, qsum, out, ld);
        if (nh == 2) qk_q4_heads<2>(q, g0, rows, nk, d, qsum, out, ld);
        if (nh == 3) qk_q4_heads<3>(q, g0, rows, nk, d, qsum, out, ld);
        if (nh == 4) qk_q4_heads<4>(q, g0, rows, nk, d, qsum, out, ld);
      }
    }
  }

  // out += sum_j (p_j * scale) * nibbles, and the p_j * min terms summed per block and added
  // once: blocks of kBlock rows; kHeadsPerPass heads' q4 block of output in registers, each
  // row's nibbles unpacked once for them.
  template <int NG>
  static void av_q4_heads(const float* p, int g0, int ld, const uint8_t* v, int j0, int j1, int d,
                          float* out) {
    const int nb = d / amskv::kQ4Block;
    const size_t row = (size_t)nb * amskv::kQ4BlockBytes;
    for (int b = 0; b < nb; ++b) {
      B o[NG][kQ4Vecs];
      float m[NG];
      for (int g = 0; g < NG; ++g) {
        m[g] = 0.f;
        for (int u = 0; u < kQ4Vecs; ++u)
          o[g][u] = B::load_unaligned(out + (size_t)(g0 + g) * d + b * amskv::kQ4Block + u * W);
      }
      for (int j = j0; j < j1; ++j) {
        const uint8_t* blk = v + (size_t)j * row + (size_t)b * amskv::kQ4BlockBytes;
        float sc, mn;
        q4_scale_min(blk, &sc, &mn);
        B nib[kQ4Vecs];
        for (int u = 0; u < kQ4Vecs; ++u) nib[u] = q4_vec(blk, u);
        for (int g = 0; g < NG; ++g) {
          const float pg = p[(size_t)(g0 + g) * ld + j];
          const B ps(pg * sc);
          for (int u = 0; u < kQ4Vecs; ++u) o[g][u] = xsimd::fma(ps, nib[u], o[g][u]);
          m[g] += pg * mn;
        }
      }
      for (int g = 0; g < NG; ++g)
        for (int u = 0; u < kQ4Vecs; ++u)
          (o[g][u] + B(m[g]))
              .store_unaligned(out + (size_t)(g0 + g) * d + b * amskv::kQ4Block + u * W);
    }
  }

  static void av_q4(const float* p, int n_q, int ld, const uint8_t* v, int n, int d, float* out) {
    for (int i = 0; i < n_q * d; ++i) out[i] = 0.f;
    for (int j0 = 0; j0 < n; j0 += kBlock) {
      const int j1 = j0 + kBlock < n ? j0 + kBlock : n;
      for (int g0 = 0; g0 < n_q; g0 += kHeadsPerPass) {
        const int ng = n_q - g0 < kHeadsPerPass ? n_q - g0 : kHeadsPerPass;
        if (ng == 1) av_q4_heads<1>(p, g0, ld, v, j0, j1, d, out);
        if (ng == 2) av_q4_heads<2>(p, g0, ld, v, j0, j1, d, out);
        if (kHeadsPerPass > 2 && ng == 3) av_q4_heads<3>(p, g0, ld, v, j0, j1, d, out);
        if (kHeadsPerPass > 3 && ng == 4) av_q4_heads<kHeadsPerPass>(p, g0, ld, v, j0, j1, d, out);
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

  // As the reference: the same min, max and f32 operations, so the bytes are identical.
  static void to_q4(const float* x, uint8_t* y, int n) {
    for (int b = 0; b < n / amskv::kQ4Block; ++b) {
      const float* xb = x + b * amskv::kQ4Block;
      B lo(65504.f), hi(-65504.f);
      for (int v = 0; v < kQ4Vecs; ++v) {
        const B t = B::load_unaligned(xb + v * W);
        lo = xsimd::min(lo, t);
        hi = xsimd::max(hi, t);
      }
      float l = -hmax(-lo), h = hmax(hi);
      l = l < -65504.f ? -65504.f : l;
      h = h > 65504.f ? 65504.f : (h < l ? l : h);
      const uint16_t hs[2] = {amskv::f32_to_f16((h - l) / 15.f), amskv::f32_to_f16(l)};
      const float scale = amskv::f16_to_f32(hs[0]), mn = amskv::f16_to_f32(hs[1]);
      const B inv(scale > 0.f ? 1.f / scale : 0.f), vmn(mn), zero(0.f), fifteen(15.f);
      alignas(64) int32_t q[amskv::kQ4Block];
      for (int v = 0; v < kQ4Vecs; ++v) {
        const B t = xsimd::nearbyint((B::load_unaligned(xb + v * W) - vmn) * inv);
        xsimd::to_int(xsimd::min(xsimd::max(t, zero), fifteen)).store_aligned(q + v * W);
      }
      uint8_t* yb = y + (size_t)b * amskv::kQ4BlockBytes;
      memcpy(yb, hs, 4);
      for (int i = 0; i < 16; ++i) yb[4 + i] = (uint8_t)(q[i] | q[i + 16] << 4);
    }
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
    return {name,  qk_f32,      qk_f16,    qk_q8,  qk_q4,    softmax, av_f32, av_f16,     av_q8,
            av_q4, rope_normal, rope_neox, to_f16, from_f16, to_q8,   to_q4,  gather_rows};
  }
};
