// The tokenizers GGUF files describe under tokenizer.ggml.*, built from the plain arrays the
// file stores. It does not read GGUF itself: the loader fills TokenizerData.
//
// "gpt2" (SmolLM2, Qwen2, Llama 3): byte-level BPE. Split out special tokens -> pre-tokenize
// each plain span with the scanner selected by tokenizer.ggml.pre -> map each word's bytes to
// the GPT-2 byte alphabet -> merge by rank -> token ids. Mirrors llama.cpp's "gpt2" path.
// "llama" (SentencePiece, Gemma): split out special tokens -> spaces become U+2581 (and one
// is put first when add_space_prefix) -> start from the span's UTF-8 characters and merge the
// neighbouring pair whose text is the token of highest score -> a piece no token spells
// becomes its bytes' <0xHH> tokens. Mirrors llama.cpp's "llama" (SPM) path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace amskv {

// Values of tokenizer.ggml.token_type.
enum TokenType : int32_t {
  kTokenUndefined = 0,
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

// Input, as GGUF stores it. Ids of -1 mean "absent".
struct TokenizerData {
  std::string model = "gpt2";        // tokenizer.ggml.model: "gpt2" (BPE) or "llama" (SPM)
  std::string pre;                   // tokenizer.ggml.pre, e.g. "smollm"
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type; empty = all normal
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right", rank = index
  std::vector<float> scores;         // tokenizer.ggml.scores (SPM); empty = all 0
  bool add_space_prefix = true;      // tokenizer.ggml.add_space_prefix (SPM)
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos_token = false;  // tokenizer.ggml.add_bos_token (advice for callers)
};

// How a plain span is cut into words before BPE (llama.cpp's regex list per pre name).
enum class PreTokenizer {
  kGpt2,        // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kDigitsGpt2,  // \p{N} split first (every digit alone), then kGpt2 on each piece
  kLlama3,      // llama3 regex: \p{N}{1,3}, case-insensitive contractions, newline rules
};

struct Tokenizer {
  std::vector<std::string> tokens;  // token text in the byte-encoded alphabet
  std::vector<int32_t> types;
  std::unordered_map<std::string, int32_t> token_to_id;  // first id wins on duplicates
  // Merge rank keyed on (left id << 32 | right id) -> {rank, merged id}.
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  std::unordered_map<uint64_t, Merge> merges;
  int32_t byte_token[256] = {};       // id of the one-char token for each raw byte, or -1
  std::vector<int32_t> specials;      // control/user-defined/unknown ids, longest text first
  bool special_first_byte[256] = {};  // quick reject while scanning for specials
  PreTokenizer pre = PreTokenizer::kGpt2;
  bool spm = false;           // SentencePiece: scores, byte_token holds the <0xHH> ids
  std::vector<float> scores;  // SPM: per token
  bool add_space_prefix = false;
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos_token = false;
  size_t skipped_merges = 0;  // merges dropped at init (malformed or unknown tokens)
};

// Validates `data` and builds `tok`. On failure returns false and sets *err (if non-null).
bool tokenizer_init(Tokenizer& tok, const TokenizerData& data, std::string* err);

struct GgufFile;
// Reads tokenizer.ggml.* from a GGUF file (tokenizer_gguf.cpp); false + err when a key is
// missing or has the wrong type.
bool tokenizer_data_from_gguf(const GgufFile& f, TokenizerData* d, std::string* err);

// Appends ids for `text` to *out. Any bytes are accepted (invalid UTF-8 included); a byte
// with no one-char token in the vocab is dropped (llama.cpp does the same).
// parse_special: control/unknown-type token texts in `text` become their ids; user-defined
// tokens are always matched (as llama.cpp does).
void tokenize(const Tokenizer& tok, std::string_view text, bool add_bos, bool parse_special,
              std::vector<int32_t>* out);

// Raw bytes of one token (may be a partial UTF-8 sequence). Control/unknown tokens give their
// text when render_special is set, else nothing. Out-of-range ids give "".
std::string detokenize_token(const Tokenizer& tok, int32_t id, bool render_special = false);

// Concatenated detokenize_token() over ids.
std::string detokenize(const Tokenizer& tok, const std::vector<int32_t>& ids,
                       bool render_special = false);

// The pre-tokenizer alone, exposed for tests: appends the words of `text` to *words.
void pretokenize(PreTokenizer pre, std::string_view text, std::vector<std::string_view>* words);

// ChatML: "<|im_start|>role\ncontent<|im_end|>\n" per {role, content}, then
// "<|im_start|>assistant\n" when add_generation_prompt.
std::string chatml_prompt(const std::vector<std::pair<std::string, std::string>>& messages,
                          bool add_generation_prompt);

// The chat templates the runner knows, one row each: a turn is open(role) content end.
struct ChatFormat {
  const char* name;         // "chatml", "gemma", "llama3"
  const char* marker;       // text that identifies it in tokenizer.chat_template
  const char* role_before;  // then the role, then role_after
  const char* role_after;
  const char* end;        // closes a turn
  const char* assistant;  // the model's role name
  bool system;            // has a system role (else the system text opens the first user turn)
};
// The format whose marker the template holds, else nullptr.
const ChatFormat* chat_format_recognise(std::string_view chat_template);
const ChatFormat* chat_format_named(std::string_view name);
// open(role): the text before a turn's content ("assistant" maps to fmt.assistant).
std::string chat_open(const ChatFormat& fmt, std::string_view role);

}  // namespace amskv
