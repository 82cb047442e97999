#include "tools/json.h"

#include <cstdio>
#include <cstdlib>

namespace amskv {
namespace json {
namespace {

constexpr int kMaxDepth = 64;

struct Parser {
  const std::string& s;
  size_t i = 0;
  std::string err;

  bool fail(const char* what) {
    if (err.empty()) err = std::string(what) + " at byte " + std::to_string(i);
    return false;
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool lit(const char* w) {
    size_t n = 0;
    while (w[n]) ++n;
    if (s.compare(i, n, w) != 0) return fail("unexpected token");
    i += n;
    return true;
  }
  static void utf8(uint32_t c, std::string* o) {
    if (c < 0x80) {
      *o += (char)c;
    } else if (c < 0x800) {
      *o += (char)(0xC0 | (c >> 6));
      *o += (char)(0x80 | (c & 63));
    } else if (c < 0x10000) {
      *o += (char)(0xE0 | (c >> 12));
      *o += (char)(0x80 | ((c >> 6) & 63));
      *o += (char)(0x80 | (c & 63));
    } else {
      *o += (char)(0xF0 | (c >> 18));
      *o += (char)(0x80 | ((c >> 12) & 63));
      *o += (char)(0x80 | ((c >> 6) & 63));
      *o += (char)(0x80 | (c & 63));
    }
  }
  bool hex4(uint32_t* out) {
    if (i + 4 > s.size()) return fail("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= (uint32_t)(c - 'A' + 10);
      else
        return fail("bad \\u escape");
    }
    *out = v;
    return true;
  }
  bool string(std::string* o) {
    ++i;  // the opening quote
    for (;;) {
      if (i >= s.size()) return fail("unterminated string");
      const char c = s[i++];
      if (c == '"') return true;
      if ((unsigned char)c < 0x20) return fail("control character in string");
      if (c != '\\') {
        *o += c;
        continue;
      }
      if (i >= s.size()) return fail("unterminated escape");
      const char e = s[i++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *o += e;
          break;
        case 'b':
          *o += '\b';
          break;
        case 'f':
          *o += '\f';
          break;
        case 'n':
          *o += '\n';
          break;
        case 'r':
          *o += '\r';
          break;
        case 't':
          *o += '\t';
          break;
        case 'u': {
          uint32_t c1 = 0;
          if (!hex4(&c1)) return false;
          if (c1 >= 0xD800 && c1 < 0xDC00) {  // a high surrogate needs its low half
            uint32_t c2 = 0;
            if (s.compare(i, 2, "\\u") != 0) return fail("lone surrogate");
            i += 2;
            if (!hex4(&c2)) return false;
            if (c2 < 0xDC00 || c2 >= 0xE000) return fail("lone surrogate");
            c1 = 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
          } else if (c1 >= 0xDC00 && c1 < 0xE000) {
            return fail("lone surrogate");
          }
          utf8(c1, o);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
  }
  bool number(double* out) {
    const size_t start = i;
    if (s[i] == '-') ++i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' ||
                            s[i] == 'E' || s[i] == '+' || s[i] == '-'))
      ++i;
    const std::string t = s.substr(start, i - start);
    char* end;
    *out = std::strtod(t.c_str(), &end);
    if (t.empty() || *end) return fail("bad number");
    return true;
  }
  bool value(Value* v, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    ws();
    if (i >= s.size()) return fail("unexpected end");
    const char c = s[i];
    if (c == '{') {
      v->kind = Value::kObject;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') return ++i, true;
      for (;;) {
        ws();
        if (i >= s.size() || s[i] != '"') return fail("expected a key");
        std::string key;
        if (!string(&key)) return false;
        ws();
        if (i >= s.size() || s[i] != ':') return fail("expected ':'");
        ++i;
        if (!value(&v->obj[key], depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == '}') return ++i, true;
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v->kind = Value::kArray;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') return ++i, true;
      for (;;) {
        v->arr.emplace_back();
        if (!value(&v->arr.back(), depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == ']') return ++i, true;
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') return v->kind = Value::kString, string(&v->str);
    if (c == 't') return v->kind = Value::kBool, v->b = true, lit("true");
    if (c == 'f') return v->kind = Value::kBool, lit("false");
    if (c == 'n') return lit("null");
    if (c == '-' || (c >= '0' && c <= '9')) return v->kind = Value::kNumber, number(&v->num);
    return fail("unexpected character");
  }
};

}  // namespace

const Value* Value::get(const std::string& key) const {
  if (kind != kObject) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &it->second;
}

bool parse(const std::string& text, Value* out, std::string* err) {
  Parser p{text, 0, {}};
  *out = Value();
  bool ok = p.value(out, 0);
  if (ok) {
    p.ws();
    if (p.i != text.size()) ok = p.fail("trailing characters");
  }
  if (!ok && err) *err = p.err;
  return ok;
}

std::string dump(const Value& v) {
  switch (v.kind) {
    case Value::kNull:
      return "null";
    case Value::kBool:
      return v.b ? "true" : "false";
    case Value::kNumber: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v.num);
      return buf;
    }
    case Value::kString:
      return quote(v.str);
    case Value::kArray: {
      std::string o = "[";
      for (size_t i = 0; i < v.arr.size(); ++i) o += (i ? ", " : "") + dump(v.arr[i]);
      return o + "]";
    }
    case Value::kObject: {
      std::string o = "{";
      bool first = true;
      for (const auto& [k, x] : v.obj) {
        o += (first ? "" : ", ") + quote(k) + ": " + dump(x);
        first = false;
      }
      return o + "}";
    }
  }
  return "null";
}

std::string quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += (char)c;
    } else if (c == '\n') {
      o += "\\n";
    } else if (c == '\t') {
      o += "\\t";
    } else if (c == '\r') {
      o += "\\r";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += (char)c;
    }
  }
  return o + "\"";
}

}  // namespace json
}  // namespace amskv
