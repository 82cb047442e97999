// GGUF v3 (or v2) writer for tests and tools: builds tiny files, e.g. random-weight models,
// and GgufBytes lets tests hand-craft deliberately broken files byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/gguf.h"

namespace amskv {

// Little-endian byte builder.
struct GgufBytes {
  std::vector<uint8_t> b;

  void raw(const void* p, size_t n);
  void u8(uint8_t v) { b.push_back(v); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void i32(int32_t v) { raw(&v, 4); }
  void i64(int64_t v) { raw(&v, 8); }
  void f32(float v) { raw(&v, 4); }
  void f64(double v) { raw(&v, 8); }
  void str(std::string_view s);  // u64 length + bytes
  void pad_to(size_t align);     // zero bytes up to a multiple of align
};

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t version = 3) : version_(version) {}

  // Scalars.
  void kv_u8(const std::string& key, uint8_t v);
  void kv_i8(const std::string& key, int8_t v);
  void kv_u16(const std::string& key, uint16_t v);
  void kv_i16(const std::string& key, int16_t v);
  void kv_u32(const std::string& key, uint32_t v);
  void kv_i32(const std::string& key, int32_t v);
  void kv_f32(const std::string& key, float v);
  void kv_bool(const std::string& key, bool v);
  void kv_str(const std::string& key, std::string_view v);
  void kv_u64(const std::string& key, uint64_t v);
  void kv_i64(const std::string& key, int64_t v);
  void kv_f64(const std::string& key, double v);
  // Arrays. kv_arr takes n packed little-endian elements of a number or bool type.
  void kv_arr(const std::string& key, GgufType elem, const void* data, uint64_t n);
  void kv_arr_i32(const std::string& key, const std::vector<int32_t>& v);
  void kv_arr_f32(const std::string& key, const std::vector<float>& v);
  void kv_arr_str(const std::string& key, const std::vector<std::string>& v);
  // Any value: type then payload exactly as given (nested arrays, broken values).
  void kv_raw(const std::string& key, uint32_t type, const GgufBytes& payload);
  // Writes general.alignment (uint32) and lays out tensor data with it.
  void set_alignment(uint32_t a);

  // Tensor with already-encoded data; nbytes must match the type and dims.
  bool add_tensor(const std::string& name, int ggml_type, const std::vector<int64_t>& dims,
                  const void* data, size_t nbytes, std::string* err);
  // Tensor from floats, quantized row by row with gguf_quantize_row.
  bool add_tensor_f32(const std::string& name, int ggml_type, const std::vector<int64_t>& dims,
                      const float* values, std::string* err);

  // The whole file; each tensor's data (the last included) is padded to the alignment.
  std::vector<uint8_t> bytes() const;
  bool write_file(const std::string& path, std::string* err) const;

 private:
  struct Tensor {
    std::string name;
    int type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  void key(const std::string& k, uint32_t type);

  uint32_t version_;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t n_kv_ = 0;
  GgufBytes kv_;
  std::vector<Tensor> tensors_;
};

// Quantizes n floats (a multiple of the block size, all finite) like ggml's reference
// quantizers. Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1.
bool gguf_quantize_row(int ggml_type, const float* src, void* dst, int64_t n);

}  // namespace amskv
