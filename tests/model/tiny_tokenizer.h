// A tiny byte-level BPE vocabulary for tests and fuzzing: the 256 byte tokens, a few
// merges and the ChatML specials, SmolLM2's pre-tokenizer.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/model/tokenizer.h"

namespace amskv {

// The one-char token of each byte in the GPT-2 byte alphabet (what GGUF stores).
inline std::string byte_char(uint8_t b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  uint32_t cp = b;
  if (!printable) {
    cp = 256;
    for (int x = 0; x < b; ++x) {
      const bool p = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
      if (!p) ++cp;
    }
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(char(cp));
  } else {
    s.push_back(char(0xC0 | (cp >> 6)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  }
  return s;
}

// Tiny vocabulary: id b (0..255) is the token of byte b; merged tokens and specials follow.
constexpr int32_t kHe = 256, kLl = 257, kHell = 258, kHello = 259, kSpW = 260, kOr = 261,
                  kSpWor = 262, kLd = 263, kSpWorld = 264, kImStart = 265, kImEnd = 266, kEot = 267,
                  kUser = 268, kAa = 269, kBc = 270, kAb = 271;

inline TokenizerData tiny_data() {
  TokenizerData d;
  d.pre = "smollm";
  for (int b = 0; b < 256; ++b) d.tokens.push_back(byte_char(uint8_t(b)));
  for (const char* t :
       {"he", "ll", "hell", "hello", "\xC4\xA0w", "or", "\xC4\xA0wor", "ld", "\xC4\xA0world",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool>", "aa", "bc", "ab"}) {
    d.tokens.push_back(t);
  }
  d.token_types.assign(d.tokens.size(), kTokenNormal);
  d.token_types[kImStart] = d.token_types[kImEnd] = d.token_types[kEot] = kTokenControl;
  d.token_types[kUser] = kTokenUserDefined;
  // Rank = position. "b c" outranks "a b" so "abc" must become [a, bc].
  d.merges = {"h e",          "l l", "he ll", "hell o",         "\xC4\xA0 w", "o r",
              "\xC4\xA0w or", "l d", "a a",   "\xC4\xA0wor ld", "b c",        "a b"};
  d.bos_id = kImStart;
  d.eos_id = kImEnd;
  d.unk_id = -1;
  d.pad_id = kEot;
  return d;
}

// A SentencePiece vocabulary ("llama" model): <unk>, <s>, </s>, every byte as <0xHH>, then
// pieces with scores (higher merges first) and one control token <ctl>.
inline TokenizerData tiny_spm_data() {
  TokenizerData d;
  d.model = "llama";
  d.tokens = {"<unk>", "<s>", "</s>"};
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b)
    d.tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
  d.token_types.assign(d.tokens.size(), kTokenByte);
  d.token_types[0] = kTokenUnknown;
  d.token_types[1] = d.token_types[2] = kTokenControl;
  const std::pair<const char*, float> pieces[] = {{"\xe2\x96\x81", -1},
                                                  {"h", -2},
                                                  {"e", -2},
                                                  {"l", -2},
                                                  {"o", -2},
                                                  {"he", -3},
                                                  {"ll", -1},
                                                  {"hell", -4},
                                                  {"hello", -5},
                                                  {"\xe2\x96\x81hello", -6},
                                                  {"lo", -0.5f},
                                                  {"\xe2\x96\x81\xe2\x96\x81", -1}};
  d.scores.assign(d.tokens.size(), 0.f);
  for (const auto& [text, score] : pieces) {
    d.tokens.push_back(text);
    d.scores.push_back(score);
    d.token_types.push_back(kTokenNormal);
  }
  d.tokens.push_back("<ctl>");
  d.scores.push_back(0.f);
  d.token_types.push_back(kTokenControl);
  d.bos_id = 1, d.eos_id = 2, d.unk_id = 0;
  d.add_space_prefix = false;
  return d;
}

}  // namespace amskv
