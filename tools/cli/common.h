// Helpers every amskv subcommand shares: one-line errors, size and number parsing, the
// default model path, token pieces.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model/tokenizer.h"

namespace amskv {
namespace cli {

constexpr int kUsage = 2, kRuntime = 1;  // exit codes: bad flags/budget/policy; anything else

// Prints "amskv: msg" on stderr and returns code.
int error(int code, const std::string& msg);

// $AMSKV_MODEL, else ~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf.
std::string default_model();
// A short name of a model tools/setup.sh fetches (smollm2, gemma3-270m) as its cached file;
// anything else is a path, returned as it is.
std::string model_path(const std::string& name_or_path);
// $AMSKV_CACHE, else ~/.cache/amskv: where tools/setup.sh puts models and texts.
std::string cache_dir();

// "8MiB", "512KiB", "1GiB", "1.5MiB" or plain bytes.
bool parse_size(const std::string& s, size_t* out);
bool parse_long(const std::string& s, long lo, long hi, long* out);
bool parse_float(const std::string& s, float lo, float hi, float* out);
// The inverse of parse_size for whole KiB, MiB and GiB ("8MiB"), else plain bytes.
std::string format_size(size_t bytes);
// The non-empty items of s between separators; false when there are none.
bool split(const std::string& s, char sep, std::vector<std::string>* out);

// Threads when the user gives none: every CPU, at least 1 and at most 256.
long default_threads();

// The whole file, or false.
bool read_file(const std::string& path, std::string* out);

double seconds_since(std::chrono::steady_clock::time_point t0);

// Raw bytes of every token, made once, so generation writes without allocating.
std::vector<std::string> token_pieces(const Tokenizer& tok);

// End of text: the eos id or any other control token (<|im_end|>, <|endoftext|>).
bool is_end(const Tokenizer& tok, int32_t id);

// Peak resident set of this process in bytes (VmHWM), 0 if unknown.
size_t peak_rss_bytes();

}  // namespace cli
}  // namespace amskv
