#include "ams/policy.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/error.h"

namespace amskv {
namespace {

constexpr int kMaxPolicyChars = 200;

// Parses a whole decimal int in [lo, hi]; false on junk or out of range.
bool parse_int(const char* s, size_t len, int lo, int hi, int* out) {
  char buf[32];
  if (len == 0 || len >= sizeof buf) return false;
  std::memcpy(buf, s, len);
  buf[len] = 0;
  char* end;
  errno = 0;
  long v = std::strtol(buf, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = (int)v;
  return true;
}

bool name_is(const char* s, size_t len, const char* name) {
  return std::strlen(name) == len && std::strncmp(s, name, len) == 0;
}

}  // namespace

bool policy_parse(const char* text, Policy* out, char* err) {
  if (!text) {
    format_error(err, "policy is NULL");
    return false;
  }
  const size_t n = std::strlen(text);
  if (n > kMaxPolicyChars) {
    format_error(err, "policy string longer than %d characters", kMaxPolicyChars);
    return false;
  }
  Policy p{PolicyKind::kFull, 4, 32};
  const char* comma = std::strchr(text, ',');
  const size_t name_len = comma ? (size_t)(comma - text) : n;
  if (name_is(text, name_len, "full")) {
    p.kind = PolicyKind::kFull;
  } else if (name_is(text, name_len, "streaming")) {
    p.kind = PolicyKind::kStreaming;
  } else {
    format_error(err, "unknown policy '%.*s' (available: full, streaming)", (int)name_len, text);
    return false;
  }
  // Options: ",key=value" pairs.
  for (const char* s = comma; s && *s;) {
    const char* opt = s + 1;
    const char* next = std::strchr(opt, ',');
    const size_t len = next ? (size_t)(next - opt) : std::strlen(opt);
    const char* eq = (const char*)std::memchr(opt, '=', len);
    if (!eq) {
      format_error(err, "policy option '%.*s' is not key=value", (int)len, opt);
      return false;
    }
    const size_t klen = (size_t)(eq - opt), vlen = len - klen - 1;
    int* target = nullptr;
    int lo = 0, hi = 0;
    if (p.kind != PolicyKind::kFull && name_is(opt, klen, "n_sink")) {
      target = &p.n_sink, lo = 0, hi = 1024;
    } else if (p.kind != PolicyKind::kFull && name_is(opt, klen, "keep_last")) {
      target = &p.keep_last, lo = 1, hi = 65536;
    }
    if (!target) {
      format_error(err, "policy '%.*s' has no option '%.*s'", (int)name_len, text, (int)klen,
                   opt);
      return false;
    }
    if (!parse_int(eq + 1, vlen, lo, hi, target)) {
      format_error(err, "policy option '%.*s' needs a whole number in [%d, %d], got '%.*s'",
                   (int)klen, opt, lo, hi, (int)vlen, eq + 1);
      return false;
    }
    s = next;
  }
  *out = p;
  return true;
}

int policy_must_keep(const Policy& p) {
  return p.kind == PolicyKind::kFull ? 0 : p.n_sink + p.keep_last;
}

int policy_min_capacity(const Policy& p) {
  return p.kind == PolicyKind::kFull ? 1 : policy_must_keep(p) + 64;
}

int policy_default_interval(const Policy& p, int capacity) {
  int interval = capacity / 8 > 64 ? capacity / 8 : 64;
  const int room = capacity - policy_must_keep(p);
  return interval < room ? interval : room;
}

void policy_select_streaming(const Policy& p, int n_tokens, int n_keep, int32_t* kept) {
  const int sinks = p.n_sink < n_keep ? p.n_sink : n_keep;
  int i = 0;
  for (; i < sinks; ++i) kept[i] = i;
  for (int j = n_tokens - (n_keep - sinks); j < n_tokens; ++j) kept[i++] = j;
}

}  // namespace amskv
