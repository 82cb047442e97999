#include "tools/cli/flags.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "tools/cli/common.h"
#include "tools/cli/policies.h"

namespace amskv {
namespace cli {

std::string join_or(const std::vector<std::string>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i)
    s += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
  return s;
}

std::vector<std::string> dtype_names() {
  std::vector<std::string> names;
  for (int d = 0; d < amskv_dtype_count(); ++d) names.push_back(amskv_dtype_name((amskv_dtype)d));
  return names;
}

Flag string_flag(const char* name, const char* value, std::string help, std::string* t,
                 bool* given) {
  Flag f{name, value, std::move(help), FlagKind::kString, t};
  f.given = given;
  return f;
}

Flag long_flag(const char* name, const char* value, std::string help, long* t, long lo, long hi) {
  Flag f{name, value, std::move(help), FlagKind::kLong, t};
  f.lo = lo, f.hi = hi;
  return f;
}

Flag float_flag(const char* name, const char* value, std::string help, float* t, float lo,
                float hi) {
  Flag f{name, value, std::move(help), FlagKind::kFloat, t};
  f.flo = lo, f.fhi = hi;
  return f;
}

Flag size_flag(const char* name, const char* value, std::string help, size_t* t) {
  return Flag{name, value, std::move(help), FlagKind::kSize, t};
}

Flag switch_flag(const char* name, std::string help, bool* t) {
  return Flag{name, "", std::move(help), FlagKind::kSwitch, t};
}

Flag dtype_flag(const char* name, std::string help, amskv_dtype* t) {
  return Flag{name, "T", help + ": " + join_or(dtype_names()), FlagKind::kDtype, t};
}

Flag list_flag(const char* name, const char* value, std::string help, std::vector<std::string>* t,
               char sep, bool* given) {
  Flag f{name, value, std::move(help), FlagKind::kList, t};
  f.sep = sep, f.given = given;
  return f;
}

Flag shown_as(Flag f, const char* what) {
  f.shown_default = what;
  return f;
}

Flag only(Flag f, const char* words) {
  f.choices = words;
  return f;
}

Flag model_flag(std::string* t) {
  return string_flag(
      "--model", "PATH",
      "GGUF model, or smollm2 / gemma3-270m (fetched by tools/setup.sh --model NAME); "
      "$AMSKV_MODEL if set",
      t);
}

Flag threads_flag(long* t, std::string help) {
  return long_flag("--threads", "N", std::move(help), t, 1, 256);
}

Flag onednn_flag(bool* t) {
  return switch_flag("--onednn", "prompt batches on oneDNN's bf16 matmul (x86-64 with AVX512_BF16)",
                     t);
}

Flag kv_budget_flag(size_t* t) {
  return size_flag("--kv-budget", "SIZE", "KV session bytes: 8MiB, 512KiB, 1GiB or plain bytes", t);
}

Flag kv_dtype_flag(amskv_dtype* t) {
  return dtype_flag("--kv-dtype", "KV storage type", t);
}

Flag policy_flag(std::string* t, std::string help) {
  return string_flag("--policy", "STRING", help + ": " + policy_help(), t);
}

Flag policies_flag(std::vector<std::string>* t, std::string help, bool* given) {
  return list_flag("--policy", "P", std::move(help) + ", repeatable; " + policy_help(), t, 0,
                   given);
}

Flag seed_flag(long* t, std::string help) {
  return long_flag("--seed", "S", std::move(help), t, 0, 2147483647L);
}

namespace {

std::vector<std::string> words(const char* s) {
  std::vector<std::string> out;
  split(s ? s : "", ' ', &out);
  return out;
}

bool one_of(const std::string& v, const char* choices) {
  if (!choices) return true;
  for (const std::string& w : words(choices))
    if (v == w) return true;
  return false;
}

// What a value of this flag looks like, for errors.
std::string wants(const Flag& f) {
  char buf[96];
  switch (f.kind) {
    case FlagKind::kLong:
      std::snprintf(buf, sizeof buf, "a whole number in %ld..%ld", f.lo, f.hi);
      return buf;
    case FlagKind::kFloat:
      std::snprintf(buf, sizeof buf, "a number in [%g, %g]", f.flo, f.fhi);
      return buf;
    case FlagKind::kSize:
      return "a size like 8MiB, 512KiB, 1GiB or 1048576";
    case FlagKind::kDtype:
      return join_or(dtype_names());
    case FlagKind::kList:
      return std::string(f.sep ? "a list separated by '" + std::string(1, f.sep) + "'"
                               : "a value") +
             (f.choices ? " of " + join_or(words(f.choices)) : "");
    default:
      return "a value";
  }
}

// Sets the target from v; false when v is not a value of the flag.
bool set(const Flag& f, const std::string& v, bool first_use) {
  switch (f.kind) {
    case FlagKind::kString:
      *(std::string*)f.target = v;
      return true;
    case FlagKind::kLong:
      return parse_long(v, f.lo, f.hi, (long*)f.target);
    case FlagKind::kFloat:
      return parse_float(v, f.flo, f.fhi, (float*)f.target);
    case FlagKind::kSize:
      return parse_size(v, (size_t*)f.target);
    case FlagKind::kDtype:
      return amskv_dtype_from_name(v.c_str(), (amskv_dtype*)f.target) == AMSKV_OK;
    case FlagKind::kList: {
      auto* t = (std::vector<std::string>*)f.target;
      std::vector<std::string> items;
      if (!f.sep)
        items = {v};
      else if (!split(v, f.sep, &items))
        return false;
      for (const std::string& x : items)
        if (!one_of(x, f.choices)) return false;
      if (f.sep || first_use) t->clear();
      t->insert(t->end(), items.begin(), items.end());
      return true;
    }
    case FlagKind::kSwitch:
      *(bool*)f.target = true;
      return true;
  }
  return false;
}

// The target's value as --help shows it; "" for none.
std::string shown(const Flag& f) {
  if (f.shown_default) return f.shown_default;
  char buf[32];
  switch (f.kind) {
    case FlagKind::kString:
      return *(const std::string*)f.target;
    case FlagKind::kLong:
      return std::to_string(*(const long*)f.target);
    case FlagKind::kFloat:
      std::snprintf(buf, sizeof buf, "%g", *(const float*)f.target);
      return buf;
    case FlagKind::kSize:
      return format_size(*(const size_t*)f.target);
    case FlagKind::kDtype:
      return amskv_dtype_name(*(const amskv_dtype*)f.target);
    case FlagKind::kList: {
      std::string s;
      for (const std::string& x : *(const std::vector<std::string>*)f.target)
        s += (s.empty() ? "" : f.sep ? std::string(1, f.sep) : std::string(" ")) + x;
      return s;
    }
    case FlagKind::kSwitch:
      return "";
  }
  return "";
}

// Appends text to out in lines of at most `width` columns, later lines indented by `indent`.
void wrap(const std::string& text, size_t col, size_t indent, size_t width, std::string* out) {
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    if (col > indent && col + 1 + word.size() > width) {
      *out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (col > indent) {
      *out += ' ', ++col;
    }
    *out += word;
    col += word.size();
  }
  *out += '\n';
}

const Flag* find(const Spec& spec, const std::string& name) {
  for (const Flag& f : spec.flags)
    if (name == f.name) return &f;
  return nullptr;
}

bool is_help(const std::string& a) {
  return a == "--help" || a == "-h";
}

}  // namespace

std::string help(const Spec& spec) {
  constexpr size_t kIndent = 24, kWidth = 100;
  std::string out = std::string("amskv ") + spec.name + " " + spec.usage + "\n" + spec.about;
  out += "options:\n";
  for (const Flag& f : spec.flags) {
    std::string head = std::string("  ") + f.name + (*f.value ? " " : "") + f.value;
    head += head.size() + 2 <= kIndent ? std::string(kIndent - head.size(), ' ') : "  ";
    const std::string d = shown(f);
    out += head;
    wrap(f.help + (d.empty() ? "" : " (default " + d + ")"), head.size(), kIndent, kWidth, &out);
  }
  return out + "  -h, --help            this text\n";
}

int bad_value(const std::string& flag, const std::string& v, const std::string& want) {
  return error(kUsage, "bad value '" + v + "' for " + flag + ": expected " + want);
}

bool parse(int argc, char** argv, const Spec& spec, int* rc) {
  // --help wherever a flag may stand: the help with the defaults, before any is changed.
  for (int i = 0; i < argc; ++i) {
    if (is_help(argv[i])) {
      std::fputs(help(spec).c_str(), stdout);
      *rc = 0;
      return false;
    }
    const Flag* f = find(spec, argv[i]);
    if (f && f->kind != FlagKind::kSwitch) ++i;
  }
  std::vector<const Flag*> used;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const Flag* f = find(spec, a);
    if (!f && (a.size() < 2 || a[0] != '-')) {
      if (!spec.positional) return *rc = error(kUsage, "unexpected argument '" + a + "'"), false;
      spec.positional->push_back(a);
      continue;
    }
    if (!f)
      return *rc = error(kUsage, "unknown option '" + a + "' (see amskv " + spec.name + " --help)"),
             false;
    std::string v;
    if (f->kind != FlagKind::kSwitch) {
      if (i + 1 >= argc) return *rc = error(kUsage, a + " needs a value"), false;
      v = argv[++i];
    }
    const bool first = std::find(used.begin(), used.end(), f) == used.end();
    if (!set(*f, v, first)) return *rc = bad_value(a, v, wants(*f)), false;
    if (f->given) *f->given = true;
    used.push_back(f);
  }
  return true;
}

}  // namespace cli
}  // namespace amskv
