// libFuzzer: tokenize arbitrary bytes (with and without special tokens) and decode
// arbitrary ids, with byte-level BPE and with SentencePiece. BPE must round-trip any byte
// string exactly; SentencePiece any valid UTF-8 (it cuts invalid bytes as llama.cpp does, by
// the length their first byte announces, so a space may end up inside a byte run), but for
// U+2581 (its space), which decodes as a space.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model/tokenizer.h"
#include "tests/model/tiny_tokenizer.h"

using namespace amskv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Tokenizer tok = [] {
    Tokenizer t;
    std::string err;
    if (!tokenizer_init(t, tiny_data(), &err)) __builtin_trap();
    return t;
  }();
  const std::string text((const char*)data, size);
  std::vector<int32_t> ids;
  tokenize(tok, text, false, false, &ids);
  if (detokenize(tok, ids) != text) __builtin_trap();  // plain text round-trips
  ids.clear();
  tokenize(tok, text, true, true, &ids);  // specials may match; must not crash
  for (int32_t id : ids)
    if (id < 0 || id >= (int32_t)tok.tokens.size()) __builtin_trap();
  // The bytes as ids, in range or not: decoding never reads outside the vocabulary.
  std::vector<int32_t> any;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    int32_t v;
    __builtin_memcpy(&v, data + i, 4);
    any.push_back(v);
    detokenize_token(tok, v, (v & 1) != 0);
  }
  detokenize(tok, any);

  static Tokenizer spm = [] {
    Tokenizer t;
    std::string err;
    if (!tokenizer_init(t, tiny_spm_data(), &err)) __builtin_trap();
    return t;
  }();
  ids.clear();
  tokenize(spm, text, false, false, &ids);
  std::string want;
  for (size_t i = 0; i < text.size(); ++i)
    if (text.compare(i, 3, "\xe2\x96\x81") == 0)
      want += ' ', i += 2;
    else
      want += text[i];
  bool valid = true;
  for (size_t i = 0; i < size && valid;) {
    const uint8_t c = data[i];
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    valid = n > 0 && i + n <= size;
    for (size_t k = 1; valid && k < n; ++k) valid = (data[i + k] >> 6) == 2;
    i += n ? n : 1;
  }
  if (valid && detokenize(spm, ids) != want) __builtin_trap();
  ids.clear();
  tokenize(spm, text, true, true, &ids);
  for (int32_t id : ids)
    if (id < 0 || id >= (int32_t)spm.tokens.size()) __builtin_trap();
  detokenize(spm, any, true);
  return 0;
}
