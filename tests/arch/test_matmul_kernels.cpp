// The model runner's matrix-product kernels (arch/matmul.h) of every variant the CPU runs,
// against the scalar reference, and the reference against a plain double computation of the
// packed layout's definition: block counts around the unrolling, group counts that leave
// padded rows, several tokens, every value range of the packed types.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "arch/f16.h"
#include "arch/matmul.h"

namespace amskv {
namespace {

constexpr double kTol = 2e-6;  // float reassociation, relative to sum |w x|

// A random packed matrix of n rows and nb blocks, random 16-bit activations, and the exact
// products in double.
enum Kind { kQ4, kQ8, kQ8S };
const char* const kKindNames[] = {"q4", "q8", "q8s"};

struct Case {
  Kind kind;
  bool q4;
  int n, nb, n_tok, sb;
  std::vector<uint8_t> q;
  std::vector<uint16_t> d, m;
  std::vector<int8_t> sc, mn;  // Q8S
  std::vector<int16_t> xq;
  std::vector<uint8_t> lo;
  std::vector<int8_t> hi;
  std::vector<float> xd, xs;
  float m_scale;
  std::vector<double> want, scale;  // [n_tok][n]: exact value and sum of |terms|

  // Q8S superblocks of 8 blocks where nb allows, else of 1.
  Case(Kind k, int rows, int blocks, int tokens, uint32_t seed)
      : kind(k),
        q4(k == kQ4),
        n(rows),
        nb(blocks),
        n_tok(tokens),
        sb(k == kQ8S && blocks % 8 == 0 ? 8 : 1),
        m_scale(k == kQ4 ? -8.f : 1.f) {
    std::mt19937 rng(seed);
    const int groups = (n + kPackRows - 1) / kPackRows;
    q.resize((size_t)groups * nb * (q4 ? 64 : 128));
    for (auto& v : q) v = (uint8_t)rng();
    std::uniform_real_distribution<float> ud(-0.05f, 0.05f), ux(0.f, 1e-3f);
    d.resize((size_t)groups * (nb / sb) * kPackRows);
    m.resize(d.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = f32_to_f16(ud(rng)), m[i] = f32_to_f16(ud(rng));
    if (kind == kQ8S) {
      std::uniform_int_distribution<int> us(-128, 127);
      sc.resize((size_t)groups * nb * 8);
      mn.resize((size_t)groups * nb * 4);
      for (auto& v : sc) v = (int8_t)us(rng);
      for (auto& v : mn) v = (int8_t)us(rng);
      sc[0] = -128, sc[1] = 127;
    }
    xq.resize((size_t)n_tok * nb * 32);
    std::uniform_int_distribution<int> uq(-32767, 32767);
    for (auto& v : xq) v = (int16_t)uq(rng);
    xq[0] = 32767;
    xq[1] = -32767;
    for (int16_t v : xq) lo.push_back((uint8_t)(v & 255)), hi.push_back((int8_t)(v >> 8));
    xd.resize((size_t)n_tok * nb);
    xs.resize(xd.size());
    for (size_t i = 0; i < xd.size(); ++i) {
      xd[i] = ux(rng);
      long sum = 0;
      for (int j = 0; j < 32; ++j) sum += xq[i * 32 + j];
      xs[i] = xd[i] * (float)sum;
    }
    want.assign((size_t)n_tok * n, 0.0);
    scale.assign(want.size(), 0.0);
    for (int t = 0; t < n_tok; ++t)
      for (int r = 0; r < n; ++r)
        for (int b = 0; b < nb; ++b) {
          const size_t gb = (size_t)(r / kPackRows) * nb + b, lane = r % kPackRows;
          const size_t gs = (size_t)(r / kPackRows) * (nb / sb) + b / sb;
          const double x = xd[(size_t)t * nb + b];
          for (int i = 0; i < 32; ++i) {
            const int half = i / 16, e = i % 16;
            int v;
            if (q4) {
              const uint8_t byte = q[gb * 64 + lane * 16 + e];
              v = half ? byte >> 4 : byte & 15;
            } else {
              v = (int8_t)q[gb * 128 + half * 64 + lane * 16 + e];
            }
            double dw = f16_to_f32(d[gs * kPackRows + lane]);
            if (kind == kQ8S) dw *= sc[gb * 8 + half * 4 + lane];
            const double term = dw * v * x * xq[((size_t)t * nb + b) * 32 + i];
            want[(size_t)t * n + r] += term;
            scale[(size_t)t * n + r] += std::fabs(term);
          }
          if (kind != kQ8) {
            double mw = m_scale * (double)f16_to_f32(m[gs * kPackRows + lane]);
            if (kind == kQ8S) mw = (double)f16_to_f32(m[gs * kPackRows + lane]) * mn[gb * 4 + lane];
            const double term = mw * xs[(size_t)t * nb + b];
            want[(size_t)t * n + r] += term;
            scale[(size_t)t * n + r] += std::fabs(term);
          }
        }
  }

  PackedMatrix packed() const {
    PackedMatrix w{q.data(), d.data(), kind != kQ8 ? m.data() : nullptr, m_scale, nb, n};
    if (kind == kQ8S) w.sc = sc.data(), w.mn = mn.data(), w.sb = sb;
    return w;
  }

  std::vector<float> run(const MatmulKernels& k, int g0, int g1) const {
    const PackedMatrix w = packed();
    const QuantActs x{xq.data(), xd.data(), xs.data(), n_tok, lo.data(), hi.data()};
    std::vector<float> y((size_t)n_tok * n, NAN);
    (kind == kQ4   ? k.gemm_q4
     : kind == kQ8 ? k.gemm_q8
                   : k.gemm_q8s)(w, g0, g1, x, y.data(), (size_t)n);
    return y;
  }

  // Rows of groups [g0, g1) as bf16, ldo = 32 nb + 8 (the gap must stay untouched).
  std::vector<uint16_t> unpack(const MatmulKernels& k, int g0, int g1) const {
    const PackedMatrix w = packed();
    const size_t ldo = (size_t)nb * 32 + 8;
    std::vector<uint16_t> out((size_t)(g1 - g0) * kPackRows * ldo, 0xdead);
    k.unpack_bf16(w, q4, g0, g1, out.data(), ldo);
    return out;
  }
};

float bf16_to_f32(uint16_t h) {
  const uint32_t b = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(MatmulReference, MatchesThePackedLayoutsDefinition) {
  for (Kind kind : {kQ4, kQ8, kQ8S})
    for (int n : {1, 4, 7, 13})
      for (int nb : {1, 3, 8, 18}) {
        const Case c(kind, n, nb, 3, 100 + n * 7 + nb);
        const std::vector<float> y = c.run(kMatmulRef, 0, (n + 3) / 4);
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], c.want[i], 1e-5 * c.scale[i] + 1e-30)
              << kKindNames[kind] << " rows " << n << " blocks " << nb << " at " << i;
      }
}

TEST(MatmulReference, UnpacksToBf16AsTheLayoutDefines) {
  for (bool q4 : {true, false})
    for (int n : {1, 4, 7})
      for (int nb : {1, 3}) {
        const Case c(q4 ? kQ4 : kQ8, n, nb, 1, 300 + n * 7 + nb);
        const int groups = (n + 3) / 4;
        const std::vector<uint16_t> out = c.unpack(kMatmulRef, 0, groups);
        const size_t ldo = (size_t)nb * 32 + 8;
        for (int r = 0; r < n; ++r)  // padding rows hold what their (zero) scales give
          for (int b = 0; b < nb; ++b)
            for (int i = 0; i < 32; ++i) {
              const size_t gb = (size_t)(r / kPackRows) * nb + b, lane = r % kPackRows;
              const int half = i / 16, e = i % 16;
              const uint8_t byte = c.q[gb * (q4 ? 64 : 128) + (q4 ? 0 : half * 64) + lane * 16 + e];
              const int v = q4 ? (half ? byte >> 4 : byte & 15) : (int8_t)byte;
              double want = (double)f16_to_f32(c.d[gb * 4 + lane]) * v;
              if (q4) want += (double)c.m_scale * f16_to_f32(c.m[gb * 4 + lane]);
              const float got = bf16_to_f32(out[(size_t)r * ldo + 32 * b + i]);
              ASSERT_NEAR(got, want, std::fabs(want) / 256 + 1e-30) << r << " " << i;
            }
        for (int r = 0; r < groups * kPackRows; ++r)
          for (size_t i = (size_t)nb * 32; i < ldo; ++i) ASSERT_EQ(out[r * ldo + i], 0xdead);
      }
}

class MatmulKernels : public ::testing::TestWithParam<MatmulVariant> {};

TEST_P(MatmulKernels, EveryVariantMatchesTheReference) {
  const amskv::MatmulKernels* k = matmul_kernels_for(GetParam());
  if (!k) GTEST_SKIP() << matmul_variant_name(GetParam()) << " not available on this CPU/build";
  for (Kind kind : {kQ4, kQ8, kQ8S})
    for (int n : {3, 4, 9, 16, 37})
      for (int nb : {1, 2, 5, 8, 18, 48})
        for (int n_tok : {1, 4}) {
          const Case c(kind, n, nb, n_tok, 7 * n + 3 * nb + n_tok);
          const int groups = (n + 3) / 4;
          const std::vector<float> want = c.run(kMatmulRef, 0, groups);
          const std::vector<float> got = c.run(*k, 0, groups);
          for (size_t i = 0; i < got.size(); ++i)
            ASSERT_NEAR(got[i], want[i], kTol * c.scale[i] + 1e-30)
                << kKindNames[kind] << " rows " << n << " blocks " << nb << " tokens " << n_tok
                << " at " << i;
          // A range of groups writes those rows alone.
          if (groups > 1) {
            const std::vector<float> part = c.run(*k, 1, groups);
            for (int t = 0; t < n_tok; ++t)
              for (int r = 0; r < n; ++r)
                ASSERT_EQ(std::isnan(part[(size_t)t * n + r]), r < kPackRows) << "row " << r;
          }
        }
}

TEST_P(MatmulKernels, Bf16UnpackingEqualsTheReferenceBitForBit) {
  const amskv::MatmulKernels* k = matmul_kernels_for(GetParam());
  if (!k) GTEST_SKIP() << matmul_variant_name(GetParam()) << " not available on this CPU/build";
  if (!k->unpack_bf16) {
    GTEST_SKIP() << matmul_variant_name(GetParam()) << " has no bf16 unpacking";
  }
  for (bool q4 : {true, false})
    for (int n : {3, 9, 16})
      for (int nb : {1, 2, 18}) {
        const Case c(q4 ? kQ4 : kQ8, n, nb, 1, 11 * n + nb);
        const int groups = (n + 3) / 4;
        EXPECT_EQ(c.unpack(*k, 0, groups), c.unpack(kMatmulRef, 0, groups))
            << (q4 ? "q4" : "q8") << " rows " << n << " blocks " << nb;
        if (groups > 1) {
          EXPECT_EQ(c.unpack(*k, 1, groups), c.unpack(kMatmulRef, 1, groups));
        }
      }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, MatmulKernels,
                         ::testing::Values(MatmulVariant::kRef, MatmulVariant::kAvx2,
                                           MatmulVariant::kAvx512, MatmulVariant::kAvx512Vnni,
                                           MatmulVariant::kNeon),
                         [](const auto& info) {
                           return std::string(matmul_variant_name(info.param));
                         });

TEST(MatmulDispatch, TheActiveVariantFollowsTheSessionKernels) {
  ASSERT_NE(matmul_kernels(), nullptr);
  const std::string name = matmul_kernels()->name, isa = active_kernels()->name;
  EXPECT_EQ(name.compare(0, isa.size(), isa), 0) << name << " for kernels " << isa;
}

}  // namespace
}  // namespace amskv
