// Every kernel of every ISA variant the CPU runs, against the scalar reference: sizes around
// the vector widths (tails), misaligned pointers, large and tiny magnitudes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "arch/f16.h"
#include "arch/kernels.h"
#include "arch/rope.h"
#include "tests/arch/isa_test.h"

namespace amskv {
namespace {

// Named tolerances, relative to the sum of absolute products (the error scale of a dot).
constexpr float kDotTolF32 = 2e-6f;  // reassociation of a float sum
constexpr float kExpTol = 4e-6f;     // xsimd exp vs libm expf, then normalisation
constexpr float kRopeTol = 1e-6f;    // fma vs separate multiply-add

const int kDims[] = {32, 40, 48, 56, 64, 72, 96, 120, 128, 136, 200, 256};
const int kCounts[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 130};
const int kGroups[] = {1, 3, 4};
const float kMagnitudes[] = {1e-3f, 1.f, 300.f};

class Kernels : public IsaTest<amskv::Kernels, kernels_for, &kKernelsRef> {};

// Stores rows [n][d] of x in `dtype` as the session does; returns the dequantised values.
struct Stored {
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<int8_t> q8;
  std::vector<float> scale;
  std::vector<uint8_t> q4;    // empty unless d % 32 == 0
  std::vector<float> q4_err;  // per element: 15 * scale + |min| of its block (error scale)
  std::vector<float> dequant;
};

Stored store(const std::vector<float>& x, int n, int d) {
  Stored s;
  s.f32 = x;
  s.f16.resize(x.size());
  s.q8.resize(x.size());
  s.scale.resize(n);
  kKernelsRef.to_f16(x.data(), s.f16.data(), (int)x.size());
  for (int j = 0; j < n; ++j)
    s.scale[j] = kKernelsRef.to_q8(x.data() + (size_t)j * d, s.q8.data() + (size_t)j * d, d);
  if (d % kQ4Block == 0) {
    const size_t row = (size_t)d / kQ4Block * kQ4BlockBytes;
    s.q4.resize(row * n);
    s.q4_err.resize(x.size());
    for (int j = 0; j < n; ++j) {
      kKernelsRef.to_q4(x.data() + (size_t)j * d, s.q4.data() + j * row, d);
      for (int c = 0; c < d; ++c) {
        const uint8_t* blk = s.q4.data() + j * row + (size_t)(c / kQ4Block) * kQ4BlockBytes;
        uint16_t h[2];
        std::memcpy(h, blk, 4);
        s.q4_err[(size_t)j * d + c] = 15 * f16_to_f32(h[0]) + std::fabs(f16_to_f32(h[1]));
      }
    }
  }
  return s;
}

TEST_P(Kernels, QueryKeyScoresMatchReference) {
  for (float mag : kMagnitudes)
    for (int d : kDims)
      for (int n : kCounts)
        for (int G : kGroups) {
          const int off = (n + d) % 3;  // 0, 1 or 2 elements: misaligned rows too
          auto q = random((size_t)G * d, mag);
          auto kx = random((size_t)n * d, mag);
          Stored st = store(kx, n, d);
          const int ld = n + 3;
          for (int dt = 0; dt < 4; ++dt) {
            if (dt == 3 && st.q4.empty()) continue;
            std::vector<float> got((size_t)G * ld, -1.f), want((size_t)G * ld, -1.f);
            Shifted<float> qs(q, off);
            if (dt == 0) {
              Shifted<float> ks(st.f32, off);
              k_->qk_f32(qs.p, G, ks.p, n, d, got.data(), ld);
              ref_->qk_f32(q.data(), G, st.f32.data(), n, d, want.data(), ld);
            } else if (dt == 1) {
              Shifted<uint16_t> ks(st.f16, off);
              k_->qk_f16(qs.p, G, ks.p, n, d, got.data(), ld);
              ref_->qk_f16(q.data(), G, st.f16.data(), n, d, want.data(), ld);
            } else if (dt == 2) {
              Shifted<int8_t> ks(st.q8, off);
              k_->qk_q8(qs.p, G, ks.p, st.scale.data(), n, d, got.data(), ld);
              ref_->qk_q8(q.data(), G, st.q8.data(), st.scale.data(), n, d, want.data(), ld);
            } else {
              Shifted<uint8_t> ks(st.q4, off);
              k_->qk_q4(qs.p, G, ks.p, n, d, got.data(), ld);
              ref_->qk_q4(q.data(), G, st.q4.data(), n, d, want.data(), ld);
            }
            for (int g = 0; g < G; ++g)
              for (int j = 0; j < ld; ++j) {
                const float w = want[(size_t)g * ld + j], v = got[(size_t)g * ld + j];
                if (j >= n) {  // beyond n: untouched
                  ASSERT_EQ(v, -1.f);
                  continue;
                }
                // error scale: sum |q||k| in the stored precision, times the row scale
                float absdot = 0;
                for (int c = 0; c < d; ++c)
                  absdot +=
                      std::fabs(q[(size_t)g * d + c]) *
                      (dt == 3 ? st.q4_err[(size_t)j * d + c] : std::fabs(kx[(size_t)j * d + c]));
                ASSERT_NEAR(v, w, kDotTolF32 * d * absdot + 1e-30f)
                    << "dtype " << dt << " d " << d << " n " << n << " G " << G << " j " << j
                    << " mag " << mag;
              }
          }
        }
}

TEST_P(Kernels, SoftmaxMatchesReferenceAndIsStable) {
  for (int n : kCounts)
    for (float mag : {1e-3f, 1.f, 80.f, 1e4f}) {  // 1e4: exp would overflow without the max
      auto x = random((size_t)n, mag);
      auto want = x;
      ref_->softmax(want.data(), n);
      Shifted<float> got(x, n % 3);
      k_->softmax(got.p, n);
      double sum = 0;
      for (int j = 0; j < n; ++j) {
        ASSERT_TRUE(std::isfinite(got.p[j]));
        ASSERT_NEAR(got.p[j], want[j], kExpTol * (want[j] + 1e-6f)) << "n " << n << " mag " << mag;
        sum += got.p[j];
      }
      ASSERT_NEAR(sum, 1.0, 1e-5);
    }
}

TEST_P(Kernels, WeightedValuesMatchReference) {
  for (float mag : kMagnitudes)
    for (int d : kDims)
      for (int n : kCounts)
        for (int G : kGroups) {
          const int off = (n * 7 + d) % 3;
          const int ld = n + 1;
          auto p = random((size_t)G * ld, 1.f);
          for (auto& x : p) x = std::fabs(x);
          auto vx = random((size_t)n * d, mag);
          Stored st = store(vx, n, d);
          for (int dt = 0; dt < 4; ++dt) {
            if (dt == 3 && st.q4.empty()) continue;
            std::vector<float> got((size_t)G * d), want((size_t)G * d);
            Shifted<float> ps(p, off);
            if (dt == 0) {
              Shifted<float> vs(st.f32, off);
              k_->av_f32(ps.p, G, ld, vs.p, n, d, got.data());
              ref_->av_f32(p.data(), G, ld, st.f32.data(), n, d, want.data());
            } else if (dt == 1) {
              Shifted<uint16_t> vs(st.f16, off);
              k_->av_f16(ps.p, G, ld, vs.p, n, d, got.data());
              ref_->av_f16(p.data(), G, ld, st.f16.data(), n, d, want.data());
            } else if (dt == 2) {
              Shifted<int8_t> vs(st.q8, off);
              k_->av_q8(ps.p, G, ld, vs.p, st.scale.data(), n, d, got.data());
              ref_->av_q8(p.data(), G, ld, st.q8.data(), st.scale.data(), n, d, want.data());
            } else {
              Shifted<uint8_t> vs(st.q4, off);
              k_->av_q4(ps.p, G, ld, vs.p, n, d, got.data());
              ref_->av_q4(p.data(), G, ld, st.q4.data(), n, d, want.data());
            }
            for (int g = 0; g < G; ++g)
              for (int c = 0; c < d; ++c) {
                float scale = 0;
                for (int j = 0; j < n; ++j)
                  scale += p[(size_t)g * ld + j] * (dt == 3 ? st.q4_err[(size_t)j * d + c]
                                                            : std::fabs(vx[(size_t)j * d + c]));
                ASSERT_NEAR(got[(size_t)g * d + c], want[(size_t)g * d + c],
                            kDotTolF32 * n * scale + 1e-30f)
                    << "dtype " << dt << " d " << d << " n " << n << " G " << G;
              }
          }
        }
}

TEST_P(Kernels, RopeMatchesReferenceBothStyles) {
  std::vector<double> freq(128);
  std::vector<float> table(512);
  for (int d : kDims)
    for (int32_t pos : {0, 1, 17, 4095, 1000000})
      for (bool neox : {false, true}) {
        rope_inv_freq(10000.f, d, freq.data());
        rope_table(neox, pos, freq.data(), d, table.data());
        const int heads = 3;
        auto x = random((size_t)heads * d, 4.f);
        auto want = x;
        Shifted<float> got(x, d % 3);
        (neox ? ref_->rope_neox : ref_->rope_normal)(want.data(), heads, d, table.data());
        (neox ? k_->rope_neox : k_->rope_normal)(got.p, heads, d, table.data());
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_NEAR(got.p[i], want[i], kRopeTol * 8.f) << "d " << d << " neox " << neox;
      }
}

TEST(RopeReference, RotatesPairsByTheRightAngles) {
  // d = 4, theta = 100: inverse frequencies 1 and 100^(-1/2) = 0.1.
  std::vector<double> freq(2);
  rope_inv_freq(100.f, 4, freq.data());
  EXPECT_DOUBLE_EQ(freq[1], 0.1);
  std::vector<float> table(8);
  rope_table(false, 3, freq.data(), 4, table.data());
  float x[4] = {1, 0, 0, 1};
  kKernelsRef.rope_normal(x, 1, 4, table.data());
  // normal: pair (x0, x1) rotated by 3 rad, pair (x2, x3) by 0.3 rad.
  EXPECT_NEAR(x[0], std::cos(3.f), 1e-6);
  EXPECT_NEAR(x[1], std::sin(3.f), 1e-6);
  EXPECT_NEAR(x[2], -std::sin(0.3f), 1e-6);
  EXPECT_NEAR(x[3], std::cos(0.3f), 1e-6);
  rope_table(true, 3, freq.data(), 4, table.data());
  float y[4] = {1, 0, 0, 1};  // neox pairs: (y0, y2) by 3 rad and (y1, y3) by 0.3 rad
  kKernelsRef.rope_neox(y, 1, 4, table.data());
  EXPECT_NEAR(y[0], std::cos(3.f), 1e-6);
  EXPECT_NEAR(y[2], std::sin(3.f), 1e-6);
  EXPECT_NEAR(y[1], -std::sin(0.3f), 1e-6);
  EXPECT_NEAR(y[3], std::cos(0.3f), 1e-6);
}

TEST_P(Kernels, ConversionsAreBitExact) {
  for (int n : kCounts)
    for (float mag : {1e-6f, 1.f, 7e4f}) {  // 7e4: beyond f16's range, must saturate
      auto x = random((size_t)n, mag);
      std::vector<uint16_t> want16(n), got16(n + 1);
      ref_->to_f16(x.data(), want16.data(), n);
      Shifted<float> xs(x, 1);
      k_->to_f16(xs.p, got16.data() + 1, n);
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(got16[i + 1], want16[i]) << "f16 of " << x[i];
        ASSERT_TRUE(std::isfinite(f16_to_f32(got16[i + 1])));
      }
      std::vector<float> back_want(n), back_got(n + 1);
      ref_->from_f16(want16.data(), back_want.data(), n);
      k_->from_f16(got16.data() + 1, back_got.data() + 1, n);
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(back_got[i + 1], back_want[i]) << "f32 of half " << want16[i];
      std::vector<int8_t> want8(n), got8(n + 1);
      const float ws = ref_->to_q8(x.data(), want8.data(), n);
      const float gs = k_->to_q8(xs.p, got8.data() + 1, n);
      ASSERT_EQ(gs, ws);
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(got8[i + 1], want8[i]) << "q8 of " << x[i];
        ASSERT_NEAR(got8[i + 1] * gs, x[i], 0.5f * gs + 1e-30f);
      }
    }
}

// q4 bytes are identical to the reference's, and the reference holds every value within
// half a step (plus the f16 rounding of its scale and min).
TEST_P(Kernels, Q4ConversionIsBitExactAndWithinHalfAStep) {
  for (int n : {32, 64, 96, 256})
    for (float mag : {1e-6f, 1.f, 300.f, 7e4f}) {
      auto x = random((size_t)n, mag);
      if (mag == 1.f) x[5] = x[6] = 0.f, x[7] = -x[8];
      for (int i = 0; i < kQ4Block && n == 96; ++i) x[32 + i] = 2.5f;  // a constant block
      const size_t bytes = (size_t)n / kQ4Block * kQ4BlockBytes;
      std::vector<uint8_t> want(bytes), got(bytes + 1);
      ref_->to_q4(x.data(), want.data(), n);
      Shifted<float> xs(x, 1);
      k_->to_q4(xs.p, got.data() + 1, n);
      ASSERT_EQ(0, std::memcmp(got.data() + 1, want.data(), bytes)) << "n " << n << " mag " << mag;
      std::vector<float> back((size_t)n);
      std::vector<float> one_hot((size_t)n);
      for (int b = 0; b < n / kQ4Block; ++b) {
        uint16_t h[2];
        std::memcpy(h, want.data() + (size_t)b * kQ4BlockBytes, 4);
        const float scale = f16_to_f32(h[0]), mn = f16_to_f32(h[1]);
        float lo = 1e30f, hi = -1e30f;
        for (int i = 0; i < kQ4Block; ++i)
          lo = std::fmin(lo, std::fmax(x[b * kQ4Block + i], -65504.f)),
          hi = std::fmax(hi, std::fmin(x[b * kQ4Block + i], 65504.f));
        for (int i = 0; i < kQ4Block; ++i) {
          const int c = b * kQ4Block + i;
          // element c through the reference's own dot with a one-hot query
          std::fill(one_hot.begin(), one_hot.end(), 0.f);
          one_hot[c] = 1.f;
          float v;
          ref_->qk_q4(one_hot.data(), 1, want.data(), 1, n, &v, 1);
          const float xc = std::fmin(std::fmax(x[c], -65504.f), 65504.f);
          // f16's relative rounding of scale and min, and its absolute one below 2^-14 (15
          // steps of half a subnormal)
          const float f16_abs = 15 * std::ldexp(1.f, -25);
          ASSERT_NEAR(v, xc, 0.5f * scale + 2e-3f * (hi - lo) + 1e-3f * std::fabs(mn) + f16_abs)
              << "element " << c << " mag " << mag;
        }
      }
    }
}

TEST(Q4Reference, LayoutIsLowNibblesThenHighOnes) {
  float x[kQ4Block];
  for (int i = 0; i < kQ4Block; ++i) x[i] = (float)(i % 16);  // 0..15 twice: scale 1, min 0
  x[16] = 15.f, x[31] = 0.f;
  uint8_t y[kQ4BlockBytes];
  kKernelsRef.to_q4(x, y, kQ4Block);
  uint16_t h[2];
  std::memcpy(h, y, 4);
  EXPECT_EQ(f16_to_f32(h[0]), 1.f);
  EXPECT_EQ(f16_to_f32(h[1]), 0.f);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(y[4 + i] & 15, (int)x[i]) << i;
    EXPECT_EQ(y[4 + i] >> 4, (int)x[i + 16]) << i;
  }
}

TEST_P(Kernels, GatherRowsMovesKeptRowsToTheFront) {
  for (size_t row : {4, 8, 32, 64, 100, 128, 512})
    for (int n : {5, 17, 64}) {
      std::vector<uint8_t> base(row * n), want;
      for (size_t i = 0; i < base.size(); ++i) base[i] = (uint8_t)(i * 31 + 7);
      std::vector<int32_t> idx;
      for (int i = 0; i < n; ++i)
        if (i % 3 != 1) idx.push_back(i);  // ascending, with gaps
      want = base;
      ref_->gather_rows(want.data(), row, idx.data(), (int)idx.size());
      for (size_t i = 0; i < idx.size(); ++i)  // the reference itself does what it says
        ASSERT_EQ(0, std::memcmp(want.data() + i * row, base.data() + idx[i] * row, row));
      k_->gather_rows(base.data(), row, idx.data(), (int)idx.size());
      ASSERT_EQ(base, want);
    }
}

AMSKV_ALL_ISAS(Kernels);

TEST(F16, EveryHalfRoundTripsAndRoundingIsToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32((uint16_t)h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "half " << h;
  }
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties to the even mantissa (1.0).
  EXPECT_EQ(f32_to_f16(1.f + std::ldexp(1.f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.f + 3 * std::ldexp(1.f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);               // rounds past the largest half: inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.f, -25)), 0x0000);  // half the smallest subnormal: tie to 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(Dispatch, ForcingAnUnavailableIsaIsAClearError) {
  EXPECT_TRUE(isa_supported(Isa::kRef));
  EXPECT_TRUE(isa_supported(best_isa()));
  EXPECT_FALSE(set_active_isa("sse9"));
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (!isa_supported(isa)) {
      EXPECT_FALSE(set_active_isa(isa_name(isa)));
    }
  }
  EXPECT_TRUE(set_active_isa("ref"));
  EXPECT_STREQ(active_kernels()->name, "ref");
  EXPECT_TRUE(set_active_isa("auto"));
  EXPECT_STREQ(active_kernels()->name, isa_name(best_isa()));
}

}  // namespace
}  // namespace amskv
