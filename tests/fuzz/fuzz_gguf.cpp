// libFuzzer: the GGUF reader on arbitrary bytes, then everything a loader reads from an
// accepted file (typed getters, arrays, tensor rows, the tokenizer metadata).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model/gguf.h"
#include "runtime/model/tokenizer.h"

using namespace amskv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GgufFile f;
  std::string err;
  if (!gguf_open_memory(data, size, &f, &err)) {
    if (err.empty()) __builtin_trap();  // a rejection always says why
    return 0;
  }
  for (const GgufKV& kv : f.kvs) {
    const std::string key(kv.key);
    const char* k = key.c_str();
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    bool b;
    std::string_view s;
    gguf_get_u32(f, k, &u32, &err), gguf_get_i32(f, k, &i32, &err);
    gguf_get_u64(f, k, &u64, &err), gguf_get_i64(f, k, &i64, &err);
    gguf_get_f32(f, k, &f32, &err), gguf_get_bool(f, k, &b, &err), gguf_get_str(f, k, &s, &err);
    for (GgufType t : {GGUF_TYPE_INT32, GGUF_TYPE_FLOAT32, GGUF_TYPE_STRING}) {
      const GgufArray* a = nullptr;
      if (!gguf_get_arr(f, k, t, &a, &err)) continue;
      for (uint64_t i = 0; i < a->n && i < 64; ++i)
        gguf_arr_get_i64(*a, i, &i64), gguf_arr_get_f32(*a, i, &f32);
    }
  }
  std::vector<float> row;
  for (const GgufTensor& t : f.tensors) {
    if (t.ne[0] > (1 << 16)) continue;
    row.resize((size_t)t.ne[0]);
    if (t.n_rows > 0) gguf_dequantize_row(t.type, t.data, row.data(), t.ne[0]);
  }
  TokenizerData d;
  if (tokenizer_data_from_gguf(f, &d, &err)) {
    Tokenizer tok;
    if (tokenizer_init(tok, d, &err)) {
      std::vector<int32_t> ids;
      tokenize(tok, "Hello, world! 123", false, true, &ids);
    }
  }
  return 0;
}
