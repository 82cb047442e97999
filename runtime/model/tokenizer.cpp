#include "runtime/model/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <queue>

namespace amskv {
namespace {

// ---------------------------------------------------------------------------------------------
// Unicode classification: only what the pre-tokenizer regexes ask (\p{L}, \p{N}, \s).

enum Class : uint8_t { kOther = 0, kL = 1, kN = 2, kSpace = 3, kEnd = 4 };

struct Range {
  uint32_t lo, hi;
  Class cls;
};

const Range kRanges[] = {
#include "runtime/model/unicode_tables.inc"
};

// Unicode White_Space property (PropList.txt), the set llama.cpp and HF use for \s.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

Class classify_slow(uint32_t c) {
  if (is_white_space(c)) return kSpace;
  const Range* end = kRanges + sizeof(kRanges) / sizeof(kRanges[0]);
  const Range* r =
      std::upper_bound(kRanges, end, c, [](uint32_t v, const Range& x) { return v < x.lo; });
  if (r == kRanges) return kOther;
  --r;
  return c <= r->hi ? r->cls : kOther;
}

struct AsciiTable {
  Class cls[128];
  AsciiTable() {
    for (uint32_t c = 0; c < 128; ++c) cls[c] = classify_slow(c);
  }
};

Class classify(uint32_t c) {
  static const AsciiTable ascii;
  return c < 128 ? ascii.cls[c] : classify_slow(c);
}

// Marks a byte that is not part of valid UTF-8: outside Unicode, so it classifies as kOther.
constexpr uint32_t kInvalidBase = 0x110000;

// Strict UTF-8 decode of one code point at s[i]; returns its byte length (>= 1). Invalid
// sequences (bad lead, truncated, overlong, surrogate, > U+10FFFF) yield one invalid byte.
size_t decode_utf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const uint8_t c0 = b(0);
  if (c0 < 0x80) {
    *cp = c0;
    return 1;
  }
  if (c0 >= 0xC2 && c0 <= 0xDF && cont(1)) {
    *cp = (uint32_t(c0 & 0x1F) << 6) | (b(1) & 0x3F);
    return 2;
  }
  if (c0 >= 0xE0 && c0 <= 0xEF && cont(1) && cont(2)) {
    const bool ok = (c0 != 0xE0 || b(1) >= 0xA0) && (c0 != 0xED || b(1) < 0xA0);
    if (ok) {
      *cp = (uint32_t(c0 & 0x0F) << 12) | (uint32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      return 3;
    }
  }
  if (c0 >= 0xF0 && c0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const bool ok = (c0 != 0xF0 || b(1) >= 0x90) && (c0 != 0xF4 || b(1) < 0x90);
    if (ok) {
      *cp = (uint32_t(c0 & 0x07) << 18) | (uint32_t(b(1) & 0x3F) << 12) |
            (uint32_t(b(2) & 0x3F) << 6) | (b(3) & 0x3F);
      return 4;
    }
  }
  *cp = kInvalidBase + c0;
  return 1;
}

void append_utf8(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(char(c));
  } else if (c < 0x800) {
    out->push_back(char(0xC0 | (c >> 6)));
    out->push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(char(0xE0 | (c >> 12)));
    out->push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(char(0x80 | (c & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (c >> 18)));
    out->push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(char(0x80 | (c & 0x3F)));
  }
}

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> unicode alphabet: printable bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order, so every byte has a visible one-char token.

struct ByteAlphabet {
  uint32_t byte_to_cp[256];
  int16_t cp_to_byte[324];  // -1 where not an image
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      byte_to_cp[b] = printable ? uint32_t(b) : uint32_t(256 + n++);
    }
    for (int16_t& v : cp_to_byte) v = -1;
    for (int b = 0; b < 256; ++b) cp_to_byte[byte_to_cp[b]] = int16_t(b);
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer scanners. They work on decoded code points of one span and report word ends
// as code point indices; each mirrors llama.cpp's hand-written matcher for that regex.

struct Cpts {
  std::vector<uint32_t> cp;
  std::vector<size_t> off;  // byte offset of each code point, plus the end offset
};

void decode_all(std::string_view s, Cpts* c) {
  c->cp.clear();
  c->off.clear();
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t n = decode_utf8(s, i, &cp);
    c->cp.push_back(cp);
    c->off.push_back(i);
    i += n;
  }
  c->off.push_back(s.size());
}

struct Scanner {
  const std::vector<uint32_t>& cp;
  size_t b, e;  // the span being scanned
  std::vector<size_t>* ends;

  uint32_t at(size_t p) const { return p < e ? cp[p] : 0xFFFFFFFFu; }
  Class cls(size_t p) const { return p < e ? classify(cp[p]) : kEnd; }
  size_t run(size_t p, Class c) const {
    while (p < e && classify(cp[p]) == c) ++p;
    return p;
  }
  static uint32_t lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

  // 's|'t|'re|'ve|'m|'ll|'d ; returns the end or 0.
  size_t contraction(size_t p, bool fold) const {
    if (at(p) != '\'') return 0;
    const uint32_t c1 = fold ? lower(at(p + 1)) : at(p + 1);
    const uint32_t c2 = fold ? lower(at(p + 2)) : at(p + 2);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return p + 2;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
      return p + 3;
    }
    return 0;
  }

  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  void gpt2() {
    for (size_t p = b; p < e;) {
      if (size_t q = contraction(p, false)) {
        ends->push_back(p = q);
        continue;
      }
      const bool sp = at(p) == ' ';
      const Class c2 = sp ? cls(p + 1) : cls(p);
      if (c2 == kL || c2 == kN || c2 == kOther) {
        ends->push_back(p = run(p + (sp ? 1 : 0), c2));
        continue;
      }
      const size_t ws = run(p, kSpace) - p;  // >= 1 here
      // A run followed by a non-space leaves its last char to prefix the next word.
      p += (ws > 1 && p + ws < e) ? ws - 1 : std::max<size_t>(ws, 1);
      ends->push_back(p);
    }
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  // ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  void llama3() {
    const auto is_rn = [](uint32_t c) { return c == '\r' || c == '\n'; };
    for (size_t p = b; p < e;) {
      if (size_t q = contraction(p, true)) {
        ends->push_back(p = q);
        continue;
      }
      const uint32_t c = at(p);
      const Class k = cls(p);
      if (!is_rn(c) && k != kN && (k == kL || cls(p + 1) == kL)) {
        ends->push_back(p = run(p + 1, kL));
        continue;
      }
      if (k == kN) {
        const size_t q = run(p, kN);
        while (p < q) ends->push_back(p = std::min(p + 3, q));
        continue;
      }
      const bool sp = c == ' ';
      if ((sp ? cls(p + 1) : k) == kOther) {
        p = run(p + (sp ? 1 : 0), kOther);
        while (is_rn(at(p))) ++p;
        ends->push_back(p);
        continue;
      }
      size_t q = p, last_rn = 0;
      for (; cls(q) == kSpace; ++q) {
        if (is_rn(cp[q])) last_rn = q + 1;
      }
      const size_t ws = q - p;
      if (last_rn) {
        p = last_rn;
      } else {
        p += (ws > 1 && p + ws < e) ? ws - 1 : std::max<size_t>(ws, 1);
      }
      ends->push_back(p);
    }
  }
};

// Word boundaries (code point indices, exclusive ends) of the whole decoded span.
void split_words(PreTokenizer pre, const Cpts& c, std::vector<size_t>* ends) {
  const size_t n = c.cp.size();
  Scanner s{c.cp, 0, n, ends};
  if (pre == PreTokenizer::kLlama3) {
    s.llama3();
    return;
  }
  if (pre == PreTokenizer::kGpt2) {
    s.gpt2();
    return;
  }
  // kDigitsGpt2: every \p{N} code point is a piece on its own; the text between is scanned.
  for (size_t p = 0; p < n;) {
    if (classify(c.cp[p]) == kN) {
      ends->push_back(++p);
      continue;
    }
    size_t q = p;
    while (q < n && classify(c.cp[q]) != kN) ++q;
    s.b = p;
    s.e = q;
    s.gpt2();
    p = q;
  }
}

// ---------------------------------------------------------------------------------------------
// BPE on one word.

struct Sym {
  int32_t id;
  int32_t prev, next;
  bool alive;
};

struct Cand {
  int32_t rank;
  int32_t left, right;
  int32_t left_id, right_id, merged;
  bool operator<(const Cand& o) const {  // priority_queue pops the largest: invert
    return rank != o.rank ? rank > o.rank : left > o.left;
  }
};

uint64_t pair_key(int32_t a, int32_t b) {
  return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

void bpe_word(const Tokenizer& tok, std::string_view word, std::vector<Sym>* syms,
              std::vector<int32_t>* out) {
  const int32_t n = int32_t(word.size());
  syms->resize(word.size());
  for (int32_t i = 0; i < n; ++i) {
    (*syms)[i] = Sym{tok.byte_token[uint8_t(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  }
  std::priority_queue<Cand> heap;
  const auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Sym& a = (*syms)[l];
    const Sym& b = (*syms)[r];
    if (a.id < 0 || b.id < 0) return;
    auto it = tok.merges.find(pair_key(a.id, b.id));
    if (it != tok.merges.end()) heap.push(Cand{it->second.rank, l, r, a.id, b.id, it->second.id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& l = (*syms)[c.left];
    Sym& r = (*syms)[c.right];
    // Stale entry: one side was merged away or changed since it was queued.
    if (!l.alive || !r.alive || l.next != c.right || l.id != c.left_id || r.id != c.right_id) {
      continue;
    }
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) (*syms)[r.next].prev = c.left;
    r.alive = false;
    push(l.prev, c.left);
    push(c.left, l.next);
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = (*syms)[i].next) {
    // A byte the vocab cannot spell is dropped, as llama.cpp does (SmolLM2 lacks 21 bytes,
    // e.g. 0xC0 and 0xF5..0xFF; its unk id is <|endoftext|>, which must not appear).
    if ((*syms)[i].id >= 0) out->push_back((*syms)[i].id);
  }
}

// SentencePiece (llama.cpp's SPM session): characters merged pairwise, highest score first
// (ties: the leftmost), while the pair's text is a token; then each piece either is a token
// or splits back into the two it was merged from, down to bytes.
struct SpmSym {
  size_t off, n;  // bytes of the piece in the text; n = 0: merged into its left neighbour
  int32_t prev, next;
};
struct SpmPair {
  float score;
  int32_t left, right;
  size_t size;
  bool operator<(const SpmPair& o) const {
    return score != o.score ? score < o.score : left > o.left;
  }
};

int32_t find_token(const Tokenizer& tok, std::string_view s) {
  auto it = tok.token_to_id.find(std::string(s));
  return it == tok.token_to_id.end() ? -1 : it->second;
}

void spm_plain(const Tokenizer& tok, std::string_view raw, bool space_prefix,
               std::vector<int32_t>* out) {
  std::string text = space_prefix ? "\xe2\x96\x81" : "";
  for (char c : raw) text += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
  // Characters as llama.cpp cuts them: the length its first byte announces, valid or not.
  static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  std::vector<SpmSym> syms;
  for (size_t i = 0; i < text.size();) {
    size_t len = kLen[(uint8_t)text[i] >> 4];
    if (len > text.size() - i) len = text.size() - i;
    syms.push_back(SpmSym{i, len, (int32_t)syms.size() - 1, (int32_t)syms.size() + 1});
    i += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  std::priority_queue<SpmPair> heap;
  std::unordered_map<std::string, std::pair<int32_t, int32_t>> undo;
  const auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const std::string_view t = std::string_view(text).substr(syms[l].off, syms[l].n + syms[r].n);
    const int32_t id = find_token(tok, t);
    if (id < 0) return;
    heap.push(SpmPair{tok.scores[id], l, r, t.size()});
    undo[std::string(t)] = {l, r};
  };
  for (size_t i = 1; i < syms.size(); ++i) push((int32_t)i - 1, (int32_t)i);
  while (!heap.empty()) {
    const SpmPair p = heap.top();
    heap.pop();
    SpmSym &l = syms[p.left], &r = syms[p.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != p.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = p.left;
    push(l.prev, p.left);
    push(p.left, l.next);
  }
  // Back down through the merges to pieces that are tokens; bytes for the rest.
  std::vector<std::pair<size_t, size_t>> stack;
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    stack.assign(1, {syms[i].off, syms[i].n});
    while (!stack.empty()) {
      const auto [off, n] = stack.back();
      stack.pop_back();
      const std::string_view t = std::string_view(text).substr(off, n);
      const int32_t id = find_token(tok, t);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      auto it = undo.find(std::string(t));
      if (it != undo.end()) {
        const SpmSym &a = syms[it->second.first], &b = syms[it->second.second];
        const size_t na = b.off - a.off;  // the left part ends where the right one starts
        stack.push_back({off + na, n - na});
        stack.push_back({off, na});
        continue;
      }
      for (size_t k = 0; k < n; ++k)
        if (tok.byte_token[(uint8_t)t[k]] >= 0) out->push_back(tok.byte_token[(uint8_t)t[k]]);
    }
  }
}

// Every plain span starts the text or follows a special token: where SentencePiece puts its
// space prefix (llama.cpp does the same).
void tokenize_plain(const Tokenizer& tok, std::string_view text, std::vector<int32_t>* out) {
  if (text.empty()) return;
  if (tok.spm) return spm_plain(tok, text, tok.add_space_prefix, out);
  Cpts c;
  decode_all(text, &c);
  std::vector<size_t> ends;
  split_words(tok.pre, c, &ends);
  std::vector<Sym> syms;
  size_t start = 0;
  for (size_t e : ends) {
    const size_t b0 = c.off[start], b1 = c.off[e];
    bpe_word(tok, text.substr(b0, b1 - b0), &syms, out);
    start = e;
  }
}

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = "tokenizer: " + msg;
  return false;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_special_type(int32_t t) {
  return t == kTokenControl || t == kTokenUserDefined || t == kTokenUnknown;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void pretokenize(PreTokenizer pre, std::string_view text, std::vector<std::string_view>* words) {
  Cpts c;
  decode_all(text, &c);
  std::vector<size_t> ends;
  split_words(pre, c, &ends);
  size_t start = 0;
  for (size_t e : ends) {
    words->push_back(text.substr(c.off[start], c.off[e] - c.off[start]));
    start = e;
  }
}

bool tokenizer_init(Tokenizer& tok, const TokenizerData& data, std::string* err) {
  tok = Tokenizer{};
  if (!data.model.empty() && data.model != "gpt2" && data.model != "llama") {
    return fail(err, "unsupported tokenizer model '" + data.model +
                         "' (gpt2 BPE and llama SentencePiece are)");
  }
  tok.spm = data.model == "llama";
  // llama.cpp's grouping of pre names by regex list.
  static const char* const kDigits[] = {"smollm",    "starcoder", "refact", "command-r",
                                        "codeshell", "exaone",    "minerva"};
  static const char* const kGpt2[] = {"gpt2", "mpt", "olmo", "jais", "trillion"};
  static const char* const kLlama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3"};
  const auto in = [&](const auto& names) {
    for (const char* n : names) {
      if (data.pre == n) return true;
    }
    return false;
  };
  if (tok.spm) {
    // SentencePiece has no pre-tokenizer.
  } else if (in(kDigits)) {
    tok.pre = PreTokenizer::kDigitsGpt2;
  } else if (in(kGpt2)) {
    tok.pre = PreTokenizer::kGpt2;
  } else if (in(kLlama3)) {
    tok.pre = PreTokenizer::kLlama3;
  } else {
    return fail(err, "unsupported pre-tokenizer '" + data.pre + "'");
  }

  const size_t n = data.tokens.size();
  if (n == 0) return fail(err, "empty vocabulary");
  if (n > size_t(INT32_MAX)) return fail(err, "vocabulary too large");
  if (!data.token_types.empty() && data.token_types.size() != n) {
    return fail(err, "token_type has " + std::to_string(data.token_types.size()) + " entries for " +
                         std::to_string(n) + " tokens");
  }
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", data.bos_id}, {"eos", data.eos_id}, {"unk", data.unk_id}, {"pad", data.pad_id}};
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= int64_t(n)) {
      return fail(err, std::string(name) + " id " + std::to_string(id) + " out of range");
    }
  }

  tok.tokens = data.tokens;
  tok.types = data.token_types.empty() ? std::vector<int32_t>(n, kTokenNormal) : data.token_types;
  tok.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) tok.token_to_id.emplace(tok.tokens[i], int32_t(i));
  tok.bos_id = data.bos_id;
  tok.eos_id = data.eos_id;
  tok.unk_id = data.unk_id;
  tok.pad_id = data.pad_id;
  tok.add_bos_token = data.add_bos_token;
  if (tok.spm) {
    if (!data.scores.empty() && data.scores.size() != n)
      return fail(err, "scores has " + std::to_string(data.scores.size()) + " entries for " +
                           std::to_string(n) + " tokens");
    tok.scores = data.scores.empty() ? std::vector<float>(n, 0.f) : data.scores;
    tok.add_space_prefix = data.add_space_prefix;
  }

  const auto find = [&](const std::string& s) {
    auto it = tok.token_to_id.find(s);
    return it == tok.token_to_id.end() ? -1 : it->second;
  };
  for (int b = 0; b < 256; ++b) {
    std::string s;
    if (tok.spm) {
      static const char kHex[] = "0123456789ABCDEF";
      s = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    } else {
      append_utf8(alphabet().byte_to_cp[b], &s);
    }
    tok.byte_token[b] = find(s);
  }

  // A merge whose parts or result are not tokens can never fire on ids: drop it.
  tok.merges.reserve(data.merges.size());
  for (size_t r = 0; r < data.merges.size(); ++r) {
    const std::string& m = data.merges[r];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    int32_t a = -1, b = -1, ab = -1;
    if (sp != std::string::npos) {
      const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
      a = find(left);
      b = find(right);
      ab = find(left + right);
    }
    if (a < 0 || b < 0 || ab < 0 || r > size_t(INT32_MAX) ||
        !tok.merges.emplace(pair_key(a, b), Tokenizer::Merge{int32_t(r), ab}).second) {
      ++tok.skipped_merges;  // malformed, unknown, or a repeat of a better-ranked merge
    }
  }

  std::memset(tok.special_first_byte, 0, sizeof(tok.special_first_byte));
  for (size_t i = 0; i < n; ++i) {
    if (is_special_type(tok.types[i]) && !tok.tokens[i].empty() &&
        tok.token_to_id.at(tok.tokens[i]) == int32_t(i)) {
      tok.specials.push_back(int32_t(i));
      tok.special_first_byte[uint8_t(tok.tokens[i][0])] = true;
    }
  }
  std::stable_sort(tok.specials.begin(), tok.specials.end(), [&](int32_t a, int32_t b) {
    return tok.tokens[a].size() > tok.tokens[b].size();
  });
  return true;
}

void tokenize(const Tokenizer& tok, std::string_view text, bool add_bos, bool parse_special,
              std::vector<int32_t>* out) {
  if (add_bos && tok.bos_id >= 0) out->push_back(tok.bos_id);
  // Leftmost-longest match of special texts; plain text between them goes through BPE.
  size_t plain = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!tok.special_first_byte[uint8_t(text[i])]) continue;
    for (int32_t id : tok.specials) {
      const std::string& s = tok.tokens[id];
      if (!parse_special && tok.types[id] != kTokenUserDefined) continue;
      if (text.compare(i, s.size(), s) != 0) continue;
      tokenize_plain(tok, text.substr(plain, i - plain), out);
      out->push_back(id);
      plain = i + s.size();
      i = plain - 1;
      break;
    }
  }
  tokenize_plain(tok, text.substr(plain), out);
}

std::string detokenize_token(const Tokenizer& tok, int32_t id, bool render_special) {
  if (id < 0 || size_t(id) >= tok.tokens.size()) return {};
  const std::string& text = tok.tokens[id];
  switch (tok.types[id]) {
    case kTokenControl:
    case kTokenUnknown:
      return render_special ? text : std::string();
    case kTokenUserDefined:
      return text;  // stored raw, not in the byte alphabet
    case kTokenUnused:
      return {};
    case kTokenByte:  // "<0xHH>"
      if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>') {
        const int hi = hex_digit(text[3]), lo = hex_digit(text[4]);
        if (hi >= 0 && lo >= 0) return std::string(1, char(hi * 16 + lo));
      }
      break;
    default:
      break;
  }
  std::string out;
  if (tok.spm) {  // U+2581 is a space
    for (size_t i = 0; i < text.size(); ++i)
      if (text.compare(i, 3, "\xe2\x96\x81") == 0)
        out += ' ', i += 2;
      else
        out += text[i];
    return out;
  }
  // Map each code point back through the byte alphabet; foreign code points pass through.
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t len = decode_utf8(text, i, &cp);
    if (cp < 324 && alphabet().cp_to_byte[cp] >= 0) {
      out.push_back(char(alphabet().cp_to_byte[cp]));
    } else {
      out.append(text, i, len);
    }
    i += len;
  }
  return out;
}

std::string detokenize(const Tokenizer& tok, const std::vector<int32_t>& ids, bool render_special) {
  std::string out;
  for (int32_t id : ids) out += detokenize_token(tok, id, render_special);
  return out;
}

std::string chatml_prompt(const std::vector<std::pair<std::string, std::string>>& messages,
                          bool add_generation_prompt) {
  std::string out;
  for (const auto& [role, content] : messages) {
    out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

namespace {
const ChatFormat kChatFormats[] = {
    {"chatml", "<|im_start|>", "<|im_start|>", "\n", "<|im_end|>\n", "assistant", true},
    {"gemma", "<start_of_turn>", "<start_of_turn>", "\n", "<end_of_turn>\n", "model", false},
    {"llama3", "<|start_header_id|>", "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>",
     "assistant", true},
};
}  // namespace

const ChatFormat* chat_format_recognise(std::string_view chat_template) {
  for (const ChatFormat& f : kChatFormats)
    if (chat_template.find(f.marker) != std::string_view::npos) return &f;
  return nullptr;
}

const ChatFormat* chat_format_named(std::string_view name) {
  for (const ChatFormat& f : kChatFormats)
    if (name == f.name) return &f;
  return nullptr;
}

std::string chat_open(const ChatFormat& fmt, std::string_view role) {
  return std::string(fmt.role_before) + std::string(role == "assistant" ? fmt.assistant : role) +
         fmt.role_after;
}

}  // namespace amskv
