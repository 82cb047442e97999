#include "tests/model/gguf_write.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace amskv {

void GgufBytes::raw(const void* p, size_t n) {
  const uint8_t* s = static_cast<const uint8_t*>(p);
  b.insert(b.end(), s, s + n);
}

void GgufBytes::str(std::string_view s) {
  u64(s.size());
  raw(s.data(), s.size());
}

void GgufBytes::pad_to(size_t align) {
  while (b.size() % align != 0) b.push_back(0);
}

void GgufWriter::key(const std::string& k, uint32_t type) {
  kv_.str(k);
  kv_.u32(type);
  n_kv_++;
}

void GgufWriter::kv_u8(const std::string& k, uint8_t v) {
  key(k, GGUF_TYPE_UINT8);
  kv_.u8(v);
}
void GgufWriter::kv_i8(const std::string& k, int8_t v) {
  key(k, GGUF_TYPE_INT8);
  kv_.u8(static_cast<uint8_t>(v));
}
void GgufWriter::kv_u16(const std::string& k, uint16_t v) {
  key(k, GGUF_TYPE_UINT16);
  kv_.u16(v);
}
void GgufWriter::kv_i16(const std::string& k, int16_t v) {
  key(k, GGUF_TYPE_INT16);
  kv_.raw(&v, 2);
}
void GgufWriter::kv_u32(const std::string& k, uint32_t v) {
  key(k, GGUF_TYPE_UINT32);
  kv_.u32(v);
}
void GgufWriter::kv_i32(const std::string& k, int32_t v) {
  key(k, GGUF_TYPE_INT32);
  kv_.i32(v);
}
void GgufWriter::kv_f32(const std::string& k, float v) {
  key(k, GGUF_TYPE_FLOAT32);
  kv_.f32(v);
}
void GgufWriter::kv_bool(const std::string& k, bool v) {
  key(k, GGUF_TYPE_BOOL);
  kv_.u8(v ? 1 : 0);
}
void GgufWriter::kv_str(const std::string& k, std::string_view v) {
  key(k, GGUF_TYPE_STRING);
  kv_.str(v);
}
void GgufWriter::kv_u64(const std::string& k, uint64_t v) {
  key(k, GGUF_TYPE_UINT64);
  kv_.u64(v);
}
void GgufWriter::kv_i64(const std::string& k, int64_t v) {
  key(k, GGUF_TYPE_INT64);
  kv_.i64(v);
}
void GgufWriter::kv_f64(const std::string& k, double v) {
  key(k, GGUF_TYPE_FLOAT64);
  kv_.f64(v);
}

void GgufWriter::kv_arr(const std::string& k, GgufType elem, const void* data, uint64_t n) {
  static const size_t kSize[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  key(k, GGUF_TYPE_ARRAY);
  kv_.u32(elem);
  kv_.u64(n);
  if (elem < GGUF_TYPE_COUNT) kv_.raw(data, static_cast<size_t>(n) * kSize[elem]);
}

void GgufWriter::kv_arr_i32(const std::string& k, const std::vector<int32_t>& v) {
  kv_arr(k, GGUF_TYPE_INT32, v.data(), v.size());
}

void GgufWriter::kv_arr_f32(const std::string& k, const std::vector<float>& v) {
  kv_arr(k, GGUF_TYPE_FLOAT32, v.data(), v.size());
}

void GgufWriter::kv_arr_str(const std::string& k, const std::vector<std::string>& v) {
  key(k, GGUF_TYPE_ARRAY);
  kv_.u32(GGUF_TYPE_STRING);
  kv_.u64(v.size());
  for (const std::string& s : v) kv_.str(s);
}

void GgufWriter::kv_raw(const std::string& k, uint32_t type, const GgufBytes& payload) {
  key(k, type);
  kv_.raw(payload.b.data(), payload.b.size());
}

void GgufWriter::set_alignment(uint32_t a) {
  kv_u32("general.alignment", a);
  alignment_ = a;
}

bool GgufWriter::add_tensor(const std::string& name, int type, const std::vector<int64_t>& dims,
                            const void* data, size_t nbytes, std::string* err) {
  auto fail = [&](const char* why) {
    if (err) *err = "tensor '" + name + "': " + why;
    return false;
  };
  if (dims.empty() || dims.size() > kGgufMaxDims) return fail("needs 1..4 dims");
  uint64_t row = 0;
  if (!ggml_row_bytes(type, dims[0], &row)) return fail("bad type or row length");
  uint64_t total = row;
  for (size_t i = 1; i < dims.size(); i++) {
    if (dims[i] <= 0) return fail("dims must be positive");
    total *= static_cast<uint64_t>(dims[i]);
  }
  if (total != nbytes) return fail("data size does not match type and dims");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, type, dims, std::vector<uint8_t>(p, p + nbytes)});
  return true;
}

bool GgufWriter::add_tensor_f32(const std::string& name, int type, const std::vector<int64_t>& dims,
                                const float* values, std::string* err) {
  uint64_t row = 0;
  if (dims.empty() || !ggml_row_bytes(type, dims[0], &row)) {
    if (err) *err = "tensor '" + name + "': bad type or row length";
    return false;
  }
  int64_t rows = 1;
  for (size_t i = 1; i < dims.size(); i++) rows *= dims[i];
  std::vector<uint8_t> data(static_cast<size_t>(row * rows));
  for (int64_t r = 0; r < rows; r++) {
    if (!gguf_quantize_row(type, values + r * dims[0], data.data() + r * row, dims[0])) {
      if (err) *err = "tensor '" + name + "': cannot quantize (type or non-finite value)";
      return false;
    }
  }
  return add_tensor(name, type, dims, data.data(), data.size(), err);
}

std::vector<uint8_t> GgufWriter::bytes() const {
  GgufBytes out;
  out.raw("GGUF", 4);
  out.u32(version_);
  out.u64(tensors_.size());
  out.u64(n_kv_);
  out.raw(kv_.b.data(), kv_.b.size());
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    out.str(t.name);
    out.u32(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) out.i64(d);
    out.u32(static_cast<uint32_t>(t.type));
    out.u64(offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  if (!tensors_.empty()) out.pad_to(alignment_);
  for (const Tensor& t : tensors_) {
    out.raw(t.data.data(), t.data.size());
    out.pad_to(alignment_);
  }
  return out.b;
}

bool GgufWriter::write_file(const std::string& path, std::string* err) const {
  std::vector<uint8_t> b = bytes();
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) {
    if (err) *err = path + ": cannot create";
    return false;
  }
  bool ok = fwrite(b.data(), 1, b.size(), f) == b.size();
  ok = (fclose(f) == 0) && ok;
  if (!ok && err) *err = path + ": write failed";
  return ok;
}

namespace {

// Float to int with truncation like ggml's casts, but defined for any input (tiny scales
// can make 1/d infinite, and 0 * inf is NaN).
int to_q(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

}  // namespace

bool gguf_quantize_row(int type, const float* x, void* dst, int64_t n) {
  if (n < 0 || ggml_blck_size(type) == 0 || n % ggml_blck_size(type) != 0) return false;
  for (int64_t i = 0; i < n; i++) {
    if (!std::isfinite(x[i])) return false;  // the casts below need finite input
  }
  uint8_t* y = static_cast<uint8_t*>(dst);
  auto put16 = [](uint8_t* p, uint16_t v) { memcpy(p, &v, 2); };
  switch (type) {
    case GGML_TYPE_F32:
      if (n > 0) memcpy(y, x, static_cast<size_t>(n) * 4);
      return true;
    case GGML_TYPE_F16:
      for (int64_t i = 0; i < n; i++) put16(y + 2 * i, gguf_f32_to_f16(x[i]));
      return true;
    case GGML_TYPE_BF16:
      for (int64_t i = 0; i < n; i++) put16(y + 2 * i, gguf_f32_to_bf16(x[i]));
      return true;
    case GGML_TYPE_Q8_0:
      for (int64_t b = 0; b < n / 32; b++, x += 32, y += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = std::fmax(amax, std::fabs(x[j]));
        float d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        put16(y, gguf_f32_to_f16(d));
        for (int j = 0; j < 32; j++)
          y[2 + j] = static_cast<uint8_t>(to_q(std::round(x[j] * id), -127, 127));
      }
      return true;
    case GGML_TYPE_Q4_0:
      // Scale by the value of largest magnitude so that it maps to -8 exactly.
      for (int64_t b = 0; b < n / 32; b++, x += 32, y += 18) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
          if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        }
        float d = max / -8;
        float id = d != 0 ? 1 / d : 0;
        put16(y, gguf_f32_to_f16(d));
        for (int j = 0; j < 16; j++) {
          int q0 = to_q(x[j] * id + 8.5f, 0, 15);
          int q1 = to_q(x[j + 16] * id + 8.5f, 0, 15);
          y[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
      }
      return true;
    case GGML_TYPE_Q4_1:
      for (int64_t b = 0; b < n / 32; b++, x += 32, y += 20) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < 32; j++) {
          mn = std::fmin(mn, x[j]);
          mx = std::fmax(mx, x[j]);
        }
        float d = (mx - mn) / 15;
        float id = d != 0 ? 1 / d : 0;
        put16(y, gguf_f32_to_f16(d));
        put16(y + 2, gguf_f32_to_f16(mn));
        for (int j = 0; j < 16; j++) {
          int q0 = to_q((x[j] - mn) * id + 0.5f, 0, 15);
          int q1 = to_q((x[j + 16] - mn) * id + 0.5f, 0, 15);
          y[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
      }
      return true;
    default:
      return false;
  }
}

}  // namespace amskv
