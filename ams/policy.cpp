#include "ams/policy.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ams/ams_select.h"
#include "ams/scorer.h"
#include "arch/error.h"

namespace amskv {
namespace {

constexpr int kMaxPolicyChars = 400;

bool name_is(const char* s, size_t len, const char* name) {
  return std::strlen(name) == len && std::strncmp(s, name, len) == 0;
}

// Copies [s, s+len) into buf as a C string; false if it does not fit.
bool copy_value(const char* s, size_t len, char* buf, size_t n) {
  if (len == 0 || len >= n) return false;
  std::memcpy(buf, s, len);
  buf[len] = 0;
  return true;
}

bool parse_int(const char* s, size_t len, long lo, long hi, long* out) {
  char buf[32];
  if (!copy_value(s, len, buf, sizeof buf)) return false;
  char* end;
  errno = 0;
  long v = std::strtol(buf, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_float(const char* s, size_t len, double lo, double hi, double* out) {
  char buf[32];
  if (!copy_value(s, len, buf, sizeof buf)) return false;
  char* end;
  errno = 0;
  double v = std::strtod(buf, &end);
  if (errno || *end || !std::isfinite(v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Which policies an option applies to.
enum Applies { kEvicting = 1, kScored = 2, kAmsOnly = 4, kTopKOnly = 8 };

struct Option {
  const char* key;
  int applies;
  char type;  // 'i' int, 'f' float, 'b' 0/1, 's' segmenter, 'c' cov, 'u' uint64
  double lo, hi;
  size_t offset;  // into Policy
};

#define AMSKV_OPT(key, applies, type, lo, hi, field) \
  { key, applies, type, lo, hi, offsetof(Policy, field) }

const Option kOptions[] = {
    AMSKV_OPT("n_sink", kEvicting, 'i', 0, 1024, n_sink),
    AMSKV_OPT("keep_last", kEvicting, 'i', 1, 65536, keep_last),
    AMSKV_OPT("window", kEvicting, 'i', 1, 4096, window),
    AMSKV_OPT("snap_window", kScored, 'i', 1, 4096, snap_window),
    AMSKV_OPT("ea_window", kScored, 'i', 1, 1 << 20, ea_window),
    AMSKV_OPT("horizon", kScored, 'i', 1, 1 << 20, ea_horizon),
    AMSKV_OPT("cov", kScored, 'c', 0, 1, ea_diag),
    AMSKV_OPT("radius", kScored, 'i', 0, 4096, radius),
    AMSKV_OPT("seed", kScored, 'u', 0, 0, seed),
    // Under AMS a chunk's shared score can leave a region without a token (docs/results.md).
    AMSKV_OPT("chunk", kTopKOnly, 'i', 0, 4096, chunk),
    AMSKV_OPT("attn_share", kTopKOnly, 'f', 0, 1, attn_share),
    AMSKV_OPT("score_min", kScored, 'f', 0, 1e30, score_min),
    AMSKV_OPT("global_head", kAmsOnly, 'b', 0, 1, global_head),
    AMSKV_OPT("apart", kAmsOnly, 'b', 0, 1, apart),
    AMSKV_OPT("scorer_mass", kAmsOnly, 'f', 0, 1, scorer_mass),
    AMSKV_OPT("segment_mass", kAmsOnly, 'f', 1e-6, 0.999999, ams.segment_mass),
    AMSKV_OPT("min_seg_len", kAmsOnly, 'i', 1, 1 << 20, ams.min_seg_len),
    AMSKV_OPT("max_seg_len", kAmsOnly, 'i', 1, 1 << 20, ams.max_seg_len),
    AMSKV_OPT("min_keep", kAmsOnly, 'i', 0, 1 << 20, ams.min_keep_per_segment),
    AMSKV_OPT("credit", kAmsOnly, 'b', 0, 1, ams.use_credit),
    AMSKV_OPT("credit_decay", kAmsOnly, 'f', 0, 0.999999, ams.credit_decay),
    AMSKV_OPT("mix_beta", kAmsOnly, 'f', 0, 1, ams.mix_beta),
    AMSKV_OPT("mass", kAmsOnly, 'b', 0, 1, ams.use_mass),
    AMSKV_OPT("segmenter", kAmsOnly, 's', 0, 2, ams.segmenter),
    AMSKV_OPT("fixed_seg_len", kAmsOnly, 'i', 1, 1 << 20, ams.fixed_seg_len),
};

int applies_mask(PolicyKind k) {
  switch (k) {
    case PolicyKind::kFull:
      return 0;
    case PolicyKind::kStreaming:
      return kEvicting;
    case PolicyKind::kTopK:
      return kEvicting | kScored | kTopKOnly;
    case PolicyKind::kAms:
      return kEvicting | kScored | kAmsOnly;
  }
  return 0;
}

bool set_option(Policy* p, const Option& o, const char* v, size_t vlen, char* err) {
  char* field = (char*)p + o.offset;
  long i;
  double f;
  switch (o.type) {
    case 'i':
      if (!parse_int(v, vlen, (long)o.lo, (long)o.hi, &i)) break;
      *(int*)field = (int)i;
      return true;
    case 'b':
      if (!parse_int(v, vlen, 0, 1, &i)) break;
      if (o.offset == offsetof(Policy, global_head))
        *(bool*)field = i != 0;
      else
        *(int*)field = (int)i;
      return true;
    case 'f':
      if (!parse_float(v, vlen, o.lo, o.hi, &f)) break;
      *(float*)field = (float)f;
      return true;
    case 'u': {
      char buf[32];
      char* end;
      if (!copy_value(v, vlen, buf, sizeof buf) || buf[0] == '-') break;
      errno = 0;
      unsigned long long u = std::strtoull(buf, &end, 10);
      if (errno || *end) break;
      *(uint64_t*)field = u;
      return true;
    }
    case 's': {
      int seg = name_is(v, vlen, "mass")     ? AMSKV_SEG_MASS
                : name_is(v, vlen, "fixed")  ? AMSKV_SEG_FIXED
                : name_is(v, vlen, "valley") ? AMSKV_SEG_VALLEY
                                             : -1;
      if (seg < 0) {
        format_error(err, "policy option segmenter takes mass, fixed or valley, got '%.*s'",
                     (int)vlen, v);
        return false;
      }
      p->ams.segmenter = (amskv_segmenter)seg;
      return true;
    }
    case 'c':
      if (name_is(v, vlen, "full") || name_is(v, vlen, "diag") || name_is(v, vlen, "auto")) {
        p->ea_diag = name_is(v, vlen, "diag");
        p->ea_cov_auto = name_is(v, vlen, "auto");
        return true;
      }
      format_error(err, "policy option cov takes auto, full or diag, got '%.*s'", (int)vlen, v);
      return false;
  }
  if (o.type == 'f')
    format_error(err, "policy option '%s' needs a number in [%g, %g], got '%.*s'", o.key, o.lo,
                 o.hi, (int)vlen, v);
  else if (o.type == 'u')
    format_error(err, "policy option '%s' needs a whole number >= 0, got '%.*s'", o.key, (int)vlen,
                 v);
  else
    format_error(err, "policy option '%s' needs a whole number in [%ld, %ld], got '%.*s'", o.key,
                 (long)o.lo, (long)o.hi, (int)vlen, v);
  return false;
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
  Policy p{};
  p.kind = PolicyKind::kFull;
  p.scorer = 0;
  p.n_sink = 4;
  p.keep_last = 32;
  p.window = 32;
  p.snap_window = 64;
  p.ea_window = 256;
  p.ea_horizon = 512;
  p.radius = 8;
  p.ea_cov_auto = true;
  p.ams = ams_params_default();
  const char* comma = std::strchr(text, ',');
  const size_t name_len = comma ? (size_t)(comma - text) : n;
  if (name_is(text, name_len, "full")) {
    p.kind = PolicyKind::kFull;
  } else if (name_is(text, name_len, "streaming")) {
    p.kind = PolicyKind::kStreaming;
  } else if (name_len > 4 && std::strncmp(text, "ams:", 4) == 0 &&
             (p.scorer = scorer_find(text + 4, name_len - 4)) >= 0) {
    p.kind = PolicyKind::kAms;
  } else if ((p.scorer = scorer_find(text, name_len)) >= 0) {
    p.kind = PolicyKind::kTopK;
  } else {
    char names[200] = "";
    for (int i = 0; i < scorer_count(); ++i) {
      const size_t used = std::strlen(names);
      std::snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                    scorer_at(i).info.name);
    }
    format_error(err,
                 "unknown policy '%.*s' (available: full, streaming, a scorer for global "
                 "top-k, or ams:<scorer>; scorers: %s)",
                 (int)name_len, text, names);
    return false;
  }
  const int mask = applies_mask(p.kind);
  for (const char* s = comma; s && *s;) {  // ",key=value" pairs
    const char* opt = s + 1;
    const char* next = std::strchr(opt, ',');
    const size_t len = next ? (size_t)(next - opt) : std::strlen(opt);
    const char* eq = (const char*)std::memchr(opt, '=', len);
    if (!eq) {
      format_error(err, "policy option '%.*s' is not key=value", (int)len, opt);
      return false;
    }
    const size_t klen = (size_t)(eq - opt), vlen = len - klen - 1;
    const Option* found = nullptr;
    for (const Option& o : kOptions)
      if (name_is(opt, klen, o.key) && (o.applies & mask)) found = &o;
    if (!found) {
      format_error(err, "policy '%.*s' has no option '%.*s'", (int)name_len, text, (int)klen, opt);
      return false;
    }
    if (!set_option(&p, *found, eq + 1, vlen, err)) return false;
    s = next;
  }
  if (p.ams.max_seg_len < p.ams.min_seg_len) {
    format_error(err, "policy option max_seg_len (%d) must be >= min_seg_len (%d)",
                 p.ams.max_seg_len, p.ams.min_seg_len);
    return false;
  }
  if (p.apart && p.score_min > 0.f) {
    format_error(err, "policy options apart and score_min do not go together: give one");
    return false;
  }
  if (p.attn_share > 0.f && p.score_min > 0.f) {
    format_error(err,
                 "policy options attn_share and score_min both split the slots: give "
                 "attn_share or score_min, not both");
    return false;
  }
  p.ams.n_sink = p.n_sink;
  p.ams.always_keep_last = p.keep_last;
  *out = p;
  return true;
}

void policy_name(const Policy& p, char* buf, size_t n) {
  switch (p.kind) {
    case PolicyKind::kFull:
      std::snprintf(buf, n, "full");
      break;
    case PolicyKind::kStreaming:
      std::snprintf(buf, n, "streaming");
      break;
    case PolicyKind::kTopK:
      std::snprintf(buf, n, "%s", scorer_at(p.scorer).info.name);
      break;
    case PolicyKind::kAms:
      std::snprintf(buf, n, "ams:%s", scorer_at(p.scorer).info.name);
      break;
  }
}

bool policy_evicts(const Policy& p) {
  return p.kind != PolicyKind::kFull;
}

int policy_must_keep(const Policy& p) {
  return policy_evicts(p) ? p.n_sink + p.keep_last : 0;
}

int policy_min_capacity(const Policy& p) {
  return policy_evicts(p) ? policy_must_keep(p) + 64 : 1;
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
