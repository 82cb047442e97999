// The model runner's matrix products (runtime/model/matmul.cpp) on GGUF tensors of every type
// they compute with: the repacked weights and 16-bit activations against f32 dot products of
// the rows the GGUF reader dequantizes, for one token and for a batch, on every kernel variant
// the CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "runtime/model/gguf.h"
#include "runtime/model/matmul.h"
#include "tests/model/gguf_write.h"

namespace amskv {
namespace {

// Random blocks of the types without a quantizer here: random bytes, with the f16 scales
// (at the byte offsets each type keeps them) set to finite values of either sign.
std::vector<uint8_t> random_blocks(int type, size_t n_blocks, std::mt19937& rng) {
  const size_t size = ggml_type_size(type);
  std::vector<uint8_t> b(n_blocks * size);
  for (uint8_t& v : b) v = (uint8_t)rng();
  std::vector<size_t> scales = {0, 2};  // Q5_1's d and m, the K-quants' d and dmin
  if (type == GGML_TYPE_Q5_0) scales = {0};
  if (type == GGML_TYPE_Q6_K) scales = {208};
  std::uniform_real_distribution<float> ud(-0.02f, 0.02f);
  for (size_t i = 0; i < n_blocks; ++i)
    for (size_t at : scales) {
      const uint16_t h = gguf_f32_to_f16(ud(rng));
      std::memcpy(&b[i * size + at], &h, 2);
    }
  return b;
}

TEST(Matmul, PackedProductsMatchDequantizedRows) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const char* isa : {"ref", "avx2", "avx512", "neon"}) {
    if (!amskv_isa_available(isa)) continue;
    ASSERT_EQ(amskv_set_isa(isa), AMSKV_OK);
    for (int type :
         {GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q8_0, GGML_TYPE_F16, GGML_TYPE_F32,
          GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K})
      for (int k : {32, 96, 256, 576, 768})
        for (int n : {1, 13, 64}) {
          const int64_t blck = ggml_blck_size(type);
          if (k % blck) continue;
          const bool quantizer = type <= GGML_TYPE_Q4_1 || type == GGML_TYPE_Q8_0;
          SCOPED_TRACE(std::string(isa) + " " + ggml_type_name(type) + " k " + std::to_string(k) +
                       " n " + std::to_string(n));
          std::vector<float> w((size_t)n * k);
          for (float& v : w) v = nd(rng);
          GgufWriter wr;
          std::string err;
          if (quantizer) {
            ASSERT_TRUE(wr.add_tensor_f32("w", type, {k, n}, w.data(), &err)) << err;
          } else {
            const std::vector<uint8_t> blocks = random_blocks(type, (size_t)n * k / blck, rng);
            ASSERT_TRUE(wr.add_tensor("w", type, {k, n}, blocks.data(), blocks.size(), &err))
                << err;
          }
          const std::vector<uint8_t> bytes = wr.bytes();
          GgufFile f;
          ASSERT_TRUE(gguf_open_memory(bytes.data(), bytes.size(), &f, &err)) << err;
          const GgufTensor* t = gguf_tensor(f, "w");
          ASSERT_TRUE(t && matmul_supported(t->type, k));
          const size_t packed = matmul_packed_bytes(*t);
          EXPECT_EQ(packed == 0, type == GGML_TYPE_F16 || type == GGML_TYPE_F32);
          uint8_t* mem = packed ? (uint8_t*)std::aligned_alloc(64, packed) : nullptr;
          const Matrix m = matmul_pack(*t, mem);
          // A row from the packed copy has the file's values (Q4_0 may give +0 for its -0).
          for (int r : {0, n / 2, n - 1}) {
            std::vector<float> want(k), got(k);
            ASSERT_TRUE(gguf_dequantize_row(t->type, t->data + r * t->row_bytes, want.data(), k));
            matmul_row(m, r, got.data());
            ASSERT_EQ(got, want) << "row " << r;
          }
          for (int n_tok : {1, 5}) {
            std::vector<float> x((size_t)n_tok * k), y((size_t)n_tok * n, NAN);
            for (float& v : x) v = nd(rng);
            MatmulScratch xq;
            matmul_scratch_init(&xq, n_tok, k);
            const MatmulOut out[] = {{&m, y.data()}};
            matmul(out, 1, x.data(), n_tok, &xq, 2);
            std::vector<float> row(k);
            for (int r = 0; r < n; ++r) {
              ASSERT_TRUE(gguf_dequantize_row(t->type, t->data + r * t->row_bytes, row.data(), k));
              for (int tok = 0; tok < n_tok; ++tok) {
                double want = 0, scale = 0;
                for (int i = 0; i < k; ++i) {
                  want += (double)row[i] * x[(size_t)tok * k + i];
                  scale += std::fabs((double)row[i] * x[(size_t)tok * k + i]);
                }
                // 16-bit activations: 1/65534 of a block's largest value, at most.
                ASSERT_NEAR(y[(size_t)tok * n + r], want, 1e-4 * scale) << "row " << r;
              }
            }
          }
          std::free(mem);
        }
  }
  amskv_set_isa(nullptr);
}

// Activations an untrusted file's weights can produce: NaN or Inf in a block makes that
// token's products NaN (never an undefined conversion: the sanitizer build checks), and a block
// of tiny values counts as zeros.
TEST(Matmul, NonFiniteActivationsGiveNaNProducts) {
  std::vector<float> w(64 * 32, 0.5f);
  GgufWriter wr;
  std::string err;
  ASSERT_TRUE(wr.add_tensor_f32("w", GGML_TYPE_Q8_0, {64, 32}, w.data(), &err)) << err;
  const std::vector<uint8_t> bytes = wr.bytes();
  GgufFile f;
  ASSERT_TRUE(gguf_open_memory(bytes.data(), bytes.size(), &f, &err)) << err;
  const GgufTensor* t = gguf_tensor(f, "w");
  uint8_t* mem = (uint8_t*)std::aligned_alloc(64, matmul_packed_bytes(*t));
  const Matrix m = matmul_pack(*t, mem);
  std::vector<float> x(3 * 64, 1.f), y(3 * 32);
  x[5] = NAN;
  x[64 + 40] = INFINITY;
  for (int i = 0; i < 32; ++i) x[128 + i] = 1e-40f;  // tiny: 1 / d overflows
  MatmulScratch xq;
  matmul_scratch_init(&xq, 3, 64);
  const MatmulOut out[] = {{&m, y.data()}};
  matmul(out, 1, x.data(), 3, &xq, 1);
  for (int r = 0; r < 32; ++r) {
    EXPECT_TRUE(std::isnan(y[r])) << r;
    EXPECT_TRUE(std::isnan(y[32 + r])) << r;
    EXPECT_NEAR(y[64 + r], 16.f, 1e-3f) << r;  // the tiny block adds nothing
  }
  std::free(mem);
}

}  // namespace
}  // namespace amskv
