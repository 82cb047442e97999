// GGUF reader tests: metadata round trip, dequantization against hand-worked blocks, a table
// of broken files, every truncation of a small valid file, and (when present) the real model.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "runtime/model/gguf.h"
#include "tests/model/gguf_write.h"

namespace amskv {
namespace {

// Opens a copy of the bytes in an exact-size heap block so ASan catches any overread.
bool open_copy(const std::vector<uint8_t>& bytes, GgufFile* f, std::string* err,
               std::vector<uint8_t>* keep) {
  *keep = bytes;
  keep->shrink_to_fit();
  return gguf_open_memory(keep->data(), keep->size(), f, err);
}

uint16_t h(float v) {
  return gguf_f32_to_f16(v);
}

// ---------------------------------------------------------------------------------------
// Half conversions

TEST(GgufHalf, KnownValues) {
  EXPECT_EQ(gguf_f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(gguf_f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(gguf_f16_to_f32(0x3800), 0.5f);
  EXPECT_EQ(gguf_f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(gguf_f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(gguf_f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(gguf_f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_TRUE(std::signbit(gguf_f16_to_f32(0x8000)));
  EXPECT_EQ(gguf_f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(gguf_f16_to_f32(0x7e00)));

  EXPECT_EQ(h(1.0f), 0x3c00);
  EXPECT_EQ(h(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie: to even (down)
  EXPECT_EQ(h(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie: to even (up)
  EXPECT_EQ(h(65519.0f), 0x7bff);
  EXPECT_EQ(h(65520.0f), 0x7c00);               // tie above the largest half goes to inf
  EXPECT_EQ(h(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: to even
  EXPECT_EQ(h(3 * std::ldexp(1.0f, -26)), 0x0001);
  EXPECT_EQ(h(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(h(-0.0f), 0x8000);
  EXPECT_EQ(h(NAN) & 0x7c00, 0x7c00);
  EXPECT_NE(h(NAN) & 0x03ff, 0);

  EXPECT_EQ(gguf_bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(gguf_bf16_to_f32(0xc040), -3.0f);
  EXPECT_EQ(gguf_f32_to_bf16(3.14159265f), 0x4049);  // 3.140625
}

TEST(GgufHalf, EveryHalfRoundTrips) {
  for (uint32_t i = 0; i < 65536; i++) {
    float f = gguf_f16_to_f32(static_cast<uint16_t>(i));
    if (std::isnan(f)) continue;
    ASSERT_EQ(gguf_f32_to_f16(f), i) << "half 0x" << std::hex << i;
  }
}

// ---------------------------------------------------------------------------------------
// Type table

TEST(GgufTypes, Table) {
  EXPECT_STREQ(ggml_type_name(GGML_TYPE_Q4_1), "q4_1");
  EXPECT_STREQ(ggml_type_name(GGML_TYPE_Q6_K), "q6_K");
  EXPECT_STREQ(ggml_type_name(4), "unknown");  // removed Q4_2
  EXPECT_STREQ(ggml_type_name(-1), "unknown");
  EXPECT_STREQ(ggml_type_name(GGML_TYPE_COUNT), "unknown");
  EXPECT_EQ(ggml_blck_size(GGML_TYPE_Q8_0), 32);
  EXPECT_EQ(ggml_type_size(GGML_TYPE_Q8_0), 34u);
  EXPECT_EQ(ggml_type_size(GGML_TYPE_Q4_0), 18u);
  EXPECT_EQ(ggml_type_size(GGML_TYPE_Q4_1), 20u);
  EXPECT_EQ(ggml_blck_size(GGML_TYPE_Q4_K), 256);
  EXPECT_EQ(ggml_type_size(GGML_TYPE_Q4_K), 144u);
  EXPECT_EQ(ggml_type_size(GGML_TYPE_Q6_K), 210u);
  EXPECT_EQ(ggml_type_size(GGML_TYPE_BF16), 2u);

  uint64_t n = 0;
  EXPECT_TRUE(ggml_row_bytes(GGML_TYPE_Q4_1, 576, &n));
  EXPECT_EQ(n, 18u * 20u);
  EXPECT_FALSE(ggml_row_bytes(GGML_TYPE_Q4_1, 48, &n));  // not a block multiple
  EXPECT_FALSE(ggml_row_bytes(GGML_TYPE_Q4_1, -32, &n));
  EXPECT_FALSE(ggml_row_bytes(5, 32, &n));
  EXPECT_FALSE(ggml_row_bytes(GGML_TYPE_F32, std::numeric_limits<int64_t>::max(), &n));
  EXPECT_TRUE(ggml_row_bytes(GGML_TYPE_F32, std::numeric_limits<int64_t>::max() / 4, &n));
}

// ---------------------------------------------------------------------------------------
// Metadata round trip

class GgufMeta : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufMeta, RoundTripEveryType) {
  GgufWriter w(GetParam());
  w.kv_u8("t.u8", 255);
  w.kv_i8("t.i8", -128);
  w.kv_u16("t.u16", 65535);
  w.kv_i16("t.i16", -32768);
  w.kv_u32("t.u32", 4294967295u);
  w.kv_i32("t.i32", -2147483647 - 1);
  w.kv_f32("t.f32", 1.5f);
  w.kv_bool("t.true", true);
  w.kv_bool("t.false", false);
  w.kv_str("t.str", "h\xc3\xa9llo <|im_end|>");
  w.kv_str("t.empty", "");
  w.kv_u64("t.u64", 18446744073709551615ull);
  w.kv_i64("t.i64", std::numeric_limits<int64_t>::min());
  w.kv_f64("t.f64", 3.141592653589793);
  uint8_t u8s[3] = {0, 7, 255};
  w.kv_arr("a.u8", GGUF_TYPE_UINT8, u8s, 3);
  uint8_t bools[3] = {1, 0, 1};
  w.kv_arr("a.bool", GGUF_TYPE_BOOL, bools, 3);
  int64_t i64s[2] = {-5, 1ll << 40};
  w.kv_arr("a.i64", GGUF_TYPE_INT64, i64s, 2);
  uint64_t u64s[1] = {~0ull};
  w.kv_arr("a.u64", GGUF_TYPE_UINT64, u64s, 1);
  double f64s[2] = {0.25, -1e300};
  w.kv_arr("a.f64", GGUF_TYPE_FLOAT64, f64s, 2);
  w.kv_arr_i32("a.i32", {3, -3, 2147483647});
  w.kv_arr_f32("a.f32", {0.5f, -2.0f});
  w.kv_arr_str("a.str", {"<|endoftext|>", "", "\xc4\xa0t"});
  w.kv_arr_i32("a.empty", {});
  // Array of two arrays: [[1, 2], ["x"]].
  GgufBytes nested;
  nested.u32(GGUF_TYPE_ARRAY);
  nested.u64(2);
  nested.u32(GGUF_TYPE_INT32);
  nested.u64(2);
  nested.i32(1);
  nested.i32(2);
  nested.u32(GGUF_TYPE_STRING);
  nested.u64(1);
  nested.str("x");
  w.kv_raw("a.nested", GGUF_TYPE_ARRAY, nested);

  std::vector<uint8_t> keep;
  GgufFile f;
  std::string err;
  ASSERT_TRUE(open_copy(w.bytes(), &f, &err, &keep)) << err;
  EXPECT_EQ(f.version, GetParam());
  EXPECT_EQ(f.kvs.size(), 24u);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_EQ(f.alignment, 32u);

  uint32_t u32;
  int32_t i32;
  uint64_t u64;
  int64_t i64;
  float f32;
  bool b;
  std::string_view sv;
  ASSERT_TRUE(gguf_get_u32(f, "t.u8", &u32, &err)) << err;
  EXPECT_EQ(u32, 255u);
  ASSERT_TRUE(gguf_get_i32(f, "t.i8", &i32, &err)) << err;
  EXPECT_EQ(i32, -128);
  ASSERT_TRUE(gguf_get_u32(f, "t.u16", &u32, &err));
  EXPECT_EQ(u32, 65535u);
  ASSERT_TRUE(gguf_get_i32(f, "t.i16", &i32, &err));
  EXPECT_EQ(i32, -32768);
  ASSERT_TRUE(gguf_get_u32(f, "t.u32", &u32, &err));
  EXPECT_EQ(u32, 4294967295u);
  ASSERT_TRUE(gguf_get_i32(f, "t.i32", &i32, &err));
  EXPECT_EQ(i32, std::numeric_limits<int32_t>::min());
  ASSERT_TRUE(gguf_get_f32(f, "t.f32", &f32, &err));
  EXPECT_EQ(f32, 1.5f);
  ASSERT_TRUE(gguf_get_bool(f, "t.true", &b, &err));
  EXPECT_TRUE(b);
  ASSERT_TRUE(gguf_get_bool(f, "t.false", &b, &err));
  EXPECT_FALSE(b);
  ASSERT_TRUE(gguf_get_str(f, "t.str", &sv, &err));
  EXPECT_EQ(sv, "h\xc3\xa9llo <|im_end|>");
  ASSERT_TRUE(gguf_get_str(f, "t.empty", &sv, &err));
  EXPECT_TRUE(sv.empty());
  ASSERT_TRUE(gguf_get_u64(f, "t.u64", &u64, &err));
  EXPECT_EQ(u64, 18446744073709551615ull);
  ASSERT_TRUE(gguf_get_i64(f, "t.i64", &i64, &err));
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(gguf_get_f32(f, "t.f64", &f32, &err));
  EXPECT_EQ(f32, 3.14159265f);
  EXPECT_EQ(gguf_find(f, "t.f64")->f64, 3.141592653589793);
  EXPECT_EQ(gguf_find(f, "t.f64")->type, GGUF_TYPE_FLOAT64);

  const GgufArray* a = nullptr;
  ASSERT_TRUE(gguf_get_arr(f, "a.u8", GGUF_TYPE_UINT8, &a, &err)) << err;
  ASSERT_EQ(a->n, 3u);
  EXPECT_EQ(a->data[2], 255);
  ASSERT_TRUE(gguf_arr_get_i64(*a, 2, &i64));
  EXPECT_EQ(i64, 255);
  EXPECT_FALSE(gguf_arr_get_i64(*a, 3, &i64));  // out of range index
  ASSERT_TRUE(gguf_get_arr(f, "a.bool", GGUF_TYPE_BOOL, &a, &err));
  EXPECT_EQ(a->data[0], 1);
  EXPECT_EQ(a->data[1], 0);
  ASSERT_TRUE(gguf_get_arr(f, "a.i64", GGUF_TYPE_INT64, &a, &err));
  ASSERT_TRUE(gguf_arr_get_i64(*a, 1, &i64));
  EXPECT_EQ(i64, 1ll << 40);
  ASSERT_TRUE(gguf_get_arr(f, "a.u64", GGUF_TYPE_UINT64, &a, &err));
  EXPECT_FALSE(gguf_arr_get_i64(*a, 0, &i64));  // does not fit int64
  ASSERT_TRUE(gguf_get_arr(f, "a.f64", GGUF_TYPE_FLOAT64, &a, &err));
  ASSERT_TRUE(gguf_arr_get_f32(*a, 0, &f32));
  EXPECT_EQ(f32, 0.25f);
  ASSERT_TRUE(gguf_get_arr(f, "a.i32", GGUF_TYPE_INT32, &a, &err));
  ASSERT_TRUE(gguf_arr_get_i64(*a, 1, &i64));
  EXPECT_EQ(i64, -3);
  EXPECT_FALSE(gguf_arr_get_f32(*a, 0, &f32));  // integers are not floats
  ASSERT_TRUE(gguf_get_arr(f, "a.f32", GGUF_TYPE_FLOAT32, &a, &err));
  ASSERT_TRUE(gguf_arr_get_f32(*a, 1, &f32));
  EXPECT_EQ(f32, -2.0f);
  ASSERT_TRUE(gguf_get_arr(f, "a.str", GGUF_TYPE_STRING, &a, &err));
  ASSERT_EQ(a->strs.size(), 3u);
  EXPECT_EQ(a->strs[0], "<|endoftext|>");
  EXPECT_EQ(a->strs[1], "");
  EXPECT_EQ(a->strs[2], "\xc4\xa0t");
  ASSERT_TRUE(gguf_get_arr(f, "a.empty", GGUF_TYPE_COUNT, &a, &err));
  EXPECT_EQ(a->n, 0u);
  ASSERT_TRUE(gguf_get_arr(f, "a.nested", GGUF_TYPE_ARRAY, &a, &err));
  ASSERT_EQ(a->arrs.size(), 2u);
  EXPECT_EQ(a->arrs[0].type, GGUF_TYPE_INT32);
  ASSERT_TRUE(gguf_arr_get_i64(a->arrs[0], 1, &i64));
  EXPECT_EQ(i64, 2);
  ASSERT_EQ(a->arrs[1].strs.size(), 1u);
  EXPECT_EQ(a->arrs[1].strs[0], "x");

  // Keys keep file order.
  EXPECT_EQ(f.kvs.front().key, "t.u8");
  EXPECT_EQ(f.kvs.back().key, "a.nested");
}

INSTANTIATE_TEST_SUITE_P(Versions, GgufMeta, ::testing::Values(2u, 3u));

TEST(GgufMeta, TypedGettersFailCleanly) {
  GgufWriter w;
  w.kv_str("s", "text");
  w.kv_u32("u", 7);
  w.kv_i32("neg", -1);
  w.kv_u64("big", 1ull << 40);
  w.kv_u8("byte", 1);
  w.kv_f32("f", 1.0f);
  w.kv_arr_i32("arr", {1});
  std::vector<uint8_t> keep;
  GgufFile f;
  std::string err;
  ASSERT_TRUE(open_copy(w.bytes(), &f, &err, &keep)) << err;

  uint32_t u32 = 123;
  int32_t i32;
  uint64_t u64;
  float f32;
  bool b;
  std::string_view sv;
  const GgufArray* a;
  auto expect_err = [&](bool ok, const char* substr) {
    EXPECT_FALSE(ok);
    EXPECT_NE(err.find(substr), std::string::npos) << "got: " << err;
    err.clear();
  };
  expect_err(gguf_get_u32(f, "s", &u32, &err), "key 's' has type string, expected an integer");
  EXPECT_EQ(u32, 123u);  // untouched on failure
  expect_err(gguf_get_u32(f, "missing", &u32, &err), "key 'missing' not found");
  expect_err(gguf_get_u32(f, "neg", &u32, &err), "does not fit uint32");
  expect_err(gguf_get_u32(f, "big", &u32, &err), "does not fit uint32");
  expect_err(gguf_get_i32(f, "big", &i32, &err), "does not fit int32");
  expect_err(gguf_get_u64(f, "neg", &u64, &err), "does not fit uint64");
  expect_err(gguf_get_u32(f, "f", &u32, &err), "expected an integer");
  expect_err(gguf_get_u32(f, "arr", &u32, &err), "type array, expected an integer");
  expect_err(gguf_get_f32(f, "u", &f32, &err), "type uint32, expected a float");
  expect_err(gguf_get_bool(f, "byte", &b, &err), "type uint8, expected bool");
  expect_err(gguf_get_str(f, "u", &sv, &err), "expected string");
  expect_err(gguf_get_arr(f, "u", GGUF_TYPE_COUNT, &a, &err), "expected array");
  expect_err(gguf_get_arr(f, "arr", GGUF_TYPE_STRING, &a, &err),
             "is an array of int32, expected an array of string");
  expect_err(gguf_get_u32(f, nullptr, &u32, &err), "not found");
  EXPECT_EQ(gguf_find(f, "nope"), nullptr);
  EXPECT_EQ(gguf_tensor(f, "nope"), nullptr);
  EXPECT_EQ(gguf_find(f, nullptr), nullptr);
}

// ---------------------------------------------------------------------------------------
// Tensors and dequantization

// Hand-built blocks, two per row so the block stride is exercised.
struct Blocks {
  std::vector<uint8_t> q8_0, q4_0, q4_1;
  std::vector<float> want_q8_0, want_q4_0, want_q4_1;
};

void put16(std::vector<uint8_t>* v, uint16_t x) {
  v->push_back(static_cast<uint8_t>(x & 0xff));
  v->push_back(static_cast<uint8_t>(x >> 8));
}

Blocks make_blocks() {
  Blocks b;
  // Q8_0 block: d (f16), then 32 int8 q; x = d * q.
  // Block 0: d = 0.5 (0x3800), q[j] = j - 16        -> x[j] = 0.5 * (j - 16) = -8 .. 7.5
  // Block 1: d = -2 (0xc000), q[j] = -128 for j = 0, else j -> x = 256, then -2 * j.
  for (int blk = 0; blk < 2; blk++) {
    put16(&b.q8_0, blk == 0 ? 0x3800 : 0xc000);
    for (int j = 0; j < 32; j++) {
      int q = blk == 0 ? j - 16 : (j == 0 ? -128 : j);
      b.q8_0.push_back(static_cast<uint8_t>(static_cast<int8_t>(q)));
      b.want_q8_0.push_back(blk == 0 ? 0.5f * (j - 16) : -2.0f * q);
    }
  }
  // Q4_0 block: d (f16), 16 bytes; byte j holds q[j] in the low nibble and q[j + 16] in the
  // high nibble; x = d * (q - 8).
  // Block 0: d = 2 (0x4000), byte j = j | (15 - j) << 4
  //   -> x[j] = 2 * (j - 8) (-16 .. 14), x[j + 16] = 2 * (7 - j) (14 .. -16).
  // Block 1: d = 0.25 (0x3400), every byte 0x80 -> low q = 0: x = -2; high q = 8: x = 0.
  b.want_q4_0.resize(64);
  put16(&b.q4_0, 0x4000);
  for (int j = 0; j < 16; j++) {
    b.q4_0.push_back(static_cast<uint8_t>(j | (15 - j) << 4));
    b.want_q4_0[j] = 2.0f * (j - 8);
    b.want_q4_0[j + 16] = 2.0f * (7 - j);
  }
  put16(&b.q4_0, 0x3400);
  for (int j = 0; j < 16; j++) {
    b.q4_0.push_back(0x80);
    b.want_q4_0[32 + j] = -2.0f;
    b.want_q4_0[48 + j] = 0.0f;
  }
  // Q4_1 block: d (f16), m (f16), 16 bytes (nibbles as Q4_0); x = d * q + m.
  // Block 0: d = 0.25 (0x3400), m = -1 (0xbc00), byte j = j | (15 - j) << 4
  //   -> x[j] = 0.25 * j - 1 (-1 .. 2.75), x[j + 16] = 0.25 * (15 - j) - 1 (2.75 .. -1).
  // Block 1: d = 1 (0x3c00), m = 0.5 (0x3800), byte j = 0xf0 -> x[j] = 0.5, x[j + 16] = 15.5.
  b.want_q4_1.resize(64);
  put16(&b.q4_1, 0x3400);
  put16(&b.q4_1, 0xbc00);
  for (int j = 0; j < 16; j++) {
    b.q4_1.push_back(static_cast<uint8_t>(j | (15 - j) << 4));
    b.want_q4_1[j] = 0.25f * j - 1;
    b.want_q4_1[j + 16] = 0.25f * (15 - j) - 1;
  }
  put16(&b.q4_1, 0x3c00);
  put16(&b.q4_1, 0x3800);
  for (int j = 0; j < 16; j++) {
    b.q4_1.push_back(0xf0);
    b.want_q4_1[32 + j] = 0.5f;
    b.want_q4_1[48 + j] = 15.5f;
  }
  return b;
}

TEST(GgufDequant, HandQuantizedBlocks) {
  Blocks b = make_blocks();
  std::vector<float> out(64);
  ASSERT_TRUE(gguf_dequantize_row(GGML_TYPE_Q8_0, b.q8_0.data(), out.data(), 64));
  EXPECT_EQ(out, b.want_q8_0);
  ASSERT_TRUE(gguf_dequantize_row(GGML_TYPE_Q4_0, b.q4_0.data(), out.data(), 64));
  EXPECT_EQ(out, b.want_q4_0);
  ASSERT_TRUE(gguf_dequantize_row(GGML_TYPE_Q4_1, b.q4_1.data(), out.data(), 64));
  EXPECT_EQ(out, b.want_q4_1);

  // F16: 1, -2, 0.5, 2^-24; BF16: 1, -3, 3.140625, -0.
  uint16_t f16[4] = {0x3c00, 0xc000, 0x3800, 0x0001};
  ASSERT_TRUE(gguf_dequantize_row(GGML_TYPE_F16, f16, out.data(), 4));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 0.5f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  uint16_t bf16[4] = {0x3f80, 0xc040, 0x4049, 0x8000};
  ASSERT_TRUE(gguf_dequantize_row(GGML_TYPE_BF16, bf16, out.data(), 4));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
  EXPECT_EQ(out[2], 3.140625f);
  EXPECT_TRUE(std::signbit(out[3]));

  // Unsupported types and partial blocks are refused.
  EXPECT_FALSE(gguf_dequantize_row(GGML_TYPE_Q2_K, b.q4_1.data(), out.data(), 256));
  EXPECT_FALSE(gguf_dequantize_row(GGML_TYPE_Q4_K, b.q4_1.data(), out.data(), 32));
  EXPECT_FALSE(gguf_dequantize_row(GGML_TYPE_Q4_1, b.q4_1.data(), out.data(), 16));
  EXPECT_FALSE(gguf_dequantize_row(GGML_TYPE_F32, b.q4_1.data(), out.data(), -1));
  EXPECT_FALSE(gguf_dequantize_row(99, b.q4_1.data(), out.data(), 32));
  EXPECT_TRUE(gguf_dequantize_row(GGML_TYPE_Q4_1, nullptr, nullptr, 0));
}

TEST(GgufDequant, TensorsOfEachTypeThroughAFile) {
  Blocks b = make_blocks();
  std::vector<float> f32 = {1.0f, -0.0f, 1e-30f, 3.25f, -7.0f, 0.0f, 2.0f, 8.0f};
  uint16_t f16[8] = {0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff, 0, 0, 0x3c00};
  uint16_t bf16[8] = {0x3f80, 0xc040, 0x4049, 0x8000, 0, 0, 0, 0x3f80};
  GgufWriter w;
  w.set_alignment(64);
  std::string err;
  // Shapes [ne0, ne1]: rows of 64 / 8 elements; the block rows are split into two rows of
  // 32 so row addressing is checked too.
  ASSERT_TRUE(w.add_tensor("q8", GGML_TYPE_Q8_0, {32, 2}, b.q8_0.data(), b.q8_0.size(), &err))
      << err;
  ASSERT_TRUE(w.add_tensor("q40", GGML_TYPE_Q4_0, {64}, b.q4_0.data(), b.q4_0.size(), &err));
  ASSERT_TRUE(w.add_tensor("q41", GGML_TYPE_Q4_1, {32, 1, 2}, b.q4_1.data(), b.q4_1.size(), &err));
  ASSERT_TRUE(w.add_tensor("f32", GGML_TYPE_F32, {4, 2}, f32.data(), 32, &err));
  ASSERT_TRUE(w.add_tensor("f16", GGML_TYPE_F16, {8, 1, 1, 1}, f16, 16, &err));
  ASSERT_TRUE(w.add_tensor("bf16", GGML_TYPE_BF16, {8}, bf16, 16, &err));
  EXPECT_FALSE(w.add_tensor("bad", GGML_TYPE_Q4_0, {32}, b.q4_0.data(), 17, &err));

  std::vector<uint8_t> keep;
  GgufFile f;
  ASSERT_TRUE(open_copy(w.bytes(), &f, &err, &keep)) << err;
  EXPECT_EQ(f.alignment, 64u);
  EXPECT_EQ(f.data_offset % 64, 0u);
  ASSERT_EQ(f.tensors.size(), 6u);

  const GgufTensor* t = gguf_tensor(f, "q8");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, GGML_TYPE_Q8_0);
  EXPECT_EQ(t->n_dims, 2u);
  EXPECT_EQ(t->ne[0], 32);
  EXPECT_EQ(t->ne[1], 2);
  EXPECT_EQ(t->ne[2], 1);
  EXPECT_EQ(t->n_rows, 2);
  EXPECT_EQ(t->row_bytes, 34u);
  EXPECT_EQ(t->nbytes, 68u);
  EXPECT_EQ(t->data, keep.data() + f.data_offset + t->offset);

  auto row = [&](const char* name, int64_t r, int64_t n) {
    const GgufTensor* tt = gguf_tensor(f, name);
    std::vector<float> out(n);
    EXPECT_NE(tt, nullptr);
    if (!tt) return out;
    EXPECT_EQ(tt->offset % 64, 0u);
    EXPECT_TRUE(gguf_dequantize_row(tt->type, tt->data + r * tt->row_bytes, out.data(), n));
    return out;
  };
  std::vector<float> want(b.want_q8_0.begin() + 32, b.want_q8_0.end());
  EXPECT_EQ(row("q8", 1, 32), want);
  EXPECT_EQ(row("q40", 0, 64), b.want_q4_0);
  want.assign(b.want_q4_1.begin() + 32, b.want_q4_1.end());
  EXPECT_EQ(row("q41", 1, 32), want);
  EXPECT_EQ(gguf_tensor(f, "q41")->ne[2], 2);
  want.assign(f32.begin() + 4, f32.end());
  EXPECT_EQ(row("f32", 1, 4), want);
  std::vector<float> got = row("f16", 0, 8);
  EXPECT_EQ(got[4], 65504.0f);
  EXPECT_EQ(got[7], 1.0f);
  got = row("bf16", 0, 8);
  EXPECT_EQ(got[1], -3.0f);
  EXPECT_EQ(got[7], 1.0f);
}

TEST(GgufDequant, QuantizeRoundTrip) {
  // Deterministic pseudo-random values in [-1, 1).
  std::vector<float> x(256);
  uint32_t s = 12345;
  for (float& v : x) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
  }
  x[5] = -1.5f;  // the largest magnitude, negative: Q4_0 maps it to q = 0 exactly
  struct Case {
    int type;
    float tol;
  } cases[] = {{GGML_TYPE_F32, 0},         {GGML_TYPE_F16, 1e-3f},
               {GGML_TYPE_BF16, 1e-2f},    {GGML_TYPE_Q8_0, 1.5f / 127},
               {GGML_TYPE_Q4_0, 1.5f / 8}, {GGML_TYPE_Q4_1, 2.5f / 15}};
  for (const Case& c : cases) {
    uint64_t nb = 0;
    ASSERT_TRUE(ggml_row_bytes(c.type, 256, &nb));
    std::vector<uint8_t> q(nb);
    std::vector<float> y(256);
    ASSERT_TRUE(gguf_quantize_row(c.type, x.data(), q.data(), 256)) << ggml_type_name(c.type);
    ASSERT_TRUE(gguf_dequantize_row(c.type, q.data(), y.data(), 256));
    for (int i = 0; i < 256; i++) {
      ASSERT_LE(std::fabs(y[i] - x[i]), c.tol) << ggml_type_name(c.type) << " at " << i;
    }
    if (c.type == GGML_TYPE_Q4_0) {
      EXPECT_EQ(y[5], -1.5f);
    }
  }
  std::vector<float> bad(32, 0.0f);
  bad[3] = NAN;
  std::vector<uint8_t> q(34);
  EXPECT_FALSE(gguf_quantize_row(GGML_TYPE_Q8_0, bad.data(), q.data(), 32));
  EXPECT_FALSE(gguf_quantize_row(GGML_TYPE_Q4_K, x.data(), q.data(), 256));
}

// ---------------------------------------------------------------------------------------
// Broken files

// Header then body.
std::vector<uint8_t> file(uint32_t version, uint64_t n_tensors, uint64_t n_kv,
                          const GgufBytes& body) {
  GgufBytes out;
  out.raw("GGUF", 4);
  out.u32(version);
  out.u64(n_tensors);
  out.u64(n_kv);
  out.raw(body.b.data(), body.b.size());
  return out.b;
}

// One KV of the given type whose payload is built by fn.
std::vector<uint8_t> one_kv(const char* key, uint32_t type,
                            const std::function<void(GgufBytes&)>& fn) {
  GgufBytes body;
  body.str(key);
  body.u32(type);
  fn(body);
  return file(3, 0, 1, body);
}

// One tensor info plus a data section of data_bytes zero bytes; alignment 0 means default.
std::vector<uint8_t> one_tensor(const char* name, const std::vector<uint64_t>& dims, uint32_t type,
                                uint64_t offset, size_t data_bytes, uint32_t alignment = 0,
                                uint32_t n_dims_override = 0) {
  GgufBytes body;
  uint64_t n_kv = 0;
  if (alignment) {
    body.str("general.alignment");
    body.u32(GGUF_TYPE_UINT32);
    body.u32(alignment);
    n_kv = 1;
  }
  body.str(name);
  body.u32(n_dims_override ? n_dims_override : static_cast<uint32_t>(dims.size()));
  for (uint64_t d : dims) body.u64(d);
  body.u32(type);
  body.u64(offset);
  std::vector<uint8_t> out = file(3, 1, n_kv, body);
  size_t a = alignment ? alignment : 32;
  while (out.size() % a) out.push_back(0);
  out.resize(out.size() + data_bytes, 0);
  return out;
}

struct BrokenCase {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* expect;  // distinctive substring of the error
};

std::vector<BrokenCase> broken_cases() {
  std::vector<BrokenCase> c;
  GgufBytes empty;
  const uint64_t kHuge = ~0ull;

  std::vector<uint8_t> magic = file(3, 0, 0, empty);
  magic[3] = 'X';
  c.push_back({"bad magic", magic, "bad magic"});
  c.push_back({"version 1", file(1, 0, 0, empty), "unsupported GGUF version 1"});
  c.push_back({"version 4", file(4, 0, 0, empty), "unsupported GGUF version 4"});
  c.push_back({"big-endian", file(0x03000000u, 0, 0, empty), "big-endian"});
  c.push_back({"empty", {}, "truncated file: magic"});
  c.push_back({"header cut", std::vector<uint8_t>{'G', 'G', 'U', 'F', 3, 0, 0}, "version"});
  c.push_back({"kv count beyond file", file(3, 0, 1000, empty), "kv count 1000"});
  c.push_back({"kv count huge", file(3, 0, kHuge, empty), "kv count"});
  c.push_back({"tensor count beyond file", file(3, 1, 0, empty), "tensor count 1"});
  c.push_back({"tensor count huge", file(3, kHuge, 0, empty), "tensor count"});

  GgufBytes long_key;
  long_key.u64(1000);
  long_key.raw("abcdefghijklmnopqrstuvwxyz", 26);
  c.push_back({"key length beyond file", file(3, 0, 1, long_key), "past the end of the file"});
  GgufBytes ovf_key;
  ovf_key.u64(kHuge);
  ovf_key.raw("abcdefghijklmnopqrstuvwxyz", 26);
  c.push_back({"key length overflow", file(3, 0, 1, ovf_key), "length 18446744073709551615"});
  GgufBytes empty_key;
  empty_key.str("");
  empty_key.u32(GGUF_TYPE_UINT8);
  empty_key.u8(1);
  c.push_back({"empty key", file(3, 0, 1, empty_key), "has length 0"});

  c.push_back({"string value beyond file",
               one_kv("k", GGUF_TYPE_STRING,
                      [](GgufBytes& b) {
                        b.u64(64);
                        b.raw("short", 5);
                      }),
               "past the end of the file"});
  c.push_back({"string value overflow",
               one_kv("k", GGUF_TYPE_STRING,
                      [&](GgufBytes& b) {
                        b.u64(kHuge - 3);
                        b.raw("short", 5);
                      }),
               "past the end of the file"});
  c.push_back({"unknown value type", one_kv("k", 13, [](GgufBytes& b) { b.u64(0); }),
               "key 'k' at offset 24 has unknown value type 13"});
  c.push_back({"scalar cut", one_kv("k", GGUF_TYPE_UINT64, [](GgufBytes& b) { b.u32(1); }),
               "truncated file: metadata value"});
  c.push_back({"bool not 0/1", one_kv("k", GGUF_TYPE_BOOL, [](GgufBytes& b) { b.u8(2); }),
               "bool at offset"});
  c.push_back({"array count overflow",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [&](GgufBytes& b) {
                        b.u32(GGUF_TYPE_UINT64);
                        b.u64(1ull << 62);
                      }),
               "array count 4611686018427387904 at offset 37 overflows"});
  c.push_back({"array count beyond file",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [](GgufBytes& b) {
                        b.u32(GGUF_TYPE_UINT32);
                        b.u64(100);
                        b.u32(1);
                      }),
               "array count 100 at offset 37 is past the end of the file"});
  c.push_back({"string array count beyond file",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [](GgufBytes& b) {
                        b.u32(GGUF_TYPE_STRING);
                        b.u64(1ull << 58);
                        b.str("a");
                      }),
               "is past the end of the file"});
  c.push_back({"string array element beyond file",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [](GgufBytes& b) {
                        b.u32(GGUF_TYPE_STRING);
                        b.u64(2);
                        b.str("a");
                        b.u64(100);
                        b.raw("bcdefghijk", 10);
                      }),
               "array string: string at offset"});
  c.push_back({"array of unknown type",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [](GgufBytes& b) {
                        b.u32(77);
                        b.u64(0);
                      }),
               "unknown element type 77"});
  c.push_back({"array nested twice",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [](GgufBytes& b) {
                        b.u32(GGUF_TYPE_ARRAY);
                        b.u64(1);
                        b.u32(GGUF_TYPE_ARRAY);
                        b.u64(1);
                        b.u32(GGUF_TYPE_UINT8);
                        b.u64(1);
                        b.u8(0);
                      }),
               "nested more than one level"});
  c.push_back({"bool array not 0/1",
               one_kv("k", GGUF_TYPE_ARRAY,
                      [](GgufBytes& b) {
                        b.u32(GGUF_TYPE_BOOL);
                        b.u64(2);
                        b.u8(1);
                        b.u8(9);
                      }),
               "array bool 1"});
  GgufBytes dup;
  for (int i = 0; i < 2; i++) {
    dup.str("same.key");
    dup.u32(GGUF_TYPE_UINT8);
    dup.u8(1);
  }
  c.push_back({"duplicate key", file(3, 0, 2, dup), "duplicate metadata key 'same.key'"});
  c.push_back({"alignment not a power of two",
               one_kv("general.alignment", GGUF_TYPE_UINT32, [](GgufBytes& b) { b.u32(48); }),
               "general.alignment 48 is not a power of two"});
  c.push_back({"alignment zero",
               one_kv("general.alignment", GGUF_TYPE_UINT32, [](GgufBytes& b) { b.u32(0); }),
               "general.alignment 0 is not a power of two"});
  c.push_back({"alignment wrong type",
               one_kv("general.alignment", GGUF_TYPE_UINT64, [](GgufBytes& b) { b.u64(32); }),
               "'general.alignment' has type uint64, expected uint32"});

  // Tensor infos.
  c.push_back({"n_dims 5", one_tensor("w", {32, 1, 1, 1, 1}, GGML_TYPE_F32, 0, 128),
               "tensor 'w' has n_dims 5"});
  c.push_back({"n_dims 0", one_tensor("w", {}, GGML_TYPE_F32, 0, 128), "tensor 'w' has n_dims 0"});
  c.push_back({"n_dims huge", one_tensor("w", {32}, GGML_TYPE_F32, 0, 128, 0, 0xffffffffu),
               "has n_dims 4294967295"});
  c.push_back(
      {"dim zero", one_tensor("w", {32, 0}, GGML_TYPE_F32, 0, 128), "tensor 'w' dim 1 is 0"});
  c.push_back({"dim negative", one_tensor("w", {32, kHuge}, GGML_TYPE_F32, 0, 128),
               "tensor 'w' dim 1 is -1"});
  c.push_back({"element count overflow",
               one_tensor("w", {1ull << 32, 1ull << 32, 1ull << 32}, GGML_TYPE_F32, 0, 128),
               "element count overflows"});
  c.push_back({"byte size overflow", one_tensor("w", {1ull << 62}, GGML_TYPE_F32, 0, 128),
               "byte size overflows"});
  c.push_back({"byte size overflow in rows",
               one_tensor("w", {1ull << 31, 1ull << 31}, GGML_TYPE_F64, 0, 128),
               "byte size overflows"});
  c.push_back({"unknown ggml type", one_tensor("w", {32}, 100, 0, 128),
               "tensor 'w' has unknown ggml type 100"});
  c.push_back({"removed ggml type", one_tensor("w", {32}, 4, 0, 128), "unknown ggml type 4"});
  c.push_back({"huge ggml type", one_tensor("w", {32}, 0xffffffffu, 0, 128),
               "unknown ggml type 4294967295"});
  c.push_back({"partial block", one_tensor("w", {16}, GGML_TYPE_Q4_1, 0, 128),
               "row length 16 is not a multiple of the q4_1 block size 32"});
  // K-quant tensors: a row that is not whole super-blocks, data that is short, misaligned data.
  c.push_back({"partial K-quant block", one_tensor("w", {128, 2}, GGML_TYPE_Q4_K, 0, 512),
               "row length 128 is not a multiple of the q4_K block size 256"});
  c.push_back({"K-quant data short", one_tensor("w", {256, 2}, GGML_TYPE_Q6_K, 0, 419),
               "tensor 'w' data (offset 0, 420 bytes) is past the end of the file"});
  c.push_back({"K-quant data misaligned", one_tensor("w", {256}, GGML_TYPE_Q5_K, 16, 512),
               "tensor 'w' offset 16 is not a multiple of the alignment 32"});
  c.push_back({"offset misaligned", one_tensor("w", {8}, GGML_TYPE_F32, 4, 128),
               "tensor 'w' offset 4 is not a multiple of the alignment 32"});
  c.push_back({"offset misaligned (alignment 64)", one_tensor("w", {8}, GGML_TYPE_F32, 32, 128, 64),
               "offset 32 is not a multiple of the alignment 64"});
  c.push_back({"data beyond end", one_tensor("w", {8}, GGML_TYPE_F32, 0, 31),
               "tensor 'w' data (offset 0, 32 bytes) is past the end of the file"});
  c.push_back({"offset beyond end", one_tensor("w", {8}, GGML_TYPE_F32, 1ull << 63, 64),
               "is past the end of the file"});
  c.push_back({"offset + size overflow", one_tensor("w", {8}, GGML_TYPE_F32, kHuge - 31, 64),
               "is past the end of the file"});
  std::vector<uint8_t> no_data = one_tensor("w", {8}, GGML_TYPE_F32, 0, 0);
  no_data.resize(no_data.size() - 1);  // the padded data section start is now past the end
  c.push_back({"data section beyond end", no_data, "data section at offset"});
  c.push_back({"name too long", one_tensor(std::string(65, 'n').c_str(), {8}, GGML_TYPE_F32, 0, 64),
               "tensor name at offset 24 has length 65"});
  c.push_back({"empty name", one_tensor("", {8}, GGML_TYPE_F32, 0, 64), "has length 0"});
  GgufBytes two;
  for (int i = 0; i < 2; i++) {
    two.str("w");
    two.u32(1);
    two.u64(8);
    two.u32(GGML_TYPE_F32);
    two.u64(32 * i);
  }
  std::vector<uint8_t> dup_t = file(3, 2, 0, two);
  dup_t.resize(dup_t.size() + 32 - dup_t.size() % 32 + 64, 0);
  c.push_back({"duplicate tensor name", dup_t, "duplicate tensor name 'w'"});
  GgufBytes overlap;
  for (int i = 0; i < 2; i++) {
    overlap.str(i == 0 ? "first" : "second");
    overlap.u32(1);
    overlap.u64(16);  // 64 bytes of F32, but the second starts 32 bytes after the first
    overlap.u32(GGML_TYPE_F32);
    overlap.u64(32 * i);
  }
  std::vector<uint8_t> ov = file(3, 2, 0, overlap);
  ov.resize(ov.size() + 32 - ov.size() % 32 + 128, 0);
  c.push_back({"overlapping tensors", ov, "tensor 'second' data overlaps tensor 'first'"});
  return c;
}

TEST(GgufBroken, TableOfBrokenFilesIsRejected) {
  for (const BrokenCase& c : broken_cases()) {
    SCOPED_TRACE(c.what);
    std::vector<uint8_t> keep;
    GgufFile f;
    std::string err;
    EXPECT_FALSE(open_copy(c.bytes, &f, &err, &keep));
    EXPECT_NE(err.find(c.expect), std::string::npos) << "got: " << err;
    EXPECT_EQ(err.rfind("<memory>: ", 0), 0u) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos);
    EXPECT_TRUE(f.kvs.empty() && f.tensors.empty() && f.base == nullptr);
  }
}

// A small valid file with every kind of section; its last tensor ends exactly at the end
// of the file so that no proper prefix is valid.
std::vector<uint8_t> small_valid_file() {
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.kv_u32("llama.block_count", 1);
  w.kv_f32("llama.rope.freq_base", 10000.0f);
  w.kv_bool("flag", true);
  w.kv_arr_str("tokenizer.ggml.tokens", {"a", "bc", ""});
  w.kv_arr_i32("tokenizer.ggml.token_type", {1, 3, 6});
  GgufBytes nested;
  nested.u32(GGUF_TYPE_ARRAY);
  nested.u64(1);
  nested.u32(GGUF_TYPE_UINT16);
  nested.u64(2);
  nested.u16(1);
  nested.u16(2);
  w.kv_raw("nested", GGUF_TYPE_ARRAY, nested);
  Blocks b = make_blocks();
  std::vector<float> f32(8, 0.5f);
  std::string err;
  EXPECT_TRUE(w.add_tensor("a", GGML_TYPE_Q4_1, {32}, b.q4_1.data(), 20, &err)) << err;
  EXPECT_TRUE(w.add_tensor("b", GGML_TYPE_F32, {8}, f32.data(), 32, &err)) << err;
  return w.bytes();
}

TEST(GgufBroken, EveryTruncationIsRejected) {
  std::vector<uint8_t> full = small_valid_file();
  {
    std::vector<uint8_t> keep;
    GgufFile f;
    std::string err;
    ASSERT_TRUE(open_copy(full, &f, &err, &keep)) << err;
    ASSERT_EQ(f.tensors.size(), 2u);
    ASSERT_EQ(f.data_offset + f.tensors[1].offset + f.tensors[1].nbytes, full.size());
  }
  for (size_t n = 0; n < full.size(); n++) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    std::vector<uint8_t> keep;
    GgufFile f;
    std::string err;
    ASSERT_FALSE(open_copy(prefix, &f, &err, &keep)) << "prefix of " << n << " bytes accepted";
    ASSERT_FALSE(err.empty()) << n;
  }
}

TEST(GgufBroken, RandomCorruptionNeverCrashes) {
  std::vector<uint8_t> full = small_valid_file();
  uint32_t s = 777;
  auto rnd = [&] {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  };
  int accepted = 0;
  for (int iter = 0; iter < 3000; iter++) {
    std::vector<uint8_t> bytes = full;
    int flips = 1 + rnd() % 4;
    for (int k = 0; k < flips; k++) {
      size_t at = rnd() % bytes.size();
      bytes[at] = rnd() % 3 == 0 ? 0xff : static_cast<uint8_t>(rnd());
    }
    std::vector<uint8_t> keep;
    GgufFile f;
    std::string err;
    if (!open_copy(bytes, &f, &err, &keep)) {
      ASSERT_FALSE(err.empty());
      continue;
    }
    accepted++;
    // Whatever was accepted must be safe to read in full.
    for (const GgufTensor& t : f.tensors) {
      std::vector<float> row(t.ne[0]);
      for (int64_t r = 0; r < t.n_rows; r++) {
        gguf_dequantize_row(t.type, t.data + r * t.row_bytes, row.data(), t.ne[0]);
      }
    }
  }
  EXPECT_GT(accepted, 0);  // some flips only touch values or tensor data
}

// ---------------------------------------------------------------------------------------
// Files on disk

TEST(GgufFileIo, OpenFromPathAndMove) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/amskv_test_gguf_small.gguf";
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  std::vector<float> vals = {1, 2, 3, 4, 5, 6, 7, 8};
  std::string err;
  ASSERT_TRUE(w.add_tensor_f32("t", GGML_TYPE_F16, {8}, vals.data(), &err)) << err;
  ASSERT_TRUE(w.write_file(path, &err)) << err;

  GgufFile f;
  ASSERT_TRUE(gguf_open(path.c_str(), &f, &err)) << err;
  EXPECT_EQ(f.source, path);
  EXPECT_NE(f.map, nullptr);
  GgufFile g = std::move(f);
  EXPECT_EQ(f.map, nullptr);
  std::string_view arch;
  ASSERT_TRUE(gguf_get_str(g, "general.architecture", &arch, &err)) << err;
  EXPECT_EQ(arch, "llama");
  const GgufTensor* t = gguf_tensor(g, "t");
  ASSERT_NE(t, nullptr);
  std::vector<float> out(8);
  ASSERT_TRUE(gguf_dequantize_row(t->type, t->data, out.data(), 8));
  EXPECT_EQ(out, vals);
  gguf_close(&g);
  EXPECT_EQ(gguf_tensor(g, "t"), nullptr);
  std::remove(path.c_str());

  EXPECT_FALSE(gguf_open((dir + "/amskv_no_such_file.gguf").c_str(), &f, &err));
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
  EXPECT_FALSE(gguf_open(dir.c_str(), &f, &err));
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  std::string empty_path = dir + "/amskv_test_gguf_empty.gguf";
  FILE* e = fopen(empty_path.c_str(), "wb");
  ASSERT_NE(e, nullptr);
  fclose(e);
  EXPECT_FALSE(gguf_open(empty_path.c_str(), &f, &err));
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  std::remove(empty_path.c_str());
  EXPECT_FALSE(gguf_open(nullptr, &f, &err));
}

// ---------------------------------------------------------------------------------------
// The real model (skipped when absent)

std::string model_path() {
  const char* env = getenv("AMSKV_MODEL");
  if (env && *env) return env;
  const char* home = getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(GgufModel, SmolLM2Metadata) {
  std::string path = model_path();
  struct stat st;
  if (stat(path.c_str(), &st) != 0) GTEST_SKIP() << "model file not found: " << path;
  GgufFile f;
  std::string err;
  ASSERT_TRUE(gguf_open(path.c_str(), &f, &err)) << err;
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);

  std::string_view sv;
  ASSERT_TRUE(gguf_get_str(f, "general.architecture", &sv, &err)) << err;
  EXPECT_EQ(sv, "llama");
  uint32_t v = 0;
  auto u32 = [&](const char* key) {
    uint32_t x = 0;
    EXPECT_TRUE(gguf_get_u32(f, key, &x, &err)) << err;
    return x;
  };
  EXPECT_EQ(u32("llama.block_count"), 30u);
  EXPECT_EQ(u32("llama.embedding_length"), 576u);
  EXPECT_EQ(u32("llama.feed_forward_length"), 1536u);
  EXPECT_EQ(u32("llama.attention.head_count"), 9u);
  EXPECT_EQ(u32("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(u32("llama.rope.dimension_count"), 64u);
  EXPECT_EQ(u32("llama.context_length"), 8192u);
  v = u32("llama.vocab_size");
  EXPECT_EQ(v, 49152u);
  float theta = 0, eps = 0;
  ASSERT_TRUE(gguf_get_f32(f, "llama.rope.freq_base", &theta, &err)) << err;
  EXPECT_EQ(theta, 100000.0f);
  ASSERT_TRUE(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps, &err)) << err;
  EXPECT_NEAR(eps, 1e-5f, 1e-9f);

  ASSERT_TRUE(gguf_get_str(f, "tokenizer.ggml.model", &sv, &err)) << err;
  EXPECT_EQ(sv, "gpt2");
  const GgufArray* tokens = nullptr;
  ASSERT_TRUE(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, &err)) << err;
  EXPECT_EQ(tokens->n, v);
  EXPECT_EQ(tokens->strs[1], "<|im_start|>");
  EXPECT_EQ(tokens->strs[2], "<|im_end|>");
  const GgufArray* merges = nullptr;
  ASSERT_TRUE(gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, &err)) << err;
  EXPECT_GT(merges->n, 0u);
  EXPECT_EQ(u32("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(u32("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_NE(gguf_find(f, "tokenizer.chat_template"), nullptr);

  // Tied embeddings: token_embd [576, 49152]; no output.weight.
  const GgufTensor* emb = gguf_tensor(f, "token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ne[0], 576);
  EXPECT_EQ(emb->ne[1], 49152);
  EXPECT_NE(gguf_tensor(f, "blk.29.ffn_down.weight"), nullptr);
  EXPECT_NE(gguf_tensor(f, "output_norm.weight"), nullptr);

  for (const GgufTensor& t : f.tensors) {
    SCOPED_TRACE(std::string(t.name));
    ASSERT_TRUE(gguf_can_dequantize(t.type)) << ggml_type_name(t.type);
    std::vector<float> row(t.ne[0]);
    ASSERT_TRUE(gguf_dequantize_row(t.type, t.data, row.data(), t.ne[0]));
    for (float x : row) ASSERT_TRUE(std::isfinite(x));
  }
}

// The seed corpus of the GGUF fuzz target (tests/fuzz/corpus/fuzz_gguf): every broken
// file above and the small valid one. Runs only when AMSKV_WRITE_CORPUS names a directory.
TEST(GgufBroken, WriteFuzzCorpus) {
  const char* dir = std::getenv("AMSKV_WRITE_CORPUS");
  if (!dir) GTEST_SKIP() << "set AMSKV_WRITE_CORPUS=DIR to write the fuzz seed corpus";
  auto put = [&](std::string name, const std::vector<uint8_t>& bytes) {
    for (char& ch : name)
      if (!std::isalnum((unsigned char)ch)) ch = '_';
    std::ofstream out(std::string(dir) + "/" + name + ".gguf", std::ios::binary);
    out.write((const char*)bytes.data(), (std::streamsize)bytes.size());
    ASSERT_TRUE(out.good()) << name;
  };
  for (const BrokenCase& c : broken_cases()) put(std::string("broken_") + c.what, c.bytes);
  put("valid_small", small_valid_file());
}

}  // namespace
}  // namespace amskv
