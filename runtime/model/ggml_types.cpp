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

// Q5_0: f16 d, 32 high bits, 16 bytes of nibbles; element j's fifth bit is bit j of the
// high bits; x = d * (q - 16).
void q5_0_block(const uint8_t* s, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s));
  const uint32_t qh = load<uint32_t>(s + 2);
  for (int j = 0; j < 16; j++) {
    y[j] = d * (float)((int)((s[6 + j] & 0x0f) | ((qh >> j) & 1) << 4) - 16);
    y[j + 16] = d * (float)((int)((s[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
  }
}
// Q5_1: f16 d, f16 m, 32 high bits, 16 bytes (as Q5_0); x = d * q + m.
void q5_1_block(const uint8_t* s, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s));
  const float m = f16_to_f32(load<uint16_t>(s + 2));
  const uint32_t qh = load<uint32_t>(s + 4);
  for (int j = 0; j < 16; j++) {
    y[j] = d * (float)((s[8 + j] & 0x0f) | ((qh >> j) & 1) << 4) + m;
    y[j + 16] = d * (float)((s[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) + m;
  }
}

// K-quants: super-blocks of 256 in sub-blocks with their own scales. Q4_K and Q5_K pack the
// 6-bit scale and minimum of 8 sub-blocks of 32 into 12 bytes.
void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
// Q4_K: f16 d, f16 dmin, 12 bytes of scales, 128 bytes q: per 64 elements, 32 bytes whose
// low nibbles are sub-block 2i and high nibbles sub-block 2i + 1; x = (d sc) q - (dmin m).
// Q5_K: the same with 32 bytes qh of fifth bits before q: bit 2i of byte l for element l of
// sub-block 2i, bit 2i + 1 for sub-block 2i + 1.
void k_block(const uint8_t* s, const uint8_t* qh, const uint8_t* q, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s)), dmin = f16_to_f32(load<uint16_t>(s + 2));
  for (int j = 0; j < 4; j++, q += 32, y += 64) {
    float dj[2], mj[2];
    for (int h = 0; h < 2; h++) {
      int sc, m;
      scale_min_k4(2 * j + h, s + 4, &sc, &m);
      dj[h] = d * (float)sc, mj[h] = dmin * (float)m;
    }
    for (int l = 0; l < 32; l++) {
      const int hi0 = qh ? ((qh[l] >> (2 * j)) & 1) << 4 : 0;
      const int hi1 = qh ? ((qh[l] >> (2 * j + 1)) & 1) << 4 : 0;
      y[l] = dj[0] * (float)((q[l] & 0x0f) | hi0) - mj[0];
      y[l + 32] = dj[1] * (float)((q[l] >> 4) | hi1) - mj[1];
    }
  }
}
void q4_k_block(const uint8_t* s, float* y) {
  k_block(s, nullptr, s + 16, y);
}
void q5_k_block(const uint8_t* s, float* y) {
  k_block(s, s + 16, s + 48, y);
}
// Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales (one per 16
// elements), f16 d last; x = (d sc) (q - 32). Per 128 elements: 64 low-nibble bytes and 32
// high bytes hold four runs of 32.
void q6_k_block(const uint8_t* s, float* y) {
  const float d = f16_to_f32(load<uint16_t>(s + 208));
  const uint8_t *ql = s, *qh = s + 128;
  const int8_t* sc = (const int8_t*)(s + 192);
  for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, y += 128)
    for (int l = 0; l < 32; l++) {
      const int is = l / 16;
      const int q1 = (int)((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
      const int q2 = (int)((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
      const int q3 = (int)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
      const int q4 = (int)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
      y[l] = d * (float)sc[is] * (float)q1;
      y[l + 32] = d * (float)sc[is + 2] * (float)q2;
      y[l + 64] = d * (float)sc[is + 4] * (float)q3;
      y[l + 96] = d * (float)sc[is + 6] * (float)q4;
    }
}

// The same blocks as integers for the matrix products (GgmlIntBlock).
void q5_0_ints(const uint8_t* s, GgmlIntBlock* o) {
  const uint32_t qh = load<uint32_t>(s + 2);
  for (int j = 0; j < 16; j++) {
    o->q[j] = (int8_t)(((s[6 + j] & 0x0f) | ((qh >> j) & 1) << 4) - 16);
    o->q[j + 16] = (int8_t)(((s[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
  }
  o->sc[0] = o->sc[1] = 1, o->mn[0] = 0;
  o->d = load<uint16_t>(s), o->m = 0;
}
void q5_1_ints(const uint8_t* s, GgmlIntBlock* o) {
  const uint32_t qh = load<uint32_t>(s + 4);
  for (int j = 0; j < 16; j++) {
    o->q[j] = (int8_t)((s[8 + j] & 0x0f) | ((qh >> j) & 1) << 4);
    o->q[j + 16] = (int8_t)((s[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
  }
  o->sc[0] = o->sc[1] = 1, o->mn[0] = 1;
  o->d = load<uint16_t>(s), o->m = load<uint16_t>(s + 2);
}
// Q4_K (qh null) and Q5_K: the minima's multipliers negated, m = dmin.
void k_ints(const uint8_t* s, const uint8_t* qh, const uint8_t* q, GgmlIntBlock* o) {
  for (int j = 0; j < 4; j++, q += 32)
    for (int h = 0; h < 2; h++) {
      int sc, m;
      scale_min_k4(2 * j + h, s + 4, &sc, &m);
      o->sc[4 * j + 2 * h] = o->sc[4 * j + 2 * h + 1] = (int8_t)sc;
      o->mn[2 * j + h] = (int8_t)-m;
      for (int l = 0; l < 32; l++) {
        const int hi = qh ? ((qh[l] >> (2 * j + h)) & 1) << 4 : 0;
        o->q[64 * j + 32 * h + l] = (int8_t)((h ? q[l] >> 4 : q[l] & 0x0f) | hi);
      }
    }
  o->d = load<uint16_t>(s), o->m = load<uint16_t>(s + 2);
}
void q4_k_ints(const uint8_t* s, GgmlIntBlock* o) {
  k_ints(s, nullptr, s + 16, o);
}
void q5_k_ints(const uint8_t* s, GgmlIntBlock* o) {
  k_ints(s, s + 16, s + 48, o);
}
void q6_k_ints(const uint8_t* s, GgmlIntBlock* o) {
  const uint8_t *ql = s, *qh = s + 128;
  for (int n = 0; n < 2; n++, ql += 64, qh += 32)
    for (int l = 0; l < 32; l++) {
      int8_t* q = o->q + 128 * n;
      q[l] = (int8_t)(((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32);
      q[l + 32] = (int8_t)(((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32);
      q[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
      q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
    }
  memcpy(o->sc, s + 192, 16);
  memset(o->mn, 0, 8);
  o->d = load<uint16_t>(s + 208), o->m = 0;
}

constexpr GgmlBlock32 kNotQ32{0, 0, 0, 0};
constexpr GgmlInts kNoInts{nullptr, 0};

// Block sizes and bytes per block from ggml-common.h, indexed by type; a null name is a
// type removed from ggml.
const GgmlTypeInfo kTypes[GGML_TYPE_COUNT] = {
    {"f32", 1, 4, f32_block, kNotQ32, kNoInts},
    {"f16", 1, 2, f16_block, kNotQ32, kNoInts},
    {"q4_0", 32, 18, q4_0_block, {2, 1, 8, 0}, kNoInts},
    {"q4_1", 32, 20, q4_1_block, {4, 1, 0, 2}, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {"q5_0", 32, 22, q5_0_block, kNotQ32, {q5_0_ints, 1}},
    {"q5_1", 32, 24, q5_1_block, kNotQ32, {q5_1_ints, 0}},
    {"q8_0", 32, 34, q8_0_block, {2, 0, 0, 0}, kNoInts},
    {"q8_1", 32, 36, nullptr, kNotQ32, kNoInts},
    {"q2_K", 256, 84, nullptr, kNotQ32, kNoInts},
    {"q3_K", 256, 110, nullptr, kNotQ32, kNoInts},
    {"q4_K", 256, 144, q4_k_block, kNotQ32, {q4_k_ints, 0}},
    {"q5_K", 256, 176, q5_k_block, kNotQ32, {q5_k_ints, 0}},
    {"q6_K", 256, 210, q6_k_block, kNotQ32, {q6_k_ints, 0}},
    {"q8_K", 256, 292, nullptr, kNotQ32, kNoInts},
    {"iq2_xxs", 256, 66, nullptr, kNotQ32, kNoInts},
    {"iq2_xs", 256, 74, nullptr, kNotQ32, kNoInts},
    {"iq3_xxs", 256, 98, nullptr, kNotQ32, kNoInts},
    {"iq1_s", 256, 50, nullptr, kNotQ32, kNoInts},
    {"iq4_nl", 32, 18, nullptr, kNotQ32, kNoInts},
    {"iq3_s", 256, 110, nullptr, kNotQ32, kNoInts},
    {"iq2_s", 256, 82, nullptr, kNotQ32, kNoInts},
    {"iq4_xs", 256, 136, nullptr, kNotQ32, kNoInts},
    {"i8", 1, 1, nullptr, kNotQ32, kNoInts},
    {"i16", 1, 2, nullptr, kNotQ32, kNoInts},
    {"i32", 1, 4, nullptr, kNotQ32, kNoInts},
    {"i64", 1, 8, nullptr, kNotQ32, kNoInts},
    {"f64", 1, 8, nullptr, kNotQ32, kNoInts},
    {"iq1_m", 256, 56, nullptr, kNotQ32, kNoInts},
    {"bf16", 1, 2, bf16_block, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {"tq1_0", 256, 54, nullptr, kNotQ32, kNoInts},
    {"tq2_0", 256, 66, nullptr, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {nullptr, 0, 0, nullptr, kNotQ32, kNoInts},
    {"mxfp4", 32, 17, nullptr, kNotQ32, kNoInts},
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
