// The GGML type table (gguf.h): one row of named fields per tensor type, and the row
// dequantization and half conversions built on it.
#include <cstring>
#include <limits>

#include "arch/f16.h"
#include "runtime/model/gguf.h"

namespace amskv {
namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}

// One block to floats, per type (the dequantization reference the tests check against an
// independent decoder).
void f32_block(const uint8_t* s, float* y) {
  *y = load<float>(s);
}
void f16_block(const uint8_t* s, float* y) {
  *y = f16_to_f32(load<uint16_t>(s));
}
void bf16_block(const uint8_t* s, float* y) {
  *y = gguf_bf16_to_f32(load<uint16_t>(s));
}
// Q8_0: f16 d, int8 q[32]; x = d * q.
void q8_0_block(const uint8_t* s, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s));
  for (int j = 0; j < 32; j++) y[j] = d * static_cast<int8_t>(s[2 + j]);
}
// Q4_0: f16 d, 16 bytes; low nibbles are x[0..15], high nibbles x[16..31]; x = d * (q - 8).
void q4_0_block(const uint8_t* s, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s));
  for (int j = 0; j < 16; j++) {
    y[j] = d * ((s[2 + j] & 0x0f) - 8);
    y[j + 16] = d * ((s[2 + j] >> 4) - 8);
  }
}
// Q4_1: f16 d, f16 m, 16 bytes (nibbles as Q4_0); x = d * q + m.
void q4_1_block(const uint8_t* s, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s));
  const float m = f16_to_f32(load<uint16_t>(s + 2));
  for (int j = 0; j < 16; j++) {
    y[j] = d * (s[4 + j] & 0x0f) + m;
    y[j + 16] = d * (s[4 + j] >> 4) + m;
  }
}

constexpr GgmlBlock32 kNotQ32{0, 0, 0, 0};

// Block sizes and bytes per block from ggml-common.h, indexed by type; a null name is a
// type removed from ggml.
const GgmlTypeInfo kTypes[GGML_TYPE_COUNT] = {
    {"f32", 1, 4, f32_block, kNotQ32},
    {"f16", 1, 2, f16_block, kNotQ32},
    {"q4_0", 32, 18, q4_0_block, {2, 1, 8, 0}},
    {"q4_1", 32, 20, q4_1_block, {4, 1, 0, 2}},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {"q5_0", 32, 22, nullptr, kNotQ32},
    {"q5_1", 32, 24, nullptr, kNotQ32},
    {"q8_0", 32, 34, q8_0_block, {2, 0, 0, 0}},
    {"q8_1", 32, 36, nullptr, kNotQ32},
    {"q2_K", 256, 84, nullptr, kNotQ32},
    {"q3_K", 256, 110, nullptr, kNotQ32},
    {"q4_K", 256, 144, nullptr, kNotQ32},
    {"q5_K", 256, 176, nullptr, kNotQ32},
    {"q6_K", 256, 210, nullptr, kNotQ32},
    {"q8_K", 256, 292, nullptr, kNotQ32},
    {"iq2_xxs", 256, 66, nullptr, kNotQ32},
    {"iq2_xs", 256, 74, nullptr, kNotQ32},
    {"iq3_xxs", 256, 98, nullptr, kNotQ32},
    {"iq1_s", 256, 50, nullptr, kNotQ32},
    {"iq4_nl", 32, 18, nullptr, kNotQ32},
    {"iq3_s", 256, 110, nullptr, kNotQ32},
    {"iq2_s", 256, 82, nullptr, kNotQ32},
    {"iq4_xs", 256, 136, nullptr, kNotQ32},
    {"i8", 1, 1, nullptr, kNotQ32},
    {"i16", 1, 2, nullptr, kNotQ32},
    {"i32", 1, 4, nullptr, kNotQ32},
    {"i64", 1, 8, nullptr, kNotQ32},
    {"f64", 1, 8, nullptr, kNotQ32},
    {"iq1_m", 256, 56, nullptr, kNotQ32},
    {"bf16", 1, 2, bf16_block, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {"tq1_0", 256, 54, nullptr, kNotQ32},
    {"tq2_0", 256, 66, nullptr, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {nullptr, 0, 0, nullptr, kNotQ32},
    {"mxfp4", 32, 17, nullptr, kNotQ32},
};

const GgmlTypeInfo* type_info(int t) {
  if (t < 0 || t >= GGML_TYPE_COUNT || kTypes[t].size == 0) return nullptr;
  return &kTypes[t];
}

// Decodes one scalar of type t at p into the unsigned / signed / float slot it belongs to.
}  // namespace

const char* ggml_type_name(int t) {
  const GgmlTypeInfo* ti = type_info(t);
  return ti ? ti->name : "unknown";
}

int64_t ggml_blck_size(int t) {
  const GgmlTypeInfo* ti = type_info(t);
  return ti ? ti->blck : 0;
}

size_t ggml_type_size(int t) {
  const GgmlTypeInfo* ti = type_info(t);
  return ti ? ti->size : 0;
}

bool ggml_row_bytes(int t, int64_t n, uint64_t* out) {
  const GgmlTypeInfo* ti = type_info(t);
  if (!ti || n < 0 || n % ti->blck != 0) return false;
  uint64_t blocks = static_cast<uint64_t>(n / ti->blck);
  if (blocks > std::numeric_limits<uint64_t>::max() / ti->size) return false;
  *out = blocks * ti->size;
  return true;
}

float gguf_f16_to_f32(uint16_t h) {
  return f16_to_f32(h);
}

uint16_t gguf_f32_to_f16(float f) {
  return f32_to_f16(f);
}

float gguf_bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t gguf_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fffu + ((x >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(x >> 16);
}

const GgmlTypeInfo* ggml_type_info(int t) {
  return type_info(t);
}

bool gguf_can_dequantize(int t) {
  const GgmlTypeInfo* ti = type_info(t);
  return ti && ti->to_float;
}

bool gguf_dequantize_row(int t, const void* src, float* dst, int64_t n) {
  if (!gguf_can_dequantize(t) || n < 0 || n % ggml_blck_size(t) != 0) return false;
  if (n > 0 && (!src || !dst)) return false;
  const GgmlTypeInfo& ti = kTypes[t];
  const uint8_t* s = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / ti.blck; b++) ti.to_float(s + b * ti.size, dst + b * ti.blck);
  return true;
}

}  // namespace amskv
