// The model runner's matrix-product kernels (arch/matmul.h) of every ISA variant the CPU runs,
// against the scalar reference: block counts around the unrolling, misaligned pointers, the
// value ranges of every quantized type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "arch/matmul.h"
#include "tests/arch/isa_test.h"

namespace amskv {
namespace {

constexpr float kDotTolF32 = 2e-6f;  // reassociation of a float sum, relative to sum |w x|

class MatmulKernels : public IsaTest<amskv::MatmulKernels, matmul_kernels_for, &kMatmulRef> {};

TEST_P(MatmulKernels, BlockedInt16DotMatchesReference) {
  // Weights as the model runner unpacks them (4-bit and int8 ranges) against 16-bit
  // activations at full scale: the worst case for the exact integer block sums.
  for (int w_max : {8, 15, 127})
    for (int nb : {1, 2, 3, 7, 18, 48, 49}) {
      std::uniform_int_distribution<int> uw(-w_max, w_max), ux(-32767, 32767);
      std::vector<int16_t> w(nb * 32), x(nb * 32);
      for (auto& v : w) v = (int16_t)uw(rng_);
      for (auto& v : x) v = (int16_t)ux(rng_);
      x[0] = 32767;
      w[0] = (int16_t)w_max;
      const std::vector<float> ws = random(nb, 0.01f), xs = random(nb, 1e-4f);
      const Shifted<int16_t> w1(w, 1), x3(x, 3);  // misaligned by 2 and 6 bytes
      double scale = 0;                           // sum of absolute products: the error scale
      for (int b = 0; b < nb; ++b)
        for (int i = 0; i < 32; ++i)
          scale += std::fabs((double)ws[b] * xs[b] * w[b * 32 + i] * x[b * 32 + i]);
      const float want = ref_->dot_i16(w.data(), ws.data(), x.data(), xs.data(), nb);
      const float got = k_->dot_i16(w1.p, ws.data(), x3.p, xs.data(), nb);
      double exact = 0;
      for (int b = 0; b < nb; ++b) {
        int64_t s = 0;
        for (int i = 0; i < 32; ++i) s += (int64_t)w[b * 32 + i] * x[b * 32 + i];
        exact += (double)ws[b] * xs[b] * (double)s;
      }
      ASSERT_NEAR(want, exact, kDotTolF32 * scale) << "reference, nb " << nb;
      ASSERT_NEAR(got, want, kDotTolF32 * scale) << "nb " << nb << " w_max " << w_max;
    }
}

TEST_P(MatmulKernels, UnpackInt16MatchesReference) {
  // Q8_0 (34-byte blocks, values at 2), Q4_0 (18, at 2, zero 8), Q4_1 (20, at 4, zero 0),
  // every byte value, a misaligned source.
  struct Layout {
    int block_bytes, offset, nibbles, zero;
  };
  for (Layout l : {Layout{34, 2, 0, 0}, Layout{18, 2, 1, 8}, Layout{20, 4, 1, 0}})
    for (int nb : {1, 2, 5, 18, 48}) {
      std::vector<uint8_t> src(nb * l.block_bytes + 1);
      for (size_t i = 0; i < src.size(); ++i) src[i] = (uint8_t)(i * 97 + 13 + nb);
      std::vector<int16_t> want(nb * 32), got(nb * 32 + 1);
      ref_->unpack_i16(src.data() + 1, l.block_bytes, l.offset, nb, l.nibbles, l.zero, want.data());
      k_->unpack_i16(src.data() + 1, l.block_bytes, l.offset, nb, l.nibbles, l.zero,
                     got.data() + 1);
      for (int i = 0; i < nb * 32; ++i)
        ASSERT_EQ(got[i + 1], want[i]) << "block bytes " << l.block_bytes << " element " << i;
      // The reference itself: element 17 of block 0 is the high nibble of byte 1.
      const uint8_t b1 = src[1 + l.offset + 1];
      ASSERT_EQ(want[17], l.nibbles ? (b1 >> 4) - l.zero : (int8_t)src[1 + l.offset + 17]);
    }
}

AMSKV_ALL_ISAS(MatmulKernels);

TEST(MatmulDispatch, TheActiveVariantFollowsTheSessionKernels) {
  ASSERT_NE(matmul_kernels(), nullptr);
  EXPECT_STREQ(matmul_kernels()->name, active_kernels()->name);
}

}  // namespace
}  // namespace amskv
