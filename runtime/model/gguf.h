// GGUF (v2, v3) reader: metadata, tensor infos and row dequantization.
//
// Model files are untrusted: every count, length, offset, dimension, type and alignment is
// checked (with overflow checks) before use. Functions report failure by returning false
// and writing one line to *err (err may be null); nothing here aborts or throws.
//
// Strings, keys and tensor data point into the file bytes (an mmap or a caller buffer),
// so they stay valid while the GgufFile lives (or, for gguf_open_memory, while the caller
// buffer lives). Moving a GgufFile keeps them valid.
//
// Multi-byte values are little-endian in the file and read with memcpy, so tensor data
// needs no particular pointer alignment. Only little-endian hosts are supported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace amskv {

// Metadata value types (gguf_type).
enum GgufType : uint32_t {
  GGUF_TYPE_UINT8 = 0,
  GGUF_TYPE_INT8 = 1,
  GGUF_TYPE_UINT16 = 2,
  GGUF_TYPE_INT16 = 3,
  GGUF_TYPE_UINT32 = 4,
  GGUF_TYPE_INT32 = 5,
  GGUF_TYPE_FLOAT32 = 6,
  GGUF_TYPE_BOOL = 7,
  GGUF_TYPE_STRING = 8,
  GGUF_TYPE_ARRAY = 9,
  GGUF_TYPE_UINT64 = 10,
  GGUF_TYPE_INT64 = 11,
  GGUF_TYPE_FLOAT64 = 12,
  GGUF_TYPE_COUNT = 13,  // also "any element type" for gguf_get_arr
};

// Tensor element types (ggml_type). Gaps are types removed from ggml; they are rejected.
enum GgmlType : int {
  GGML_TYPE_F32 = 0,
  GGML_TYPE_F16 = 1,
  GGML_TYPE_Q4_0 = 2,
  GGML_TYPE_Q4_1 = 3,
  GGML_TYPE_Q5_0 = 6,
  GGML_TYPE_Q5_1 = 7,
  GGML_TYPE_Q8_0 = 8,
  GGML_TYPE_Q8_1 = 9,
  GGML_TYPE_Q2_K = 10,
  GGML_TYPE_Q3_K = 11,
  GGML_TYPE_Q4_K = 12,
  GGML_TYPE_Q5_K = 13,
  GGML_TYPE_Q6_K = 14,
  GGML_TYPE_Q8_K = 15,
  GGML_TYPE_IQ2_XXS = 16,
  GGML_TYPE_IQ2_XS = 17,
  GGML_TYPE_IQ3_XXS = 18,
  GGML_TYPE_IQ1_S = 19,
  GGML_TYPE_IQ4_NL = 20,
  GGML_TYPE_IQ3_S = 21,
  GGML_TYPE_IQ2_S = 22,
  GGML_TYPE_IQ4_XS = 23,
  GGML_TYPE_I8 = 24,
  GGML_TYPE_I16 = 25,
  GGML_TYPE_I32 = 26,
  GGML_TYPE_I64 = 27,
  GGML_TYPE_F64 = 28,
  GGML_TYPE_IQ1_M = 29,
  GGML_TYPE_BF16 = 30,
  GGML_TYPE_TQ1_0 = 34,
  GGML_TYPE_TQ2_0 = 35,
  GGML_TYPE_MXFP4 = 39,
  GGML_TYPE_COUNT = 40,
};

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr uint32_t kGgufMaxDims = 4;
constexpr size_t kGgufMaxTensorName = 64;  // bytes, per the GGUF spec
constexpr size_t kGgufMaxKey = 65535;      // bytes, per the GGUF spec

struct GgufArray {
  GgufType type = GGUF_TYPE_UINT8;     // element type
  uint64_t n = 0;                      // element count
  const uint8_t* data = nullptr;       // n packed elements when type is a number or BOOL
  std::vector<std::string_view> strs;  // when type is STRING
  std::vector<GgufArray> arrs;         // when type is ARRAY; inner arrays never nest further
};

struct GgufKV {
  std::string_view key;
  GgufType type = GGUF_TYPE_UINT8;
  uint64_t u64 = 0;  // UINT8/16/32/64, BOOL (0 or 1)
  int64_t i64 = 0;   // INT8/16/32/64
  double f64 = 0;    // FLOAT32/64
  std::string_view str;
  GgufArray arr;
};

struct GgufTensor {
  std::string_view name;
  int type = 0;  // GgmlType
  uint32_t n_dims = 0;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};  // ne[0] is the contiguous row length; unused = 1
  int64_t n_elements = 0;
  int64_t n_rows = 0;      // ne[1] * ne[2] * ne[3]
  uint64_t row_bytes = 0;  // bytes of one row of ne[0] elements
  uint64_t nbytes = 0;
  uint64_t offset = 0;  // from the start of the data section
  const uint8_t* data = nullptr;
};

struct GgufFile {
  std::string source;  // path, or "<memory>"
  const uint8_t* base = nullptr;
  size_t size = 0;
  void* map = nullptr;  // owned mapping (null for gguf_open_memory)
  size_t map_size = 0;
  uint32_t version = 0;
  uint32_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;         // start of the tensor data section in the file
  std::vector<GgufKV> kvs;          // in file order
  std::vector<GgufTensor> tensors;  // in file order
  std::unordered_map<std::string_view, size_t> kv_index, tensor_index;

  GgufFile() = default;
  ~GgufFile();
  GgufFile(GgufFile&& o) noexcept;
  GgufFile& operator=(GgufFile&& o) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
};

// Opening. On failure *out is left empty.
bool gguf_open(const char* path, GgufFile* out, std::string* err);
// Parses a caller buffer without copying; it must outlive *out.
bool gguf_open_memory(const void* data, size_t size, GgufFile* out, std::string* err);
void gguf_close(GgufFile* f);
// Gives the pages of the mapped file that lie wholly inside t back to the system (a tensor
// the runner keeps a copy of): resident memory drops by its size, and a later read of t
// still sees the file's bytes. Nothing for gguf_open_memory files.
void gguf_release(const GgufFile& f, const GgufTensor& t);

// Lookups: null when absent.
const GgufKV* gguf_find(const GgufFile& f, const char* key);
const GgufTensor* gguf_tensor(const GgufFile& f, const char* name);

// Typed getters: false (with a message) when the key is missing or has the wrong type.
// Integer getters accept any integer type whose value fits; float getters accept FLOAT32/64.
bool gguf_get_u32(const GgufFile& f, const char* key, uint32_t* out, std::string* err);
bool gguf_get_i32(const GgufFile& f, const char* key, int32_t* out, std::string* err);
bool gguf_get_u64(const GgufFile& f, const char* key, uint64_t* out, std::string* err);
bool gguf_get_i64(const GgufFile& f, const char* key, int64_t* out, std::string* err);
bool gguf_get_f32(const GgufFile& f, const char* key, float* out, std::string* err);
bool gguf_get_bool(const GgufFile& f, const char* key, bool* out, std::string* err);
bool gguf_get_str(const GgufFile& f, const char* key, std::string_view* out, std::string* err);
// elem_type GGUF_TYPE_COUNT accepts any element type.
bool gguf_get_arr(const GgufFile& f, const char* key, GgufType elem_type, const GgufArray** out,
                  std::string* err);
// Array elements (i < a.n): integers (not BOOL) that fit int64; FLOAT32/64.
bool gguf_arr_get_i64(const GgufArray& a, uint64_t i, int64_t* out);
bool gguf_arr_get_f32(const GgufArray& a, uint64_t i, float* out);

// The GGML type table: one row of named fields per tensor type, like ggml's type_traits.
// Blocks of 32 values that the matrix products compute with as integers (Q8_0, Q4_0, Q4_1)
// say where their parts sit: x = d * (q - zero) + m, d an f16 at byte 0, m an f16 at
// `min_offset` (0: none), q at `q_offset` as int8 or as nibbles (element i in the low
// nibble of byte i, element i + 16 in the high one).
struct GgmlBlock32 {
  int q_offset;  // 0: not such a type
  int nibbles;
  int zero;
  int min_offset;
};
// A block as small integers times f16 scales, what the Q8 and Q8S layouts of the matrix
// products hold (arch/matmul.h): x[i] = d * sc[i / 16] * q[i] + m * mn[i / 32] for the block's
// elements (the products d * sc exact in f32, as the file's own dequantization computes them).
struct GgmlIntBlock {
  int8_t q[256];
  int8_t sc[16];
  int8_t mn[8];
  uint16_t d, m;  // f16
};
struct GgmlInts {
  void (*decode)(const uint8_t* block, GgmlIntBlock* out);  // null: not such a type
  int plain;  // every sc is 1 and every mn 0: the Q8 layout holds it
};
struct GgmlTypeInfo {
  const char* name;
  int64_t blck;                                        // elements per block
  size_t size;                                         // bytes per block
  void (*to_float)(const uint8_t* block, float* out);  // null: not dequantized here
  GgmlBlock32 q32;  // Q4_0, Q4_1, Q8_0: the packed layouts copy their bytes
  GgmlInts ints;    // Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: packed from these integers
};
const GgmlTypeInfo* ggml_type_info(int ggml_type);  // null for unknown types

// Type tables. Unknown types: name "unknown", block size and type size 0.
const char* gguf_type_name(uint32_t gguf_type);
const char* ggml_type_name(int ggml_type);
int64_t ggml_blck_size(int ggml_type);  // elements per block
size_t ggml_type_size(int ggml_type);   // bytes per block
// Bytes of n elements: false for unknown types, n < 0, n not a block multiple or overflow.
bool ggml_row_bytes(int ggml_type, int64_t n, uint64_t* out);

// Dequantizes n elements (a multiple of the block size) of one row. Supported: F32, F16,
// BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (checked against the gguf package's
// numpy dequantization: tests/model/reference/check_dequant.py). False for other types or
// a bad n.
bool gguf_dequantize_row(int ggml_type, const void* src, float* dst, int64_t n);
bool gguf_can_dequantize(int ggml_type);

// Portable half conversions (round to nearest even; NaN stays NaN).
float gguf_f16_to_f32(uint16_t h);
uint16_t gguf_f32_to_f16(float f);
float gguf_bf16_to_f32(uint16_t h);
uint16_t gguf_f32_to_bf16(float f);

}  // namespace amskv
