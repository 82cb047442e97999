#include "tools/cli/common.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace amskv {
namespace cli {

int error(int code, const std::string& msg) {
  std::fprintf(stderr, "amskv: %s\n", msg.c_str());
  return code;
}

// The models tools/setup.sh fetches, by short name (tools/setup.sh --model NAME).
const struct {
  const char* name;
  const char* file;
} kModels[] = {
    {"smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"},
    {"gemma3-270m", "gemma-3-270m-q4_k_m.gguf"},
};

std::string cache_dir() {
  const char* home = std::getenv("HOME");
  const char* cache = std::getenv("AMSKV_CACHE");
  return cache && *cache ? cache : std::string(home ? home : ".") + "/.cache/amskv";
}

std::string model_path(const std::string& name_or_path) {
  const std::string dir = cache_dir();
  for (const auto& m : kModels)
    if (name_or_path == m.name) return dir + "/" + m.file;
  return name_or_path;
}

std::string default_model() {
  const char* env = std::getenv("AMSKV_MODEL");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf";
}

bool parse_size(const std::string& s, size_t* out) {
  char* end;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end;
  const double mul = unit.empty()    ? 1
                     : unit == "KiB" ? 1024.0
                     : unit == "MiB" ? 1048576.0
                     : unit == "GiB" ? 1073741824.0
                                     : -1;
  if (end == s.c_str() || mul < 0 || !(v >= 1) || v * mul > (double)SIZE_MAX / 2) return false;
  if (unit.empty() && v != std::floor(v)) return false;
  *out = (size_t)(v * mul);
  return true;
}

bool parse_long(const std::string& s, long lo, long hi, long* out) {
  char* end;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || errno || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_float(const std::string& s, float lo, float hi, float* out) {
  char* end;
  const float v = std::strtof(s.c_str(), &end);
  if (s.empty() || *end || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

std::string format_size(size_t bytes) {
  static const char* const kUnits[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; ++i) {
    const size_t unit = (size_t)1 << (10 * (3 - i));
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + kUnits[i];
  }
  return std::to_string(bytes);
}

bool split(const std::string& s, char sep, std::vector<std::string>* out) {
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out->push_back(item);
  return !out->empty();
}

long default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw > 256 ? 256 : (long)hw;
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::string> token_pieces(const Tokenizer& tok) {
  std::vector<std::string> p(tok.tokens.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = detokenize_token(tok, (int32_t)i);
  return p;
}

bool is_end(const Tokenizer& tok, int32_t id) {
  return id == tok.eos_id || (id < (int32_t)tok.types.size() && tok.types[id] == kTokenControl);
}

size_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return (size_t)std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

}  // namespace cli
}  // namespace amskv
