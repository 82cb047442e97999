// Scalar reference of the matrix-product kernels (arch/matmul.h), and the choice of variant
// (generic code: it reads the per-variant tables only after the CPU check).
#include <cmath>

#include "arch/f16.h"
#include "arch/matmul.h"

namespace amskv {
namespace {

// Q4: nibbles of 4 rows x 16 bytes per block; Q8: two halves of 4 rows x 16 int8.
template <bool Q4>
void gemm(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb;
  const size_t qbytes = Q4 ? 64 : 128;  // per group and block
  for (int g = g0; g < g1; ++g)
    for (int t = 0; t < x.n_tok; ++t) {
      const int16_t* xq = x.q + (size_t)t * k;
      const float* xd = x.d + (size_t)t * nb;
      const float* xs = x.s + (size_t)t * nb;
      float acc[kPackRows] = {}, macc[kPackRows] = {};
      for (int b = 0; b < nb; ++b) {
        const size_t gb = (size_t)g * nb + b;
        const uint8_t* q = w.q + gb * qbytes;
        for (int r = 0; r < kPackRows; ++r) {
          int32_t s = 0;
          for (int i = 0; i < 16; ++i) {
            const int lo = Q4 ? q[r * 16 + i] & 15 : (int8_t)q[r * 16 + i];
            const int hi = Q4 ? q[r * 16 + i] >> 4 : (int8_t)q[64 + r * 16 + i];
            s += lo * xq[b * 32 + i] + hi * xq[b * 32 + 16 + i];
          }
          acc[r] += f16_to_f32(w.d[gb * 4 + r]) * xd[b] * (float)s;
          if (Q4) macc[r] += f16_to_f32(w.m[gb * 4 + r]) * xs[b];
        }
      }
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = acc[r] + w.m_scale * macc[r];
      }
    }
}

void gemm_q4(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  gemm<true>(w, g0, g1, x, y, ldy);
}
void gemm_q8(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  gemm<false>(w, g0, g1, x, y, ldy);
}

// Q8S: the halves' integer sums apart, each times its multiplier; the minima once per block.
void gemm_q8s(const PackedMatrix& w, int g0, int g1, const QuantActs& x, float* y, size_t ldy) {
  const int nb = w.nb, k = 32 * nb, ns = nb / w.sb;
  for (int g = g0; g < g1; ++g)
    for (int t = 0; t < x.n_tok; ++t) {
      const int16_t* xq = x.q + (size_t)t * k;
      const float* xd = x.d + (size_t)t * nb;
      const float* xs = x.s + (size_t)t * nb;
      float acc[kPackRows] = {}, macc[kPackRows] = {};
      for (int b = 0; b < nb; ++b) {
        const size_t gb = (size_t)g * nb + b, gs = (size_t)g * ns + b / w.sb;
        const int8_t* q = (const int8_t*)w.q + gb * 128;
        for (int r = 0; r < kPackRows; ++r) {
          int32_t s0 = 0, s1 = 0;
          for (int i = 0; i < 16; ++i) {
            s0 += q[r * 16 + i] * xq[b * 32 + i];
            s1 += q[64 + r * 16 + i] * xq[b * 32 + 16 + i];
          }
          const float sc0 = w.sc[gb * 8 + r], sc1 = w.sc[gb * 8 + 4 + r];
          acc[r] += f16_to_f32(w.d[gs * 4 + r]) * xd[b] * (sc0 * (float)s0 + sc1 * (float)s1);
          macc[r] += f16_to_f32(w.m[gs * 4 + r]) * (float)w.mn[gb * 4 + r] * xs[b];
        }
      }
      for (int r = 0; r < kPackRows; ++r) {
        const int row = g * kPackRows + r;
        if (row < w.n_rows) y[(size_t)t * ldy + row] = acc[r] + macc[r];
      }
    }
}

void unpack_bf16(const PackedMatrix& w, bool q4, int g0, int g1, uint16_t* out, size_t ldo) {
  const int nb = w.nb;
  for (int g = g0; g < g1; ++g)
    for (int r = 0; r < kPackRows; ++r) {
      uint16_t* o = out + (size_t)((g - g0) * kPackRows + r) * ldo;
      for (int b = 0; b < nb; ++b) {
        const size_t gb = (size_t)g * nb + b;
        const uint8_t* q = w.q + gb * (q4 ? 64 : 128);
        const float d = f16_to_f32(w.d[gb * 4 + r]);
        const float m = q4 ? w.m_scale * f16_to_f32(w.m[gb * 4 + r]) : 0.f;
        for (int i = 0; i < 16; ++i) {
          const int lo = q4 ? q[r * 16 + i] & 15 : (int8_t)q[r * 16 + i];
          const int hi = q4 ? q[r * 16 + i] >> 4 : (int8_t)q[64 + r * 16 + i];
          o[32 * b + i] = f32_to_bf16(q4 ? std::fma((float)lo, d, m) : (float)lo * d);
          o[32 * b + 16 + i] = f32_to_bf16(q4 ? std::fma((float)hi, d, m) : (float)hi * d);
        }
      }
    }
}

const MatmulKernels* compiled(MatmulVariant v) {
  switch (v) {
    case MatmulVariant::kRef:
      return &kMatmulRef;
#ifdef AMSKV_HAVE_AVX2
    case MatmulVariant::kAvx2:
      return &kMatmulAvx2;
#endif
#ifdef AMSKV_HAVE_AVX512
    case MatmulVariant::kAvx512:
      return &kMatmulAvx512;
#endif
#ifdef AMSKV_HAVE_AVX512VNNI
    case MatmulVariant::kAvx512Vnni:
      return &kMatmulAvx512Vnni;
#endif
#ifdef AMSKV_HAVE_NEON
    case MatmulVariant::kNeon:
      return &kMatmulNeon;
#endif
    default:
      return nullptr;
  }
}

}  // namespace

extern const MatmulKernels kMatmulRef;
constexpr MatmulKernels kMatmulRef = {"ref", gemm_q4, gemm_q8, gemm_q8s, unpack_bf16};

const char* matmul_variant_name(MatmulVariant v) {
  static const char* const kNames[] = {"ref", "avx2", "avx512", "avx512vnni", "neon"};
  return kNames[(int)v];
}

const MatmulKernels* matmul_kernels_for(MatmulVariant v) {
  switch (v) {
    case MatmulVariant::kRef:
      return compiled(v);
    case MatmulVariant::kAvx2:
      return isa_supported(Isa::kAvx2) ? compiled(v) : nullptr;
    case MatmulVariant::kAvx512:
      return isa_supported(Isa::kAvx512) ? compiled(v) : nullptr;
    case MatmulVariant::kAvx512Vnni:
      return isa_supported(Isa::kAvx512) && cpu_avx512_vnni() ? compiled(v) : nullptr;
    case MatmulVariant::kNeon:
      return isa_supported(Isa::kNeon) ? compiled(v) : nullptr;
    default:
      return nullptr;
  }
}

const MatmulKernels* matmul_kernels() {
  const Kernels* k = active_kernels();
  Isa isa;
  if (!k || !isa_from_name(k->name, &isa)) return nullptr;
  switch (isa) {
    case Isa::kAvx2:
      return matmul_kernels_for(MatmulVariant::kAvx2);
    case Isa::kAvx512: {
      const MatmulKernels* vnni = matmul_kernels_for(MatmulVariant::kAvx512Vnni);
      return vnni ? vnni : matmul_kernels_for(MatmulVariant::kAvx512);
    }
    case Isa::kNeon:
      return matmul_kernels_for(MatmulVariant::kNeon);
    default:
      return matmul_kernels_for(MatmulVariant::kRef);
  }
}

}  // namespace amskv
