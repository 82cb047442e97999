// TokenizerData from a GGUF file's tokenizer.ggml.* metadata.
#include "runtime/model/gguf.h"
#include "runtime/model/tokenizer.h"

namespace amskv {

bool tokenizer_data_from_gguf(const GgufFile& f, TokenizerData* d, std::string* err) {
  TokenizerData t;
  std::string_view sv;
  if (!gguf_get_str(f, "tokenizer.ggml.model", &sv, err)) return false;
  t.model = std::string(sv);
  if (gguf_find(f, "tokenizer.ggml.pre")) {
    if (!gguf_get_str(f, "tokenizer.ggml.pre", &sv, err)) return false;
    t.pre = std::string(sv);
  }
  const GgufArray* a;
  if (!gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &a, err)) return false;
  t.tokens.assign(a->strs.begin(), a->strs.end());
  if (gguf_find(f, "tokenizer.ggml.merges")) {
    if (!gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &a, err)) return false;
    t.merges.assign(a->strs.begin(), a->strs.end());
  }
  if (gguf_find(f, "tokenizer.ggml.scores")) {
    if (!gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &a, err)) return false;
    t.scores.resize(a->n);
    for (uint64_t i = 0; i < a->n; ++i)
      if (!gguf_arr_get_f32(*a, i, &t.scores[i]) || !(t.scores[i] == t.scores[i])) {
        if (err) *err = "tokenizer.ggml.scores holds a NaN";
        return false;
      }
  }
  if (gguf_find(f, "tokenizer.ggml.add_space_prefix") &&
      !gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &t.add_space_prefix, err))
    return false;
  if (gguf_find(f, "tokenizer.ggml.token_type")) {
    if (!gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_TYPE_COUNT, &a, err)) return false;
    t.token_types.resize(a->n);
    for (uint64_t i = 0; i < a->n; ++i) {
      int64_t v;
      if (!gguf_arr_get_i64(*a, i, &v) || v < -1000000 || v > 1000000) {
        if (err) *err = "tokenizer.ggml.token_type holds a non-integer or out-of-range value";
        return false;
      }
      t.token_types[i] = (int32_t)v;
    }
  }
  struct IdKey {
    const char* key;
    int32_t* out;
  } ids[] = {{"tokenizer.ggml.bos_token_id", &t.bos_id},
             {"tokenizer.ggml.eos_token_id", &t.eos_id},
             {"tokenizer.ggml.unknown_token_id", &t.unk_id},
             {"tokenizer.ggml.padding_token_id", &t.pad_id}};
  for (const IdKey& k : ids)
    if (gguf_find(f, k.key) && !gguf_get_i32(f, k.key, k.out, err)) return false;
  if (gguf_find(f, "tokenizer.ggml.add_bos_token") &&
      !gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &t.add_bos_token, err))
    return false;
  *d = std::move(t);
  return true;
}

}  // namespace amskv
